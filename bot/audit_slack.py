"""``/untag audit`` in Slack: admins query the operation log, ten operations per ephemeral page.

::

    /untag audit [user:U123] [provider:zoho] [record:ID] [tag:NAME] [status:failed]
                 [kind:undo] [op:ID] [since:7d] [until:2026-11-30]

The filter words and the queries are the command line's (``untag audit``,
:mod:`bot.audit_cli`): :func:`storage.split_filter_words`,
:func:`storage.parse_audit_filters`, :func:`storage.operation_reports` and
:func:`storage.count_operations`.  Who may ask: ``untag.may_audit(user)`` when
the permission policy provides it, else ``untag.is_admin(user)``.

A refusal is answered in the ack and recorded as a ``denied`` event.  For an
admin the ack is empty and the page follows through ``respond()``, so that its
Previous / Next buttons can replace it in place (``replace_original``).  Every
query, page turns included, is an ``audit_queried`` event, recorded before
anything is shown: a query that cannot be audited shows nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from slack_bolt import Ack, App, Respond

from bot.jsontext import loads_text
from bot.runtime import Runtime
from bot.views import (
    ACTION_AUDIT_NEXT,
    ACTION_AUDIT_PREVIOUS,
    AUDIT_PAGE_SIZE,
    OperationSummary,
    audit_page_message,
)
from commands.actions import ProviderName
from commands.errors import UntagError
from commands.executor import Untag
from storage import (
    FILTER_KEYS,
    AuditFilter,
    EventKind,
    FilterError,
    OperationReport,
    StoreError,
    count_operations,
    operation_reports,
    parse_audit_filters,
    split_filter_words,
)

if TYPE_CHECKING:
    from bot.slack import SlackSurface

__all__ = [
    "AUDIT_USAGE",
    "AUDIT_WORD",
    "is_audit_command",
    "may_audit",
    "on_command",
    "on_page",
    "register",
    "summary_of",
]

log = logging.getLogger("untag.slack")

AUDIT_WORD = "audit"
_EXAMPLES = {
    "user": "U123",
    "provider": "zoho",
    "record": "ID",
    "tag": "NAME",
    "status": "failed",
    "kind": "undo",
    "op": "ID",
    "since": "7d",
    "until": "2026-11-30",
}
AUDIT_USAGE = "/untag audit " + " ".join(f"[{k}:{_EXAMPLES.get(k, '…')}]" for k in FILTER_KEYS)
REFUSAL = ":no_entry: Audit queries are limited to admins (UNTAG_ADMINS)."
MAX_OFFSET = 1_000_000  # a page button's offset beyond this is not one we rendered
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


def register(app: App, surface: SlackSurface) -> None:
    """The page buttons; ``/untag audit`` itself is routed by ``SlackSurface.on_command``."""
    runtime = surface.runtime

    def on_audit_page(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        on_page(runtime, ack, body, action, _reliable(respond))

    app.action(ACTION_AUDIT_PREVIOUS)(surface.listener(on_audit_page))
    app.action(ACTION_AUDIT_NEXT)(surface.listener(on_audit_page))


def is_audit_command(text: str) -> bool:
    """Whether ``/untag`` text asks for an audit query (checked before the command parser)."""
    words = text.split(maxsplit=1)
    return bool(words) and words[0].lower() == AUDIT_WORD


def may_audit(untag: Untag, user: str) -> bool:
    """The policy's ``may_audit`` when there is one, else admins only; errors refuse."""
    check: Callable[[str], object] = getattr(untag, "may_audit", untag.is_admin)
    try:
        return bool(check(user))
    except UntagError:
        return False


def on_command(runtime: Runtime, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
    """``/untag audit …``: refuse non-admins, reject bad filters in the ack, else show page 1."""
    user = str(command.get("user_id", ""))
    team = _opt(command.get("team_id"))
    words = str(command.get("text") or "").split(maxsplit=1)
    filters = words[1].strip() if len(words) > 1 else ""
    if not may_audit(runtime.untag, user):
        _denied(runtime, user, team)  # recorded before the answer, like every refusal
        ack(text=REFUSAL)
        return _logged(user, "refused")
    try:
        wanted = _parse(filters)
    except FilterError as exc:
        ack(text=f":warning: Bad filter: {exc}\nUsage: `{AUDIT_USAGE}`")
        return _logged(user, "bad filter")
    ack()
    _show(runtime, _reliable(respond), user, team, filters, wanted, 0, replace=False)


def on_page(
    runtime: Runtime, ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
) -> None:
    """Previous / Next: check again who clicks, re-run the query, replace the page."""
    ack()
    user_field, team_field = body.get("user"), body.get("team")
    user_of = user_field if isinstance(user_field, dict) else {"id": user_field}
    team_of = team_field if isinstance(team_field, dict) else {"id": team_field}
    user = _text(user_of.get("id"))
    team = _opt(_text(team_of.get("id")) or _text(user_of.get("team_id")))
    if not may_audit(runtime.untag, user):
        _denied(runtime, user, team)
        respond(text=REFUSAL, response_type="ephemeral", replace_original=False)
        return _logged(user, "page refused")
    try:
        value = loads_text(str(action.get("value") or ""))
        filters, offset = str(value["filters"]), int(value["offset"])
        if not 0 <= offset <= MAX_OFFSET:
            raise ValueError("offset out of range")
        wanted = _parse(filters)
    except (ValueError, TypeError, KeyError, OverflowError, FilterError):
        respond(
            text=":warning: This page can no longer be turned; run `/untag audit` again.",
            response_type="ephemeral",
            replace_original=False,
        )
        return _logged(user, "bad page button")
    _show(runtime, respond, user, team, filters, wanted, offset, replace=True)


def summary_of(report: OperationReport) -> OperationSummary:
    """An operation report as an audit page lists it."""
    return OperationSummary(
        id=report.id,
        kind=report.kind,
        actor=report.actor,
        provider=report.provider,
        scope=report.scope,
        targets=report.targets,
        tags=report.tags,
        status=report.status,
        dry_run=report.dry_run,
        created_at=report.created_at,
        outcomes=dict(Counter(o.outcome for o in report.outcomes)),
    )


def _parse(filters: str) -> AuditFilter:
    return parse_audit_filters(
        split_filter_words(filters), datetime.now(UTC), providers=[p.value for p in ProviderName]
    )


def _show(
    runtime: Runtime,
    respond: Respond,
    user: str,
    team: str | None,
    filters: str,
    wanted: AuditFilter,
    offset: int,
    *,
    replace: bool,
) -> None:
    """Query, record the query, then show the page (new, or in place of the clicked one)."""
    audit = runtime.untag.audit
    try:
        if audit is None:
            raise StoreError("this instance keeps no audit log")
        reports = operation_reports(audit.database, wanted, AUDIT_PAGE_SIZE, offset)
        total = count_operations(audit.database, wanted)
        detail = {
            "via": "slack",
            "subject": "operations",
            "filters": wanted.as_detail(),
            "limit": AUDIT_PAGE_SIZE,
            "offset": offset,
            "returned": len(reports),
        }
        audit.append(EventKind.AUDIT_QUERIED, actor=user or "unknown", team=team, detail=detail)
    except StoreError as exc:
        log.warning("audit query not shown: %s", type(exc).__name__)
        respond(
            text=":x: Not shown: the query could not be recorded in the audit log. "
            "Please try again.",
            response_type="ephemeral",
            replace_original=False,
        )
        return _logged(user, "not recorded")
    text, blocks = audit_page_message(
        [summary_of(r) for r in reports], total=total, offset=offset, filters=_decoded(filters)
    )
    if replace:
        respond(text=text, blocks=blocks, replace_original=True)
    else:
        respond(text=text, blocks=blocks, response_type="ephemeral")
    _logged(user, f"page at {offset} of {total}")


def _denied(runtime: Runtime, user: str, team: str | None) -> None:
    audit = runtime.untag.audit
    if audit is None:
        return
    detail = {"operation": "audit", "via": "slack", "reason": "audit queries are admin-only"}
    try:
        audit.append(EventKind.DENIED, actor=user or "unknown", team=team, detail=detail)
    except StoreError as exc:  # still refused; the log line says the event is missing
        log.error("denied event not recorded for user=%s: %s", user, type(exc).__name__)


def _decoded(text: str) -> str:
    """Slack's ``&lt;`` ``&gt;`` ``&amp;`` back to characters, for display (views escapes)."""
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


def _reliable(respond: Respond | None) -> Respond:
    """``respond`` that never raises after the ack: without a (working) response_url the
    page cannot be shown, which is logged; bolt would turn an exception into a lost answer."""

    def answer(**kwargs: Any) -> None:
        if respond is None:
            log.info("audit page not shown: the request had no response_url")
            return
        try:
            respond(**kwargs)
        except Exception as exc:  # an unreachable or refused response_url
            log.info("audit page not shown: %s", type(exc).__name__)

    return cast(Respond, answer)


def _text(value: object) -> str:
    """A payload field that should be a string; anything else reads as ""."""
    return value if isinstance(value, str) else ""


def _opt(value: object) -> str | None:
    return str(value) if value else None


def _logged(user: str, outcome: str) -> None:
    log.info("slack audit user=%s outcome=%s", user or "?", outcome)
