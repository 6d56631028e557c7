"""Assembling untag from settings: the shared HTTP client, the database, the providers, the engine.

Every entry point (console, ``untag run``, ``untag socket``, each worker of
``untag serve``) builds one :class:`Runtime` and closes it on the way out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from commands.executor import Untag
from commands.http import HttpClient
from commands.policy import Permissions
from commands.providers import Wiring, build_providers
from storage import (
    AuditLog,
    Database,
    EventKind,
    OperationRecord,
    OperationStore,
    PlanStore,
    QuotaLedger,
    TokenStore,
    default_key_file,
    load_audit_key,
    open_database,
)

__all__ = ["Runtime", "build_permissions", "build_runtime", "recover_interrupted"]

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The live objects of one untag process."""

    settings: Settings
    http: HttpClient
    db: Database
    untag: Untag
    interrupted: list[OperationRecord] = field(default_factory=list)

    def close(self) -> None:
        self.http.close()
        self.db.close()


def build_runtime(
    settings: Settings,
    *,
    dry_run: bool = False,
    transport: Any = None,
    groups_of: Callable[[str], Collection[str]] | None = None,
) -> Runtime:
    """Wire everything; operations whose process died while running become interrupted.

    Recovery is safe in any process, any number of times: only operations
    whose owner process is gone are interrupted (:mod:`storage.owners`), so the
    live jobs of another server, a sibling worker or an ``untag run`` are left
    alone.  ``groups_of`` resolves Slack user groups for the policy (see
    :func:`bot.groups.slack_groups_of`); without it no one is in a group.  A
    malformed ``UNTAG_POLICY`` raises :class:`ConfigError` before anything opens.
    """
    permissions = build_permissions(settings, groups_of)
    config = settings.providers()
    http = HttpClient(timeout=config.timeout, dry_run=dry_run, transport=transport)
    db = open_database(settings.untag_database)
    key = _audit_key(settings)
    audit = AuditLog(db, key)
    operations = OperationStore(db)
    interrupted = recover_interrupted(operations, audit)
    providers = build_providers(
        Wiring(config=config, http=http, tokens=TokenStore(db, key), quotas=QuotaLedger(db))
    )
    untag = Untag(
        providers,
        operations,
        PlanStore(db),
        audit=audit,
        admins=settings.admins,
        dry_run=dry_run,
        permissions=permissions,
    )
    return Runtime(settings=settings, http=http, db=db, untag=untag, interrupted=interrupted)


def recover_interrupted(operations: OperationStore, audit: AuditLog) -> list[OperationRecord]:
    """Mark what a dead process left ``running`` as ``interrupted``, each with its event."""
    recovery = operations.interrupt_orphaned()
    for op in recovery.elsewhere:
        # Possibly still running: interrupting it would let a Retry send its work twice.
        log.warning(
            "operation %s is running in %s, which cannot be checked from this host; left as is",
            op.id,
            op.owner,
        )
    for op in recovery.interrupted:
        log.warning("operation %s was interrupted by a crash; its recorded results stay", op.id)
        audit.append(
            EventKind.INTERRUPTED,
            actor=op.requester,
            op_id=op.id,
            detail={"provider": op.provider, "status": "interrupted"},
        )
    return recovery.interrupted


def build_permissions(
    settings: Settings, groups_of: Callable[[str], Collection[str]] | None = None
) -> Permissions:
    """``UNTAG_ADMINS`` and, when set, the ``UNTAG_POLICY`` file (followed as it changes)."""
    if groups_of is None:
        return Permissions.from_file(settings.untag_policy, settings.admins)
    return Permissions.from_file(settings.untag_policy, settings.admins, groups_of=groups_of)


def _audit_key(settings: Settings) -> bytes:
    """``UNTAG_AUDIT_KEY``, else a key file beside (never inside) the database."""
    explicit = settings.untag_audit_key.get_secret_value() if settings.untag_audit_key else None
    return load_audit_key(explicit, default_key_file(settings.untag_database))
