"""Views and messages fit Slack's limits, however large the job (models validate on to_dict)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from bot.views import (
    ACTION_RETRY,
    ACTION_UNDO,
    Prefill,
    form_modal,
    loading_modal,
    message_modal,
    metadata_of,
    preview_modal,
    progress_message,
    result_message,
)
from commands.actions import Action, Operation, ProviderName
from commands.executor import Plan, Report
from commands.results import Outcome, Preview, RecordPreview, RecordResult
from storage import OperationRecord

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def operation(kind: str = "remove", status: str = "partially_failed") -> OperationRecord:
    return OperationRecord(
        id="0" * 32,
        kind=kind,
        requester="U1",
        provider="zoho",
        scope="Leads",
        targets=(),
        tags=("Prime",),
        status=status,
        dry_run=False,
        parent_id=None,
        created_at=NOW,
        updated_at=NOW,
        error=None,
    )


def big_plan(n: int) -> Plan:
    ids = tuple(str(554023000000000000 + i) for i in range(n))
    action = Action(provider=ProviderName.ZOHO, scope="Leads", targets=ids, tags=("Prime", "VIP"))
    records = tuple(
        RecordPreview(
            target=t,
            current=("Prime", "VIP", "x" * 25),
            removing=("Prime", "VIP"),
            after=("x" * 25,),
        )
        for t in ids
    )
    return Plan(
        operation=operation(status="previewed"),
        action=action,
        preview=Preview(action=action, records=records),
    )


def blocks_of(view_dict: dict[str, object]) -> list[object]:
    blocks = view_dict["blocks"]
    assert isinstance(blocks, list)
    return blocks


@pytest.mark.parametrize("n", [1, 30, 31, 1000])
def test_a_preview_of_any_size_fits_a_modal(n: int) -> None:
    view = preview_modal(big_plan(n)).to_dict()
    assert len(blocks_of(view)) <= 100
    assert len(str(view["private_metadata"])) <= 3000
    assert metadata_of(view) == {"op": "0" * 32}
    text = str(view)
    assert ("… and 970 more" in text) == (n == 1000)


def test_account_wide_deletion_asks_for_the_names_and_shows_the_blast_radius() -> None:
    action = Action(
        provider=ProviderName.CONSTANT_CONTACT,
        operation=Operation.DELETE_TAGS,
        tags=("Spring Promo 2026",),
    )
    preview = Preview(
        action=action,
        undoable=False,
        affected_count=23,
        records=(RecordPreview(target="Spring Promo 2026"),),
    )
    view = preview_modal(
        Plan(operation=operation(status="previewed"), action=action, preview=preview)
    ).to_dict()
    text = str(view)
    assert "Contacts affected: *23*" in text and "cannot be undone" in text
    assert any(b.get("block_id") == "confirm_name" for b in blocks_of(view))  # type: ignore[attr-defined]
    assert view["title"] == {"type": "plain_text", "text": "Delete tags"}


def test_a_result_of_1000_records_fits_a_message_with_undo_and_retry() -> None:
    results = tuple(
        RecordResult(
            target=str(554023000000000000 + i),
            outcome=Outcome.REMOVED if i % 10 else Outcome.FAILED,
            removed=("Prime",) if i % 10 else (),
            code=None if i % 10 else "INVALID_DATA",
            message=None if i % 10 else "the id given seems to be invalid",
        )
        for i in range(1000)
    )
    action = Action(
        provider=ProviderName.ZOHO,
        scope="Leads",
        tags=("Prime",),
        targets=tuple(r.target for r in results),
    )
    text, blocks = result_message(Report(operation=operation(), action=action, results=results))
    rendered = [b.to_dict() for b in blocks]
    assert len(rendered) <= 50
    assert "1000 records (900 removed, 100 failed)" in text
    buttons = [e["action_id"] for b in rendered if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [ACTION_UNDO, ACTION_RETRY]


def test_modals_and_progress_render() -> None:
    for view in (
        loading_modal(),
        message_modal("A title longer than twenty-four", "x" * 5000),
        form_modal(
            Prefill(provider=ProviderName.ZOHO, scope="Leads", targets=("554023000000793002",)),
            channel="C1",
        ),
    ):
        view.to_dict()
    text, blocks = progress_message("Removing", 400, 1000, 125.0)
    assert "400/1000 (40%)" in text and "about 2 min left" in text
    assert [b.to_dict()["type"] for b in blocks] == ["section"]


def test_forged_private_metadata_reads_as_empty() -> None:
    assert metadata_of({"private_metadata": "not json"}) == {}
    assert metadata_of({"private_metadata": "[1, 2]"}) == {}
    assert metadata_of({}) == {}
    # Escaped JSON, so it reaches us past the body's own text check: no text, no id.
    assert metadata_of({"private_metadata": '{"op": "\\ud800"}'}) == {}
    assert metadata_of({"private_metadata": '{"op": "\\u00e9"}'}) == {"op": "\u00e9"}


def test_a_record_that_could_not_be_read_says_so_and_is_counted() -> None:
    plan = big_plan(40)
    records = list(plan.preview.records)
    records[0] = RecordPreview(target=records[0].target, unreadable="Fernand answered 503 <x>")
    preview = plan.preview.model_copy(update={"records": tuple(records)})
    text = str(preview_modal(dataclasses.replace(plan, preview=preview)).to_dict())
    assert "could not be read (Fernand answered 503 &lt;x&gt;): it will be left alone" in text
    assert "40 records: 39 to change, 0 nothing to do, 0 not found, 1 could not be read" in text
