"""Settings from the environment (and ``.env``), validated once at start-up.

Names are the public contract in design.md.  A malformed or incomplete value
stops start-up with one line naming the variable, never its value: pydantic's
own messages can echo raw input (pydantic-settings#256), so they are rebuilt
from field names only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from commands.config import (
    AltaConfig,
    ConstantContactConfig,
    FernandConfig,
    ProvidersConfig,
    RateLimits,
    ZohoConfig,
)
from commands.errors import ConfigError

__all__ = ["Settings", "load_settings"]

_URL_FIELDS = (
    "slack_api_url",
    "alta_base_url",
    "fernand_base_url",
    "zoho_accounts_url",
    "zoho_api_domain",
    "bigin_accounts_url",
    "bigin_api_domain",
    "constant_contact_base_url",
    "constant_contact_token_url",
)


class Settings(BaseSettings):
    """Every environment variable untag reads. Field ``x_y`` is variable ``X_Y``."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    untag_database: Path = Path("untag.db")
    untag_admins: str = ""
    untag_policy: Path | None = None
    untag_audit_key: SecretStr | None = None
    untag_http_timeout: float = Field(default=30.0, gt=0, le=600)

    alta_api_token: SecretStr | None = None
    alta_account_id: str | None = None
    alta_base_url: str = "https://api.altahq.com/v1"
    alta_requests_per_minute: int = Field(default=100, ge=0)

    fernand_api_key: SecretStr | None = None
    fernand_base_url: str = "https://api.getfernand.com"
    fernand_reads_per_minute: int = Field(default=20, ge=0)
    fernand_writes_per_minute: int = Field(default=5, ge=0)

    zoho_client_id: str | None = None
    zoho_client_secret: SecretStr | None = None
    zoho_refresh_token: SecretStr | None = None
    zoho_access_token: SecretStr | None = None
    zoho_accounts_url: str = "https://accounts.zoho.com"
    zoho_api_domain: str = "https://www.zohoapis.com"
    zoho_max_concurrency: int = Field(default=10, ge=0)

    bigin_client_id: str | None = None
    bigin_client_secret: SecretStr | None = None
    bigin_refresh_token: SecretStr | None = None
    bigin_access_token: SecretStr | None = None
    bigin_accounts_url: str | None = None
    bigin_api_domain: str | None = None
    bigin_max_concurrency: int = Field(default=10, ge=0)

    constant_contact_access_token: SecretStr | None = None
    constant_contact_refresh_token: SecretStr | None = None
    constant_contact_client_id: str | None = None
    constant_contact_client_secret: SecretStr | None = None
    constant_contact_base_url: str = "https://api.cc.email/v3"
    constant_contact_token_url: str = "https://authz.constantcontact.com/oauth2/default/v1/token"
    constant_contact_requests_per_second: int = Field(default=4, ge=0)
    constant_contact_requests_per_day: int = Field(default=10_000, ge=0)

    @field_validator(*_URL_FIELDS)
    @classmethod
    def _must_be_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator(
        "alta_api_token",
        "fernand_api_key",
        "zoho_client_secret",
        "zoho_refresh_token",
        "zoho_access_token",
        "bigin_client_secret",
        "bigin_refresh_token",
        "bigin_access_token",
        "constant_contact_access_token",
        "constant_contact_refresh_token",
        "constant_contact_client_secret",
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
    )
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # `FOO=` in a .env file means "not configured", not "configured as empty".
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @property
    def admins(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.untag_admins.split(",") if a.strip())

    def providers(self) -> ProvidersConfig:
        """The enabled providers: those whose credentials are present and complete."""
        return ProvidersConfig(
            alta=self._alta(),
            fernand=self._fernand(),
            zoho=self._zoho("zoho"),
            bigin=self._zoho("bigin"),
            constant_contact=self._constant_contact(),
            limits=RateLimits(
                alta_per_minute=self.alta_requests_per_minute,
                fernand_reads_per_minute=self.fernand_reads_per_minute,
                fernand_writes_per_minute=self.fernand_writes_per_minute,
                constant_contact_per_second=self.constant_contact_requests_per_second,
                constant_contact_per_day=self.constant_contact_requests_per_day,
                zoho_concurrency=self.zoho_max_concurrency,
                bigin_concurrency=self.bigin_max_concurrency,
            ),
            timeout=self.untag_http_timeout,
        )

    def _alta(self) -> AltaConfig | None:
        if self.alta_api_token is None:
            return None
        return AltaConfig(
            api_token=self.alta_api_token,
            account_id=self.alta_account_id or None,
            base_url=self.alta_base_url,
        )

    def _fernand(self) -> FernandConfig | None:
        if self.fernand_api_key is None:
            return None
        return FernandConfig(api_key=self.fernand_api_key, base_url=self.fernand_base_url)

    def _zoho(self, prefix: str) -> ZohoConfig | None:
        values = {name: self._zoho_value(prefix, name) for name in _ZOHO_NAMES}
        grant = ("client_id", "client_secret", "refresh_token")
        present = [name for name in grant if values[name]]
        if values["access_token"] is None and not present:
            return None
        if present and len(present) < len(grant) and values["access_token"] is None:
            missing = next(name for name in grant if not values[name])
            raise ConfigError(
                f"{prefix.upper()}_{missing.upper()} is missing: a Zoho refresh-token grant "
                f"needs {', '.join(f'{prefix.upper()}_{n.upper()}' for n in grant)}"
            )
        return ZohoConfig(**{k: v for k, v in values.items() if v is not None})

    def _zoho_value(self, prefix: str, name: str) -> Any:
        own = getattr(self, f"{prefix}_{name}", None)
        # Bigin falls back to the ZOHO_ settings: one Zoho account often serves both.
        return own if own is not None or prefix == "zoho" else getattr(self, f"zoho_{name}")

    def _constant_contact(self) -> ConstantContactConfig | None:
        refresh = (
            self.constant_contact_refresh_token,
            self.constant_contact_client_id,
            self.constant_contact_client_secret,
        )
        if self.constant_contact_access_token is None and not any(refresh):
            return None
        if any(refresh) and not all(refresh) and self.constant_contact_access_token is None:
            names = ("REFRESH_TOKEN", "CLIENT_ID", "CLIENT_SECRET")
            missing = next(n for n, v in zip(names, refresh, strict=True) if not v)
            raise ConfigError(
                f"CONSTANT_CONTACT_{missing} is missing: refreshing Constant Contact tokens needs "
                "CONSTANT_CONTACT_REFRESH_TOKEN, _CLIENT_ID and _CLIENT_SECRET"
            )
        return ConstantContactConfig(
            access_token=self.constant_contact_access_token,
            refresh_token=self.constant_contact_refresh_token,
            client_id=self.constant_contact_client_id,
            client_secret=self.constant_contact_client_secret,
            base_url=self.constant_contact_base_url,
            token_url=self.constant_contact_token_url,
        )


_ZOHO_NAMES = (
    "client_id",
    "client_secret",
    "refresh_token",
    "access_token",
    "accounts_url",
    "api_domain",
)


def load_settings(**overrides: Any) -> Settings:
    """Read and check the settings, or raise :class:`ConfigError` with one safe line."""
    try:
        settings = Settings(**overrides)
        settings.providers()  # completeness checks across variables
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return settings


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    variable = str(first["loc"][0]).upper() if first["loc"] else "configuration"
    # Only pydantic's generic message and never `input`: it may be a secret.
    reason = first["msg"].removeprefix("Value error, ")
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{variable}: {reason}{suffix}"
