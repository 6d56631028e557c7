"""OAuth access tokens for Zoho (CRM, Bigin) and Constant Contact.

A :class:`TokenManager` is an :class:`~commands.http.Auth`: it caches the
access token until shortly before it expires and refreshes it *once* however
many threads need it at the same moment.  That matters: Zoho blocks a refresh
token for the rest of a ten-minute window after ten grants, and Constant
Contact's rotating refresh tokens are single use, so two concurrent refreshes
would invalidate each other.

Constant Contact's rotated refresh token is written to the database (durably,
``synchronous=FULL``) *before* the new access token is handed to anyone: if the
process dies right after a refresh, the next start still holds the only
refresh token that works.

Access tokens are shared through the database too (:class:`storage.TokenStore`,
encrypted): before fetching, a manager adopts a fresh token another process
stored.  Zoho's ten grants per ten minutes then bound refreshes, not process
starts: a cron ``untag run`` every minute reuses one token for its hour.
Processes starting at the very same moment may still each fetch one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from commands.config import ConstantContactConfig, ZohoConfig
from commands.errors import AuthenticationFailed, ProviderStatusError, RateLimited
from commands.http import HttpClient
from storage import StoreError, TokenKeyError, TokenStore

__all__ = ["Grant", "TokenManager", "constant_contact_tokens", "zoho_tokens"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
EXPIRY_MARGIN = timedelta(minutes=2)


@dataclass(frozen=True)
class Grant:
    """An access token and what came with it."""

    access_token: str
    expires_at: datetime | None  # None: unknown, use until refused
    api_domain: str | None = None  # Zoho: every API call goes to the domain the grant names

    def __repr__(self) -> str:
        return f"Grant(access_token=<redacted>, expires_at={self.expires_at!r})"


class TokenManager:
    """Single-flight, cached access token, as an ``Auth`` for :class:`ProviderSession`."""

    def __init__(
        self,
        *,
        provider: str,
        scheme: str,
        fetch: Callable[[], Grant] | None,
        initial: Grant | None = None,
        shared: Callable[[], Grant | None] | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        """``shared`` reads the grant other processes stored (``fetch`` stores its own)."""
        if fetch is None and initial is None:
            raise ValueError("a token manager needs a token or a way to fetch one")
        self.provider = provider
        self._scheme = scheme
        self._fetch = fetch
        self._shared = shared
        self._clock = clock
        self._lock = threading.Lock()
        self._grant = initial
        self.refreshes = 0  # grants fetched by this process, for tests and logs

    @property
    def api_domain(self) -> str | None:
        return self._grant.api_domain if self._grant else None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"{self._scheme} {self._current().access_token}"}

    def refresh(self, rejected: Mapping[str, str]) -> bool:
        """After a 401: fetch a new token unless another thread already replaced the refused one."""
        if self._fetch is None:
            return False
        with self._lock:
            current = self._grant
            if current is not None and rejected.get("Authorization") != self._header(current):
                return True  # someone refreshed while our request was in flight
            self._grant = self._adopt_or_fetch(refused=rejected.get("Authorization"))
            return True

    def _current(self) -> Grant:
        grant = self._grant
        if grant is not None and self._fresh(grant):
            return grant
        with self._lock:
            # Re-check under the lock: the thread before us may have refreshed.
            grant = self._grant
            if grant is not None and self._fresh(grant):
                return grant
            if self._fetch is None:
                if grant is None:  # pragma: no cover - excluded by __init__
                    raise AuthenticationFailed(self.provider, "no access token configured")
                return grant  # a fixed token: use it until the provider refuses it
            self._grant = self._adopt_or_fetch(refused=None)
            return self._grant

    def _adopt_or_fetch(self, *, refused: str | None) -> Grant:
        """Another process's fresh grant if there is one (and it is not the refused
        one), else a new grant."""
        shared = self._shared_grant()
        if shared is not None and self._fresh(shared) and self._header(shared) != refused:
            log.info("%s: access token shared by another process adopted", self.provider)
            return shared
        return self._fetch_locked()

    def _shared_grant(self) -> Grant | None:
        if self._shared is None:
            return None
        try:
            return self._shared()
        except TokenKeyError as exc:
            raise AuthenticationFailed(self.provider, str(exc)) from None

    def _fetch_locked(self) -> Grant:
        assert self._fetch is not None
        grant = self._fetch()
        self.refreshes += 1
        log.info("%s: new access token obtained", self.provider)
        return grant

    def _fresh(self, grant: Grant) -> bool:
        return grant.expires_at is None or grant.expires_at - EXPIRY_MARGIN > self._clock()

    def _header(self, grant: Grant) -> str:
        return f"{self._scheme} {grant.access_token}"


# One manager per refresh token and client: Zoho counts its ten grants per ten minutes per
# refresh token, and CRM and Bigin usually share one (BIGIN_* falls back to ZOHO_*).
_zoho_managers: weakref.WeakKeyDictionary[HttpClient, dict[tuple[str, ...], TokenManager]] = (
    weakref.WeakKeyDictionary()
)
_zoho_managers_lock = threading.Lock()


def zoho_tokens(
    http: HttpClient,
    config: ZohoConfig,
    tokens: TokenStore,
    *,
    provider: str,
    clock: Clock = lambda: datetime.now(UTC),
) -> TokenManager:
    """Tokens for Zoho CRM or Bigin: a refresh-token grant against the configured server.

    CRM and Bigin configured with the same refresh token get the same manager (per HTTP
    client, i.e. per process), so the two together mint one access token, not one each:
    a token minted from a refresh token carries that refresh token's scopes either way.
    Other processes get it through ``tokens``, stored under the same account key.
    """
    initial = None
    if config.access_token is not None:
        initial = Grant(config.access_token.get_secret_value(), None, config.api_domain)
    if not config.can_refresh:
        return TokenManager(
            provider=provider, scheme="Zoho-oauthtoken", fetch=None, initial=initial, clock=clock
        )
    assert config.client_id and config.refresh_token
    assert config.client_secret
    key = (
        config.accounts_url.rstrip("/"),
        config.client_id,
        _fingerprint(config.refresh_token.get_secret_value()),
    )
    # The stored token is shared under the whole client configuration, secret included:
    # a changed (or mistyped) setting gets a grant of its own, so it is checked at once.
    account = "zoho:" + _fingerprint(
        "\n".join((*key, _fingerprint(config.client_secret.get_secret_value())))
    )
    with _zoho_managers_lock:
        managers = _zoho_managers.setdefault(http, {})
        if key not in managers:
            fetch = _zoho_fetch(http, config, provider, clock)
            managers[key] = TokenManager(
                provider=provider,
                scheme="Zoho-oauthtoken",
                fetch=_publishing(fetch, tokens, account),
                initial=initial,
                shared=lambda: _stored_grant(tokens, account),
                clock=clock,
            )
        return managers[key]


def _publishing(
    fetch: Callable[[], Grant], tokens: TokenStore, account: str
) -> Callable[[], Grant]:
    """``fetch``, storing each grant for the other processes."""

    def fetch_and_store() -> Grant:
        grant = fetch()
        extra = {"api_domain": grant.api_domain} if grant.api_domain else {}
        try:
            tokens.save(
                account,
                refresh_token=None,  # Zoho's is configured, never rotated: not ours to keep
                access_token=grant.access_token,
                expires_at=grant.expires_at,
                extra=extra,
            )
        except StoreError as exc:  # sharing saves grants; this process has its token anyway
            log.warning(
                "%s: could not store the new access token for other processes: %s", account, exc
            )
        return grant

    return fetch_and_store


def _stored_grant(tokens: TokenStore, account: str, lineage: str | None = None) -> Grant | None:
    """The access token stored for ``account`` (of ``lineage``, when given), if any."""
    stored = tokens.load(account)
    if stored is None or stored.access_token is None:
        return None
    if lineage is not None and stored.extra.get("lineage") != lineage:
        return None
    return Grant(stored.access_token, stored.expires_at, stored.extra.get("api_domain"))


def _zoho_fetch(
    http: HttpClient, config: ZohoConfig, provider: str, clock: Clock
) -> Callable[[], Grant]:
    assert config.client_id and config.client_secret and config.refresh_token
    form = {
        "grant_type": "refresh_token",
        "client_id": config.client_id,
        "client_secret": config.client_secret.get_secret_value(),
        "refresh_token": config.refresh_token.get_secret_value(),
    }
    url = config.accounts_url.rstrip("/") + "/oauth/v2/token"

    def fetch() -> Grant:
        response = http.token_request(provider, url, form=form)
        body = response.json()
        body = body if isinstance(body, dict) else {}
        if response.status_code == 400 and "too many" in str(body).lower():
            raise RateLimited(
                provider,
                "Zoho refused a new access token: too many token requests in ten minutes; "
                "try again in a few minutes",
            )
        # Zoho reports grant errors with HTTP 200 and an "error" field.
        if not response.ok or "error" in body or "access_token" not in body:
            code = str(body.get("error", response.status_code))
            raise AuthenticationFailed(
                provider, f"Zoho refused the refresh token ({code}); check the ZOHO_* settings"
            )
        expires_in = _seconds(body.get("expires_in"), default=3600)
        return Grant(
            access_token=str(body["access_token"]),
            expires_at=clock() + timedelta(seconds=expires_in),
            api_domain=str(body.get("api_domain") or config.api_domain),
        )

    return fetch


def constant_contact_tokens(
    http: HttpClient,
    config: ConstantContactConfig,
    tokens: TokenStore,
    *,
    provider: str = "constantcontact",
    clock: Clock = lambda: datetime.now(UTC),
) -> TokenManager:
    """Tokens for Constant Contact, with rotated refresh tokens persisted before use."""
    initial = None
    if config.access_token is not None:
        initial = Grant(config.access_token.get_secret_value(), None)
    if not config.can_refresh:
        return TokenManager(
            provider=provider, scheme="Bearer", fetch=None, initial=initial, clock=clock
        )
    assert config.refresh_token
    lineage = _fingerprint(config.refresh_token.get_secret_value())
    return TokenManager(
        provider=provider,
        scheme="Bearer",
        fetch=_cc_fetch(http, config, tokens, provider, clock),
        initial=initial,
        shared=lambda: _stored_grant(tokens, provider, lineage),
        clock=clock,
    )


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def _cc_fetch(
    http: HttpClient,
    config: ConstantContactConfig,
    tokens: TokenStore,
    provider: str,
    clock: Clock,
) -> Callable[[], Grant]:
    assert config.refresh_token and config.client_id and config.client_secret
    configured = config.refresh_token.get_secret_value()
    basic = (config.client_id, config.client_secret.get_secret_value())
    # The stored (rotated) token descends from the configured one; when an admin
    # configures a new refresh token, the stored lineage is obsolete.
    lineage = _fingerprint(configured)

    def current_refresh_token() -> str:
        try:
            stored = tokens.load(provider)
        except TokenKeyError as exc:
            raise AuthenticationFailed(provider, str(exc)) from None
        if stored and stored.refresh_token and stored.extra.get("lineage") == lineage:
            return stored.refresh_token
        return configured

    def fetch() -> Grant:
        form = {"grant_type": "refresh_token", "refresh_token": current_refresh_token()}
        response = http.token_request(provider, config.token_url, form=form, basic=basic)
        body = response.json()
        body = body if isinstance(body, dict) else {}
        if not response.ok or "access_token" not in body:
            code = str(body.get("error", response.status_code))
            if response.status_code >= 500:
                raise ProviderStatusError(
                    provider, "token endpoint failed", status_code=response.status_code, code=code
                )
            raise AuthenticationFailed(
                provider,
                f"Constant Contact refused the refresh token ({code}); re-authorize the app "
                "and set CONSTANT_CONTACT_REFRESH_TOKEN",
            )
        expires_at = clock() + timedelta(seconds=_seconds(body.get("expires_in"), default=86400))
        new_refresh = body.get("refresh_token")
        if new_refresh:
            # Durable before use: a rotated refresh token is the only one that works now.
            # The access token goes with it, for the other processes.
            tokens.save(
                provider,
                refresh_token=str(new_refresh),
                access_token=str(body["access_token"]),
                expires_at=expires_at,
                extra={"lineage": lineage},
            )
        return Grant(access_token=str(body["access_token"]), expires_at=expires_at)

    return fetch


def _seconds(value: object, *, default: int) -> int:
    try:
        seconds = int(str(value))
    except ValueError:
        return default
    return seconds if seconds > 0 else default
