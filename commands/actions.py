"""Typed requests: what the parser produces and every later step consumes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Action", "HelpRequest", "Operation", "ProviderName"]


class ProviderName(StrEnum):
    """The five providers, by the canonical name used in commands, config and the audit log."""

    ALTA = "alta"
    FERNAND = "fernand"
    ZOHO = "zoho"
    BIGIN = "bigin"
    CONSTANT_CONTACT = "constantcontact"


class Operation(StrEnum):
    """What an action does. ``DELETE_TAGS``: Constant Contact's irreversible account-wide delete."""

    REMOVE = "remove"
    DELETE_TAGS = "delete-tags"


class Action(BaseModel):
    """One requested tag removal, fully validated.

    ``scope`` is the provider's own API name for where the records live: the Zoho
    or Bigin module (``Leads``, ``Accounts``), the Alta entity type
    (``emailThread``), ``contacts`` for Constant Contact, and ``None`` for
    Fernand (conversations only) and for account-wide deletion.  ``targets`` are
    record ids as strings: Zoho ids exceed 2**53 and must never become floats.
    """

    model_config = ConfigDict(frozen=True)

    provider: ProviderName
    operation: Operation = Operation.REMOVE
    scope: str | None = None
    targets: tuple[str, ...] = Field(default=())
    tags: tuple[str, ...] = Field(min_length=1)

    @property
    def is_account_wide(self) -> bool:
        """True for operations that touch every record in the account, not listed targets."""
        return self.operation is Operation.DELETE_TAGS

    def describe(self) -> str:
        """A one-line, human summary used in prompts, logs and the audit log."""
        tags = ", ".join(f'"{t}"' for t in self.tags)
        if self.is_account_wide:
            return f"{self.provider}: delete tags {tags} from the whole account"
        where = f" {self.scope}" if self.scope else ""
        count = len(self.targets)
        noun = "record" if count == 1 else "records"
        return f"{self.provider}{where}: remove {tags} from {count} {noun}"


class HelpRequest(BaseModel):
    """``help`` or ``help <provider>``."""

    model_config = ConfigDict(frozen=True)

    provider: ProviderName | None = None
