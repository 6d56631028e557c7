"""The demo: `untag console` with no credentials starts the sandbox; remove, then undo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

UNTAG = str(Path(sys.executable).parent / "untag")


def console(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("ALTA_", "FERNAND_", "ZOHO_", "BIGIN_", "CONSTANT_CONTACT_", "UNTAG_", "SLACK_")
        )
    }
    env["COLUMNS"] = "200"
    return subprocess.run(
        [UNTAG, "console", "--as", "U0DEMO", *args],
        input=script,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_removes_a_tag_shows_results_and_undo_puts_it_back(tmp_path: Path) -> None:
    done = console(tmp_path, "zoho Leads 554023000000793002 Prime\ny\nundo\nhistory\nquit\n")
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "built-in sandbox" in out
    preview_at = out.index("Tags now")
    removed_at = out.index("removed", preview_at)
    restored_at = out.index("restored", removed_at)
    assert preview_at < removed_at < restored_at
    assert "Removal succeeded: 1 record" in out and "Undo succeeded: 1 record" in out
    assert "Traceback" not in out + done.stderr
    assert (tmp_path / "untag-sandbox.db").exists()


def test_answering_no_cancels_and_bad_input_gets_usage_not_a_traceback(tmp_path: Path) -> None:
    script = "zoho Leads 554023000000793002 Prime\nn\nzoho Leeds 1 Prime\nfoo bar\nundo\n"
    done = console(tmp_path, script)
    out = done.stdout
    assert done.returncode == 0
    assert "Cancelled: nothing was changed." in out
    assert "did you mean `Leads`?" in out
    assert out.count("Usage:") >= 2
    assert "there is no operation of yours to undo" in out
    assert "Traceback" not in out + done.stderr
