"""The pipeline: claim once, cancel, permissions, undo rules, dry run, final status."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from commands.actions import Action, Operation, ProviderName
from commands.errors import AuthorizationDenied, OperationConflict, ProviderUnavailable
from commands.executor import Untag
from commands.providers.base import preview_from_current, read_each
from commands.results import Outcome, Preview, Progress, RecordPreview, RecordResult
from storage import AuditLog, EventKind, OperationStore, OpStatus, PlanStore, open_database

TAGS = {"1001": ["Prime", "VIP"], "1002": ["VIP"], "1003": ["Prime"]}


class FakeZoho:
    """A provider with in-memory records that counts its calls."""

    name: ClassVar[ProviderName] = ProviderName.ZOHO
    batch_size: ClassVar[int] = 500

    def __init__(self) -> None:
        self.records = {k: list(v) for k, v in TAGS.items()}
        self.removes = 0
        self.undos = 0
        self.fail_with: Exception | None = None

    def preview(self, action: Action) -> Preview:
        records = tuple(
            preview_from_current(t, action.tags, self.records.get(t)) for t in action.targets
        )
        return Preview(action=action, records=records)

    def remove(self, action: Action, preview: Preview, progress: Progress) -> list[RecordResult]:
        self.removes += 1
        if self.fail_with:
            raise self.fail_with
        results = []
        for record in preview.records:
            if not record.found:
                results.append(RecordResult(target=record.target, outcome=Outcome.NOT_FOUND))
            elif not record.removing:
                results.append(RecordResult(target=record.target, outcome=Outcome.NOT_PRESENT))
            elif record.target == "1003":
                results.append(RecordResult(target=record.target, outcome=Outcome.LOCKED))
            else:
                tags = self.records[record.target]
                for tag in record.removing:
                    tags.remove(tag)
                results.append(
                    RecordResult(
                        target=record.target,
                        outcome=Outcome.REMOVED,
                        removed=record.removing,
                        remaining=tuple(tags),
                    )
                )
        return results

    def undo(
        self, action: Action, removed: Sequence[RecordResult], progress: Progress
    ) -> list[RecordResult]:
        self.undos += 1
        for result in removed:
            self.records[result.target].extend(result.removed)
        return [RecordResult(target=r.target, outcome=Outcome.RESTORED) for r in removed]


@pytest.fixture
def provider() -> FakeZoho:
    return FakeZoho()


@pytest.fixture
def untag(provider: FakeZoho, tmp_path: Path) -> Untag:
    db = open_database(tmp_path / "untag.db")
    return Untag(
        {ProviderName.ZOHO: provider}, OperationStore(db), PlanStore(db), admins={"UADMIN"}
    )


def action(*targets: str, tag: str = "Prime") -> Action:
    return Action(provider=ProviderName.ZOHO, scope="Leads", targets=targets, tags=(tag,))


def test_a_plan_is_recorded_as_previewed_and_executes_once(
    untag: Untag, provider: FakeZoho
) -> None:
    plan = untag.plan("U1", action("1001", "1002"))
    assert plan.operation.status == OpStatus.PREVIEWED
    report = untag.execute("U1", plan)
    assert report.operation.status == OpStatus.SUCCEEDED
    assert [(r.target, r.outcome) for r in report.results] == [
        ("1001", Outcome.REMOVED),
        ("1002", Outcome.NOT_PRESENT),
    ]
    with pytest.raises(OperationConflict):
        untag.execute("U1", plan)
    assert provider.removes == 1


def test_eight_simultaneous_submits_execute_once(untag: Untag, provider: FakeZoho) -> None:
    plan = untag.plan("U1", action("1001"))
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def submit() -> None:
        start.wait()
        try:
            untag.execute("U1", plan)
            outcomes.append("ran")
        except OperationConflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ran"] + ["refused"] * 7
    assert provider.removes == 1


def test_cancel_makes_no_provider_call_and_blocks_execution(
    untag: Untag, provider: FakeZoho
) -> None:
    plan = untag.plan("U1", action("1001"))
    untag.cancel("U1", plan.operation.id)
    assert untag.operations.get(plan.operation.id).status == OpStatus.CANCELLED  # type: ignore[union-attr]
    with pytest.raises(OperationConflict):
        untag.execute("U1", plan)
    assert provider.removes == 0


def test_only_the_requester_or_an_admin_may_execute(untag: Untag, provider: FakeZoho) -> None:
    plan = untag.plan("U1", action("1001"))
    with pytest.raises(AuthorizationDenied):
        untag.execute("U2", plan)
    assert untag.execute("UADMIN", plan).operation.status == OpStatus.SUCCEEDED


def test_account_wide_deletion_is_admin_only() -> None:
    db = open_database(":memory:")
    untag = Untag({}, OperationStore(db), PlanStore(db), admins={"UADMIN"})
    delete = Action(
        provider=ProviderName.CONSTANT_CONTACT, operation=Operation.DELETE_TAGS, tags=("VIP",)
    )
    with pytest.raises(AuthorizationDenied, match="admins"):
        untag.authorize("U1", delete)
    untag.authorize("UADMIN", delete)


def test_mixed_outcomes_make_a_partially_failed_operation(untag: Untag) -> None:
    report = untag.execute("U1", untag.plan("U1", action("1001", "1003", "9999")))
    assert report.operation.status == OpStatus.PARTIALLY_FAILED
    assert [r.outcome for r in report.results] == [
        Outcome.REMOVED,
        Outcome.LOCKED,
        Outcome.NOT_FOUND,
    ]
    assert [r.target for r in report.failed] == ["1003", "9999"]


def test_a_provider_failure_leaves_the_operation_failed_with_the_reason(
    untag: Untag, provider: FakeZoho
) -> None:
    provider.fail_with = ProviderUnavailable("zoho", "connection failed (ConnectError)")
    plan = untag.plan("U1", action("1001"))
    with pytest.raises(ProviderUnavailable):
        untag.execute("U1", plan)
    stored = untag.operations.get(plan.operation.id)
    assert stored is not None and stored.status == OpStatus.FAILED
    assert stored.error == "zoho: connection failed (ConnectError)"


def test_undo_restores_exactly_what_was_removed_once(untag: Untag, provider: FakeZoho) -> None:
    untag.execute("U1", untag.plan("U1", action("1001", "1002")))
    report = untag.undo("U1")
    assert [(r.target, r.outcome, r.removed) for r in report.results] == [
        ("1001", Outcome.RESTORED, ("Prime",))
    ]
    assert provider.records["1001"] == ["VIP", "Prime"]
    with pytest.raises(OperationConflict):
        untag.undo("U1", report.operation.parent_id)
    assert provider.undos == 1


def test_undo_belongs_to_the_requester_or_an_admin(untag: Untag) -> None:
    op = untag.execute("U1", untag.plan("U1", action("1001"))).operation
    with pytest.raises(OperationConflict, match="no operation of yours"):
        untag.undo("U2")
    with pytest.raises(AuthorizationDenied):
        untag.undo("U2", op.id)
    assert untag.undo("UADMIN", op.id).operation.status == OpStatus.SUCCEEDED


def test_dry_run_never_calls_remove_and_cannot_be_undone(
    provider: FakeZoho, tmp_path: Path
) -> None:
    db = open_database(tmp_path / "dry.db")
    untag = Untag({ProviderName.ZOHO: provider}, OperationStore(db), PlanStore(db), dry_run=True)
    report = untag.execute("U1", untag.plan("U1", action("1001", "1002")))
    assert [r.outcome for r in report.results] == [Outcome.SKIPPED, Outcome.NOT_PRESENT]
    assert report.results[0].removed == ("Prime",)
    assert provider.removes == 0 and report.operation.dry_run
    with pytest.raises(OperationConflict):
        untag.undo("U1")


def test_a_plan_confirmed_in_another_process_runs_the_preview_the_user_saw(
    untag: Untag, provider: FakeZoho, tmp_path: Path
) -> None:
    plan = untag.plan("U1", action("1001"), context={"channel": "C1"})
    db = open_database(tmp_path / "untag.db")  # a second instance on the same file
    other = Untag({ProviderName.ZOHO: provider}, OperationStore(db), PlanStore(db))
    confirmed = other.confirm("U1", plan.operation.id)
    assert confirmed.preview == plan.preview and confirmed.context == {"channel": "C1"}
    assert other.run(confirmed).operation.status == OpStatus.SUCCEEDED
    with pytest.raises(OperationConflict):
        untag.confirm("U1", plan.operation.id)


def test_an_unknown_or_forged_operation_id_is_refused(untag: Untag) -> None:
    with pytest.raises(OperationConflict, match="expired or was never issued"):
        untag.confirm("U1", "not-an-operation")


def test_retry_failed_sends_only_the_failed_records_and_runs_once(
    untag: Untag, provider: FakeZoho
) -> None:
    report = untag.execute("U1", untag.plan("U1", action("1001", "1003")))
    assert [r.outcome for r in report.results] == [Outcome.REMOVED, Outcome.LOCKED]
    provider.records["1003"] = ["Prime"]  # unlocked meanwhile: the fake now removes it
    sent: list[tuple[str, ...]] = []
    original_remove = provider.remove

    def recording_remove(act: Action, preview: Preview, progress: Progress) -> list[RecordResult]:
        sent.append(act.targets)
        return original_remove(act, preview, progress)

    provider.remove = recording_remove  # type: ignore[method-assign]
    retry = untag.retry_failed("U1", report.operation.id)
    assert sent == [("1003",)]
    assert retry.operation.parent_id == report.operation.id
    with pytest.raises(OperationConflict, match="already retried"):
        untag.retry_failed("U1", report.operation.id)


def test_simultaneous_undo_clicks_undo_once(untag: Untag, provider: FakeZoho) -> None:
    op = untag.execute("U1", untag.plan("U1", action("1001"))).operation
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def click() -> None:
        start.wait()
        try:
            untag.undo("U1", op.id)
            outcomes.append("undone")
        except OperationConflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=click) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["undone"]
    assert provider.undos == 1


def test_each_finished_batch_is_recorded_before_the_next_starts(
    untag: Untag, provider: FakeZoho
) -> None:
    from commands.providers.base import BatchRunner, chunked

    class Crash(Exception):
        """The process dying in the middle of a job."""

    def remove_in_batches(act: Action, preview: Preview, progress: Progress) -> list[RecordResult]:
        runner = BatchRunner(len(act.targets), progress)
        results: list[RecordResult] = []
        for number, batch in enumerate(chunked(act.targets, 2)):
            if number == 2:
                raise Crash
            results += runner.run(
                batch,
                lambda b=batch: [  # type: ignore[misc]
                    RecordResult(target=t, outcome=Outcome.REMOVED, removed=("Prime",)) for t in b
                ],
            )
        return results

    provider.remove = remove_in_batches  # type: ignore[method-assign]
    provider.records.update({str(i): ["Prime"] for i in range(2000, 2006)})
    plan = untag.plan("U1", action(*(str(i) for i in range(2000, 2006))))
    with pytest.raises(Crash):
        untag.execute("U1", plan)
    recorded = untag.operations.results(plan.operation.id)
    assert [(r.target, r.outcome) for r in recorded] == [
        (str(i), "removed") for i in range(2000, 2004)
    ]


class FlakyReads(FakeZoho):
    """Record 1002 cannot be read until ``healed``; the provider sees what remove receives."""

    def __init__(self) -> None:
        super().__init__()
        self.records["1002"] = ["Prime"]
        self.healed = False
        self.sent: list[tuple[str, ...]] = []

    def preview(self, action: Action) -> Preview:
        def read(target: str) -> RecordPreview:
            if target == "1002" and not self.healed:
                raise ProviderUnavailable("zoho", "503 three times")
            return preview_from_current(target, action.tags, self.records.get(target))

        return Preview(action=action, records=tuple(read_each(action.targets, read)))

    def remove(self, action: Action, preview: Preview, progress: Progress) -> list[RecordResult]:
        self.sent.append(action.targets)
        assert [r.target for r in preview.records] == list(action.targets)
        return super().remove(action, preview, progress)


def test_an_unreadable_record_is_not_sent_is_reported_failed_and_retry_reads_it_again(
    tmp_path: Path,
) -> None:
    provider = FlakyReads()
    db = open_database(tmp_path / "untag.db")
    untag = Untag({ProviderName.ZOHO: provider}, OperationStore(db), PlanStore(db))
    plan = untag.plan("U1", action("1001", "1002", "1004"))
    assert plan.preview.record("1002") == RecordPreview(target="1002", unreadable="503 three times")
    assert not plan.preview.nothing_to_do

    report = untag.execute("U1", plan)

    assert provider.sent == [("1001", "1004")]  # nothing sent to what was not seen
    assert [(r.target, r.outcome, r.code) for r in report.results] == [
        ("1001", Outcome.REMOVED, None),
        ("1002", Outcome.FAILED, "unreadable"),
        ("1004", Outcome.NOT_FOUND, None),
    ]
    assert "could not be read (503 three times)" in (report.results[1].message or "")
    assert report.operation.status == OpStatus.PARTIALLY_FAILED
    provider.healed = True
    retry = untag.retry_failed("U1", report.operation.id)
    assert provider.sent[-1] == ("1002", "1004")  # what did not succeed, read afresh
    assert [(r.target, r.outcome) for r in retry.results] == [
        ("1002", Outcome.REMOVED),
        ("1004", Outcome.NOT_FOUND),
    ]


def test_a_preview_where_only_unreadable_records_need_work_is_not_nothing_to_do(
    untag: Untag,
) -> None:
    preview = Preview(
        action=action("1002", "9"),
        records=(
            preview_from_current("1002", ("Prime",), ["VIP"]),
            RecordPreview(target="9", unreadable="timed out"),
        ),
    )
    assert not preview.nothing_to_do
    assert Preview(action=action("1002"), records=preview.records[:1]).nothing_to_do


def remove_in_batches_of(size: int, amend: str | None = None) -> object:
    """A provider ``remove`` that reports through BatchRunner, as the real ones do.

    ``amend`` names a target whose result the provider changes after its batch
    was recorded, as Fernand does when a record fails after losing some tags.
    """
    from commands.providers.base import BatchRunner, chunked

    def remove(act: Action, preview: Preview, progress: Progress) -> list[RecordResult]:
        runner = BatchRunner(len(act.targets), progress)
        results: list[RecordResult] = []
        for batch in chunked(act.targets, size):
            results += runner.run(
                batch,
                lambda b=batch: [  # type: ignore[misc]
                    RecordResult(target=t, outcome=Outcome.REMOVED, removed=("Prime",)) for t in b
                ],
            )
        return [
            r.model_copy(update={"message": "amended"}) if r.target == amend else r for r in results
        ]

    return remove


def count_result_writes(untag: Untag) -> Callable[[], int]:
    """Rows inserted into or updated in ``results`` from now on, counted by SQLite itself."""
    conn = untag.operations._db.conn
    conn.execute("CREATE TEMP TABLE result_writes (n INTEGER)")
    for event in ("INSERT", "UPDATE"):
        conn.execute(
            f"CREATE TEMP TRIGGER count_{event.lower()} AFTER {event} ON main.results"
            " BEGIN INSERT INTO result_writes VALUES (1); END"
        )
    return lambda: int(conn.execute("SELECT COUNT(*) FROM result_writes").fetchone()[0])


def test_completion_does_not_rewrite_results_its_batches_recorded(
    untag: Untag, provider: FakeZoho
) -> None:
    provider.remove = remove_in_batches_of(2)  # type: ignore[method-assign]
    targets = [str(i) for i in range(2000, 2006)]
    provider.records.update({t: ["Prime"] for t in targets})
    writes = count_result_writes(untag)
    report = untag.execute("U1", untag.plan("U1", action(*targets)))
    assert report.operation.status == OpStatus.SUCCEEDED
    assert writes() == 6  # once each, by its batch; completion used to write all six again
    stored = untag.operations.results(report.operation.id)
    assert [(r.target, r.outcome) for r in stored] == [(t, "removed") for t in targets]


def test_completion_records_what_no_batch_did_and_what_changed_after(
    provider: FakeZoho, tmp_path: Path
) -> None:
    db = open_database(tmp_path / "untag.db")
    audit = AuditLog(db, b"k" * 32)
    untag = Untag({ProviderName.ZOHO: provider}, OperationStore(db), PlanStore(db), audit=audit)
    provider.remove = remove_in_batches_of(2, amend="2001")  # type: ignore[method-assign]
    targets = [str(i) for i in range(2000, 2004)]
    provider.records.update({t: ["Prime"] for t in targets})
    writes = count_result_writes(untag)
    plan = untag.plan("U1", action(*targets))
    report = untag.run(untag.confirm("U1", plan.operation.id))
    assert writes() == 5  # four by their batches, then the one amended after its batch
    stored = {r.target: r for r in untag.operations.results(report.operation.id)}
    assert stored["2001"].message == "amended" and stored["2000"].message is None
    records = audit.query(limit=None)
    assert sum(1 for e in records if e.kind == EventKind.RECORD) == 4  # one per record
    assert audit.verify().ok

    # A dry run reaches no batch: completion records every result, once.
    untag.dry_run = True
    provider.records.update({t: ["Prime"] for t in targets})
    writes_before = writes()
    untag.execute("U1", untag.plan("U1", action(*targets)))
    assert writes() - writes_before == 4


def test_each_one_record_batch_is_committed_before_the_next_provider_call(
    untag: Untag, provider: FakeZoho, tmp_path: Path
) -> None:
    """What a SIGKILL relies on: another connection sees a record's result before the next call.

    Fernand and Alta change one record per call; their results must not wait in
    memory or in an open transaction for later records.
    """
    from commands.providers.base import BatchRunner

    targets = [str(i) for i in range(2000, 2005)]
    provider.records.update({t: ["Prime"] for t in targets})
    seen: list[list[str]] = []
    observer = open_database(tmp_path / "untag.db")

    def one_by_one(act: Action, preview: Preview, progress: Progress) -> list[RecordResult]:
        runner = BatchRunner(len(act.targets), progress)
        results: list[RecordResult] = []
        for target in act.targets:
            rows = observer.query("SELECT target FROM results ORDER BY rowid")
            seen.append([str(r["target"]) for r in rows])
            results += runner.run(
                [target],
                lambda t=target: [  # type: ignore[misc]
                    RecordResult(target=t, outcome=Outcome.REMOVED, removed=("Prime",))
                ],
            )
        return results

    provider.remove = one_by_one  # type: ignore[method-assign]
    untag.execute("U1", untag.plan("U1", action(*targets)))
    assert seen == [targets[:n] for n in range(len(targets))]


def test_an_undo_records_each_batch_with_the_tags_it_put_back(
    untag: Untag, provider: FakeZoho
) -> None:
    """So a crash mid-undo keeps what was restored, and completion rewrites nothing."""
    from commands.providers.base import BatchRunner, chunked

    provider.remove = remove_in_batches_of(2)  # type: ignore[method-assign]
    targets = [str(i) for i in range(2000, 2004)]
    provider.records.update({t: ["Prime"] for t in targets})
    untag.execute("U1", untag.plan("U1", action(*targets)))

    def undo_in_batches(
        act: Action, removed: Sequence[RecordResult], progress: Progress
    ) -> list[RecordResult]:
        runner = BatchRunner(len(removed), progress)
        results: list[RecordResult] = []
        for batch in chunked([r.target for r in removed], 2):
            # Like Zoho's add_tags: the provider says "restored", not which tags.
            results += runner.run(
                batch,
                lambda b=batch: [RecordResult(target=t, outcome=Outcome.RESTORED) for t in b],  # type: ignore[misc]
            )
        return results

    provider.undo = undo_in_batches  # type: ignore[method-assign]
    writes = count_result_writes(untag)
    report = untag.undo("U1")
    assert report.operation.status == OpStatus.SUCCEEDED
    assert writes() == 4
    stored = untag.operations.results(report.operation.id)
    assert [(r.target, r.outcome, r.removed) for r in stored] == [
        (t, "restored", ("Prime",)) for t in targets
    ]


def test_preview_by_target_finds_what_record_finds() -> None:
    records = (
        RecordPreview(target="1001", current=("Prime",), removing=("Prime",), after=()),
        RecordPreview(target="1002", found=False),
        RecordPreview(target="1001", found=False),  # listed twice: the first counts
    )
    preview = Preview(action=action("1001", "1002"), records=records)
    assert preview.by_target() == {"1001": records[0], "1002": records[1]}
    assert [preview.by_target().get(t) for t in ("1001", "1002", "1003")] == [
        preview.record(t) for t in ("1001", "1002", "1003")
    ]
