"""The App Home tab: published for a user each time they open it (``app_home_opened``).

Everyone sees their own ten most recent operations with a count per record
outcome, and a Retry failed button beside those that stopped short (failed,
partially failed, interrupted; not yet retried).  Whoever may query the audit
log (:func:`bot.audit_slack.may_audit`) also sees a dashboard: operations by
provider and status over the last seven days, the five most recent failures,
and the interrupted operations not yet retried, each with Retry failed (the
same ``untag_retry`` action as result messages, value = the operation id).

Events are acknowledged by bolt before the listener runs; the reads are a
handful of indexed SQLite queries, then one ``views.publish``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View

from bot.audit_slack import may_audit
from bot.runtime import Runtime
from bot.views import HOME_INTERRUPTED_SHOWN, HomeDashboard, OperationSummary, home_view
from storage import (
    Database,
    OperationRecord,
    OpKind,
    OpStatus,
    dashboard,
    outcome_counts,
    retried,
)

if TYPE_CHECKING:
    from bot.slack import SlackSurface

__all__ = ["HOME_EVENT", "build_home", "publish_home", "register"]

log = logging.getLogger("untag.slack")

HOME_EVENT = "app_home_opened"
RECENT = 10
FAILURES = 5
WINDOW = timedelta(days=7)
_USER_ID = re.compile(r"[UW][A-Z0-9]{1,40}")

_Get = Callable[[str], OperationRecord | None]
_RETRYABLE_STATUS = (OpStatus.FAILED, OpStatus.PARTIALLY_FAILED, OpStatus.INTERRUPTED)
_RETRYABLE_KIND = (OpKind.REMOVE, OpKind.RETRY, OpKind.DELETE_TAGS)


def register(app: App, surface: SlackSurface) -> None:
    """Publish the Home tab whenever a user opens it."""
    runtime = surface.runtime

    def on_app_home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab
        user = event.get("user")
        if not isinstance(user, str) or not _USER_ID.fullmatch(user):
            log.info("app_home_opened without a user id: nothing to publish")
            return
        publish_home(runtime, client, user)

    app.event(HOME_EVENT)(surface.listener(on_app_home_opened))


def publish_home(runtime: Runtime, client: WebClient, user: str) -> None:
    """Build ``user``'s Home view and publish it; a Slack refusal is logged, not raised."""
    view = build_home(runtime, user)
    try:
        client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.info("views.publish failed: %s", exc.response.get("error", "unknown"))
        return
    log.info("slack home user=%s outcome=published", user or "?")


def build_home(runtime: Runtime, user: str, *, now: datetime | None = None) -> View:
    """The Home view for ``user``."""
    untag = runtime.untag
    db = untag.audit.database if untag.audit is not None else runtime.db
    recent = untag.operations.recent(requester=user, limit=RECENT)
    dashboard = None
    if may_audit(untag, user):
        dashboard = _dashboard(db, untag.operations.get, (now or datetime.now(UTC)) - WINDOW)
    return home_view(_summaries(db, recent), dashboard)


def _dashboard(db: Database, get: _Get, since: datetime) -> HomeDashboard:
    overview = dashboard(db, since, failures=FAILURES, interrupted=HOME_INTERRUPTED_SHOWN)
    return HomeDashboard(
        since=since,
        counts=overview.counts,
        failures=_summaries(db, _records(get, overview.failures)),
        interrupted=_summaries(db, _records(get, overview.interrupted)),
        interrupted_total=overview.interrupted_total,
    )


def _records(get: _Get, ids: Iterable[str]) -> list[OperationRecord]:
    return [op for op in map(get, ids) if op is not None]


def _summaries(db: Database, ops: Sequence[OperationRecord]) -> list[OperationSummary]:
    """Operations with their outcome counts and whether Retry failed applies, in two queries."""
    if not ops:
        return []
    ids = [op.id for op in ops]
    outcomes = outcome_counts(db, ids)
    done = retried(db, ids)
    return [
        OperationSummary(
            id=op.id,
            kind=op.kind,
            actor=op.requester,
            provider=op.provider,
            scope=op.scope,
            targets=op.targets,
            tags=op.tags,
            status=op.status,
            dry_run=op.dry_run,
            created_at=op.created_at,
            outcomes=outcomes[op.id],
            retryable=op.status in _RETRYABLE_STATUS
            and op.kind in _RETRYABLE_KIND
            and not op.dry_run
            and op.id not in done,
        )
        for op in ops
    ]
