"""Slack's Block Kit and surface limits, checked the way the Web API checks them.

Each check returns human-readable problems formatted like Slack's own
``response_metadata.messages`` (``"[ERROR] <what> [json-pointer:/view/title/text]"``); an empty
list means Slack would accept the payload. Limits are from docs/slack.md §3 and
``slack_sdk/models``; an unknown block type is not an error (Slack adds types over time).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAX_MESSAGE_TEXT",
    "format_problem",
    "message_problems",
    "view_problems",
]

MAX_MESSAGE_TEXT = 40_000
_SURFACE_TEXT = 24  # modal title / submit / close
_MAX_BLOCKS = {"modal": 100, "home": 100, "message": 50}
_SELECTS_WITH_OPTIONS = {
    "static_select",
    "multi_static_select",
    "overflow",
    "radio_buttons",
    "checkboxes",
}

Problems = list[str]


def format_problem(pointer: str, message: str) -> str:
    """One problem in Slack's ``response_metadata.messages`` style."""
    return f"[ERROR] {message} [json-pointer:{pointer}]"


def _too_long(value: Any, limit: int, pointer: str, problems: Problems) -> None:
    """Add a problem when ``value`` is a string longer than ``limit``."""
    if isinstance(value, str) and len(value) > limit:
        problems.append(
            format_problem(pointer, f"must be at most {limit} characters (got {len(value)})")
        )


def _text_object(obj: Any, limit: int, pointer: str, problems: Problems, plain: bool) -> None:
    """Check a text object's type and length; ``plain`` demands ``plain_text``."""
    if obj is None:
        return
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        problems.append(format_problem(pointer, "must be a text object with a string `text`"))
        return
    if plain and obj.get("type") != "plain_text":
        problems.append(format_problem(f"{pointer}/type", "must be plain_text"))
    _too_long(obj["text"], limit, f"{pointer}/text", problems)


def view_problems(view: Any, *, surface: str = "modal") -> Problems:
    """Problems with a view for ``views.open/push/update`` (``modal``) or ``views.publish``."""
    if not isinstance(view, dict):
        return [format_problem("/view", "must be a JSON object")]
    problems: Problems = []
    if view.get("type") != surface:
        problems.append(format_problem("/view/type", f"must be {surface}"))
    if surface == "modal":
        _modal_chrome(view, problems)
    for name, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        _too_long(view.get(name), limit, f"/view/{name}", problems)
    _blocks(view.get("blocks"), _MAX_BLOCKS[surface], "/view/blocks", problems)
    return problems


def _modal_chrome(view: dict[str, Any], problems: Problems) -> None:
    """Title (required), submit and close: plain_text of at most 24 characters."""
    if view.get("title") is None:
        problems.append(format_problem("/view/title", "missing required field: title"))
    for name in ("title", "submit", "close"):
        _text_object(view.get(name), _SURFACE_TEXT, f"/view/{name}", problems, plain=True)
    blocks = view.get("blocks")
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if has_input and view.get("submit") is None:
        # Slack: "submit is required when an input block is present".
        problems.append(format_problem("/view/submit", "missing required field: submit"))


def message_problems(blocks: Any, text: Any = None) -> Problems:
    """Problems with a message's blocks (at most 50) and text (at most 40,000 characters)."""
    problems: Problems = []
    if blocks is not None:
        _blocks(blocks, _MAX_BLOCKS["message"], "/blocks", problems)
    _too_long(text, MAX_MESSAGE_TEXT, "/text", problems)
    return problems


def _blocks(blocks: Any, limit: int, pointer: str, problems: Problems) -> None:
    """Check the block list's length, then each block."""
    if blocks is None:
        return
    if not isinstance(blocks, list):
        problems.append(format_problem(pointer, "must be an array"))
        return
    if len(blocks) > limit:
        problems.append(
            format_problem(pointer, f"must be less than {limit + 1} items (got {len(blocks)})")
        )
    for index, block in enumerate(blocks):
        _block(block, f"{pointer}/{index}", problems)


def _block(block: Any, pointer: str, problems: Problems) -> None:
    """Check one block by type."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        problems.append(format_problem(pointer, "must be an object with a `type`"))
        return
    _too_long(block.get("block_id"), 255, f"{pointer}/block_id", problems)
    kind = block["type"]
    if kind == "section":
        _section(block, pointer, problems)
    elif kind == "header":
        _text_object(block.get("text"), 150, f"{pointer}/text", problems, plain=True)
    elif kind == "markdown":
        _too_long(block.get("text"), 12_000, f"{pointer}/text", problems)
    elif kind in ("actions", "context"):
        _element_list(block, 25 if kind == "actions" else 10, pointer, problems)
    elif kind == "input":
        _text_object(block.get("label"), 2000, f"{pointer}/label", problems, plain=True)
        _text_object(block.get("hint"), 2000, f"{pointer}/hint", problems, plain=True)
        _element(block.get("element"), f"{pointer}/element", problems)


def _section(block: dict[str, Any], pointer: str, problems: Problems) -> None:
    """Section: text at most 3000, at most 10 fields of 2000, and an optional accessory."""
    text, fields = block.get("text"), block.get("fields")
    if text is None and not fields:
        problems.append(format_problem(pointer, "must provide either `text` or `fields`"))
    _text_object(text, 3000, f"{pointer}/text", problems, plain=False)
    if isinstance(fields, list):
        if len(fields) > 10:
            problems.append(format_problem(f"{pointer}/fields", "must be less than 11 items"))
        for index, item in enumerate(fields):
            _text_object(item, 2000, f"{pointer}/fields/{index}", problems, plain=False)
    if block.get("accessory") is not None:
        _element(block["accessory"], f"{pointer}/accessory", problems)


def _element_list(block: dict[str, Any], limit: int, pointer: str, problems: Problems) -> None:
    """Actions and context blocks: a bounded list of elements."""
    elements = block.get("elements")
    if not isinstance(elements, list):
        problems.append(format_problem(f"{pointer}/elements", "must be an array"))
        return
    if len(elements) > limit:
        problems.append(
            format_problem(f"{pointer}/elements", f"must be less than {limit + 1} items")
        )
    for index, element in enumerate(elements):
        if isinstance(element, dict) and element.get("type") not in ("plain_text", "mrkdwn"):
            _element(element, f"{pointer}/elements/{index}", problems)


def _element(element: Any, pointer: str, problems: Problems) -> None:
    """An interactive element: action_id, button text/value/url, options and confirm dialogs."""
    if not isinstance(element, dict):
        problems.append(format_problem(pointer, "must be an object"))
        return
    _too_long(element.get("action_id"), 255, f"{pointer}/action_id", problems)
    if element.get("type") == "button":
        _text_object(element.get("text"), 75, f"{pointer}/text", problems, plain=True)
        _too_long(element.get("value"), 2000, f"{pointer}/value", problems)
        _too_long(element.get("url"), 3000, f"{pointer}/url", problems)
    if element.get("type") in _SELECTS_WITH_OPTIONS:
        _options(element.get("options"), f"{pointer}/options", problems)
    if element.get("confirm") is not None:
        _confirm(element["confirm"], f"{pointer}/confirm", problems)


def _options(options: Any, pointer: str, problems: Problems) -> None:
    """At most 100 options; each text at most 75 and value at most 150 characters."""
    if not isinstance(options, list):
        return
    if len(options) > 100:
        problems.append(format_problem(pointer, "must be less than 101 items"))
    for index, option in enumerate(options):
        if isinstance(option, dict):
            _text_object(option.get("text"), 75, f"{pointer}/{index}/text", problems, plain=False)
            _too_long(option.get("value"), 150, f"{pointer}/{index}/value", problems)


def _confirm(confirm: Any, pointer: str, problems: Problems) -> None:
    """Confirmation dialog: title 100, text 300, confirm and deny 30 characters."""
    if not isinstance(confirm, dict):
        problems.append(format_problem(pointer, "must be an object"))
        return
    for name, limit in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
        plain = name != "text"
        _text_object(confirm.get(name), limit, f"{pointer}/{name}", problems, plain=plain)
