"""The ``untag`` command line.

Exit status of ``untag run``: 0 done (every record removed or had nothing to
remove), 1 not done (refused, not confirmed, or some records failed), 2 the
command text or options were not understood, 3 configuration problem.

Imports are lazy: at load time this module imports click and the standard
library only, and each command imports what it uses (rich, the settings, the
runtime, httpx, slack).  ``untag --help`` then starts in a fraction of the
time, and the master process of ``untag serve``, which only supervises, stays
small: every page it holds is resident in it and again in each forked worker
(issue #6).  ``tests/bot/test_cli_imports.py`` keeps it that way.
"""

from __future__ import annotations

import functools
import gc
import getpass
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from bot.logs import configure_logging, protect, write_in_background
from commands.errors import ConfigError, ParseError, UntagError  # the standard library only

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from rich.console import Console

    from bot.config import Settings
    from bot.runtime import Runtime
    from bot.serving import ForkedTask

__all__ = ["main"]

EXIT_OK, EXIT_NOT_DONE, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 3
SANDBOX_DATABASE = "untag-sandbox.db"

log = logging.getLogger(__name__)


def _default_user() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry in some containers
        return "local:unknown"


def _console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr)


def _fail(console: Console, message: str, code: int) -> None:
    from rich.markup import escape

    console.print(f"[red]{escape(message)}[/red]", highlight=False)
    sys.exit(code)


def _settings(console: Console, **overrides: Any) -> Settings:
    from bot.config import load_settings

    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        _fail(console, f"Configuration error: {exc}", EXIT_CONFIG)
        raise  # pragma: no cover - _fail exits


@contextmanager
def _runtime(console: Console, settings: Settings, *, dry_run: bool) -> Iterator[Runtime]:
    from bot.runtime import build_runtime

    try:
        runtime = build_runtime(settings, dry_run=dry_run)
    except UntagError as exc:
        _fail(console, f"Cannot start: {exc}", EXIT_CONFIG)
        raise  # pragma: no cover
    try:
        for op in runtime.interrupted:
            console.print(
                f"[yellow]Operation {op.id} was interrupted by a crash; "
                "its recorded results are kept.[/yellow]"
            )
        yield runtime
    finally:
        runtime.close()


class _LazyGroup(click.Group):
    """A group whose ``lazy`` commands are imported when first used, not at start.

    ``lazy`` maps a command's name to its module (which defines it under that
    name) and to its one-line help, which ``--help`` lists without importing
    the module; a test checks that line against the command's own.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module = importlib.import_module(self.lazy[cmd_name][0])
            self.add_command(getattr(module, cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own asks every command for its help, which would import the lazy ones.
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(name) for name in names), default=0)
        rows = []
        for name in names:
            if name in self.lazy and name not in self.commands:
                stand_in = click.Command(name, help=self.lazy[name][1])  # shortened as click does
                rows.append((name, stand_in.get_short_help_str(limit)))
            elif (command := self.get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


AUDIT_HELP = "Who removed which tag from which record, when, and did it work?"


@click.group(
    cls=_LazyGroup,
    lazy={"audit": ("bot.audit_cli", AUDIT_HELP)},
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO instead of WARNING.")
def main(verbose: bool) -> None:
    """untag: remove tags from records in Alta, Fernand, Zoho CRM, Bigin and Constant Contact."""
    configure_logging(logging.INFO if verbose else logging.WARNING)


@main.command()
@click.option("--as", "user", default=None, help="Act as this user id (default: local:<login>).")
@click.option("--dry-run", is_flag=True, help="Preview only; refuse every write.")
def console(user: str | None, dry_run: bool) -> None:
    """Interactive console; starts the sandbox with demo data when no provider is configured."""
    from bot.console import ConsoleSession

    out = _console()
    settings = _settings(out)
    sandbox = None
    if not _any_provider(settings):
        from sandbox import Sandbox

        sandbox = Sandbox(port=0, seed_demo=True).start()
        overrides: dict[str, Any] = {k.lower(): v for k, v in sandbox.env().items()}
        if "UNTAG_DATABASE" not in _environ_keys():
            overrides["untag_database"] = Path(SANDBOX_DATABASE)
        settings = _settings(out, **overrides)
        out.print(
            f"[yellow]No provider credentials found: using the built-in sandbox with demo data "
            f"at {sandbox.url}[/yellow] (database {settings.untag_database})"
        )
        out.print(
            "Try: [bold]zoho Leads 554023000000793002 Prime[/bold], then [bold]undo[/bold]. "
            "Type [bold]help[/bold] for more, [bold]quit[/bold] to leave."
        )
    _protect(settings)
    try:
        with _runtime(out, settings, dry_run=dry_run) as runtime:
            ConsoleSession(runtime, user or _default_user(), out).loop()
    finally:
        if sandbox is not None:
            sandbox.stop()


@main.command()
@click.argument("text")
@click.option("--yes", is_flag=True, help="Execute without asking.")
@click.option("--dry-run", is_flag=True, help="Preview only; refuse every write.")
@click.option("--as", "user", default=None, help="Act as this user id (default: local:<login>).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run(text: str, yes: bool, dry_run: bool, user: str | None, as_json: bool) -> None:
    """Run one command non-interactively, e.g. untag run "zoho Leads 5540230000 Prime" --yes.

    Also `untag run undo [OP-ID]` and `untag run retry OP-ID` (the failed records only).
    """
    from rich.markup import escape

    from bot.console import confirm_plan, follow_up, is_follow_up
    from bot.terminal import (
        TERMINAL_EXTRAS,
        help_text,
        print_parse_error,
        print_plan,
        print_report,
        report_json,
    )
    from commands.actions import HelpRequest
    from commands.parser import parse

    out = _console(stderr=as_json)
    words = text.split()
    parsed = None if is_follow_up(words) else parse(text)
    if isinstance(parsed, ParseError):
        print_parse_error(_console(stderr=True), parsed)
        sys.exit(EXIT_USAGE)
    settings = _settings(out)
    _protect(settings)
    with _runtime(out, settings, dry_run=dry_run) as runtime:
        untag, who = runtime.untag, user or _default_user()
        try:
            if isinstance(parsed, HelpRequest):
                out.print(
                    escape(help_text(parsed, untag.enabled, extra=TERMINAL_EXTRAS)), highlight=False
                )
                return
            if parsed is None:
                report = follow_up(untag, who, words)
            else:
                plan = untag.plan(who, parsed)
                print_plan(out, plan)
                if not dry_run and not confirm_plan(out, plan, assume_yes=yes):
                    untag.cancel(who, plan.operation.id)
                    _fail(out, "Not confirmed: nothing was changed.", EXIT_NOT_DONE)
                report = untag.execute(who, plan)
        except ConfigError as exc:
            _fail(out, f"Error: {exc}", EXIT_CONFIG)
        except UntagError as exc:
            _fail(out, f"Error: {exc}", EXIT_NOT_DONE)
        except (EOFError, click.Abort):
            _fail(out, "Not confirmed: nothing was changed.", EXIT_NOT_DONE)
        if as_json:
            click.echo(report_json(report))
        else:
            print_report(out, report)
        sys.exit(EXIT_OK if report.operation.status == "succeeded" else EXIT_NOT_DONE)


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=16, show_default=True, type=click.IntRange(1, 256))
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Slack over HTTP under gunicorn: POST /slack/events and GET /healthz."""
    from bot.serving import ForkedTask, run_gunicorn

    logging.getLogger().setLevel(logging.INFO)  # one line per request is part of the contract
    # This process becomes gunicorn's master, which only supervises: the settings are checked
    # and interrupted work recovered once, in a child, so that none of what that needs stays
    # resident here (issue #6).  The workers start meanwhile and import the app (as long as
    # the recovery takes: it imports the same), then wait for it before they open anything.
    master = os.getpid()
    recovery = ForkedTask(functools.partial(_prepare_to_serve, f"http://{host}:{port}"))
    try:
        app = functools.partial(_serving_app, recovery)
        run_gunicorn(app, host=host, port=port, workers=workers, threads=threads)
    except SystemExit as stop:
        if os.getpid() != master:  # a worker leaving: gunicorn exits workers this way too
            raise
        # Gunicorn stops with its own status when a worker finds the recovery failed.
        sys.exit(recovery.wait() or stop.code)


def _prepare_to_serve(url: str) -> None:
    """The recovery child of ``untag serve``: check the settings (exit 3), recover and tell."""
    out = _console(stderr=True)
    settings = _settings(out)
    _protect(settings)
    _check_slack_settings(out, settings, socket_mode=False)
    _recover_and_tell(out, settings)
    out.print(f"untag serving Slack on {url}/slack/events")


def _stop_gunicorn_quietly() -> NoReturn:
    """Stop the master as SIGTERM does, and leave: the recovery child has said why, in one line.

    A worker exiting with gunicorn's boot-error status would stop it too, but gunicorn then
    logs three errors of its own after that line ("Worker failed to boot").  SIGTERM reaches
    the master before this worker's exit does, so it shuts down instead of replacing it; its
    lines for that are at INFO, below the WARNING it logs at.  ``serve`` exits as the
    recovery did.
    """
    os.kill(os.getppid(), signal.SIGTERM)
    sys.exit(0)


def _serving_app(recovery: ForkedTask) -> WSGIApplication:
    """A worker's app: its own settings, runtime and app (no SQLite handle crosses a fork).

    It waits for the recovery first, or it would start work that the recovery
    then marks interrupted.
    """
    from bot.runtime import build_runtime
    from bot.server import make_wsgi_app
    from bot.slack import build_app

    write_in_background()  # one line per request, from many threads
    if recovery.wait() != 0:
        _stop_gunicorn_quietly()
    settings = _settings(_console(stderr=True))
    _protect(settings)
    # Its own recovery touches only dead owners' jobs: in a worker replacing one that was
    # killed (SIGKILL, gunicorn's timeout), the dead one's jobs and no others.
    runtime = build_runtime(settings)
    if runtime.interrupted:
        _tell_in_background(settings, runtime.interrupted)
    app, _ = build_app(runtime)
    wsgi = make_wsgi_app(app)
    _freeze_what_start_up_built()
    return wsgi


def _freeze_what_start_up_built() -> None:
    """Leave the app's long-lived objects out of every later garbage collection.

    Modules, bolt, the pydantic models and the runtime are some 70,000 objects that stay for
    the life of the process, yet each full collection walks them all, about 25 ms with every
    request thread stopped.  Frozen (``gc.freeze``), they are skipped; in ``bench.ack`` the
    slowest ack fell from 405-454 ms to 310-355 ms.
    """
    gc.freeze()


@main.command()
def socket() -> None:
    """Slack over Socket Mode (no public URL needed; uses SLACK_APP_TOKEN). SIGTERM stops it."""
    from slack_sdk.errors import SlackApiError

    from bot.slack import build_app
    from bot.socket_mode import STOP_GRACE, run_socket_mode

    out = _console(stderr=True)
    logging.getLogger().setLevel(logging.INFO)
    write_in_background()  # one line per request, from many threads
    settings = _settings(out)
    _protect(settings)
    _check_slack_settings(out, settings, socket_mode=True)
    assert settings.slack_app_token is not None

    def connected(ok: bool) -> None:
        if ok:
            out.print("untag connected over Socket Mode")
        else:
            out.print("[yellow]untag could not connect over Socket Mode yet; retrying[/yellow]")

    with _runtime(out, settings, dry_run=False) as runtime:
        app, surface = build_app(runtime, socket_mode=True)
        _freeze_what_start_up_built()
        _tell(settings, runtime.interrupted)
        try:
            drained = run_socket_mode(
                app,
                settings.slack_app_token.get_secret_value(),
                jobs=surface.jobs,
                connected=connected,
            )
        except SlackApiError as exc:
            # A mistyped or revoked token is a configuration problem: one line, exit 3.
            _fail(out, f"Slack refused SLACK_APP_TOKEN: {exc.response.get('error')}", EXIT_CONFIG)
            raise  # pragma: no cover - _fail exits
        if not drained:
            # Past the grace period, as gunicorn's graceful_timeout: the job threads would hold
            # the exit for as long as they run, so leave without them; the next start reports
            # them as interrupted.
            out.print(f"[yellow]Jobs still running after {STOP_GRACE:.0f} s were left.[/yellow]")
            logging.shutdown()
            sys.stderr.flush()
            os._exit(EXIT_NOT_DONE)
        surface.jobs.shutdown()
    out.print("untag stopped")


def _recover_and_tell(out: Console, settings: Settings) -> None:
    """Mark what a dead process left running as interrupted, and DM each requester a Retry button.

    Another server's live jobs on the same database are left alone.
    """
    with _runtime(out, settings, dry_run=False) as runtime:
        _tell(settings, runtime.interrupted)


def _tell(settings: Settings, interrupted: list[Any]) -> None:
    if not interrupted or settings.slack_bot_token is None:
        return
    from slack_sdk import WebClient

    from bot.notify import tell_interrupted

    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    tell_interrupted(client, interrupted)


def _tell_in_background(settings: Settings, interrupted: list[Any]) -> None:
    """:func:`_tell` on a thread: in a worker, slow DMs would count against its boot timeout."""

    def tell() -> None:
        try:
            _tell(settings, interrupted)
        except Exception:  # a DM is a courtesy; the operations are already marked
            log.warning("could not tell requesters about interrupted operations", exc_info=True)

    threading.Thread(target=tell, name="untag-tell", daemon=True).start()


def _check_slack_settings(out: Console, settings: Settings, *, socket_mode: bool) -> None:
    required = {"SLACK_BOT_TOKEN": settings.slack_bot_token}
    if socket_mode:
        required["SLACK_APP_TOKEN"] = settings.slack_app_token
    else:
        required["SLACK_SIGNING_SECRET"] = settings.slack_signing_secret
    missing = [name for name, value in required.items() if value is None]
    if missing:
        _fail(out, f"Configuration error: {', '.join(missing)} missing (see README)", EXIT_CONFIG)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
def sandbox(host: str, port: int) -> None:
    """Run the five provider simulators with demo data (for the console, tests and benchmarks)."""
    from sandbox import Sandbox

    simulators = Sandbox(host=host, port=port, seed_demo=True)
    simulators.start()
    click.echo(f"untag sandbox listening on {simulators.url}; point untag at it with:")
    for key, value in simulators.env().items():
        click.echo(f"export {key}={value}")
    try:
        simulators.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        simulators.stop()


def _any_provider(settings: Settings) -> bool:
    config = settings.providers()
    sections = (config.alta, config.fernand, config.zoho, config.bigin, config.constant_contact)
    return any(section is not None for section in sections)


def _environ_keys() -> set[str]:
    return {k.upper() for k in os.environ}


def _protect(settings: Settings) -> None:
    """Teach the log redaction filter the configured secret values."""
    secrets = settings.providers().secrets()
    for token in (
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
    ):
        if token is not None:
            secrets.append(token.get_secret_value())
    protect(secrets)
