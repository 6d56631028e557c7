"""The Slack surface: the bolt app and its listeners.

Every listener acks first, within milliseconds, and does nothing slow before:
parsing and permission checks are pure, claiming an operation is one SQLite
transaction.  Provider work (previews, removals, undo) goes to :class:`Jobs`
after the ack, and its results come back through the Web API: ``views.update``
for previews, an ephemeral message (or a DM) for results, one DM updated in
place for long jobs.  A command that finds the preview queue full is told so
in its ack, and no modal is opened.  Each request is logged as one line with
the Slack user and the outcome; never a token, trigger_id, response_url or body.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot import audit_slack, home
from bot.extract import prefill_from_message
from bot.groups import slack_groups_of
from bot.jobs import Jobs, Slot
from bot.listeners import Listener, answer_on_ack, listener_pool
from bot.runtime import Runtime
from bot.views import (
    ACTION_RETRY,
    ACTION_UNDO,
    BLOCK_CONFIRM,
    BLOCK_PROVIDER,
    BLOCK_SCOPE,
    BLOCK_TAGS,
    BLOCK_TARGETS,
    CALLBACK_CONFIRM,
    CALLBACK_FORM,
    INPUT_CONFIRM,
    INPUT_PROVIDER,
    INPUT_SCOPE,
    INPUT_TAGS,
    INPUT_TARGETS,
    SHORTCUT_CALLBACK,
    busy_view,
    form_modal,
    format_tags,
    loading_modal,
    loading_view,
    message_modal,
    metadata_of,
    preview_modal,
    progress_message,
    result_message,
)
from commands.actions import Action, HelpRequest, Operation, ProviderName
from commands.errors import (
    AuthorizationDenied,
    ConfigError,
    OperationConflict,
    ParseError,
    UntagError,
)
from commands.executor import Plan, Report
from commands.grammar import help_text  # not bot.terminal's: that would import rich here
from commands.parser import parse, replace_tags

__all__ = ["SlackSurface", "build_app"]

log = logging.getLogger("untag.slack")

TRIGGER_ERRORS = frozenset({"expired_trigger_id", "exchanged_trigger_id", "invalid_trigger_id"})
VIEW_APPEAR_WAIT = 5.0  # seconds to wait for Slack to apply a response_action view
PROGRESS_EVERY = 2.0  # seconds between in-place updates: chat.update is rate limited
BUSY_COMMAND = (
    ":hourglass: untag is busy right now; nothing was changed. Please try again in a minute."
)
# What Slack's ids look like; anything else in a payload field is not used as an id.
_SLACK_ID = re.compile(r"[A-Z0-9]{2,40}")


def build_app(
    runtime: Runtime, *, jobs: Jobs | None = None, socket_mode: bool = False
) -> tuple[App, SlackSurface]:
    """A bolt ``App`` wired to ``runtime``; builds without calling Slack (no ``auth.test``).

    Over HTTP every request must carry Slack's signature; in Socket Mode the
    app-level token authenticates the connection instead.
    """
    settings = runtime.settings
    if settings.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is missing: the Slack app needs the bot token")
    secret = settings.slack_signing_secret
    if secret is None and not socket_mode:
        raise ConfigError("SLACK_SIGNING_SECRET is missing: requests from Slack cannot be checked")
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )
    listeners = listener_pool()
    app = App(
        client=client,
        signing_secret=secret.get_secret_value() if secret else None,
        request_verification_enabled=not socket_mode,
        token_verification_enabled=False,
        logger=logging.getLogger("untag.bolt"),
        # Answered the moment a listener acks, by bot.listeners, not bolt's 10 ms polling.
        process_before_response=True,
        listener_executor=listeners,
    )
    # Group membership may be looked up before an ack: a client of its own with a 2 s
    # timeout and no retries, so a slow Slack means "not a member" (logged), not a late ack.
    groups_client = WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=2,
    )
    permissions = runtime.untag.permissions
    permissions.resolve_groups_with(slack_groups_of(groups_client, permissions.referenced_groups))
    surface = SlackSurface(runtime, client, jobs or Jobs(), listeners)
    surface.register(app)
    return app, surface


@dataclass(frozen=True)
class _ViewRef:
    """The modal a background job fills in: by id (from views.open) or by our external_id.

    A view set through ``response_action`` is applied by Slack after our HTTP
    answer arrives; a job can be faster.  Addressing the loading view by its
    own ``external_id`` means the job can only ever replace *that* view, and
    waits until Slack has applied it instead of being overwritten by it.
    """

    view_id: str | None = None
    external_id: str | None = None
    hash: str | None = None

    @classmethod
    def fresh(cls) -> _ViewRef:
        return cls(external_id=f"untag-{uuid.uuid4().hex}")


class SlackSurface:
    """The listeners, holding what they share: the engine, the Web API client, the job pool."""

    def __init__(
        self, runtime: Runtime, client: WebClient, jobs: Jobs, listeners: Executor
    ) -> None:
        self.runtime = runtime
        self.untag = runtime.untag
        self.client = client
        self.jobs = jobs
        self.listeners = listeners

    def listener(self, function: Listener) -> Listener:
        """``function`` as bolt should call it: guarded, run on the pool, answered on its ack."""
        return answer_on_ack(self.listeners, _guarded(function))

    def register(self, app: App) -> None:
        app.command("/untag")(self.listener(self.on_command))
        app.message_shortcut(SHORTCUT_CALLBACK)(self.listener(self.on_message_shortcut))
        app.view_submission(CALLBACK_CONFIRM)(self.listener(self.on_confirm))
        app.view_closed(CALLBACK_CONFIRM)(self.listener(self.on_cancel))
        app.view_submission(CALLBACK_FORM)(self.listener(self.on_form))
        app.action(ACTION_UNDO)(self.listener(self.on_undo))
        app.action(ACTION_RETRY)(self.listener(self.on_retry))
        audit_slack.register(app, self)  # /untag audit's page buttons
        home.register(app, self)  # app_home_opened
        app.error(self.on_error)

    # /untag

    def on_command(self, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        user, text = _id(command.get("user_id")), str(command.get("text") or "")
        team = _id(command.get("team_id")) or None
        if audit_slack.is_audit_command(text):  # admin queries, before the removal grammar
            return audit_slack.on_command(self.runtime, ack, command, respond)
        parsed = parse(text)
        if isinstance(parsed, ParseError):
            ack(text=f":warning: {parsed}\nUsage: `{parsed.usage}`")
            return _logged("command", user, "parse error")
        if isinstance(parsed, HelpRequest):
            ack(text=help_text(parsed, self.untag.allowed_providers(user, team=team)))
            return _logged("command", user, "help")
        try:
            self.untag.check(user, parsed, team=team)
        except UntagError as exc:
            ack(text=f":no_entry: {exc}")
            return _logged("command", user, f"refused ({type(exc).__name__})")
        # The preview's place is taken before the ack: when the queue is full, the ack says
        # so, instead of opening a modal only to update it to "busy" (two Web API calls,
        # exactly when untag is busiest).
        slot = self.jobs.reserve_preview()
        if slot is None:
            ack(text=BUSY_COMMAND)
            return _logged("command", user, "busy")
        try:
            ack()
            self._open_preview(slot, user, parsed, command, respond)
        finally:
            slot.release()  # unless the preview was queued in it: then nothing to do

    def _open_preview(
        self, slot: Slot, user: str, action: Action, command: dict[str, Any], respond: Respond
    ) -> None:
        """Open the loading modal and queue its preview in ``slot``."""
        view = self._open(str(command.get("trigger_id", "")), loading_view(), respond)
        if view is not None:
            target = _ViewRef(view_id=str(view["id"]), hash=view.get("hash"))
            channel, team = _id(command.get("channel_id")), _id(command.get("team_id"))
            slot.submit(self._preview, user, action, target, {"channel": channel, "team": team})
        _logged("command", user, "modal opened" if view else "trigger expired")

    def _open(
        self, trigger_id: str, view: View | dict[str, Any], respond: Respond | None
    ) -> dict[str, Any] | None:
        """Open a modal at once (the trigger lives 3 s); explain instead of failing silently.

        Runs after the ack, so it never raises: bolt would turn that into a lost answer.
        """
        try:
            response = self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            error = _slack_error(exc)
            log.info("views.open failed: %s", error)
            if error in TRIGGER_ERRORS:
                text = (
                    ":hourglass: Slack gave up waiting for the confirmation window. "
                    "Please run the command again."
                )
            else:
                text = ":warning: Slack would not open the window; nothing was changed."
            _respond_quietly(respond, text)
            return None
        except SlackClientError as exc:
            log.info("views.open failed: %s", type(exc).__name__)
            _respond_quietly(respond, ":warning: Slack could not be reached; nothing was changed.")
            return None
        opened = response.get("view")
        return opened if isinstance(opened, dict) else None

    def _preview(
        self, user: str, action: Action, target: _ViewRef, context: dict[str, str]
    ) -> None:
        try:
            plan = self.untag.plan(user, action, context=context)
        except UntagError as exc:
            self._update(target, message_modal("Could not preview", str(exc)))
            return
        if _nothing_to_do(plan):
            self.untag.cancel(user, plan.operation.id)
            nothing = "None of the records carries these tags: nothing to do."
            self._update(target, message_modal("Nothing to remove", nothing))
            return
        self._update(target, preview_modal(plan))

    def _update(self, target: _ViewRef, view: View) -> None:
        deadline = time.monotonic() + VIEW_APPEAR_WAIT
        while True:
            try:
                self.client.views_update(
                    view_id=target.view_id,
                    external_id=target.external_id,
                    view=view,
                    hash=target.hash,
                )
                return
            except SlackApiError as exc:
                error = _slack_error(exc)
                if error == "not_found" and target.external_id and time.monotonic() < deadline:
                    time.sleep(0.1)  # Slack has not applied our response_action view yet
                    continue
                # The user may have closed the modal meanwhile; the plan then simply expires.
                log.info("views.update failed: %s", error)
                return
            except SlackClientError as exc:
                log.info("views.update failed: %s", type(exc).__name__)
                return

    # confirm, cancel

    def on_confirm(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = _user_of(body)
        op_id = metadata_of(view).get("op", "")
        try:
            plan = self.untag.load_plan(op_id)
        except UntagError as exc:
            ack(response_action="update", view=message_modal("untag", str(exc)))
            return _logged("submit", user, "storage error")
        if plan is None:
            ack(
                response_action="update",
                view=message_modal(
                    "Expired",
                    "This confirmation has expired or was never issued. "
                    "Please run the command again.",
                ),
            )
            return _logged("submit", user, "unknown operation")
        if not self._may_act_on(user, plan.operation.requester):
            # Before anything else, editing included: only the requester sees or re-previews it.
            refusal = "Only the requester or an admin may act on this operation."
            ack(response_action="update", view=message_modal("Not allowed", refusal))
            return _logged("submit", user, "refused (not the requester)")
        values = _state_values(view)
        edited = self._edited_action(plan, _value(values, BLOCK_TAGS, INPUT_TAGS))
        if isinstance(edited, ParseError):
            ack(response_action="errors", errors={BLOCK_TAGS: str(edited)[:150]})
            return _logged("submit", user, "invalid tags")
        if edited is not None:
            self._cancel_quietly(user, op_id)
            target = _ViewRef.fresh()
            loading = loading_modal("Updating the preview…", external_id=target.external_id)
            queued = self._ack_preview(ack, user, edited, target, dict(plan.context), loading)
            return _logged("submit", user, "tags edited" if queued else "tags edited, busy")
        if plan.action.is_account_wide and not _typed_names_match(plan, values):
            expected = ", ".join(plan.action.tags)
            ack(response_action="errors", errors={BLOCK_CONFIRM: f"Type {expected} to confirm"})
            return _logged("submit", user, "deletion not confirmed")
        try:
            plan = self.untag.confirm(user, op_id, team=_team(body))
        except UntagError as exc:
            title = "Already handled" if isinstance(exc, OperationConflict) else "Not allowed"
            ack(response_action="update", view=message_modal(title, str(exc)))
            return _logged("submit", user, f"refused ({type(exc).__name__})")
        ack()
        if not self.jobs.submit("execute", self._execute, plan, user):
            self.untag.abandon(plan.operation.id, "untag was too busy; nothing was changed")
            self._deliver(
                user,
                plan.context.get("channel"),
                ":warning: untag is too busy right "
                "now; nothing was changed. Please try again in a minute.",
                None,
            )
        _logged("submit", user, "running")

    def _may_act_on(self, user: str, requester: str) -> bool:
        if user == requester:
            return True
        try:
            return bool(user) and self.untag.is_admin(user)
        except UntagError:
            return False

    def _ack_preview(
        self,
        ack: Ack,
        user: str,
        action: Action,
        target: _ViewRef,
        context: dict[str, str],
        loading: View,
    ) -> bool:
        """Queue a preview into a view set by ``response_action``; ack busy if it cannot run.

        Queued before the ack, so that a full queue is said in the ack itself, not by a
        ``views.update`` that would wait for a view Slack has not shown yet.  Returns
        whether the preview was queued.
        """
        if self.jobs.submit_preview(self._preview, user, action, target, context):
            ack(response_action="update", view=loading)
            return True
        ack(response_action="update", view=busy_view())
        return False

    def _edited_action(self, plan: Plan, typed: str | None) -> Action | ParseError | None:
        """The action with the tags the user typed, or None when they left them alone."""
        if typed is None or typed.strip() == format_tags(plan.action.tags):
            return None
        edited = replace_tags(plan.action, typed)
        if isinstance(edited, Action) and edited.tags == plan.action.tags:
            return None
        return edited

    def on_cancel(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        user = _user_of(body)
        _logged("cancel", user, self._cancel_quietly(user, metadata_of(view).get("op", "")))

    def _cancel_quietly(self, user: str, op_id: str) -> str:
        """Cancel if it is still only previewed; already running, done or unknown: then there
        is nothing to cancel.  Returns the outcome for the log line."""
        try:
            self.untag.cancel(user, op_id)
        except AuthorizationDenied:
            return "refused (not the requester)"
        except UntagError:
            return "nothing to cancel"
        return "cancelled"

    # execution and results

    def _execute(self, plan: Plan, user: str) -> None:
        channel = plan.context.get("channel")
        tracker = self._progress_tracker(plan, user) if _is_long(plan) else None
        try:
            report = self.untag.run(plan, tracker.update if tracker else _ignore)
        except UntagError as exc:
            text = f":x: {plan.action.describe()}: {exc}"
            if tracker:
                tracker.finish(text, None)
            else:
                self._deliver(user, channel, text, None)
            return
        text, blocks = result_message(report)
        if tracker:
            tracker.finish(text, blocks)
        else:
            self._deliver(user, channel, text, blocks)

    def _progress_tracker(self, plan: Plan, user: str) -> _ProgressMessage | None:
        text, blocks = progress_message("Starting", 0, max(len(plan.action.targets), 1), None)
        try:
            posted = self.client.chat_postMessage(channel=user, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.info("progress message not posted: %s", _slack_error(exc))
            return None
        return _ProgressMessage(
            self.client, str(posted["channel"]), str(posted["ts"]), plan.action.describe()
        )

    def _deliver(
        self, user: str, channel: str | None, text: str, blocks: list[Block] | None
    ) -> None:
        """Ephemeral in the channel where it was asked; a DM when that is not possible."""
        if channel:
            try:
                self.client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)
                return
            except SlackApiError as exc:
                log.info("ephemeral reply failed (%s); sending a DM", _slack_error(exc))
            except SlackClientError as exc:
                log.info("ephemeral reply failed (%s); sending a DM", type(exc).__name__)
        if not user:
            log.warning("reply not delivered: no user to send it to")
            return
        try:
            self.client.chat_postMessage(channel=user, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning("reply not delivered: %s", _slack_error(exc))
        except SlackClientError as exc:
            log.warning("reply not delivered: %s", type(exc).__name__)

    # Undo and Retry failed

    def on_undo(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        self._button(body, action, "undo", self.untag.undo)

    def on_retry(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        self._button(body, action, "retry", self.untag.retry_failed)

    def _button(
        self,
        body: dict[str, Any],
        action: dict[str, Any],
        name: str,
        run: Callable[[str, str], Report],
    ) -> None:
        user = _user_of(body)
        value = action.get("value")
        op_id = value if isinstance(value, str) else ""
        channel = _channel_of(body)
        if not self.jobs.submit(name, self._run_button, run, user, op_id, channel):
            self._deliver(
                user, channel, ":warning: untag is too busy; try again in a minute.", None
            )
        _logged(name, user, "queued")

    def _run_button(
        self, run: Callable[[str, str], Report], user: str, op_id: str, channel: str | None
    ) -> None:
        try:
            report = run(user, op_id)
        except UntagError as exc:
            self._deliver(user, channel, f":no_entry: {exc}", None)
            return
        text, blocks = result_message(report)
        self._deliver(user, channel, text, blocks)

    # the "Remove tags" message shortcut

    def on_message_shortcut(self, ack: Ack, shortcut: dict[str, Any], respond: Respond) -> None:
        ack()
        user = _user_of(shortcut)
        text = _at(shortcut, "message", "text")
        prefill = prefill_from_message(text if isinstance(text, str) else "")
        channel = _channel_of(shortcut)
        opened = self._open(
            str(shortcut.get("trigger_id", "")), form_modal(prefill, channel=channel), respond
        )
        _logged("shortcut", user, "form opened" if opened else "trigger expired")

    def on_form(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = _user_of(body)
        values = _state_values(view)
        action = _action_from_form(values)
        if isinstance(action, dict):
            ack(response_action="errors", errors=action)
            return _logged("form", user, "invalid")
        try:
            self.untag.check(user, action, team=_team(body))
        except UntagError as exc:
            ack(response_action="errors", errors={BLOCK_PROVIDER: str(exc)[:150]})
            return _logged("form", user, f"refused ({type(exc).__name__})")
        target = _ViewRef.fresh()
        context = {"channel": _id(metadata_of(view).get("channel")), "team": _team(body) or ""}
        loading = loading_modal(external_id=target.external_id)
        queued = self._ack_preview(ack, user, action, target, context, loading)
        _logged("form", user, "previewing" if queued else "busy")

    def on_error(self, error: Exception, body: dict[str, Any]) -> None:
        # The body may hold a response_url or trigger_id: log the kind only.
        log.error("listener failed: %s", type(error).__name__, exc_info=error)


class _ProgressMessage:
    """One DM updated in place with a progress bar, at most every few seconds."""

    def __init__(self, client: WebClient, channel: str, ts: str, label: str) -> None:
        self._client, self._channel, self._ts, self._label = client, channel, ts, label
        self._started = time.monotonic()
        self._last = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY and done < total:
            return
        self._last = now
        elapsed = now - self._started
        left = elapsed / done * (total - done) if done else None
        text, blocks = progress_message(self._label, done, total, left)
        self._edit(text, blocks)

    def finish(self, text: str, blocks: list[Block] | None) -> None:
        self._edit(text, blocks)

    def _edit(self, text: str, blocks: list[Block] | None) -> None:
        try:
            self._client.chat_update(channel=self._channel, ts=self._ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.info("progress update failed: %s", _slack_error(exc))


def _ignore(done: int, total: int) -> None:
    """No progress display for short jobs."""


def _is_long(plan: Plan) -> bool:
    """Jobs worth a live progress message: activities, Fernand's slow pace, big batches."""
    action = plan.action
    if action.provider is ProviderName.CONSTANT_CONTACT or action.is_account_wide:
        return True
    calls = sum(len(r.removing) for r in plan.preview.records)
    if action.provider is ProviderName.FERNAND:
        return calls > 5
    return len(action.targets) > 500


def _nothing_to_do(plan: Plan) -> bool:
    return not plan.action.is_account_wide and plan.preview.nothing_to_do


def _typed_names_match(plan: Plan, values: Mapping[str, Any]) -> bool:
    typed = (_value(values, BLOCK_CONFIRM, INPUT_CONFIRM) or "").strip()
    return typed == ", ".join(plan.action.tags)


def _value(values: Mapping[str, Any], block: str, action: str) -> str | None:
    """A text input's value from ``view.state.values``, tolerant of missing or odd parts."""
    value = _at(values, block, action, "value")
    if value is None:
        value = _at(values, block, action, "selected_option", "value")
    return value if isinstance(value, str) else None


def _state_values(view: Mapping[str, Any]) -> Mapping[str, Any]:
    values = _at(view, "state", "values")
    return values if isinstance(values, Mapping) else {}


def _at(node: object, *path: str) -> Any:
    """``node[path[0]][path[1]]…``, or None where a part is missing or not an object."""
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _id(value: object) -> str:
    """A Slack id (user, team, channel) from a payload field; anything else reads as ""."""
    return value if isinstance(value, str) and _SLACK_ID.fullmatch(value) else ""


def _user_of(body: Mapping[str, Any]) -> str:
    """Who sent an interaction (``user.id``; bolt also accepts a bare id)."""
    user = body.get("user")
    return _id(user.get("id") if isinstance(user, Mapping) else user)


def _channel_of(body: Mapping[str, Any]) -> str | None:
    """The channel an interaction happened in, if it names one."""
    channel = body.get("channel")
    found = _id(channel.get("id") if isinstance(channel, Mapping) else channel)
    return found or _id(_at(body, "container", "channel_id")) or None


def _respond_quietly(respond: Respond | None, text: str) -> None:
    """Tell the user through the response_url, if the payload had one that works."""
    if respond is None:
        log.info("no response_url to answer through")
        return
    try:
        respond(text=text, response_type="ephemeral")
    except Exception as exc:  # an unreachable or refused response_url: nothing more to do
        log.info("response_url answer failed: %s", type(exc).__name__)


_Listener = Callable[..., None]


def _guarded(listener: _Listener) -> _Listener:
    """Never a 500, never an exception after the ack.

    bolt answers an exception raised before the ack with a 500, and one raised
    after it by un-acking the request (a 3-second wait, then a 404).  So a
    failure is logged (its type and traceback, no payload) and, if nothing was
    acknowledged yet, acknowledged with a short apology instead.
    """

    @functools.wraps(listener)
    def guarded(**kwargs: Any) -> None:
        try:
            listener(**kwargs)
        except Exception as exc:
            log.error("listener %s failed: %s", listener.__name__, type(exc).__name__, exc_info=exc)
            ack = kwargs.get("ack")
            if isinstance(ack, Ack) and ack.response is None:
                _apologise(ack, kwargs)

    return guarded


def _apologise(ack: Ack, kwargs: Mapping[str, Any]) -> None:
    sorry = "Something went wrong on our side; nothing was changed. Please try again."
    if _at(kwargs, "body", "type") == "view_submission":
        ack(response_action="update", view=message_modal("untag", sorry))
    elif "command" in kwargs:
        ack(text=f":x: {sorry}")
    else:
        ack()


def _action_from_form(values: Mapping[str, Any]) -> Action | dict[str, str]:
    """The form's fields read as one command, or errors keyed by the block to show them on."""
    provider = _value(values, BLOCK_PROVIDER, INPUT_PROVIDER)
    scope_choice = _value(values, BLOCK_SCOPE, INPUT_SCOPE) or ""
    targets = (_value(values, BLOCK_TARGETS, INPUT_TARGETS) or "").replace(",", " ").split()
    tags = (_value(values, BLOCK_TAGS, INPUT_TAGS) or "").strip()
    if not provider:
        return {BLOCK_PROVIDER: "Pick the tool the records live in"}
    scope_provider, _, scope = scope_choice.partition(":")
    if scope_choice and scope_provider != provider:
        return {BLOCK_SCOPE: "Pick a module of the tool chosen above"}
    if not targets:
        return {BLOCK_TARGETS: "Give at least one record id or link"}
    if not tags:
        return {BLOCK_TAGS: "Give at least one tag"}
    words = [provider, scope if provider != ProviderName.FERNAND.value else "", ",".join(targets)]
    parsed = parse(" ".join(w for w in words if w) + " " + tags)
    if isinstance(parsed, ParseError):
        return {_block_for(parsed): str(parsed)[:150]}
    if isinstance(parsed, HelpRequest) or parsed.operation is not Operation.REMOVE:
        return {BLOCK_TARGETS: "The form removes tags from records; use /untag for the rest"}
    return parsed


def _block_for(error: ParseError) -> str:
    message = error.message.lower()
    if "tag" in message:
        return BLOCK_TAGS
    if "module" in message or "entity" in message or "type" in message:
        return BLOCK_SCOPE
    return BLOCK_TARGETS


def _slack_error(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error", "unknown"))
    except AttributeError:  # pragma: no cover - a response without a body
        return "unknown"


def _logged(kind: str, user: str, outcome: str) -> None:
    log.info("slack %s user=%s outcome=%s", kind, user or "?", outcome)


def _team(body: Mapping[str, Any]) -> str | None:
    """The workspace of a signed interaction payload (``team`` is null for org-wide installs)."""
    team = body.get("team")
    return _id(team.get("id") if isinstance(team, Mapping) else team) or None
