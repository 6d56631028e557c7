"""Zoho Bigin v2: Zoho CRM's tag API under ``/bigin/v2``, with the remove call in the query.

Everything but the differences below is :class:`~commands.providers.zoho.ZohoProvider`:

- base path ``/bigin/v2``, config section ``bigin``, its own concurrency cap;
- ``remove_tags`` takes ``ids`` and ``tag_names`` as comma-separated query
  parameters and no body.  The query is built by hand: httpx's ``params=``
  would encode the separating commas as ``%2C`` and spaces as ``+``, neither
  of which Zoho documents as understood.  A comma *inside* a tag name cannot
  be expressed at all, so such a removal is refused before any call.

Undo (``add_tags``) takes a JSON body like CRM's; ``details.tags`` in Bigin's
answers are name strings rather than CRM's objects, which
:func:`~commands.providers.zoho.tag_names` reads either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from commands.actions import ProviderName
from commands.config import ProvidersConfig, RateLimits, ZohoConfig
from commands.http import ApiResponse
from commands.providers.base import Provider, Wiring
from commands.providers.zoho import ZohoProvider, comma_query, module_path

__all__ = ["BiginProvider", "build"]


def build(wiring: Wiring) -> Provider | None:
    """Zoho Bigin, or ``None`` when ``wiring.config.bigin`` is not configured."""
    return BiginProvider.from_wiring(wiring)


class BiginProvider(ZohoProvider):
    """Zoho Bigin v2 tag removal: Zoho CRM's behaviour with Bigin's remove request."""

    name: ClassVar[ProviderName] = ProviderName.BIGIN
    api_path: ClassVar[str] = "/bigin/v2"

    @staticmethod
    def config_of(config: ProvidersConfig) -> ZohoConfig | None:
        """Bigin's config section."""
        return config.bigin

    @staticmethod
    def concurrency_of(limits: RateLimits) -> int:
        """Bigin's concurrency cap."""
        return limits.bigin_concurrency

    def send_remove(self, module: str, ids: Sequence[str], tags: Sequence[str]) -> ApiResponse:
        """``POST /{module}/actions/remove_tags?ids=…&tag_names=…`` with no body."""
        query = f"ids={comma_query(ids)}&tag_names={comma_query(tags)}"
        return self.session.post(f"{module_path(module)}/actions/remove_tags?{query}")

    def refusal_for(self, tags: Sequence[str]) -> str | None:
        """``tag_names`` is split on commas, so a name containing one cannot be sent."""
        bad = [t for t in tags if "," in t]
        if not bad:
            return None
        names = ", ".join(f'"{t}"' for t in bad)
        return f"Bigin cannot remove a tag whose name contains a comma: {names}"
