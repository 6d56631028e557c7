"""The local REPL: the same parse → authorize → preview → confirm → execute → report as Slack."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.runtime import Runtime
from bot.terminal import (
    TERMINAL_EXTRAS,
    help_text,
    print_parse_error,
    print_plan,
    print_report,
    progress_bar,
)
from commands.actions import Action, HelpRequest
from commands.errors import OperationConflict, ParseError, UntagError
from commands.executor import Plan, Report, Untag
from commands.parser import parse
from commands.providers.base import no_progress
from commands.results import Progress

__all__ = ["ConsoleSession", "confirm_plan", "follow_up", "is_follow_up"]

log = logging.getLogger(__name__)

QUIT = frozenset({"quit", "exit", "q", ":q"})
FOLLOW_UPS = frozenset({"undo", "retry"})


def is_follow_up(words: Sequence[str]) -> bool:
    """``undo [op-id]`` or ``retry <op-id>``: acting on an earlier operation."""
    return bool(words) and words[0].lower() in FOLLOW_UPS


def follow_up(
    untag: Untag, user: str, words: Sequence[str], progress: Progress = no_progress
) -> Report:
    """Undo (the user's last removal by default) or retry the failed records of an operation."""
    op_id = words[1] if len(words) > 1 else None
    if words[0].lower() == "undo":
        return untag.undo(user, op_id, progress)
    if op_id is None:
        raise OperationConflict("retry needs the operation id: retry <op-id> (see `history`)")
    return untag.retry_failed(user, op_id, progress)


def confirm_plan(console: Console, plan: Plan, *, assume_yes: bool = False) -> bool:
    """Ask y/N; account-wide deletion asks for the tag names typed out instead."""
    if plan.action.is_account_wide:
        expected = ", ".join(plan.action.tags)
        if assume_yes:
            return True
        typed = console.input(f"Type [bold]{escape(expected)}[/bold] to delete it everywhere: ")
        return typed.strip() == expected
    if plan.preview.nothing_to_do:
        console.print("[dim]Nothing to remove.[/dim]")
        return False
    if assume_yes:
        return True
    answer = console.input("Remove these tags? [y/N] ").strip().lower()
    return answer in {"y", "yes"}


class ConsoleSession:
    """One user's interactive session; each line is handled like a Slack command."""

    def __init__(self, runtime: Runtime, user: str, console: Console) -> None:
        self.runtime = runtime
        self.user = user
        self.console = console

    def loop(self) -> None:
        while True:
            try:
                line = self.console.input("[bold cyan]untag>[/bold cyan] ")
            except (EOFError, KeyboardInterrupt):
                self.console.print()
                return
            if line.strip().lower() in QUIT:
                return
            self.handle(line)

    def handle(self, line: str) -> None:
        """Run one line; every failure becomes a message, never a traceback."""
        try:
            self._dispatch(line.strip())
        except UntagError as exc:
            self.console.print(f"[red]Error:[/red] {escape(str(exc))}")
        except (EOFError, KeyboardInterrupt):
            self.console.print("\n[yellow]Cancelled.[/yellow]")
        except Exception:
            log.exception("console command failed")
            self.console.print("[red]Internal error[/red]: the details are in the log.")

    def _dispatch(self, line: str) -> None:
        words = line.split()
        if is_follow_up(words):
            self._follow_up(words)
        elif words and words[0].lower() == "history":
            self._history()
        else:
            self._command(line)

    def _command(self, line: str) -> None:
        parsed = parse(line)
        if isinstance(parsed, ParseError):
            print_parse_error(self.console, parsed)
        elif isinstance(parsed, HelpRequest):
            self.console.print(
                escape(help_text(parsed, self.runtime.untag.enabled, extra=TERMINAL_EXTRAS)),
                highlight=False,
            )
        else:
            self._remove(parsed)

    def _remove(self, action: Action) -> None:
        untag = self.runtime.untag
        with self.console.status("Reading the current tags…"):
            plan = untag.plan(self.user, action)
        print_plan(self.console, plan)
        if not confirm_plan(self.console, plan):
            untag.cancel(self.user, plan.operation.id)
            self.console.print("[dim]Cancelled: nothing was changed.[/dim]")
            return
        with progress_bar(self.console, "Removing") as progress:
            report = untag.execute(self.user, plan, progress)
        print_report(self.console, report)

    def _follow_up(self, words: Sequence[str]) -> None:
        with progress_bar(self.console, "Working") as progress:
            report = follow_up(self.runtime.untag, self.user, words, progress)
        print_report(self.console, report)

    def _history(self) -> None:
        table = Table("When (UTC)", "Operation", "What", "Status")
        for op in self.runtime.untag.operations.recent(requester=self.user, limit=15):
            what = f"{op.kind} {op.provider} {op.scope or ''} ({len(op.targets)} records)"
            table.add_row(op.created_at.strftime("%Y-%m-%d %H:%M"), op.id, escape(what), op.status)
        self.console.print(table)
