"""Quotas and outages: a daily quota running out mid-job, a provider refusing connections,
and a burst of concurrent Zoho jobs against Zoho's ten-tokens-in-ten-minutes refresh limit."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import Runtime
from commands.actions import Action, ProviderName
from commands.executor import Report
from commands.http import next_utc_midnight
from commands.results import Outcome
from sandbox import Credentials, Limits, ManualClock, Sandbox
from storage import OpStatus
from tests.bot.test_cli_run import UNTAG, base_env
from tests.reliability.harness import (
    CANARIES,
    OK_OUTCOMES,
    USER,
    Seeded,
    differences,
    leaked,
    real_retries,
    runtime_on,
    write_figures,
)

# -- Constant Contact's daily quota ---------------------------------------------------------------

CONTACTS = 60
GROUPS = (("VIP", "Promo", "Keep"), ("VIP", "Keep"), ("Promo", "Keep"))  # three activities
ACTIVITY = 2  # one start and one poll: activities finish at once here


def cc_contacts(sb: Sandbox) -> Seeded:
    targets = tuple(str(uuid.UUID(int=(0xC0FFEE << 64) + i, version=4)) for i in range(CONTACTS))
    before: dict[str, tuple[str, ...]] = {}
    for i, contact in enumerate(targets):
        before[contact] = GROUPS[i % 3]
        sb.state.constantcontact.add_contact(contact, before[contact])

    def read(target: str) -> list[str] | None:
        try:
            return sb.state.constantcontact.tag_names_of(target)
        except KeyError:
            return None

    return Seeded("constantcontact", "contacts", targets, ("VIP", "Promo"), before, read)


def midnights() -> set[str]:
    """The next UTC midnight, as the message prints it (two, should the test straddle one)."""
    now = datetime.now(UTC)
    return {f"{next_utc_midnight(t):%Y-%m-%d} 00:00 UTC" for t in (now, now + timedelta(5))}


@pytest.mark.parametrize("where", ["activity", "poll", "client"])
def test_cc_daily_quota_running_out_mid_job_stops_it_and_retry_finishes_it_later(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``activity``: Constant Contact refuses the second activity (``quota_exceeded``);
    ``poll``: it accepts the first activity, then refuses the poll that would confirm it;
    ``client``: our own daily counter (``CONSTANT_CONTACT_REQUESTS_PER_DAY``) refuses first.

    The job stops at once, every record not done is listed with the reason and the reset
    time, and "Retry failed" on the next day (the sandbox clock moves a day; for our own
    counter, kept in the database across restarts, a restart with the quota raised)
    finishes exactly the rest.
    """
    monkeypatch.chdir(tmp_path)
    clock = ManualClock()
    database = tmp_path / "untag.db"
    with (
        Sandbox(
            seed_demo=False,
            credentials=CANARIES,
            limits=Limits(cc_per_second=None, cc_per_day=None),
            clock=clock,
            cc_items_per_second=None,
        ).start() as sb,
        real_retries(),
    ):
        seeded = cc_contacts(sb)
        action = Action(
            provider=ProviderName.CONSTANT_CONTACT,
            scope="contacts",
            targets=seeded.targets,
            tags=seeded.requested,
        )
        # How many requests the preview takes (a probe on another database): the quota
        # then ends right after the first activity, or right inside it.
        probe = runtime_on(sb, tmp_path / "probe.db")
        try:
            probe.untag.plan(USER, action)
        finally:
            probe.close()
        first_activity_done = len(sb.requests) + ACTIVITY
        sb.clear_requests()
        ours = {}
        if where == "client":
            ours = {"constant_contact_requests_per_day": first_activity_done}
        else:
            clock.advance(86_400)  # the probe's requests counted on a day of their own
            sb.limits.cc_per_day = first_activity_done - (where == "poll")
        runtime = runtime_on(sb, database, **ours)
        try:
            report = runtime.untag.execute(USER, runtime.untag.plan(USER, action))
            op_id = report.operation.id
            api = [r for r in sb.requests if r.provider == "constantcontact"]

            # It stopped: nothing was sent after the refusal.
            refusals = [i for i, r in enumerate(api) if r.status == 429]
            if where == "client":
                assert refusals == [] and len(api) == first_activity_done
            else:
                assert refusals == [len(api) - 1]
            first = [t for t in seeded.targets if seeded.before[t] == GROUPS[0]]
            left = [r for r in report.results if r.outcome is not Outcome.REMOVED]
            assert {r.target for r in report.failed} == {r.target for r in left}
            if where == "poll":
                # Accepted but unconfirmed: in doubt, not "failed as if nothing happened".
                assert {r.target for r in left if r.code == "in_doubt"} == set(first)
                assert len(left) == CONTACTS
                assert report.operation.status == OpStatus.FAILED
            else:
                assert len(left) == CONTACTS - len(first)
                assert report.operation.status == OpStatus.PARTIALLY_FAILED
            for result in left:
                text = result.message or ""
                if where == "client":
                    assert "daily quota" in text and "resets at 00:00 UTC" in text
                else:
                    assert "daily request quota is spent" in text
                    assert any(m in text for m in midnights()), text
            assert differences(runtime, seeded, [op_id], settled=False) == []

            # The next day.
            if where == "client":
                runtime.close()
                runtime = runtime_on(sb, database)
            else:
                # Today's quota was small because other apps had spent most of it (the sandbox
                # counts only ours); tomorrow the whole 10,000 is there again.
                clock.advance(86_400)  # also expires the access token: one refresh
                sb.limits.cc_per_day = 10_000
            grants = sb.token_requests("constantcontact")
            retry = runtime.untag.retry_failed(USER, op_id)
            assert retry.operation.status == OpStatus.SUCCEEDED
            assert {r.target for r in retry.results} == {r.target for r in left}
            assert {r.outcome.value for r in retry.results} <= OK_OUTCOMES
            assert differences(runtime, seeded, [op_id, retry.operation.id], settled=True) == []
            if where != "client":
                assert sb.token_requests("constantcontact") == grants + 1
        finally:
            runtime.close()
        write_figures(
            {
                "test": "cc_quota",
                "where": where,
                "records": CONTACTS,
                "stopped_after_requests": len(api),
                "left_after_first_run": len(left),
                "retry": dict(Counter(r.outcome.value for r in retry.results)),
            }
        )


# -- a provider that refuses connections ----------------------------------------------------------


def closed_port() -> int:
    """A loopback port nobody listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def canary_sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed_demo=True, credentials=CANARIES).start() as sb:
        yield sb


ALTA_THREADS = ",".join(str(uuid.UUID(int=i, version=4)) for i in range(20))
REFUSED = {
    # provider: (setting pointed at the closed port, URL suffix, command)
    "alta": ("ALTA_BASE_URL", "/v1", f'alta thread {ALTA_THREADS} "Hot Lead"'),
    "fernand": ("FERNAND_BASE_URL", "", 'fernand 12345 "VIP Customer"'),
    "zoho-token": ("ZOHO_ACCOUNTS_URL", "", "zoho Leads 554023000000793002 Prime"),
    "constantcontact": (
        "CONSTANT_CONTACT_BASE_URL",
        "/v3",
        "cc contacts 1618ae62-4752-11e9-9c8a-fa163e6b01c1 VIP",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(REFUSED))
def test_a_provider_refusing_connections_gets_a_clear_message_and_no_hang(
    case: str, canary_sandbox: Sandbox, tmp_path: Path
) -> None:
    """``untag run`` as a process, real retries and their real waits, with canary credentials.

    Alta is the worst case: one call per record.  Before the fix each of the 20 records sat
    out four connection attempts and their backoff (about 5 s each, 100 s in all, 40 minutes
    for 500); now the first record's failure stops the job and lists the rest.
    """
    variable, suffix, command = REFUSED[case]
    env = {**base_env(tmp_path), **canary_sandbox.env(), "UNTAG_HTTP_TIMEOUT": "2"}
    env[variable] = f"http://127.0.0.1:{closed_port()}{suffix}"
    started = time.monotonic()
    done = subprocess.run(
        [UNTAG, "-v", "run", command, "--yes", "--json", "--as", USER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "could not connect" in output and "nothing was sent" in output
    assert "Traceback" not in output
    assert elapsed < 30, f"{case}: {elapsed:.1f} s"
    assert leaked([output]) == []
    if case == "alta":
        report = json.loads(done.stdout)
        assert [r["outcome"] for r in report["results"]] == ["failed"] * 20
        assert {r["code"] for r in report["results"]} == {"ProviderUnreachable"}
    write_figures({"test": "refused", "case": case, "seconds": round(elapsed, 1)})


# -- Zoho's refresh limit under a burst of jobs ---------------------------------------------------

LEADS = [str(554023000300000000 + i) for i in range(40)]
CONTACTS_BIGIN = [str(2445013000300000000 + i) for i in range(40)]
PROCESS_LEADS = [str(554023000400000000 + i) for i in range(4)]
PROCESS_CONTACTS = [str(2445013000400000000 + i) for i in range(4)]


def zoho_sandbox(credentials: Credentials = CANARIES) -> Sandbox:
    # Zoho's own limits stay on: 10 concurrent calls, 10 tokens per refresh token per 10 min.
    sb = Sandbox(seed_demo=False, credentials=credentials, limits=Limits())
    sb.state.zoho.add_records("Leads", LEADS, ["Prime", "Keep"])
    sb.state.bigin.add_records("Contacts", CONTACTS_BIGIN, ["Hot Deal", "Keep"])
    sb.state.zoho.add_records("Leads", PROCESS_LEADS, ["Prime", "Keep"])
    sb.state.bigin.add_records("Contacts", PROCESS_CONTACTS, ["Hot Deal", "Keep"])
    return sb


def job(runtime: Runtime, index: int, jobs: int) -> Report:
    """Job ``index`` of ``jobs``: half on Zoho CRM, half on Bigin, each on its own records."""
    crm = index % 2 == 0
    pool = LEADS if crm else CONTACTS_BIGIN
    mine = tuple(pool[index // 2 :: (jobs + 1) // 2])
    action = Action(
        provider=ProviderName.ZOHO if crm else ProviderName.BIGIN,
        scope="Leads" if crm else "Contacts",
        targets=mine,
        tags=("Prime",) if crm else ("Hot Deal",),
    )
    return runtime.untag.execute(USER, runtime.untag.plan(USER, action))


def burst(runtimes: list[Runtime], per_runtime: int) -> list[Report | BaseException]:
    """Every job starts at the same moment, each on its own thread."""
    total = len(runtimes) * per_runtime
    start = threading.Barrier(total)
    outcomes: list[Report | BaseException] = []
    lock = threading.Lock()

    def run(runtime: Runtime, index: int) -> None:
        start.wait()
        try:
            outcome: Report | BaseException = job(runtime, index, total)
        except BaseException as exc:
            outcome = exc
        with lock:
            outcomes.append(outcome)

    threads = [
        threading.Thread(target=run, args=(rt, n * per_runtime + i))
        for n, rt in enumerate(runtimes)
        for i in range(per_runtime)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == total
    return outcomes


def succeeded(outcomes: list[Report | BaseException]) -> bool:
    return all(isinstance(o, Report) and o.operation.status == OpStatus.SUCCEEDED for o in outcomes)


def test_a_burst_of_zoho_and_bigin_jobs_in_one_process_mints_one_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 threads × (plan + execute), CRM and Bigin mixed, on one runtime: one token, because
    CRM and Bigin share the refresh token and the manager; after every token is revoked, a
    second burst costs exactly one more."""
    monkeypatch.chdir(tmp_path)
    with zoho_sandbox().start() as sb, real_retries():
        runtime = runtime_on(sb, tmp_path / "untag.db")
        try:
            first = burst([runtime], 8)
            assert succeeded(first), first
            assert sb.token_requests("zoho") == 1
            sb.expire_tokens()
            sb.state.zoho.add_records("Leads", LEADS, ["Prime", "Keep"])
            sb.state.bigin.add_records("Contacts", CONTACTS_BIGIN, ["Hot Deal", "Keep"])
            second = burst([runtime], 8)
            assert succeeded(second), second
            assert sb.token_requests("zoho") == 2
        finally:
            runtime.close()
    write_figures({"test": "zoho_tokens", "case": "1 runtime x 8 threads x 2 bursts", "tokens": 2})


@pytest.mark.slow
def test_runtimes_and_processes_sharing_one_database_stay_under_zoho_refresh_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 runtimes × 4 threads in this process at the same moment, then 4 ``untag run``
    processes at once, all on one database: the runtimes may race to at most one token each;
    the processes, starting after a token was stored, adopt it and fetch none."""
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "untag.db"
    with zoho_sandbox().start() as sb, real_retries():
        runtimes = [runtime_on(sb, database) for _ in range(3)]
        try:
            outcomes = burst(runtimes, 4)
        finally:
            for runtime in runtimes:
                runtime.close()
        assert succeeded(outcomes), outcomes
        after_burst = sb.token_requests("zoho")
        assert 1 <= after_burst <= 3

        commands = [
            *(f"zoho Leads {lead} Prime" for lead in PROCESS_LEADS[:2]),
            *(f'bigin Contacts {contact} "Hot Deal"' for contact in PROCESS_CONTACTS[:2]),
        ]
        results = run_processes_at_once(tmp_path, sb, database, commands)
        assert all(r["status"] == "succeeded" for r in results)
        assert sb.token_requests("zoho") == after_burst  # the stored token, adopted
    write_figures(
        {
            "test": "zoho_tokens",
            "case": "3 runtimes x 4 threads + 4 processes",
            "tokens": sb.token_requests("zoho"),
        }
    )


@pytest.mark.slow
def test_an_untag_run_every_minute_reuses_one_zoho_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What cron does: 12 ``untag run`` one after the other.  Before access tokens were shared
    through the database, each minted its own, and the 11th was refused by Zoho's limit."""
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "untag.db"
    leads = [str(554023000500000000 + i) for i in range(12)]
    with zoho_sandbox().start() as sb:
        sb.state.zoho.add_records("Leads", leads, ["Prime", "Keep"])
        for lead in leads:
            [result] = run_processes_at_once(tmp_path, sb, database, [f"zoho Leads {lead} Prime"])
            assert result["status"] == "succeeded", result
        assert sb.token_requests("zoho") == 1
    write_figures({"test": "zoho_tokens", "case": "12 untag run in a row", "tokens": 1})


def run_processes_at_once(
    tmp_path: Path, sb: Sandbox, database: Path, commands: list[str]
) -> list[Any]:
    """``untag run <command> --yes --json`` for each command, all started together."""
    env = {**base_env(tmp_path), **sb.env(), "UNTAG_DATABASE": str(database)}
    processes = [
        subprocess.Popen(
            [UNTAG, "run", text, "--yes", "--json", "--as", USER],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for text in commands
    ]
    results: list[Any] = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(json.loads(out))
    return results
