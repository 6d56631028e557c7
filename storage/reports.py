"""Admin reports: operations with their per-record outcomes and events, and the filter words.

``/untag audit`` in Slack and ``untag audit`` on the command line accept the
same words, parsed by :func:`parse_audit_filters` into an
:class:`~storage.audit.AuditFilter`::

    user:U123  user:@U123  <@U123|name>   the requester (actor)
    provider:zoho                         one provider
    record:554023000000793002             a target record id
    tag:Prime  tag:"Big Deal"             a tag (any case)
    status:failed                         an operation status or a record outcome
    kind:denied  op:1f0c…                 an operation or event kind; an operation id (prefix)
    since:7d  since:24h  since:2026-11-01 newer than (s, m, h, d, w, a date, or ISO time)
    until:2026-11-30                      older than (a bare date includes that whole day)

:func:`operation_reports` answers "who removed which tag from which record,
when, and did it work?" by joining ``operations``, ``results`` and ``events``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from storage._codec import dump_time, integer
from storage.audit import _COLUMNS as _EVENT_COLUMNS
from storage.audit import AuditFilter, Event, _event
from storage.db import Database
from storage.operations import (
    _OP_COLUMNS,
    _RESULT_COLUMNS,
    OpStatus,
    ResultRecord,
    _op_record,
    _result_record,
)

__all__ = [
    "FILTER_KEYS",
    "OUTCOMES",
    "Dashboard",
    "FilterError",
    "OperationReport",
    "count_operations",
    "dashboard",
    "operation_reports",
    "outcome_counts",
    "parse_audit_filters",
    "parse_time_bound",
    "retried",
    "split_filter_words",
]

OUTCOMES = ("removed", "not present", "locked", "not found", "failed", "restored", "skipped")
"""The per-record outcomes ``commands`` records (``commands.results.Outcome``)."""

FILTER_KEYS = ("user", "provider", "record", "tag", "status", "kind", "op", "since", "until")
"""The filter words, in the order help text lists them."""

_ALIASES = {"outcome": "status", "op_id": "op"}
_FIELD = {"op": "op_id"}  # filter word → AuditFilter field, where they differ
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})
_MENTION = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$", re.IGNORECASE)
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PROVIDER = re.compile(r"^[a-z][a-z0-9_-]*$")
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))  # &amp; last: no double decoding


class FilterError(ValueError):
    """A filter word was not understood; the message is one line fit to show the user."""


@dataclass(frozen=True)
class OperationReport:
    """One operation as an admin sees it: who asked what, and what happened to each record.

    ``actor`` is the requester; ``outcomes`` are in the order the targets were
    first recorded; ``events`` are the operation's audit events, oldest first.
    """

    id: str
    kind: str
    actor: str
    provider: str
    scope: str | None
    targets: tuple[str, ...]
    tags: tuple[str, ...]
    status: str
    dry_run: bool
    parent_id: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    outcomes: tuple[ResultRecord, ...] = ()
    events: tuple[Event, ...] = field(default=(), hash=False)


def operation_reports(
    db: Database,
    filters: AuditFilter | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> list[OperationReport]:
    """The matching operations, newest first, each with its outcomes and events.

    ``limit=None`` returns every match (for exports).  Filters combine with AND;
    ``status`` matches the operation's status or any of its record outcomes,
    ``kind`` its kind or the kind of one of its events.
    """
    if limit is not None and limit <= 0:
        return []
    where, params = _op_where(filters or AuditFilter())
    rows = db.query(
        f"SELECT {_OP_COLUMNS} FROM operations AS op {where}"
        " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
        [*params, -1 if limit is None else limit, max(offset, 0)],
    )
    ops = [_op_record(row) for row in rows]
    if not ops:
        return []
    outcomes: dict[str, list[ResultRecord]] = {op.id: [] for op in ops}
    events: dict[str, list[Event]] = {op.id: [] for op in ops}
    # SQLite allows 32766 host parameters; chunk so `limit=None` exports stay safe.
    for chunk in _chunks([op.id for op in ops], 500):
        marks = ", ".join("?" * len(chunk))
        for row in db.query(
            f"SELECT {_RESULT_COLUMNS} FROM results WHERE op_id IN ({marks}) ORDER BY op_id, rowid",
            chunk,
        ):
            result = _result_record(row)
            outcomes[result.op_id].append(result)
        for row in db.query(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE op_id IN ({marks}) ORDER BY seq",
            chunk,
        ):
            event = _event(row)
            events[str(event.op_id)].append(event)
    return [
        OperationReport(
            id=op.id,
            kind=op.kind,
            actor=op.requester,
            provider=op.provider,
            scope=op.scope,
            targets=op.targets,
            tags=op.tags,
            status=op.status,
            dry_run=op.dry_run,
            parent_id=op.parent_id,
            error=op.error,
            created_at=op.created_at,
            updated_at=op.updated_at,
            outcomes=tuple(outcomes[op.id]),
            events=tuple(events[op.id]),
        )
        for op in ops
    ]


def count_operations(db: Database, filters: AuditFilter | None = None) -> int:
    """How many operations match (for "page 2 of 7")."""
    where, params = _op_where(filters or AuditFilter())
    rows = db.query(f"SELECT COUNT(*) AS n FROM operations AS op {where}", params)
    return integer(rows[0], "n")


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _op_where(f: AuditFilter) -> tuple[str, list[object]]:
    terms: list[str] = []
    params: list[object] = []
    if f.user is not None:
        terms.append("op.requester = ?")
        params.append(f.user)
    if f.provider is not None:
        terms.append("op.provider = ?")
        params.append(f.provider)
    if f.record is not None:
        terms.append(
            "(op.id IN (SELECT op_id FROM operation_targets WHERE target = ?)"
            " OR op.id IN (SELECT op_id FROM results WHERE target = ?))"
        )
        params += [f.record, f.record]
    if f.tag is not None:
        terms.append("EXISTS (SELECT 1 FROM json_each(op.tags) WHERE value = ? COLLATE NOCASE)")
        params.append(f.tag)
    if f.status is not None:
        terms.append(
            "(op.status = ?"
            " OR EXISTS (SELECT 1 FROM results AS r WHERE r.op_id = op.id AND r.outcome = ?))"
        )
        params += [f.status, f.status]
    if f.kind is not None:
        terms.append(
            "(op.kind = ?"
            " OR EXISTS (SELECT 1 FROM events AS e WHERE e.op_id = op.id AND e.kind = ?))"
        )
        params += [f.kind, f.kind]
    if f.op_id is not None:
        # A prefix, as tables show shortened ids; LIKE wildcards are escaped.
        escaped = f.op_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        terms.append("op.id LIKE ? ESCAPE '\\'")
        params.append(escaped + "%")
    if f.since is not None:
        terms.append("op.created_at >= ?")
        params.append(dump_time(f.since))
    if f.until is not None:
        terms.append("op.created_at < ?")
        params.append(dump_time(f.until))
    return ("WHERE " + " AND ".join(terms) if terms else ""), params


def split_filter_words(text: str) -> list[str]:
    """Split text typed in Slack into filter words.

    Whitespace separates words except inside double quotes (straight or
    curly, as Slack's editor may type them), so ``tag:"Big Deal"`` stays one
    word; Slack's ``&lt;``, ``&gt;`` and ``&amp;`` are decoded.  Raises
    :class:`FilterError` for an unclosed quote.
    """
    words: list[str] = []
    current: list[str] = []
    quoted = False
    started = False
    for char in text.translate(_QUOTES):
        if char == '"':
            quoted = not quoted
            started = True
        elif char.isspace() and not quoted:
            if started:
                words.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
            started = True
    if quoted:
        raise FilterError("unclosed quote in the filter words")
    if started:
        words.append("".join(current))
    return [_decode(word) for word in words]


def _decode(word: str) -> str:
    for entity, char in _ENTITIES:
        word = word.replace(entity, char)
    return word


def parse_audit_filters(
    words: Sequence[str], now: datetime, *, providers: Collection[str] | None = None
) -> AuditFilter:
    """Parse filter words (see the module docstring) into an :class:`AuditFilter`.

    ``words`` may come from a shell (``tag:Big Deal`` as one argument) or
    from :func:`split_filter_words`; a quote left open in one word is closed
    by a later one.  ``providers``, when given, are the valid ``provider:``
    values.  Raises :class:`FilterError` with one line naming the bad word.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    values: dict[str, object] = {}
    for word in _regroup(words):
        key, value = _split(word)
        name = _FIELD.get(key, key)
        if name in values:
            raise FilterError(f"{key}: is given twice")
        values[name] = _value(key, value, now, providers)
    result = AuditFilter(**values)  # type: ignore[arg-type]
    if result.since and result.until and result.since >= result.until:
        raise FilterError("since: must be earlier than until:")
    return result


def _regroup(words: Sequence[str]) -> list[str]:
    out: list[str] = []
    pending: list[str] = []
    for raw in words:
        word = raw.translate(_QUOTES)
        pending.append(word)
        if " ".join(pending).count('"') % 2 == 0:
            out.append(" ".join(pending).replace('"', ""))
            pending = []
    if pending:
        raise FilterError(f"unclosed quote in {' '.join(pending)!r}")
    return [word.strip() for word in out if word.strip()]


def _split(word: str) -> tuple[str, str]:
    if _MENTION.match(word):
        return "user", word
    key, sep, value = word.partition(":")
    key = key.strip().lower()
    key = _ALIASES.get(key, key)
    if not sep:
        raise FilterError(
            f"{word!r} is not a filter: use key:value with one of "
            + ", ".join(f"{k}:" for k in FILTER_KEYS)
        )
    if key not in FILTER_KEYS:
        raise FilterError(
            f"unknown filter {key + ':'!r}: use one of " + ", ".join(f"{k}:" for k in FILTER_KEYS)
        )
    value = value.strip()
    if not value:
        raise FilterError(f"{key}: needs a value")
    return key, value


def _value(
    key: str, value: str, now: datetime, providers: Collection[str] | None
) -> str | datetime:
    if key == "user":
        mention = _MENTION.match(value)
        user = mention.group(1) if mention else value.removeprefix("@")
        if not user or any(c.isspace() for c in user):
            raise FilterError(f"user: takes one user id, got {value!r}")
        return user
    if key == "provider":
        provider = value.lower().replace(" ", "_")
        if providers is not None:
            # "constant_contact" and "constant-contact" find "constantcontact".
            match = [p for p in providers if _squash(p) == _squash(provider)]
            provider = match[0] if match else ""
        if not _PROVIDER.match(provider):
            known = f": use one of {', '.join(sorted(providers))}" if providers else ""
            raise FilterError(f"unknown provider {value!r}{known}")
        return provider
    if key == "status":
        return _status(value)
    if key == "kind":
        return value.lower()
    if key in ("since", "until"):
        return parse_time_bound(value, now, end_of_day=key == "until", name=key)
    return value  # record, tag, op: taken as typed


def _status(value: str) -> str:
    wanted = _norm(value)
    for status in (*(s.value for s in OpStatus), *OUTCOMES):
        if _norm(status) == wanted:
            return status
    choices = ", ".join(sorted({*(s.value for s in OpStatus), *OUTCOMES}))
    raise FilterError(f"unknown status {value!r}: use one of {choices}")


def _squash(value: str) -> str:
    return re.sub(r"[\s_-]+", "", value.lower())


def _norm(value: str) -> str:
    return re.sub(r"[\s_-]+", "_", value.strip().lower())


def parse_time_bound(
    value: str, now: datetime, *, end_of_day: bool = False, name: str = "time"
) -> datetime:
    """``7d``, ``24h``, ``30m``, ``90s``, ``2w`` (ago), a date, or an ISO-8601 time, in UTC.

    A bare date means its midnight UTC, or the next midnight with ``end_of_day``
    (so ``until:2026-11-30`` includes the 30th).  A time without an offset is
    UTC.  Raises :class:`FilterError` naming ``name``.
    """
    text = value.strip()
    relative = _RELATIVE.match(text.lower())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        try:
            return now - timedelta(**{_UNITS[unit]: amount})
        except OverflowError:
            raise FilterError(f"{name}: {value!r} is too far back") from None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(
            f"{name}: {value!r} is not a time: use e.g. 7d, 24h, 30m or 2026-11-01"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Dashboard:
    """The admin overview: activity by provider and status, what failed, what awaits a retry."""

    counts: dict[str, dict[str, int]]  # provider -> status -> operations since ``since``
    failures: list[str]  # ids of the newest failed or partially failed operations
    interrupted: list[str]  # ids of interrupted operations nobody has retried yet
    interrupted_total: int


def dashboard(db: Database, since: datetime, *, failures: int, interrupted: int) -> Dashboard:
    """Counts since ``since``, the ``failures`` newest failures, up to ``interrupted`` waiting."""
    counts: dict[str, dict[str, int]] = {}
    for row in db.query(
        "SELECT provider, status, COUNT(*) AS n FROM operations WHERE created_at >= ?"
        " GROUP BY provider, status",
        (dump_time(since),),
    ):
        counts.setdefault(str(row["provider"]), {})[str(row["status"])] = integer(row, "n")
    failed = _ids(
        db,
        "WHERE status IN ('failed', 'partially_failed') ORDER BY created_at DESC, rowid DESC"
        " LIMIT ?",
        (failures,),
    )
    waiting = (
        "WHERE status = 'interrupted' AND NOT EXISTS (SELECT 1 FROM operations AS child"
        " WHERE child.parent_id = op.id AND child.kind = 'retry')"
    )
    shown = _ids(db, waiting + " ORDER BY created_at DESC, rowid DESC LIMIT ?", (interrupted,))
    total = db.query(f"SELECT COUNT(*) AS n FROM operations AS op {waiting}")
    return Dashboard(counts, failed, shown, integer(total[0], "n"))


def outcome_counts(db: Database, op_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per operation, how many records ended with each outcome."""
    counts: dict[str, dict[str, int]] = {op_id: {} for op_id in op_ids}
    if not op_ids:
        return counts
    marks = ", ".join("?" * len(op_ids))
    for row in db.query(
        f"SELECT op_id, outcome, COUNT(*) AS n FROM results WHERE op_id IN ({marks})"
        " GROUP BY op_id, outcome",
        list(op_ids),
    ):
        counts[str(row["op_id"])][str(row["outcome"])] = integer(row, "n")
    return counts


def retried(db: Database, op_ids: Sequence[str]) -> set[str]:
    """Which of these operations already have a retry (Retry failed runs once)."""
    if not op_ids:
        return set()
    marks = ", ".join("?" * len(op_ids))
    rows = db.query(
        f"SELECT parent_id FROM operations WHERE kind = 'retry' AND parent_id IN ({marks})",
        list(op_ids),
    )
    return {str(row["parent_id"]) for row in rows}


def _ids(db: Database, where: str, params: Sequence[object]) -> list[str]:
    return [str(row["id"]) for row in db.query(f"SELECT id FROM operations AS op {where}", params)]
