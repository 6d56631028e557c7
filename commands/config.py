"""Provider configuration as plain, validated models.

``bot.config`` reads these from the environment; tests and the console build
them directly.  Every credential is a ``SecretStr`` so that it prints as
``**********`` in reprs, logs and validation errors.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "AltaConfig",
    "ConstantContactConfig",
    "FernandConfig",
    "ProvidersConfig",
    "RateLimits",
    "ZohoConfig",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RateLimits(_Frozen):
    """Client-side pacing, at each provider's documented limit unless overridden.

    Pacing on our side is what keeps a healthy run free of 429s; the retry
    layer is only the safety net.  ``0`` disables a limit.
    """

    alta_per_minute: int = Field(default=100, ge=0)
    fernand_reads_per_minute: int = Field(default=20, ge=0)
    fernand_writes_per_minute: int = Field(default=5, ge=0)
    constant_contact_per_second: int = Field(default=4, ge=0)
    constant_contact_per_day: int = Field(default=10_000, ge=0)
    zoho_concurrency: int = Field(default=10, ge=0)
    bigin_concurrency: int = Field(default=10, ge=0)


class AltaConfig(_Frozen):
    api_token: SecretStr
    account_id: str | None = None
    base_url: str = "https://api.altahq.com/v1"


class FernandConfig(_Frozen):
    api_key: SecretStr
    base_url: str = "https://api.getfernand.com"


class ZohoConfig(_Frozen):
    """Zoho CRM or Bigin: a refresh-token grant, or a fixed access token for short runs."""

    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    access_token: SecretStr | None = None
    accounts_url: str = "https://accounts.zoho.com"
    api_domain: str = "https://www.zohoapis.com"

    @property
    def can_refresh(self) -> bool:
        return bool(self.client_id and self.client_secret and self.refresh_token)


class ConstantContactConfig(_Frozen):
    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    base_url: str = "https://api.cc.email/v3"
    token_url: str = "https://authz.constantcontact.com/oauth2/default/v1/token"

    @property
    def can_refresh(self) -> bool:
        return bool(self.refresh_token and self.client_id and self.client_secret)


class ProvidersConfig(_Frozen):
    """Which providers are enabled (those whose credentials are present) and how to pace them."""

    alta: AltaConfig | None = None
    fernand: FernandConfig | None = None
    zoho: ZohoConfig | None = None
    bigin: ZohoConfig | None = None
    constant_contact: ConstantContactConfig | None = None
    limits: RateLimits = RateLimits()
    timeout: float = Field(default=30.0, gt=0)

    def secrets(self) -> list[str]:
        """Every configured secret value, for the log redaction filter."""
        found: list[str] = []
        for section in (self.alta, self.fernand, self.zoho, self.bigin, self.constant_contact):
            if section is None:
                continue
            for value in section.__dict__.values():
                if isinstance(value, SecretStr) and value.get_secret_value():
                    found.append(value.get_secret_value())
        return found
