"""Block Kit for untag: modals and messages, all built with ``slack_sdk.models``.

Building through the models (rather than dicts) makes ``to_dict()`` raise on a
broken limit (title over 24 characters, private_metadata over 3,000, too many
blocks), so a test that renders a view proves it fits.  Long lists are
summarised: 1,000 records render as a few sections plus a count, never one
block per record.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    OptionGroup,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from commands.actions import ProviderName
from commands.executor import Plan, Report
from commands.grammar import BIGIN_MODULES, DISPLAY_NAMES, ZOHO_MODULES
from commands.results import Outcome, RecordPreview, RecordResult

__all__ = [
    "ACTION_RETRY",
    "ACTION_UNDO",
    "CALLBACK_CONFIRM",
    "CALLBACK_FORM",
    "SHORTCUT_CALLBACK",
    "Prefill",
    "busy_view",
    "form_modal",
    "format_tags",
    "loading_modal",
    "loading_view",
    "message_modal",
    "metadata_of",
    "preview_modal",
    "progress_message",
    "result_message",
]

CALLBACK_CONFIRM = "untag_confirm"  # the preview modal: submit confirms, close cancels
CALLBACK_FORM = "untag_form"  # the message shortcut's form
SHORTCUT_CALLBACK = "remove_tags_from_message"  # manifest.yml's message shortcut
ACTION_UNDO = "untag_undo"
ACTION_RETRY = "untag_retry"

BLOCK_TAGS, INPUT_TAGS = "tags", "tags_input"
BLOCK_CONFIRM, INPUT_CONFIRM = "confirm_name", "confirm_input"
BLOCK_PROVIDER, INPUT_PROVIDER = "provider", "provider_select"
BLOCK_SCOPE, INPUT_SCOPE = "scope", "scope_select"
BLOCK_TARGETS, INPUT_TARGETS = "targets", "targets_input"

LINES_SHOWN = 30  # per-record lines before the rest is counted, not listed
LINES_PER_SECTION = 10  # keeps each section under its 3,000-character limit

_ICON = {
    Outcome.REMOVED: ":white_check_mark:",
    Outcome.RESTORED: ":leftwards_arrow_with_hook:",
    Outcome.NOT_PRESENT: ":heavy_minus_sign:",
    Outcome.SKIPPED: ":fast_forward:",
    Outcome.LOCKED: ":lock:",
    Outcome.NOT_FOUND: ":grey_question:",
    Outcome.FAILED: ":x:",
}

_SCOPES: dict[ProviderName, tuple[str, ...]] = {
    ProviderName.ZOHO: tuple(ZOHO_MODULES),
    ProviderName.BIGIN: tuple(BIGIN_MODULES),
    ProviderName.ALTA: ("emailThread", "linkedinConversation"),
    ProviderName.FERNAND: ("conversations",),
    ProviderName.CONSTANT_CONTACT: ("contacts",),
}


def _text(value: str, limit: int = 3000) -> str:
    """Slack mrkdwn-safe and within a field's limit."""
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def _plain(value: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=value if len(value) <= limit else value[: limit - 1] + "…")


def format_tags(tags: Iterable[str]) -> str:
    """Tags as typed in a command: quoted when they contain spaces."""
    return " ".join(f'"{t}"' if (" " in t or not t) else t for t in tags)


def metadata_of(view: dict[str, Any]) -> dict[str, str]:
    """The view's private_metadata as a dict; anything malformed reads as empty."""
    try:
        data = json.loads(view.get("private_metadata") or "{}")
        # Escaped inside the payload's JSON, a lone surrogate ("\\ud800") passes the
        # server's text check and only comes out here: it is no text, and binding it
        # as an operation id made SQLite raise UnicodeEncodeError (a ValueError).
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def loading_modal(
    text: str = "Reading the current tags…", *, external_id: str | None = None
) -> View:
    return View(
        type="modal",
        external_id=external_id,
        title=_plain("untag", 24),
        close=_plain("Close", 24),
        blocks=[SectionBlock(text=MarkdownTextObject(text=f":hourglass_flowing_sand: {text}"))],
    )


def message_modal(title: str, text: str) -> View:
    """A modal that only says something (errors, "nothing to do")."""
    return View(
        type="modal",
        title=_plain(title, 24),
        close=_plain("Close", 24),
        blocks=[SectionBlock(text=MarkdownTextObject(text=_text(text)))],
    )


def _rendered_once(build: Callable[[], View]) -> Callable[[], dict[str, Any]]:
    """A view that never changes, built and validated on first use only.

    ``View.to_dict`` validates every field on each call (about 0.6 ms), a real
    share of a command's CPU under load.  Each caller gets its own copy, so
    nothing done to one answer can leak into another thread's.
    """
    rendered = functools.cache(lambda: json.dumps(build().to_dict()))

    def view() -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(rendered()))

    return view


loading_view = _rendered_once(loading_modal)
"""``loading_modal()`` as a dict, for ``views.open`` and ``response_action``."""

busy_view = _rendered_once(
    lambda: message_modal(
        "untag is busy", "Too many jobs are running; please try again in a minute."
    )
)
"""The modal saying the preview queue is full."""


def preview_modal(plan: Plan) -> View:
    """The confirmation: what each record has now and will have after, then Remove or Cancel."""
    action, preview = plan.action, plan.preview
    wide = action.is_account_wide
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f"*{_text(action.describe(), 2900)}*"))
    ]
    if preview.records:
        blocks.extend(_record_sections([_preview_line(r) for r in preview.records]))
    blocks.extend(_preview_counts(preview.records))
    for note in preview.notes[:5]:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f":warning: {_text(note)}")]))
    if wide:
        affected = preview.affected_count if preview.affected_count is not None else "unknown"
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f":rotating_light: *Deletes from the whole account.* Contacts affected: "
                    f"*{affected}*. This cannot be undone."
                )
            )
        )
        blocks.append(
            InputBlock(
                block_id=BLOCK_CONFIRM,
                label=_plain("Type the tag names to confirm", 2000),
                element=PlainTextInputElement(
                    action_id=INPUT_CONFIRM, placeholder=_plain(", ".join(action.tags), 150)
                ),
            )
        )
    elif not preview.undoable:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="This cannot be undone.")]))
    blocks.append(
        InputBlock(
            block_id=BLOCK_TAGS,
            label=_plain("Tags to remove" if not wide else "Tags to delete", 2000),
            hint=_plain("Edit to change which tags are removed; quote tags with spaces.", 2000),
            element=PlainTextInputElement(
                action_id=INPUT_TAGS, initial_value=format_tags(action.tags)[:3000]
            ),
        )
    )
    return View(
        type="modal",
        callback_id=CALLBACK_CONFIRM,
        title=_plain("Delete tags" if wide else "Remove tags", 24),
        submit=_plain("Delete" if wide else "Remove", 24),
        close=_plain("Cancel", 24),
        notify_on_close=True,  # a Cancel is recorded, not just forgotten
        private_metadata=json.dumps({"op": plan.operation.id}),
        blocks=blocks,
    )


def _preview_line(record: RecordPreview) -> str:
    name = f"`{_text(record.target, 200)}`"
    if record.unreadable is not None:
        why = _text(record.unreadable, 300)
        return f":warning: {name} could not be read ({why}): it will be left alone"
    if not record.found:
        return f":grey_question: {name} not found"
    if record.current is None:
        return f":label: {name} remove {_text(format_tags(record.removing), 600)}"
    if record.nothing_to_do:
        return f":heavy_minus_sign: {name} not present — nothing to do"
    after = _text(", ".join(record.after or ()), 600) or "_no tags_"
    return f":label: {name} {_text(', '.join(record.current), 600)} → {after}"


def _preview_counts(records: Sequence[RecordPreview]) -> list[Block]:
    if len(records) <= LINES_SHOWN:
        return []
    changing = sum(1 for r in records if r.found and r.removing)
    missing = sum(1 for r in records if not r.found)
    unread = sum(1 for r in records if r.unreadable is not None)
    idle = len(records) - changing - missing - unread
    text = (
        f"{len(records)} records: {changing} to change, {idle} nothing to do, {missing} not found"
    )
    if unread:
        text += f", {unread} could not be read"
    return [ContextBlock(elements=[MarkdownTextObject(text=text)])]


def _record_sections(lines: Sequence[str]) -> list[Block]:
    shown = list(lines[:LINES_SHOWN])
    sections: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text="\n".join(shown[i : i + LINES_PER_SECTION])))
        for i in range(0, len(shown), LINES_PER_SECTION)
    ]
    if len(lines) > LINES_SHOWN:
        sections.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"… and {len(lines) - LINES_SHOWN} more")]
            )
        )
    return sections


def result_message(report: Report) -> tuple[str, list[Block]]:
    """The outcome: a summary line, one line per record (summarised past 30), Undo and Retry."""
    summary = report.summary()
    icon = ":white_check_mark:" if report.operation.status == "succeeded" else ":warning:"
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"{icon} *{_text(summary)}*"))]
    blocks.extend(_record_sections([_result_line(r) for r in report.results]))
    buttons: list[ButtonElement] = []
    if report.undoable:
        buttons.append(
            ButtonElement(
                text=_plain("Undo", 75),
                action_id=ACTION_UNDO,
                value=report.operation.id,
                confirm=ConfirmObject(
                    title="Put the tags back?",
                    text="Re-add exactly the tags this removal took off.",
                    confirm="Undo",
                    deny="Keep",
                ),
            )
        )
    if report.failed and not report.operation.dry_run:
        buttons.append(
            ButtonElement(
                text=_plain(f"Retry failed ({len(report.failed)})", 75),
                action_id=ACTION_RETRY,
                value=report.operation.id,
            )
        )
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=f"operation `{report.operation.id}`")])
    )
    return summary, blocks


def _result_line(result: RecordResult) -> str:
    line = f"{_ICON.get(result.outcome, '')} `{_text(result.target, 200)}` {result.outcome.value}"
    if result.removed:
        line += f": {_text(', '.join(result.removed), 400)}"
    reason = " ".join(x for x in (result.code, result.message) if x)
    if reason and not result.ok:
        line += f" — {_text(reason, 400)}"
    return line


def progress_message(
    label: str, done: int, total: int, seconds_left: float | None
) -> tuple[str, list[Block]]:
    """One line updated in place while a long job runs: bar, done/total, percent, time left."""
    share = done / total if total else 0.0
    filled = round(share * 20)
    bar = "▓" * filled + "░" * (20 - filled)
    left = "" if seconds_left is None else f" — about {_duration(seconds_left)} left"
    text = f"{label}: {bar} {done}/{total} ({share:.0%}){left}"
    return text, [SectionBlock(text=MarkdownTextObject(text=_text(text)))]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class Prefill:
    """What the message shortcut could read from a message."""

    provider: ProviderName | None = None
    scope: str | None = None
    targets: tuple[str, ...] = ()


def form_modal(prefill: Prefill, *, channel: str | None) -> View:
    """The message shortcut's form: provider, module, records and tags, pre-filled where known."""
    providers = [Option(value=p.value, label=DISPLAY_NAMES.get(p, p.value)) for p in ProviderName]
    provider_select = StaticSelectElement(
        action_id=INPUT_PROVIDER,
        options=providers,
        initial_option=next((o for o in providers if o.value == prefill.provider), None),
    )
    scope_options = {
        p: [Option(value=f"{p.value}:{s}", label=s) for s in scopes]
        for p, scopes in _SCOPES.items()
    }
    groups = [
        OptionGroup(label=DISPLAY_NAMES.get(p, p.value), options=options)
        for p, options in scope_options.items()
    ]
    initial_scope = None
    if prefill.provider and prefill.scope:
        key = f"{prefill.provider.value}:{prefill.scope}"
        candidates = scope_options.get(prefill.provider, [])
        initial_scope = next((o for o in candidates if o.value == key), None)
    scope_select = StaticSelectElement(
        action_id=INPUT_SCOPE, option_groups=groups, initial_option=initial_scope
    )
    blocks: list[Block] = [
        InputBlock(block_id=BLOCK_PROVIDER, label=_plain("Tool", 2000), element=provider_select),
        InputBlock(
            block_id=BLOCK_SCOPE,
            label=_plain("Module or record type", 2000),
            element=scope_select,
            optional=True,
        ),
        InputBlock(
            block_id=BLOCK_TARGETS,
            label=_plain("Records (ids or links)", 2000),
            element=PlainTextInputElement(
                action_id=INPUT_TARGETS,
                multiline=True,
                initial_value="\n".join(prefill.targets)[:3000] or None,
            ),
        ),
        InputBlock(
            block_id=BLOCK_TAGS,
            label=_plain("Tags to remove", 2000),
            hint=_plain("Quote tags with spaces.", 2000),
            element=PlainTextInputElement(action_id=INPUT_TAGS),
        ),
        DividerBlock(),
    ]
    return View(
        type="modal",
        callback_id=CALLBACK_FORM,
        title=_plain("Remove tags", 24),
        submit=_plain("Preview", 24),
        close=_plain("Cancel", 24),
        private_metadata=json.dumps({"channel": channel} if channel else {}),
        blocks=blocks,
    )


# /untag audit pages and the App Home tab

# Previous / Next on an audit page (action_ids must differ within a block); value:
# {"filters": the filter words, "offset": where the page starts} as JSON.
ACTION_AUDIT_PREVIOUS = "untag_audit_page_previous"
ACTION_AUDIT_NEXT = "untag_audit_page_next"
AUDIT_PAGE_SIZE = 10
HOME_INTERRUPTED_SHOWN = 10  # interrupted operations listed on the admin dashboard
BUTTON_VALUE_LIMIT = 2000

_STATUS_ICON = {
    "succeeded": ":white_check_mark:",
    "partially_failed": ":warning:",
    "failed": ":x:",
    "interrupted": ":double_vertical_bar:",
    "cancelled": ":no_entry_sign:",
    "undone": ":leftwards_arrow_with_hook:",
    "running": ":hourglass_flowing_sand:",
    "confirmed": ":hourglass_flowing_sand:",
    "previewed": ":eyes:",
    "requested": ":eyes:",
}
_KIND_LABEL = {
    "remove": "Removal",
    "delete-tags": "Account-wide deletion",
    "undo": "Undo",
    "retry": "Retry",
}
_SLACK_USER = ("U", "W")


@dataclass(frozen=True)
class OperationSummary:
    """One operation as an audit page or the App Home lists it.

    ``outcomes`` counts the per-record outcomes (``"removed"`` → 3); ``retryable``
    puts a Retry failed button beside it.
    """

    id: str
    kind: str
    actor: str
    provider: str
    scope: str | None
    targets: tuple[str, ...]
    tags: tuple[str, ...]
    status: str
    dry_run: bool
    created_at: datetime
    outcomes: Mapping[str, int] = field(default_factory=dict, hash=False)
    retryable: bool = False


@dataclass(frozen=True)
class HomeDashboard:
    """What admins see on their Home tab below their own operations.

    ``counts`` is provider → status → number of operations created since ``since``.
    """

    since: datetime
    counts: Mapping[str, Mapping[str, int]] = field(hash=False)
    failures: Sequence[OperationSummary] = ()
    interrupted: Sequence[OperationSummary] = ()
    interrupted_total: int = 0


def audit_page_value(filters: str, offset: int) -> str | None:
    """A page button's value (the filter words and where the page starts), or None if too long."""
    value = json.dumps({"filters": filters, "offset": offset}, ensure_ascii=False)
    return value if len(value) <= BUTTON_VALUE_LIMIT else None


def audit_page_message(
    ops: Sequence[OperationSummary],
    *,
    total: int,
    offset: int,
    filters: str,
    page_size: int = AUDIT_PAGE_SIZE,
) -> tuple[str, list[Block]]:
    """One page of ``/untag audit``: the matching operations, newest first, and page buttons."""
    shown = f"`{_text(filters, 500)}`" if filters.strip() else "all operations"
    if ops:
        summary = f"Audit: operations {offset + 1}–{offset + len(ops)} of {total}"
    else:
        summary = f"Audit: no operations match (of {total})" if offset else "Audit: no match"
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f":mag: *{summary}* for {shown}")),
        DividerBlock(),
    ]
    blocks.extend(
        SectionBlock(text=MarkdownTextObject(text=_operation_text(op, with_actor=True)))
        for op in ops[:page_size]
    )
    if not ops:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text="No operations match these filters."))
        )
    buttons: list[ButtonElement] = []
    previous, following = max(offset - page_size, 0), offset + page_size
    pages = [
        ("Previous page", ACTION_AUDIT_PREVIOUS, previous, offset > 0),
        ("Next page", ACTION_AUDIT_NEXT, following, following < total),
    ]
    too_long = False
    for label, action_id, start, wanted in pages:
        value = audit_page_value(filters, start) if wanted else None
        too_long = too_long or (wanted and value is None)
        if value is not None:
            buttons.append(ButtonElement(text=_plain(label, 75), action_id=action_id, value=value))
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    note = "This query is recorded in the audit log."
    if too_long:
        note = "The filters are too long to page through here; narrow them. " + note
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=note)]))
    return summary, blocks


def home_view(recent: Sequence[OperationSummary], dashboard: HomeDashboard | None) -> View:
    """The App Home tab: the user's recent operations, and for admins the dashboard."""
    blocks: list[Block] = [HeaderBlock(text=_plain("Your recent operations", 150))]
    if recent:
        blocks.extend(_operation_section(op, with_actor=False) for op in recent)
    else:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text="You have not run any operation yet. Type `/untag help` to start."
                )
            )
        )
    if dashboard is not None:
        blocks.extend(_dashboard_blocks(dashboard))
    return View(type="home", blocks=blocks)


def _dashboard_blocks(dashboard: HomeDashboard) -> list[Block]:
    blocks: list[Block] = [
        DividerBlock(),
        HeaderBlock(text=_plain("Admin dashboard", 150)),
        SectionBlock(
            text=MarkdownTextObject(
                text="*Operations by provider and status since "
                f"{_when(dashboard.since)}*\n{_provider_counts(dashboard.counts)}"
            )
        ),
        SectionBlock(text=MarkdownTextObject(text="*Recent failures*")),
    ]
    if dashboard.failures:
        blocks.extend(_operation_section(op, with_actor=True) for op in dashboard.failures)
    else:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="No failures.")]))
    blocks.append(SectionBlock(text=MarkdownTextObject(text="*Interrupted operations*")))
    shown = dashboard.interrupted[:HOME_INTERRUPTED_SHOWN]
    if shown:
        blocks.extend(_operation_section(op, with_actor=True) for op in shown)
    else:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="No interrupted operation.")]))
    hidden = dashboard.interrupted_total - len(shown)
    if hidden > 0:
        more = f"… and {hidden} more: `/untag audit status:interrupted`"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=more)]))
    return blocks


def _provider_counts(counts: Mapping[str, Mapping[str, int]]) -> str:
    lines = []
    for provider in sorted(counts):
        by_status = counts[provider]
        total = sum(by_status.values())
        parts = " · ".join(
            f"{n} {status.replace('_', ' ')}"
            for status, n in sorted(by_status.items(), key=lambda item: (-item[1], item[0]))
        )
        lines.append(f"*{_text(_provider_name(provider), 100)}* ({total}): {parts}")
    return _text("\n".join(lines), 2800) if lines else "_No operations._"


def _operation_section(op: OperationSummary, *, with_actor: bool) -> SectionBlock:
    accessory = None
    if op.retryable:
        accessory = ButtonElement(
            text=_plain("Retry failed", 75), action_id=ACTION_RETRY, value=op.id
        )
    return SectionBlock(
        text=MarkdownTextObject(text=_operation_text(op, with_actor=with_actor)),
        accessory=accessory,
    )


def _operation_text(op: OperationSummary, *, with_actor: bool) -> str:
    """Two lines: what was asked and how it ended; who, when, outcomes and the op id."""
    icon = _STATUS_ICON.get(op.status, ":grey_question:")
    kind = _KIND_LABEL.get(op.kind, op.kind)
    if op.dry_run:
        kind = f"Dry run: {kind.lower()}"
    where = _provider_name(op.provider) + (f" {op.scope}" if op.scope else "")
    if op.targets:
        count = len(op.targets)
        records = f"{count} record" + ("" if count == 1 else "s")
        if count <= 3:
            records += " (" + ", ".join(f"`{_text(t, 100)}`" for t in op.targets) + ")"
    else:
        records = "whole account" if op.kind == "delete-tags" else "no records"
    tags = _text(", ".join(op.tags), 400) or "_none_"
    first = (
        f"{icon} *{kind} {op.status.replace('_', ' ')}* · {_text(where, 200)} · {records}"
        f" · tags: {tags}"
    )
    outcomes = ", ".join(
        f"{n} {outcome}"
        for outcome, n in sorted(op.outcomes.items(), key=lambda item: (-item[1], item[0]))
    )
    second = [_when(op.created_at), outcomes or "no record outcomes", f"op `{op.id[:8]}`"]
    if with_actor:
        second.insert(0, f"by {_actor(op.actor)}")
    return first + "\n" + " · ".join(second)


def _actor(actor: str) -> str:
    """A Slack user as a mention (rendered as their name); anyone else as text."""
    if actor[:1] in _SLACK_USER and actor.isalnum() and actor.isupper() and len(actor) <= 20:
        return f"<@{actor}>"
    return _text(actor, 100)


def _when(moment: datetime) -> str:
    """A time Slack shows in the reader's time zone, with UTC as the fallback text."""
    utc = moment.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _provider_name(provider: str) -> str:
    try:
        return DISPLAY_NAMES.get(ProviderName(provider), provider)
    except ValueError:
        return provider
