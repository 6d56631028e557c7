"""The provider registry: one module per provider, one line each here."""

from __future__ import annotations

from commands.actions import ProviderName
from commands.providers import alta, bigin, constantcontact, fernand, zoho
from commands.providers.base import Provider, ProviderFactory, Wiring

__all__ = ["REGISTRY", "Provider", "Wiring", "build_providers"]

REGISTRY: dict[ProviderName, ProviderFactory] = {
    ProviderName.ALTA: alta.build,
    ProviderName.FERNAND: fernand.build,
    ProviderName.ZOHO: zoho.build,
    ProviderName.BIGIN: bigin.build,
    ProviderName.CONSTANT_CONTACT: constantcontact.build,
}


def build_providers(wiring: Wiring) -> dict[ProviderName, Provider]:
    """Every configured provider, keyed by name; unconfigured ones are absent."""
    built: dict[ProviderName, Provider] = {}
    for name, factory in REGISTRY.items():
        provider = factory(wiring)
        if provider is not None:
            built[name] = provider
    return built
