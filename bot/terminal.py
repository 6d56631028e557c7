"""Rendering plans, previews and reports in the terminal with rich."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from commands.errors import ParseError
from commands.executor import Plan, Report
from commands.grammar import help_text  # here too: the console and `untag run` print it
from commands.results import Outcome, RecordResult
from commands.results import Progress as ProgressCallback

__all__ = [
    "TERMINAL_EXTRAS",
    "help_text",
    "print_parse_error",
    "print_plan",
    "print_report",
    "progress_bar",
    "report_json",
]

# Big jobs would print thousands of rows; the summary line covers the rest.
MAX_ROWS = 50

_STYLE = {
    Outcome.REMOVED: "green",
    Outcome.RESTORED: "green",
    Outcome.NOT_PRESENT: "dim",
    Outcome.SKIPPED: "cyan",
    Outcome.LOCKED: "yellow",
    Outcome.NOT_FOUND: "yellow",
    Outcome.FAILED: "red",
}


TERMINAL_EXTRAS = "Also: undo [op-id], retry <op-id>, history, help, quit"


def print_parse_error(console: Console, error: ParseError) -> None:
    # soft_wrap: one line per message however narrow the terminal, so scripts can read it.
    console.print(f"[red]Error:[/red] {escape(str(error))}", soft_wrap=True)
    console.print(f"Usage: {escape(error.usage)}", highlight=False, soft_wrap=True)


def _tags(tags: Sequence[str] | None) -> str:
    if tags is None:
        return "[dim]unknown[/dim]"
    return escape(", ".join(tags)) if tags else "[dim]none[/dim]"


def print_plan(console: Console, plan: Plan) -> None:
    """The preview: each record's tags now and after, and anything the user must know first."""
    preview = plan.preview
    console.print(f"[bold]{escape(plan.action.describe())}[/bold]")
    table = Table("Record", "Tags now", "Removing", "Tags after")
    for record in preview.records[:MAX_ROWS]:
        if record.unreadable is not None:
            why = escape(record.unreadable)
            table.add_row(escape(record.target), f"[red]could not be read[/red] ({why})", "", "")
        elif not record.found:
            table.add_row(escape(record.target), "[yellow]not found[/yellow]", "", "")
        elif record.nothing_to_do:
            table.add_row(
                escape(record.target),
                _tags(record.current),
                "[dim]not present — nothing to do[/dim]",
                _tags(record.after),
            )
        else:
            table.add_row(
                escape(record.target),
                _tags(record.current),
                _tags(record.removing),
                _tags(record.after),
            )
    if preview.records:
        console.print(table)
    hidden = len(preview.records) - MAX_ROWS
    if hidden > 0:
        console.print(f"[dim]… and {hidden} more records[/dim]")
    if preview.affected_count is not None:
        console.print(f"[bold red]Contacts affected: {preview.affected_count}[/bold red]")
    for note in preview.notes:
        console.print(f"[yellow]Note:[/yellow] {escape(note)}")
    if not preview.undoable:
        console.print("[bold red]This cannot be undone.[/bold red]")


def print_report(console: Console, report: Report) -> None:
    """Per-record outcomes, then the summary line and what can be done next."""
    table = Table("Record", "Outcome", "Tags changed", "Tags now", "Reason")
    for result in report.results[:MAX_ROWS]:
        table.add_row(*_result_row(result))
    if report.results:
        console.print(table)
    hidden = len(report.results) - MAX_ROWS
    if hidden > 0:
        console.print(f"[dim]… and {hidden} more records (see `untag run --json`)[/dim]")
    style = "green" if report.operation.status == "succeeded" else "yellow"
    console.print(
        f"[{style}]{escape(report.summary())}[/{style}]  [dim]op {report.operation.id}[/dim]"
    )
    if report.undoable:
        console.print("[dim]Type `undo` to put the removed tags back.[/dim]")


def _result_row(result: RecordResult) -> tuple[str, str, str, str, str]:
    style = _STYLE.get(result.outcome, "")
    reason = " ".join(x for x in (result.code, result.message) if x)
    return (
        escape(result.target),
        f"[{style}]{result.outcome.value}[/{style}]",
        _tags(result.removed) if result.removed else "",
        _tags(result.remaining) if result.remaining is not None else "",
        escape(reason),
    )


def report_json(report: Report) -> str:
    """The report for scripts: stable keys, one object."""
    return json.dumps(
        {
            "operation": report.operation.id,
            "kind": report.operation.kind,
            "status": report.operation.status,
            "provider": report.action.provider.value,
            "scope": report.action.scope,
            "dry_run": report.operation.dry_run,
            "summary": report.summary(),
            "results": [r.model_dump(mode="json") for r in report.results],
        },
        indent=2,
    )


@contextmanager
def progress_bar(console: Console, label: str) -> Iterator[ProgressCallback]:
    """A progress bar (done/total, percent, time left) driven by the provider's callback."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
