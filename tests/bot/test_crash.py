"""A process killed (SIGKILL) in the middle of a 1,000-record Zoho removal loses nothing:
after a restart the operation is `interrupted`, the finished batch is recorded as done, the
audit chain verifies, and Retry failed completes the rest without resending a finished record.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from sandbox import Fault, Sandbox
from storage import OperationStore, open_database
from tests.bot.test_cli_run import UNTAG, base_env, run

IDS = [str(554023000100000000 + i) for i in range(1000)]
FIRST, SECOND = IDS[:500], IDS[500:]


def wait_until(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_sigkill_mid_removal_then_restart_and_retry(tmp_path: Path) -> None:
    with Sandbox(port=0, seed_demo=False).start() as sb:
        sb.state.zoho.add_records("Leads", IDS, ["Prime", "Keep"])
        # Each remove call takes 2 s at the provider: time to kill between the two batches.
        sb.add_fault(
            Fault(
                provider="zoho",
                kind="latency",
                seconds=2.0,
                method="POST",
                path_contains="remove_tags",
            )
        )
        env = {**base_env(tmp_path), **sb.env()}
        database = tmp_path / "untag.db"
        job = subprocess.Popen(
            [UNTAG, "run", f"zoho Leads {','.join(IDS)} Prime", "--yes", "--as", "U0OPS"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        store = OperationStore(open_database(database))

        def first_batch_recorded() -> bool:
            ops = store.recent(limit=1) if database.exists() else []
            return bool(ops) and len(store.results(ops[0].id)) == 500

        wait_until(first_batch_recorded)
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
        [op] = store.recent(limit=1)
        assert op.status == "running"  # as the crash left it
        sb.clear_faults()

        # Restart: any command brings the process back up and marks the operation.
        restart = run(["run", "help"], env)
        assert f"Operation {op.id} was interrupted" in restart.stdout
        assert store.get(op.id).status == "interrupted"  # type: ignore[union-attr]
        done = store.results(op.id)
        assert {r.target for r in done} == set(FIRST)
        assert {r.outcome for r in done} == {"removed"}
        assert run(["audit", "verify"], env).returncode == 0

        sb.clear_requests()
        retry = run(["run", f"retry {op.id}", "--yes", "--json", "--as", "U0OPS"], env)
        assert retry.returncode == 0, retry.stderr
        report = json.loads(retry.stdout)
        assert sorted(r["target"] for r in report["results"]) == sorted(SECOND)
        sent = [r for r in sb.requests if r.method == "POST" and "remove_tags" in r.path]
        sent_ids = {i for r in sent for i in r.json()["ids"]}
        assert not sent_ids & set(FIRST)  # nothing already done is sent again
        # The in-flight second batch may or may not have reached Zoho before the kill; either
        # way every record ends without the tag and with an outcome in the log.
        assert all("Prime" not in sb.state.zoho.tags_of("Leads", i) for i in IDS)
        assert all(sb.state.zoho.tags_of("Leads", i) == ["Keep"] for i in IDS)
        events = run(["audit", "events", "--format", "json"], env)
        kinds = {e["kind"] for e in json.loads(events.stdout)}
        assert {"interrupted", "retried"} <= kinds
        assert run(["audit", "verify"], env).returncode == 0
