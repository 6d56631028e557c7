"""Reading a Slack message for record links, to pre-fill the "Remove tags" form."""

from __future__ import annotations

import re

from bot.views import Prefill
from commands.actions import ProviderName
from commands.grammar import recognise_record_url, resolve_scope

__all__ = ["prefill_from_message"]

# Slack writes links as <url> or <url|label>; people also paste bare URLs.
_SLACK_LINK = re.compile(r"<(https?://[^|>\s]+)(?:\|[^>]*)?>")
_BARE_URL = re.compile(r"https?://[^\s<>|]+")
_LONG_NUMBER = re.compile(r"(?<![\w/])\d{15,25}(?![\w/])")


def prefill_from_message(text: str) -> Prefill:
    """Provider, module and record ids found in ``text``, as far as they agree with each other.

    Links decide the provider; only links of the first provider found are kept.
    Without any link, long numbers (Zoho-style ids) become the targets and the
    user picks the provider.
    """
    urls = _SLACK_LINK.findall(text) + _BARE_URL.findall(_SLACK_LINK.sub(" ", text))
    provider: ProviderName | None = None
    scope: str | None = None
    targets: list[str] = []
    for url in urls:
        link = recognise_record_url(url)
        if link is None or (provider is not None and link.provider is not provider):
            continue
        provider = link.provider
        if link.module and scope is None:
            scope = resolve_scope(link.provider, link.module)
        if link.record_id not in targets:
            targets.append(link.record_id)
    if not targets:
        targets = list(dict.fromkeys(_LONG_NUMBER.findall(text)))
    return Prefill(provider=provider, scope=scope, targets=tuple(targets[:100]))
