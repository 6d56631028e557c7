"""Block Kit for untag: modals and messages, all built with ``slack_sdk.models``.

Building through the models (rather than dicts) makes ``to_dict()`` raise on a
broken limit (title over 24 characters, private_metadata over 3,000, too many
blocks), so a test that renders a view proves it fits.  Long lists are
summarised: 1,000 records render as a few sections plus a count, never one
block per record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
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
    "form_modal",
    "format_tags",
    "loading_modal",
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
    idle = len(records) - changing - missing
    text = (
        f"{len(records)} records: {changing} to change, {idle} nothing to do, {missing} not found"
    )
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
