"""Per provider: a 500-record removal under injected faults loses nothing and claims nothing.

Each run plans the removal on a healthy sandbox (the preview), then confirms it while the
sandbox injects the fault mix of :func:`tests.reliability.scenarios.fault_mix`, with the
real runtime (``build_runtime``), the real client (timeout 1 s) and stamina's real retry
path, whose sleeps alone are recorded instead of slept.  Afterwards:

1. record by record, the sandbox's state, the stored results and the audit log's ``record``
   events agree, where a result marked in doubt (a write sent whose answer was lost) may
   have been applied or not;
2. the faults stop and ``retry_failed`` runs: now they agree exactly, in doubt or not;
3. nothing that had succeeded was sent again, and the provider applied no removal more
   often than we got an answer for it plus the answers we lost;
4. every wait honoured what the provider said (Alta ``Retry-After``, Fernand
   ``X-RateLimit-Reset``) or was a bounded backoff; an expired token cost one refresh;
5. no canary credential is in any log record (raw or redacted), result, error or the
   database file.

Scaled: client pacing is raised out of the way and the sandbox's own rate limits are off,
so only injected 429s happen (at real limits Alta's 500 calls take 5 minutes and Fernand's
570 deletes nearly 2 hours).  Constant Contact activities complete at once.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from commands.errors import ProviderUnavailable, RateLimited
from commands.results import Outcome
from sandbox import Fault, Limits, Sandbox
from tests.reliability.harness import (
    CANARIES,
    OK_OUTCOMES,
    SECRETS,
    USER,
    SendSpy,
    database_bytes,
    differences,
    duplicate_sends,
    leaked,
    production_logging,
    real_retries,
    runtime_on,
    settle_sandbox,
    write_figures,
)
from tests.reliability.scenarios import RECORDS, SCENARIOS, SLOW, fault_mix


def no_rate_limits() -> Limits:
    """The sandbox's own rate limits off: the only 429s are the injected ones (Zoho's
    concurrency cap and token limit stay on)."""
    return Limits(
        alta_per_minute=None,
        fernand_reads_per_minute=None,
        fernand_writes_per_minute=None,
        cc_per_second=None,
        cc_per_day=None,
    )


SEEDS = {"alta": 11, "fernand": 12, "zoho": 13, "bigin": 14, "constantcontact": 15}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_500_records_under_faults_match_the_provider_record_by_record(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    scenario = SCENARIOS[name]
    database = tmp_path / "untag.db"
    started = time.monotonic()
    texts: list[str] = []
    with (
        Sandbox(
            seed_demo=False,
            credentials=CANARIES,
            limits=no_rate_limits(),
            seed=SEEDS[name],
            cc_items_per_second=None,
        ).start() as sb,
        production_logging(SECRETS) as (raw, _),
        real_retries() as retries,
    ):
        seeded = scenario.build(sb, RECORDS)
        runtime = runtime_on(sb, database)
        try:
            spy = SendSpy(runtime)
            plan = runtime.untag.plan(USER, scenario.action(seeded))
            op_id = plan.operation.id
            grants = sb.token_requests("zoho" if name in ("zoho", "bigin") else "constantcontact")
            for fault in fault_mix(scenario):
                sb.add_fault(fault)
            faulted, faulted_at = spy.mark(), len(sb.requests)
            report = runtime.untag.execute(USER, plan)
            settle_sandbox(sb, spy)
            first = differences(runtime, seeded, [op_id], settled=False)
            assert first == [], first[:20]
            first_counts = Counter(r.outcome.value for r in report.results)
            in_doubt = sum(1 for r in report.results if r.code in ("in_doubt", "activity_running"))
            answers = Counter(
                str(r.status)
                for r in sb.requests[faulted_at:]
                if r.provider == scenario.sandbox_name
            )
            refreshed = (
                sb.token_requests("zoho" if name in ("zoho", "bigin") else "constantcontact")
                - grants
            )
            retry_waits = {
                "rate_limited": retries.waits_for(RateLimited),
                "unavailable": retries.waits_for(ProviderUnavailable),
            }

            # The provider recovers; the user presses "Retry failed".
            sb.clear_faults()
            mark = spy.mark()
            seen = spy.since(faulted, mark)
            retry = runtime.untag.retry_failed(USER, op_id)
            settle_sandbox(sb, spy)
            retry_id = retry.operation.id
            final = differences(runtime, seeded, [op_id, retry_id], settled=True)
            assert final == [], final[:20]
            assert all(
                r.outcome in (Outcome.NOT_FOUND, Outcome.LOCKED)
                for r in retry.results
                if r.outcome.value not in OK_OUTCOMES
            ), "after recovery only the provider's own refusals may remain"

            done = {r.target for r in report.results if r.outcome.value in OK_OUTCOMES}
            dupes = duplicate_sends(
                [(op_id, spy.since(0, mark)), (retry_id, spy.since(mark))],
                sb.requests,
                {retry_id: done},
            )
            assert dupes == [], dupes[:20]

            # Every wait was what the provider asked for, or a bounded backoff.
            if name == "alta":
                assert all(w == pytest.approx(60.0) for w in retry_waits["rate_limited"])
            elif name == "fernand":
                assert all(58.0 <= w <= 62.0 for w in retry_waits["rate_limited"])  # reset epoch
            else:
                assert all(0 < w <= 8.0 for w in retry_waits["rate_limited"])  # backoff
            assert all(0 < w <= 8.0 for w in retry_waits["unavailable"])
            assert sum(retries.slept) == pytest.approx(sum(d.wait_for for d in retries.retries))
            assert sb.errors == []  # the sandbox itself never crashed
            timeouts = sum(1 for e in seen if e.error and "Timeout" in e.error)
            assert timeouts >= 1  # the slow first removal request really timed out
            if scenario.refreshes:
                assert refreshed == 1  # one expired token, one refresh, however many requests
            texts += [f"{r.code} {r.message}" for r in (*report.results, *retry.results)]
            texts += [str(runtime.untag.operations.get(i)) for i in (op_id, retry_id)]
        finally:
            runtime.close()

        write_figures(
            {
                "test": "provider_faults",
                "provider": name,
                "records": len(seeded.targets),
                "requests_under_faults": len(seen),
                "sandbox_answers": dict(answers),
                "timeouts": timeouts,
                "drops": sum(1 for e in seen if e.error and "Protocol" in e.error),
                "retries": len(retries.retries),
                "waited_s": round(sum(retries.slept), 1),
                "first_pass": dict(first_counts),
                "in_doubt": in_doubt,
                "retry_pass": dict(Counter(r.outcome.value for r in retry.results)),
                "token_refreshes": refreshed,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    assert raw.texts and caplog.records  # the runs did log (retries, failed batches, tokens)
    assert leaked(raw.texts) == [], "our code logged a secret (before redaction)"
    assert leaked([caplog.text]) == []
    assert leaked(texts) == []
    assert leaked([database_bytes(database).decode("latin-1")]) == []


IN_DOUBT_RECORDS = 20


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("alta", "write"),
        ("fernand", "write"),
        ("zoho", "write"),
        ("bigin", "write"),
        ("constantcontact", "write"),
        ("constantcontact", "poll"),
        *((name, "drop") for name in SCENARIOS),
    ],
)
def test_a_lost_answer_then_failure_is_reported_in_doubt_and_reconciled_by_retry(
    name: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst case for honesty: the first removal request is applied at the provider but
    its answer never arrives (slower than the timeout), and every later attempt is refused.

    The result must not say "failed" as if nothing happened, nor "removed" (nobody saw a
    success): it says in doubt, and Retry failed reads the provider and settles it.
    For Constant Contact's ``poll`` case the activity is accepted and every status poll
    fails: its contacts are equally in doubt.  In the ``drop`` cases the connection is cut
    instead, before the provider acted: from our side that looks the same, so the result is
    in doubt too, the tags are in fact still there, and Retry failed removes them.
    """
    monkeypatch.chdir(tmp_path)
    scenario = SCENARIOS[name]
    with (
        Sandbox(
            seed_demo=False,
            credentials=CANARIES,
            limits=no_rate_limits(),
            cc_items_per_second=None,
        ).start() as sb,
        real_retries(),
    ):
        seeded = scenario.build(sb, IN_DOUBT_RECORDS)
        runtime = runtime_on(sb, tmp_path / "untag.db")
        try:
            spy = SendSpy(runtime)
            plan = runtime.untag.plan(USER, scenario.action(seeded))
            op_id = plan.operation.id
            provider, path = scenario.sandbox_name, scenario.write_path
            if where in ("write", "drop"):
                first = (
                    Fault(provider, "latency", seconds=SLOW, count=1, path_contains=path)
                    if where == "write"
                    else Fault(provider, "drop", count=1, path_contains=path)
                )
                sb.add_fault(first)
                sb.add_fault(Fault(provider, "status", status=503, count=3, path_contains=path))
            else:  # every poll of the first activity fails, all four attempts
                sb.add_fault(
                    Fault(
                        provider,
                        "status",
                        status=503,
                        count=4,
                        method="GET",
                        path_contains="/activities/",
                    )
                )
            report = runtime.untag.execute(USER, plan)
            settle_sandbox(sb, spy)

            doubtful = [r for r in report.results if r.code == "in_doubt"]
            assert doubtful, [(r.outcome, r.code) for r in report.results]
            assert all(r.outcome is Outcome.FAILED for r in doubtful)
            assert all("may have applied" in (r.message or "") for r in doubtful)
            # Slow: the lost request really was applied, a plain "failed" would have been
            # wrong.  Dropped: it was not, a "removed" would have been wrong.
            applied = [
                r.target
                for r in doubtful
                if not set(seeded.requested) & set(seeded.read(r.target) or seeded.requested)
            ]
            assert bool(applied) is (where != "drop")
            assert differences(runtime, seeded, [op_id], settled=False) == []

            retry = runtime.untag.retry_failed(USER, op_id)
            settle_sandbox(sb, spy)
            assert differences(runtime, seeded, [op_id, retry.operation.id], settled=True) == []
            settled = {r.target: r.outcome for r in retry.results}
            if where == "drop":
                assert {settled[r.target] for r in doubtful} <= {Outcome.REMOVED, Outcome.LOCKED}
            else:
                expected = Outcome.REMOVED if name == "alta" else Outcome.NOT_PRESENT
                assert {settled[t] for t in applied} == {expected}
        finally:
            runtime.close()


def test_a_preview_read_that_exhausts_its_retries_leaves_that_record_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fernand and Constant Contact read one record per call.  One read failing all its
    attempts marks that record "could not be read" and the others are previewed: nothing is
    sent to it, it is reported failed with the reason, and Retry failed (the fault gone) reads
    and finishes it.  Before: the whole preview failed."""
    monkeypatch.chdir(tmp_path)
    scenario = SCENARIOS["fernand"]
    with (
        Sandbox(seed_demo=False, credentials=CANARIES, limits=no_rate_limits()).start() as sb,
        real_retries() as retries,
    ):
        seeded = scenario.build(sb, IN_DOUBT_RECORDS)
        unlucky = seeded.targets[3]
        sb.add_fault(Fault("fernand", "status", status=503, count=4, path_contains=unlucky))
        runtime = runtime_on(sb, tmp_path / "untag.db")
        try:
            plan = runtime.untag.plan(USER, scenario.action(seeded))
            assert len(retries.retries) == 3  # four attempts
            [unread] = [r for r in plan.preview.records if r.unreadable is not None]
            assert unread.target == unlucky
            assert unread.unreadable == "temporarily unavailable (503)"
            report = runtime.untag.execute(USER, plan)
            sent = [r.path for r in sb.requests if r.method != "GET"]
            assert sent and not any(unlucky in path for path in sent)
            [failed] = [r for r in report.results if r.target == unlucky]
            assert (failed.outcome, failed.code) == (Outcome.FAILED, "unreadable")
            assert differences(runtime, seeded, [report.operation.id], settled=False) == []
            retry = runtime.untag.retry_failed(USER, report.operation.id)
            assert [r.target for r in retry.results if r.outcome is Outcome.FAILED] == []
            ops = [report.operation.id, retry.operation.id]
            assert differences(runtime, seeded, ops, settled=True) == []
        finally:
            runtime.close()
