"""Assembling untag from settings: the shared HTTP client, the database, the providers, the engine.

Every entry point (console, ``untag run``, later ``untag serve``) builds one
:class:`Runtime` and closes it on the way out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from commands.executor import Untag
from commands.http import HttpClient
from commands.providers import Wiring, build_providers
from storage import (
    Database,
    OperationRecord,
    OperationStore,
    PlanStore,
    TokenStore,
    open_database,
)

__all__ = ["Runtime", "build_runtime"]

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


def build_runtime(settings: Settings, *, dry_run: bool = False, transport: Any = None) -> Runtime:
    """Wire everything; operations a crash left ``running`` become ``interrupted``."""
    config = settings.providers()
    http = HttpClient(timeout=config.timeout, dry_run=dry_run, transport=transport)
    db = open_database(settings.untag_database)
    operations = OperationStore(db)
    interrupted = operations.interrupt_running()
    for op in interrupted:
        log.warning("operation %s was interrupted by a crash; its recorded results stay", op.id)
    providers = build_providers(Wiring(config=config, http=http, tokens=TokenStore(db)))
    untag = Untag(providers, operations, PlanStore(db), admins=settings.admins, dry_run=dry_run)
    return Runtime(settings=settings, http=http, db=db, untag=untag, interrupted=interrupted)
