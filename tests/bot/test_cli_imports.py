"""What `untag --help` and the master process of `untag serve` import (issue #6).

The master only supervises gunicorn's workers, and every page it holds is
resident in it and again in each worker it forks; `--help` should not pay for
the app either.  So neither may import the app's heavy parts: these tests run
each in a fresh interpreter and read its ``sys.modules``.  Behaviour, not time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from bot import audit_cli
from bot.cli import main
from tests.bot.test_cli_run import base_env
from tests.bot.test_serve import BOT_TOKEN, SECRET, free_port

HEAVY = (
    "slack_bolt",
    "slack_sdk",
    "httpx",
    "pydantic",
    "pydantic_settings",
    "sqlite_utils",
    "rich",
    "bot.config",
    "bot.runtime",
    "bot.slack",
    "bot.server",
    "commands.providers",
    "storage",
)

# Prints which of HEAVY the process has imported, as JSON on the last line of stdout.
REPORT = textwrap.dedent(
    f"""
    import json, sys

    def report():
        heavy = {HEAVY!r}
        print(json.dumps(sorted(m for m in heavy if m in sys.modules)), flush=True)
    """
)


def python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", REPORT + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def imported(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.stdout.strip(), done.stderr
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_help_imports_none_of_the_app() -> None:
    done = python(
        """
        from bot.cli import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        report()
        """
    )
    assert "audit" in done.stdout and "serve" in done.stdout
    assert imported(done) == []


def test_the_serve_master_imports_none_of_the_app(tmp_path: Path) -> None:
    # Stop where gunicorn's master starts its loop and forks its workers; the recovery child
    # has run by then (the master waits for it on the way out).
    env = {**base_env(tmp_path), "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET}
    done = python(
        f"""
        from gunicorn.arbiter import Arbiter

        def run(self):
            report()
            raise SystemExit(0)

        Arbiter.run = run
        from bot.cli import main
        main(["serve", "--host", "127.0.0.1", "--port", "{free_port()}"])
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert imported(done) == []
    assert "untag serving Slack on" in done.stderr  # the recovery child ran, and succeeded


def test_a_worker_imports_no_terminal_rendering() -> None:
    # What a worker imports to build its app; rich and pygments came with httpx's own CLI
    # and with bot.terminal, and a server never prints to a terminal.
    done = python(
        """
        import bot.runtime, bot.server, bot.slack
        print(json.dumps(sorted(m for m in ("rich", "pygments") if m in sys.modules)))
        """
    )
    assert imported(done) == []


def test_help_lists_audit_with_its_own_summary() -> None:
    listed = CliRunner().invoke(main, ["--help"])
    assert listed.exit_code == 0
    [row] = [line.split() for line in listed.output.splitlines() if line.startswith("  audit ")]
    assert " ".join(row[1:]) == audit_cli.audit.get_short_help_str(limit=1000)
    assert "--format" in CliRunner().invoke(main, ["audit", "query", "-h"]).output


def test_the_recovery_child_status_reaches_every_waiter() -> None:
    # Run in a fresh interpreter: forking pytest's own process is no test of anything.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import os, sys
                from bot.serving import ForkedTask

                def fail():
                    sys.exit(3)

                def crash():
                    raise RuntimeError("boom")

                statuses = [ForkedTask(t).wait() for t in (lambda: None, fail, crash)]
                later = ForkedTask(fail)
                worker = os.fork()  # like a gunicorn worker, forked after the task
                if worker == 0:
                    os._exit(later.wait())
                _, status = os.waitpid(worker, 0)
                print(statuses, os.waitstatus_to_exitcode(status), later.wait())
                """
            ),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split("\n")[0] == "[0, 3, 1] 3 3", done.stderr
    assert "RuntimeError: boom" in done.stderr
