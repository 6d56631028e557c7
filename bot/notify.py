"""Telling requesters about operations a crash interrupted, with a way to finish them."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, PlainTextObject, SectionBlock

from bot.views import ACTION_RETRY
from storage import OperationRecord

__all__ = ["tell_interrupted"]

log = logging.getLogger(__name__)

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def tell_interrupted(client: WebClient, operations: Sequence[OperationRecord]) -> int:
    """DM each Slack requester about their interrupted operation; returns how many were told.

    Operations started from the command line (``local:…`` requesters) have no
    Slack user to tell; the console prints them at its next start instead.
    """
    told = 0
    for op in operations:
        if not _SLACK_USER.match(op.requester):
            continue
        what = f"{op.kind} on {op.provider} {op.scope or ''} ({len(op.targets)} records)"
        text = (
            f":warning: untag restarted while your {what} was running. The records it finished "
            f"are recorded; *Retry failed* completes the rest without repeating them. "
            f"(operation `{op.id}`)"
        )
        button = ButtonElement(
            text=PlainTextObject(text="Retry failed"), action_id=ACTION_RETRY, value=op.id
        )
        blocks = [SectionBlock(text=text), ActionsBlock(elements=[button])]
        try:
            client.chat_postMessage(channel=op.requester, text=text, blocks=blocks)
            told += 1
        except SlackApiError as exc:
            log.warning(
                "could not tell %s about operation %s: %s",
                op.requester,
                op.id,
                exc.response.get("error"),
            )
    return told
