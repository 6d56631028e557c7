"""The one exception tree of untag.

Every error untag raises on purpose derives from :class:`UntagError`::

    UntagError
    ├── ConfigError             configuration missing or malformed (names the variable only)
    ├── ParseError              command text not understood; carries usage and a suggestion
    ├── AuthorizationDenied     this Slack user may not run this action
    ├── OperationConflict       already run, cancelled or undone, or not yours
    ├── StorageError            the database could not be read or written
    └── ProviderError           anything that went wrong talking to a provider (``provider``)
        ├── DryRunRefused       a request that is not a GET, refused in dry-run mode
        ├── ProviderUnavailable transport error, timeout, 502/503/504
        │   └── ProviderUnreachable no connection at all (refused, DNS, connect timeout)
        ├── RateLimited         429; ``retry_after`` in seconds when the provider said
        │   └── QuotaExceeded   a daily quota is spent; never retried; ``resets_at``
        ├── AuthenticationFailed credentials refused, even after one token refresh
        └── ProviderStatusError any other non-2xx answer; ``status_code``, ``code``

``ParseError`` is returned by the parser rather than raised, so that callers
treat bad input as an ordinary answer; it is still an exception so that code
deeper down may raise it.  No message here ever contains a secret: messages are
built from provider error codes and our own words, never from credentials.
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "AuthenticationFailed",
    "AuthorizationDenied",
    "ConfigError",
    "DryRunRefused",
    "OperationConflict",
    "ParseError",
    "ProviderError",
    "ProviderStatusError",
    "ProviderUnavailable",
    "ProviderUnreachable",
    "QuotaExceeded",
    "RateLimited",
    "StorageError",
    "UntagError",
]


class UntagError(Exception):
    """Root of every error untag raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(UntagError):
    """Configuration is missing or malformed. The message names the variable only."""


class ParseError(UntagError):
    """The command text could not be understood.

    ``usage`` is the usage line of the provider concerned (or of the whole
    language); ``suggestion`` is a close match such as ``Leads`` when one exists.
    """

    def __init__(self, message: str, *, usage: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage
        self.suggestion = suggestion

    def __str__(self) -> str:
        hint = f" (did you mean `{self.suggestion}`?)" if self.suggestion else ""
        return f"{self.message}{hint}"


class AuthorizationDenied(UntagError):
    """The requesting user may not run this action."""


class OperationConflict(UntagError):
    """The operation is not in a state that allows this step (a second submit, an old undo)."""


class StorageError(UntagError):
    """The database could not be read or written; the action was not executed."""


class ProviderError(UntagError):
    """Something went wrong talking to ``provider``.

    ``in_doubt`` is True when a write was sent and its answer lost (a timeout or a dropped
    connection after sending), at this attempt or an earlier one of the same request: the
    provider may have applied it, so the failure must not be read as "nothing happened".
    """

    in_doubt: bool = False
    doubt: str | None = None  # when in doubt: what may have been applied, and what to do

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(message)
        self.provider = provider

    def __str__(self) -> str:
        text = f"{self.provider}: {self.message}"
        return f"{text}; {self.doubt}" if self.in_doubt and self.doubt else text


class DryRunRefused(ProviderError):
    """A write was attempted while the client is in dry-run mode."""


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or answered 502/503/504."""


class ProviderUnreachable(ProviderUnavailable):
    """No connection could be made (refused, unresolvable, connect timeout): nothing was sent.

    After its retries it stops a job: every later call would wait out the same retries
    against the same closed door, one record at a time.
    """


class RateLimited(ProviderError):
    """The provider answered 429. ``retry_after`` is in seconds, when known."""

    def __init__(self, provider: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class QuotaExceeded(RateLimited):
    """A daily quota is spent: waiting a few seconds will not help, so it is never retried."""

    def __init__(self, provider: str, message: str, *, resets_at: datetime | None = None) -> None:
        super().__init__(provider, message, retry_after=None)
        self.resets_at = resets_at


class AuthenticationFailed(ProviderError):
    """The provider refused our credentials, even after one token refresh."""


class ProviderStatusError(ProviderError):
    """Any other non-2xx answer, with the provider's own error code when it gave one."""

    def __init__(
        self, provider: str, message: str, *, status_code: int, code: str | None = None
    ) -> None:
        super().__init__(provider, message)
        self.status_code = status_code
        self.code = code
