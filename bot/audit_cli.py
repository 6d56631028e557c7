"""``untag audit``: query, verify and prune the audit log from the command line.

::

    untag audit [FILTERS...] [--format table|json|csv] [--limit N] [--offset N] [--as USER]
    untag audit events [FILTERS...] [same options]     the raw events instead of operations
    untag audit verify                                 recompute the hash chain
    untag audit prune --before DATE [--as USER]        remove old events, keep the rest verifiable

Every query is itself recorded as an ``audit_queried`` event before anything is
shown.  Exit status: 0 done (for ``verify``: intact), 1 not done (for
``verify``: tampering found; ``prune`` refused a broken chain; the query could
not be recorded), 2 bad filter words or options, 3 configuration problem
(settings, missing database, audit key).
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bot.config import load_settings
from commands.actions import ProviderName
from commands.errors import ConfigError
from storage import (
    AuditChainBroken,
    AuditFilter,
    AuditKeyError,
    AuditLog,
    Database,
    Event,
    EventKind,
    FilterError,
    OperationReport,
    StoreError,
    audit_key_recorded,
    count_operations,
    default_key_file,
    load_audit_key,
    open_database,
    operation_reports,
    parse_audit_filters,
    parse_time_bound,
)

__all__ = ["audit"]

EXIT_OK, EXIT_NOT_DONE, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 3
TABLE_LIMIT = 50  # table output without --limit; json and csv export every match

FORMATS = ("table", "json", "csv")
OPERATION_CSV_COLUMNS = (
    "op_id",
    "op_kind",
    "actor",
    "provider",
    "scope",
    "op_status",
    "dry_run",
    "tags",
    "created_at",
    "updated_at",
    "target",
    "outcome",
    "removed",
    "remaining",
    "code",
    "message",
    "recorded_at",
)
EVENT_CSV_COLUMNS = ("seq", "at", "actor", "team", "kind", "op_id", "detail", "hash")


class _AuditGroup(click.Group):
    """A group whose words, unless the first names a subcommand, go to ``query``.

    A click group cannot take a variadic argument and subcommands at once (the
    argument would swallow ``verify``), so ``untag audit user:U1`` is routed
    to ``untag audit query user:U1``.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["query", *args]
        return super().parse_args(ctx, args)


@click.group("audit", cls=_AuditGroup, invoke_without_command=True)
def audit() -> None:
    """Who removed which tag from which record, when, and did it work?

    \b
    untag audit [FILTERS...]   list operations (the default; see `untag audit query -h`)
    Filters combine: user:U123  provider:zoho  record:554023000000793002
    tag:Prime  tag:"Big Deal"  status:failed  kind:undo  op:1f0c2a
    since:7d  since:24h  since:2026-11-01  until:2026-11-30
    """


def _query_options(func: Callable[..., None]) -> Callable[..., None]:
    decorators = (
        click.argument("filters", nargs=-1),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            default="table",
            show_default=True,
            help="csv: one row per record outcome, for compliance exports.",
        ),
        click.option(
            "--limit",
            type=click.IntRange(min=1),
            default=None,
            help=f"At most N results (default {TABLE_LIMIT} for table, all for json and csv).",
        ),
        click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip N results."),
        click.option("--as", "user", default=None, help="Who is asking (default: local:<login>)."),
    )
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


@audit.command("query")
@_query_options
def query(
    filters: tuple[str, ...], fmt: str, limit: int | None, offset: int, user: str | None
) -> None:
    """List operations matching FILTERS, newest first, with each record's outcome."""
    err = Console(stderr=True)
    wanted = _filters(err, filters)
    limit = _limit(fmt, limit)
    with _audit_log(err) as (db, log):
        reports = operation_reports(db, wanted, limit, offset)
        total = count_operations(db, wanted)
        _record_query(err, log, user, "operations", wanted, fmt, limit, offset, len(reports))
    if fmt == "json":
        click.echo(json.dumps([report_json(r) for r in reports], ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(operations_csv(reports), nl=False)
    else:
        _print_operations(Console(), reports, offset, total)


@audit.command("events")
@_query_options
def events(
    filters: tuple[str, ...], fmt: str, limit: int | None, offset: int, user: str | None
) -> None:
    """List the raw audit events matching FILTERS, newest first (denials included)."""
    err = Console(stderr=True)
    wanted = _filters(err, filters)
    limit = _limit(fmt, limit)
    with _audit_log(err) as (_db, log):
        found = log.query(wanted, limit=limit, offset=offset)
        total = log.count(wanted)
        _record_query(err, log, user, "events", wanted, fmt, limit, offset, len(found))
    if fmt == "json":
        click.echo(json.dumps([event_json(e) for e in found], ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(events_csv(found), nl=False)
    else:
        _print_events(Console(), found, offset, total)


@audit.command()
def verify() -> None:
    """Recompute the hash chain; exit 1 and show the first bad row if anything was changed."""
    err = Console(stderr=True)
    with _audit_log(err) as (_db, log):
        result = log.verify()
        head = log.head()
    out = Console()
    if result.ok:
        where = f" (head: seq {head[0]}, hash {head[1]})" if head else ""
        out.print(f"Audit log intact: {result.checked} events checked{where}.", highlight=False)
        sys.exit(EXIT_OK)
    out.print(
        f"[red]TAMPERED: the first bad row is seq {result.first_bad_seq}: "
        f"{escape(result.reason or '')}[/red]",
        highlight=False,
    )
    out.print(f"{result.checked} events checked before it.", highlight=False)
    if result.bad_row is None:
        out.print(f"Row {result.first_bad_seq} is missing.", highlight=False)
    else:
        table = Table("column", "value", title=f"Row {result.first_bad_seq} as stored")
        for name, value in result.bad_row.items():
            table.add_row(name, Text(repr(value) if not isinstance(value, str) else value))
        out.print(table)
    sys.exit(EXIT_NOT_DONE)


@audit.command()
@click.option(
    "--before",
    required=True,
    help="Remove events older than this: a date (2026-01-01), an ISO time, or an age (90d).",
)
@click.option("--as", "user", default=None, help="Who prunes (default: local:<login>).")
def prune(before: str, user: str | None) -> None:
    """Remove old events; a checkpoint event keeps the rest verifiable."""
    err = Console(stderr=True)
    try:
        cutoff = parse_time_bound(before, datetime.now(UTC), name="--before")
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="--before") from None
    with _audit_log(err) as (_db, log):
        try:
            result = log.prune(cutoff, actor=user or _default_user())
        except AuditChainBroken as exc:
            _fail(err, f"Refusing to prune: {exc}. Run `untag audit verify`.", EXIT_NOT_DONE)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--before") from None
    out = Console()
    if result.checkpoint is None:
        out.print(f"Nothing older than {cutoff.isoformat()} to remove.", highlight=False)
    else:
        out.print(
            f"Removed {result.removed} events (up to seq {result.through_seq}); "
            f"checkpoint written as seq {result.checkpoint.seq}.",
            highlight=False,
        )


def report_json(report: OperationReport) -> dict[str, Any]:
    """One operation as a JSON object: actor, provider, targets, tags, outcomes, times."""
    return {
        "id": report.id,
        "kind": report.kind,
        "actor": report.actor,
        "provider": report.provider,
        "scope": report.scope,
        "targets": list(report.targets),
        "tags": list(report.tags),
        "status": report.status,
        "dry_run": report.dry_run,
        "parent_id": report.parent_id,
        "error": report.error,
        "created_at": report.created_at.isoformat(),
        "updated_at": report.updated_at.isoformat(),
        "records": [
            {
                "target": r.target,
                "outcome": r.outcome,
                "removed": list(r.removed),
                "remaining": None if r.remaining is None else list(r.remaining),
                "code": r.code,
                "message": r.message,
                "recorded_at": r.recorded_at.isoformat(),
            }
            for r in report.outcomes
        ],
        "events": [
            {"seq": e.seq, "at": e.at.isoformat(), "kind": e.kind, "actor": e.actor}
            for e in report.events
        ],
    }


def event_json(event: Event) -> dict[str, Any]:
    """One event as a JSON object."""
    return {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "team": event.team,
        "kind": event.kind,
        "op_id": event.op_id,
        "detail": dict(event.detail),
        "hash": event.hash,
    }


def operations_csv(reports: Sequence[OperationReport]) -> str:
    """One row per record outcome (an operation without outcomes gets one row)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(OPERATION_CSV_COLUMNS)
    for report in reports:
        head = [
            report.id,
            report.kind,
            report.actor,
            report.provider,
            report.scope or "",
            report.status,
            "yes" if report.dry_run else "no",
            "; ".join(report.tags),
            report.created_at.isoformat(),
            report.updated_at.isoformat(),
        ]
        if not report.outcomes:
            writer.writerow(_cells([*head, "", "", "", "", "", "", ""]))
        for r in report.outcomes:
            remaining = "" if r.remaining is None else "; ".join(r.remaining)
            tail = [r.target, r.outcome, "; ".join(r.removed), remaining]
            tail += [r.code or "", r.message or "", r.recorded_at.isoformat()]
            writer.writerow(_cells([*head, *tail]))
    return buffer.getvalue()


def events_csv(found: Sequence[Event]) -> str:
    """One row per event; ``detail`` as canonical JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EVENT_CSV_COLUMNS)
    for e in found:
        detail = json.dumps(dict(e.detail), ensure_ascii=False, sort_keys=True)
        row = [e.seq, e.at.isoformat(), e.actor, e.team or "", e.kind, e.op_id or "", detail]
        writer.writerow(_cells([*map(str, row), e.hash]))
    return buffer.getvalue()


def _cells(values: Sequence[str]) -> list[str]:
    # Spreadsheets run a cell starting with = + - @ as a formula (CSV injection);
    # tag names and messages come from users and providers, so quote such cells.
    return [f"'{v}" if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v for v in values]


def _print_operations(
    console: Console, reports: Sequence[OperationReport], offset: int, total: int
) -> None:
    if not reports:
        console.print("No operations match.", highlight=False)
        return
    table = Table(title=f"Operations {offset + 1}–{offset + len(reports)} of {total}")
    for column in ("created (UTC)", "op", "kind", "actor", "provider", "scope", "tags"):
        table.add_column(column)
    table.add_column("status")
    table.add_column("records")
    for r in reports:
        counts = Counter(o.outcome for o in r.outcomes)
        summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.most_common()) or "-"
        cells = (
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.id[:8],
            r.kind + (" (dry run)" if r.dry_run else ""),
            r.actor,
            r.provider,
            r.scope or "",
            ", ".join(r.tags),
            r.status,
            summary,
        )
        table.add_row(*(Text(c) for c in cells))  # Text: no markup from user data
    console.print(table)
    if offset + len(reports) < total:
        console.print(f"More with --offset {offset + len(reports)}.", highlight=False)


def _print_events(console: Console, found: Sequence[Event], offset: int, total: int) -> None:
    if not found:
        console.print("No events match.", highlight=False)
        return
    table = Table(title=f"Events {offset + 1}–{offset + len(found)} of {total}")
    for column in ("seq", "at (UTC)", "actor", "kind", "op", "detail"):
        table.add_column(column)
    for e in found:
        detail = json.dumps(dict(e.detail), ensure_ascii=False, sort_keys=True)
        cells = (
            str(e.seq),
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.actor,
            e.kind,
            (e.op_id or "")[:8],
            detail,
        )
        table.add_row(*(Text(c) for c in cells))
    console.print(table)
    if offset + len(found) < total:
        console.print(f"More with --offset {offset + len(found)}.", highlight=False)


def _filters(err: Console, words: Sequence[str]) -> AuditFilter:
    try:
        return parse_audit_filters(
            words, datetime.now(UTC), providers=[p.value for p in ProviderName]
        )
    except FilterError as exc:
        _fail(err, f"Bad filter: {exc}", EXIT_USAGE)


def _limit(fmt: str, limit: int | None) -> int | None:
    return TABLE_LIMIT if limit is None and fmt == "table" else limit


def _record_query(
    err: Console,
    log: AuditLog,
    user: str | None,
    subject: str,
    wanted: AuditFilter,
    fmt: str,
    limit: int | None,
    offset: int,
    returned: int,
) -> None:
    # Recorded before anything is shown: a query that cannot be audited shows nothing.
    detail = {
        "via": "cli",
        "subject": subject,
        "filters": wanted.as_detail(),
        "format": fmt,
        "limit": limit,
        "offset": offset,
        "returned": returned,
    }
    try:
        log.append(EventKind.AUDIT_QUERIED, actor=user or _default_user(), detail=detail)
    except StoreError as exc:
        _fail(
            err,
            f"Not shown: the query could not be recorded in the audit log ({exc}).",
            EXIT_NOT_DONE,
        )


@contextmanager
def _audit_log(err: Console) -> Iterator[tuple[Database, AuditLog]]:
    """The database named by ``UNTAG_DATABASE`` and its audit log, closed on the way out."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        _fail(err, f"Configuration error: {exc}", EXIT_CONFIG)
    path = settings.untag_database
    if not path.exists():
        _fail(err, f"No database at {path} (set UNTAG_DATABASE).", EXIT_CONFIG)
    try:
        db = open_database(path)
    except StoreError as exc:
        _fail(err, f"Cannot open {path}: {exc}", EXIT_CONFIG)
    try:
        secret = settings.untag_audit_key
        explicit = None if secret is None else secret.get_secret_value()
        try:
            # A key file is only created for a log that has never had a key: an
            # existing log needs the key it was written with.
            key = load_audit_key(
                explicit, default_key_file(path), create=not audit_key_recorded(db)
            )
            log = AuditLog(db, key)
        except AuditKeyError as exc:
            _fail(err, f"Audit key problem: {exc}", EXIT_CONFIG)
        yield db, log
    finally:
        db.close()


def _default_user() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry in some containers
        return "local:unknown"


def _fail(console: Console, message: str, code: int) -> NoReturn:
    console.print(f"[red]{escape(message)}[/red]", highlight=False)
    sys.exit(code)
