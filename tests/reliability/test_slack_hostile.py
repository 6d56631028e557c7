"""Hostile input against the Slack endpoint, over HTTP: generated slash-command forms,
interactivity payloads, Events API bodies and raw junk, every one correctly signed (what is
tested is what a signed request may carry, not the signature); then signature attacks and
replays, and oversized bodies.

One world per module, the app in-process on loopback: Alice previews and confirms two
removals through the fake Slack (the only legitimate writes) and leaves four plans previewed.
Then the generated requests come from other users (never Alice, never an admin), forging her
operation ids, views, buttons and private_metadata.  Each drawn request is sent together with
three variants of itself (one field, at any depth, dropped or given another type), all at
once.  For every request: a status below 500 and an answer within 3 s.  After each test: not
one provider write beyond Alice's, the same operations run as before, her open plans still
open (not even cancelled), no confirmation by anyone but her, no internal error logged, no
canary credential in any log line (before or after redaction).  At the end Alice confirms one
of her open plans: it still runs, once.  The last test sends a sample of the same to a real
``untag serve`` and checks the same once it has stopped.

Counts: ``UNTAG_RELIABILITY_FIGURES=f.jsonl`` collects them; ``-s`` prints them.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.server import MAX_BODY, MAX_DRAIN
from sandbox import Sandbox
from sandbox.slack import FakeSlack, PostedMessage, SlackReply
from tests.bot.test_slack import Stack
from tests.reliability.slack_support import (
    ACK_LIMIT,
    ADMIN,
    ALICE,
    CANARY_BOT_TOKEN,
    CANARY_PROVIDERS,
    CANARY_SIGNING_SECRET,
    EVE,
    FORM,
    MALLORY,
    SECRETS,
    Executed,
    Tally,
    Taps,
    app_stack,
    database_bytes,
    executed,
    interaction_body,
    production_logs,
    provider_writes,
    send,
    serve_env,
    serving,
    signed,
    submission,
    tags_value,
    wait_until,
    write_figures,
)

TRUSTED = frozenset({ALICE, ADMIN})
# Provider pacing out of the way: generated previews must not queue behind Fernand's 20 a minute.
UNPACED = {
    "alta_requests_per_minute": 1_000_000,
    "fernand_reads_per_minute": 1_000_000,
    "fernand_writes_per_minute": 1_000_000,
    "constant_contact_requests_per_second": 1_000_000,
}
SANDBOX_LIMITS = ("alta_per_minute", "fernand_reads_per_minute", "fernand_writes_per_minute")
SANDBOX_LIMITS += ("cc_per_second", "zoho_concurrency")
HOSTILE_USERS = (MALLORY, EVE, "U0NOBODY", "W0GUEST9")
CC_CONTACT = "1618ae62-4752-11e9-9c8a-fa163e6b01c1"
# Alice's plans left open for the whole module: the hot targets of every forgery.
OPEN_PLANS = (
    ("zoho Contacts 554023000000801001 VIP", "VIP"),
    ('bigin Contacts 2445013000000402006 "Hot Deal"', '"Hot Deal"'),
    ('alta thread 3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10 "Follow Up"', '"Follow Up"'),
    (f"cc contacts {CC_CONTACT} Newsletter", "Newsletter"),
)
VALID_COMMANDS = (
    "zoho Leads 554023000000793002 Prime",
    "zoho Contacts 554023000000801001 VIP",
    'bigin Contacts 2445013000000402006 "Hot Deal"',
    'fernand 12345 "VIP Customer"',
    f"cc contacts {CC_CONTACT} Newsletter",
    'cc delete-tags "Spring Promo 2026"',
    "help",
    "help zoho",
    "audit",
    "audit user:U0ALICE",
    "audit op:00000000",
    "undo",
    "zoho Leads 554023000000793002 payload",
)


@dataclass
class World:
    """Where the generated requests go, and what Alice did there before they came."""

    pool: ThreadPoolExecutor
    fake: FakeSlack
    sandbox: Sandbox
    url: str
    database: Path
    open_plans: list[tuple[str, dict[str, Any]]]  # (op id, the preview view) of Alice's
    done_ops: list[str]  # Alice's removals that ran: Undo / Retry targets
    result_buttons: list[str]  # the values of the buttons on her result messages
    writes: list[tuple[str, str, str, bytes]]
    ran: Executed
    stack: Stack | None = None  # the in-process app, when that is what is attacked
    taps: Taps | None = None
    tallies: list[Tally] = field(default_factory=list)
    _strategies: dict[str, Any] = field(default_factory=dict)

    @property
    def op_ids(self) -> list[str]:
        return [op for op, _ in self.open_plans] + self.done_ops

    def tally(self, name: str) -> Tally:
        tally = Tally(name)
        self.tallies.append(tally)
        return tally

    def settle(self) -> None:
        """Wait for the app's background jobs (in-process only; a server is stopped instead)."""
        if self.stack is not None:
            assert self.stack.surface.jobs.wait_idle(60)

    def figures(self, test: str) -> dict[str, object]:
        return {
            "suite": "slack",
            "test": test,
            "requests": sum(t.total for t in self.tallies),
            "5xx": sum(len(t.server_errors) for t in self.tallies),
            "max_latency_s": round(max((t.max_latency for t in self.tallies), default=0.0), 3),
        }


def confirm_views(fake: FakeSlack) -> list[dict[str, Any]]:
    return [v for v in list(fake.views.values()) if v.get("callback_id") == "untag_confirm"]


def alice_previews(fake: FakeSlack, url: str, command: str) -> dict[str, Any]:
    seen = {v["id"] for v in confirm_views(fake)}
    fake.slash_command(url, command, user_id=ALICE, channel_id="C0OPS")

    def fresh() -> list[dict[str, Any]]:
        return [v for v in confirm_views(fake) if v["id"] not in seen]

    wait_until(fresh, 20, f"preview of {command}")
    return fresh()[-1]


def message_with(fake: FakeSlack, fragment: str) -> PostedMessage | None:
    return next((m for m in list(fake.messages) if fragment in m.latest().text), None)


def build_world(fake: FakeSlack, sandbox: Sandbox, url: str, database: Path, **extra: Any) -> World:
    """Alice's legitimate work: two removals that ran (one partly failed: Retry), then four
    plans previewed and left open.  Her writes are the only ones the run may ever see."""
    sandbox.limits.update({name: 0 for name in SANDBOX_LIMITS})
    done = []
    for command, typed, outcome in (
        ("zoho Leads 554023000000793002 Prime", "Prime", "Removal succeeded"),
        ("zoho Leads 554023000000792001,554023000000799009 Prime", "Prime", "partially failed"),
    ):
        view = alice_previews(fake, url, command)
        fake.submit_view(url, view["id"], tags_value(typed), user_id=ALICE)
        wait_until(lambda o=outcome: message_with(fake, o), 20, outcome)
        done.append(json.loads(view["private_metadata"])["op"])
    buttons = [
        str(e["value"])
        for m in fake.messages
        for b in m.latest().blocks
        for e in b.get("elements", [])
        if isinstance(e, dict) and "value" in e
    ]
    assert buttons, "Alice's results carry Undo and Retry buttons"
    open_plans = []
    for command, _ in OPEN_PLANS:
        view = alice_previews(fake, url, command)
        open_plans.append((json.loads(view["private_metadata"])["op"], view))
    writes = provider_writes(sandbox)
    assert len(writes) == 2  # Alice's two removals, nothing else
    pool = ThreadPoolExecutor(1 + MUTANTS, thread_name_prefix="hostile")
    return World(
        pool,
        fake,
        sandbox,
        url,
        database,
        open_plans,
        done,
        buttons,
        writes,
        executed(database),
        **extra,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("hostile")
    with production_logs() as taps, app_stack(tmp, **UNPACED) as stack:
        w = build_world(
            stack.slack, stack.sandbox, stack.url, tmp / "untag.db", stack=stack, taps=taps
        )
        w.settle()
        w.ran = executed(w.database)
        yield w
        w.pool.shutdown()
        summary = {**w.figures("hostile_in_process_total"), "log_lines": taps.redacted.lines}
        write_figures(summary)
        print(
            "\nslack hostile figures:",
            json.dumps(summary),
            *[t.report() for t in w.tallies],
            sep="\n  ",
        )


def assert_no_harm(world: World) -> None:
    """Nothing happened that Alice did not confirm, and nothing failed inside."""
    world.settle()
    assert provider_writes(world.sandbox) == world.writes
    now = executed(world.database)
    assert now.ran == world.ran.ran
    assert now.confirmations == world.ran.confirmations
    for op_id, _ in world.open_plans:
        assert now.statuses[op_id] == "previewed", op_id
    if world.taps is not None:
        assert world.taps.raw.leaks == set() and world.taps.redacted.leaks == set()
        assert world.taps.redacted.errors == [], world.taps.redacted.errors[:3]
    assert world.fake.violations == [], world.fake.violations[:3]


def check(tally: Tally, label: str, body: bytes, reply: SlackReply) -> None:
    tally.record(label, reply)
    assert reply.status != 0, f"{label}: no answer ({reply.body})"
    assert reply.status < 500, f"{label}: {reply.status} {reply.body[:200]}"
    assert reply.elapsed < ACK_LIMIT, f"{label}: answered after {reply.elapsed:.2f} s"
    if len(body) > MAX_BODY:
        assert reply.status == 413, f"{label}: {len(body)} bytes answered {reply.status}"


# -- strategies ------------------------------------------------------------------------------

MISSING = object()  # a key left out of a payload

SETTINGS = {
    "deadline": None,
    "derandomize": True,  # the same requests every run: the figures in RELIABILITY.md hold
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

_chars = st.characters(codec="utf-8", categories=None)  # control characters included
_odd = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "\u202e",
        "💥",
        "<@U0ALICE>",
        "' OR 1=1 --",
        "%s%n",
        "${jndi:x}",
        "\n" * 3,
        "&lt;&amp;",
        "../../etc/passwd",
        "null",
        "[]",
        "{}",
        "NaN",
        "-1",
        "1e309",
    ]
)
junk_text = st.one_of(st.text(_chars, max_size=40), _odd)
big_text = st.builds(
    lambda unit, n: unit * n,
    st.sampled_from(["A", "é", "😀", "\x00", "<>&", "%", "\\", '"']),
    st.integers(2_000, 90_000),
)
junk_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | junk_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(junk_text, children, max_size=4)
    ),
    max_leaves=8,
)
text_field = st.integers(0, 19).flatmap(lambda i: big_text if i == 0 else junk_text)  # 1 in 20
hostile_id = st.one_of(
    st.sampled_from(HOSTILE_USERS), st.from_regex(r"[UW][A-Z0-9]{2,12}", fullmatch=True), junk_text
).filter(lambda u: u not in TRUSTED)
channel_id = st.one_of(st.sampled_from(["C0OPS", "C0OTHER", "D0MALLORY"]), junk_text)


def mostly(
    good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], tenths: int = 9
) -> st.SearchStrategy[Any]:
    """``good`` ``tenths`` times in ten, else ``bad`` (one_of would pick each half the time)."""
    return st.integers(0, 9).flatmap(lambda i: good if i < tenths else bad)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field as sent (mostly), left out, or of the wrong type."""
    return mostly(strategy, st.one_of(st.just(MISSING), junk_json))


def dropping(strategy: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return strategy.map(lambda d: {k: v for k, v in d.items() if v is not MISSING})


def user_field() -> st.SearchStrategy[Any]:
    return mostly(
        st.builds(
            lambda u: {"id": u, "username": "x", "name": "x", "team_id": "T0TEST"}, hostile_id
        ),
        st.one_of(hostile_id, st.builds(lambda u: {"id": u}, junk_json), junk_json),
        8,
    ).filter(lambda u: not (u in TRUSTED if isinstance(u, str) else False))


def id_holder() -> st.SearchStrategy[Any]:
    return st.one_of(st.builds(lambda i: {"id": i}, channel_id), channel_id, st.none(), junk_json)


class Strategies:
    """The generated requests, built from the world's real ids (Alice's ops, views, buttons)."""

    def __init__(self, world: World) -> None:
        self.world = world
        op = st.one_of(
            st.sampled_from(world.op_ids),
            st.sampled_from(world.op_ids),
            st.sampled_from(world.result_buttons or world.op_ids),
            st.uuids().map(str),  # never issued
            st.uuids().map(lambda u: u.hex),
            junk_text,
        )
        self.op = op
        self.metadata = st.one_of(
            op.map(lambda o: json.dumps({"op": o})),
            op.map(lambda o: json.dumps({"op": o})),
            st.builds(lambda o, c: json.dumps({"op": o, "channel": c}), op, channel_id),
            st.builds(lambda o: json.dumps({"op": [o], "user": ALICE}), op),
            junk_json.map(json.dumps),
            junk_text,
            big_text,
        )
        tags = st.one_of(
            st.sampled_from(["VIP", '"Hot Deal"', '"Follow Up"', "Newsletter", "Prime", ""]),
            st.builds(lambda a, b: f"{a} {b}", st.sampled_from(["VIP", "Prime"]), junk_text),
            text_field,
        )
        tags_values = st.builds(
            lambda t: {"tags": {"tags_input": {"type": "plain_text_input", "value": t}}}, tags
        )
        select = st.one_of(
            st.sampled_from(["zoho", "bigin", "alta", "fernand", "constantcontact"]), junk_text
        )
        scope = st.one_of(
            st.sampled_from(["zoho:Leads", "zoho:Contacts", "bigin:Contacts", "alta:thread"]),
            junk_text,
        )
        targets = st.one_of(
            st.sampled_from(["554023000000793002", "554023000000801001", CC_CONTACT, "12345"]),
            text_field,
        )
        form_values = st.builds(
            lambda p, s, t, g: {
                "provider": {"provider_select": {"selected_option": {"value": p}}},
                "scope": {"scope_select": {"selected_option": {"value": s}}},
                "targets": {"targets_input": {"value": t}},
                "tags": {"tags_input": {"value": g}},
            },
            select,
            scope,
            targets,
            tags,
        )
        values = st.one_of(
            tags_values,
            tags_values,
            st.builds(
                lambda v, c: {**v, "confirm_name": {"confirm_input": {"value": c}}},
                tags_values,
                st.sampled_from(["Spring Promo 2026", "VIP"]) | junk_text,
            ),
            form_values,
            junk_json,
        )
        issued_views = [v["id"] for _, v in world.open_plans]
        view_id = st.one_of(
            st.sampled_from(issued_views),
            st.from_regex(r"V[A-Z0-9]{8,11}", fullmatch=True),  # never issued
            junk_text,
        )
        callback = st.one_of(
            st.sampled_from(["untag_confirm", "untag_confirm", "untag_form"]),
            st.sampled_from(["remove_tags_from_message", "untag_undo", "unknown_callback"]),
            junk_text,
        )
        view = dropping(
            st.fixed_dictionaries(
                {
                    "id": maybe(view_id),
                    "type": st.sampled_from(["modal", "home"]) | junk_text,
                    "callback_id": maybe(callback),
                    "private_metadata": maybe(self.metadata),
                    "state": maybe(st.builds(lambda v: {"values": v}, values)),
                    "hash": maybe(junk_text),
                    "team_id": maybe(junk_text),
                    "app_installed_team_id": maybe(st.sampled_from(["T0TEST", "T0OTHER"])),
                }
            )
        )
        # A view straight from Alice's open plans, with just the parts an attacker changes.
        alice_view = st.builds(
            lambda i, meta, vals: {
                **world.open_plans[i][1],
                **({"private_metadata": meta} if meta is not MISSING else {}),
                "state": {"values": vals},
            },
            st.integers(0, len(world.open_plans) - 1),
            st.one_of(st.just(MISSING), self.metadata),
            values,
        )
        action_id = mostly(
            st.sampled_from(
                ["untag_undo", "untag_retry", "untag_audit_page_previous", "untag_audit_page_next"]
            ),
            st.one_of(st.just("nope"), junk_text),
        )
        audit_value = st.builds(
            lambda f, o: json.dumps({"filters": f, "offset": o}),
            st.sampled_from(["", "user:U0ALICE", "provider:zoho"]) | junk_text,
            st.integers() | st.floats() | junk_json,
        )
        action = dropping(
            st.fixed_dictionaries(
                {
                    "action_id": action_id,
                    "block_id": maybe(junk_text),
                    "type": maybe(st.just("button")),
                    "value": maybe(st.one_of(op, op, audit_value)),
                    "action_ts": maybe(st.just("1700000000.000100")),
                }
            )
        )
        trigger = st.one_of(st.just("ISSUED"), junk_text)  # ISSUED: a real one, for Mallory
        response_url = st.one_of(st.just("ISSUED"), junk_text)
        common = {
            "user": maybe(user_field()),
            "team": maybe(id_holder()),
            "api_app_id": maybe(st.just("A0UNTAG")),
            "token": maybe(junk_text),
            "enterprise": maybe(st.none() | junk_text),
            "is_enterprise_install": maybe(st.booleans()),
            "trigger_id": maybe(trigger),
        }
        kinds = st.sampled_from(["view_submission", "view_closed", "block_actions"])
        self.confirms = dropping(
            st.fixed_dictionaries(
                {
                    "type": mostly(st.just("view_submission"), st.one_of(kinds, junk_text), 8),
                    "view": mostly(st.one_of(alice_view, view), junk_json),
                    "response_urls": maybe(st.just([])),
                    **common,
                }
            )
        )
        form_view = dropping(
            st.fixed_dictionaries(
                {
                    "id": maybe(view_id),
                    "type": st.just("modal"),
                    "callback_id": st.just("untag_form"),
                    "private_metadata": maybe(
                        st.builds(lambda c: json.dumps({"channel": c}), channel_id) | self.metadata
                    ),
                    "state": maybe(st.builds(lambda v: {"values": v}, mostly(form_values, values))),
                }
            )
        )
        self.forms = dropping(
            st.fixed_dictionaries({"type": st.just("view_submission"), "view": form_view, **common})
        )
        self.clicks = dropping(
            st.fixed_dictionaries(
                {
                    "type": mostly(st.just("block_actions"), st.one_of(kinds, junk_text), 8),
                    "actions": mostly(st.lists(action, min_size=1, max_size=2), junk_json),
                    "container": maybe(
                        st.fixed_dictionaries(
                            {"type": st.just("message"), "channel_id": channel_id}
                        )
                        | junk_json
                    ),
                    "channel": maybe(id_holder()),
                    "message": maybe(junk_json),
                    "view": maybe(view),
                    "response_url": maybe(response_url),
                    **common,
                }
            )
        )
        self.shortcuts = dropping(
            st.fixed_dictionaries(
                {
                    "type": mostly(st.sampled_from(["message_action", "shortcut"]), junk_text),
                    "callback_id": maybe(mostly(st.just("remove_tags_from_message"), callback)),
                    "message": maybe(
                        st.builds(
                            lambda t: {"type": "message", "text": t},
                            st.one_of(
                                st.just(
                                    "see https://crm.zoho.com/crm/org1/tab/Leads/554023000000793002"
                                ),
                                text_field,
                            ),
                        )
                    ),
                    "channel": maybe(id_holder()),
                    "response_url": maybe(response_url),
                    **common,
                }
            )
        )
        self.interactions = st.one_of(
            self.confirms, self.confirms, self.forms, self.clicks, self.clicks, self.shortcuts
        )
        self.commands = dropping(
            st.fixed_dictionaries(
                {
                    "command": mostly(st.just("/untag"), junk_text),
                    "text": st.one_of(
                        st.sampled_from(VALID_COMMANDS),
                        st.builds(
                            lambda c, j: f"{c} {j}", st.sampled_from(VALID_COMMANDS), junk_text
                        ),
                        text_field,
                    ),
                    "user_id": maybe(hostile_id),
                    "team_id": maybe(st.sampled_from(["T0TEST", "T0OTHER"]) | junk_text),
                    "channel_id": maybe(channel_id),
                    "trigger_id": maybe(trigger),
                    "response_url": maybe(response_url),
                    "user_name": maybe(junk_text),
                    "token": maybe(junk_text),
                    "api_app_id": maybe(junk_text),
                    "is_enterprise_install": maybe(st.sampled_from(["false", "true"])),
                }
            )
        )
        event = dropping(
            st.fixed_dictionaries(
                {
                    "type": mostly(
                        st.sampled_from(["app_home_opened", "message", "app_mention"]), junk_text
                    ),
                    "user": maybe(hostile_id),
                    "tab": maybe(st.sampled_from(["home", "messages"]) | junk_text),
                    "channel": maybe(channel_id),
                    "text": maybe(text_field),
                    "view": maybe(
                        st.fixed_dictionaries(
                            {"id": view_id, "type": st.just("home"), "hash": junk_text}
                        )
                    ),
                }
            )
        )
        self.events = dropping(
            st.fixed_dictionaries(
                {
                    "type": mostly(
                        st.sampled_from(["event_callback", "url_verification"]), junk_text
                    ),
                    "event": maybe(event),
                    "challenge": maybe(text_field),
                    "team_id": maybe(junk_text),
                    "api_app_id": maybe(junk_text),
                    "event_id": maybe(junk_text),
                    "authorizations": maybe(
                        st.lists(
                            st.fixed_dictionaries(
                                {"team_id": st.just("T0TEST"), "user_id": st.just("U0UNTAGBOT")},
                                optional={"is_bot": junk_json, "enterprise_id": st.none()},
                            ),
                            max_size=2,
                        )
                    ),
                }
            )
        )

    # -- turning a drawn payload into signed bytes --

    def resolve(self, node: Any, user: str = MALLORY) -> Any:
        """Replace ISSUED by a real trigger_id / response_url (issued for a hostile user)."""
        fake = self.world.fake
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if value == "ISSUED" and key == "trigger_id":
                    out[key] = fake.issue_trigger_id(user)
                elif value == "ISSUED" and key == "response_url":
                    out[key] = fake.issue_response_url("C0OPS", user)
                else:
                    out[key] = self.resolve(value, user)
            return out
        if isinstance(node, list):
            return [self.resolve(v, user) for v in node]
        return node

    def command_body(self, fields: dict[str, Any]) -> bytes:
        user = fields.get("user_id") if isinstance(fields.get("user_id"), str) else MALLORY
        resolved = self.resolve(fields, user)
        as_text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in resolved.items()}
        return urlencode(as_text, encoding="utf-8", errors="surrogatepass").encode()

    def interaction_body(self, payload: dict[str, Any]) -> bytes:
        return interaction_body(self.resolve(payload))

    @staticmethod
    def json_body(payload: Any) -> bytes:
        return json.dumps(payload).encode()


def strategies(world: World) -> Strategies:
    """Built once per world (building them draws nothing, but is not free)."""
    if "all" not in world._strategies:
        world._strategies["all"] = Strategies(world)
    found: Strategies = world._strategies["all"]
    return found


def post(world: World, tally: Tally, label: str, body: bytes, content_type: str = FORM) -> None:
    post_all(world, tally, label, [(body, content_type)])


def post_all(world: World, tally: Tally, label: str, bodies: list[tuple[bytes, str]]) -> None:
    """Send all at once (as Slack would, several users at a time), then check every answer."""
    futures = [
        world.pool.submit(send, world.fake, world.url, body, signed(body, content_type=kind))
        for body, kind in bodies
    ]
    for (body, _), future in zip(bodies, futures, strict=True):
        check(tally, label, body, future.result())


# Each drawn request is sent with MUTANTS variants of itself: one field (at any depth) left out
# or replaced by a value of another type.  Drawing is the costly part; this makes every draw
# count four times, and "wrong types, missing fields" is exactly what the variants are.
MUTANTS = 3
WRONG: tuple[Any, ...] = (
    *(MISSING, None, 0, -1, 2**64, 1.5, True, "", "\x00", "💥💥", "A" * 3000),
    *([], {}, [None], {"id": None}, {"id": 7}, [{"id": "U0MALLORY"}], "U0MALLORY"),
)


def _paths(node: Any, depth: int = 4) -> Iterator[tuple[Any, ...]]:
    """Every key path into ``node`` (dict keys and list indices), up to ``depth`` deep."""
    if depth == 0:
        return
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        yield (key,)
        for rest in _paths(value, depth - 1):
            yield (key, *rest)


def _replaced(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    """``node`` with the entry at ``path`` set to ``value`` (MISSING: removed); a new copy
    along the path only."""
    key, rest = path[0], path[1:]
    if isinstance(node, dict):
        copy = dict(node)
        if rest:
            copy[key] = _replaced(node[key], rest, value)
        elif value is MISSING:
            del copy[key]
        else:
            copy[key] = value
        return copy
    copy_list = list(node)
    if rest:
        copy_list[key] = _replaced(node[key], rest, value)
    elif value is MISSING:
        del copy_list[key]
    else:
        copy_list[key] = value
    return copy_list


def mutants(payload: Any, seed: int, *, flat: bool = False) -> list[Any]:
    """MUTANTS variants of ``payload``, chosen by ``seed`` (drawn, so hypothesis can shrink it).
    ``flat``: a form, whose values can only be strings."""
    rng = random.Random(seed)
    paths = list(_paths(payload, 1 if flat else 4))
    out = []
    for _ in range(MUTANTS if paths else 0):
        value = rng.choice(WRONG)
        if flat and value is not MISSING and not isinstance(value, str):
            value = json.dumps(value)
        out.append(_replaced(payload, rng.choice(paths), value))
    return out


# -- the generated runs ----------------------------------------------------------------------

# Drawn examples; each is sent with its MUTANTS variants.
COMMANDS = 400
INTERACTIONS = 700
EVENTS_AND_JUNK = 250
FORGED = 800


@pytest.mark.slow
def test_hostile_slash_commands(world: World) -> None:
    gen, tally = strategies(world), world.tally("slash_commands")

    @settings(max_examples=COMMANDS, **SETTINGS)
    @given(gen.commands, st.integers(0, 2**32))
    def run(fields: dict[str, Any], seed: int) -> None:
        variants = [fields, *mutants(fields, seed, flat=True)]
        post_all(world, tally, "command", [(gen.command_body(v), FORM) for v in variants])

    run()
    assert tally.total >= COMMANDS * (1 + MUTANTS) * 0.95, tally.report()
    assert_no_harm(world)


@pytest.mark.slow
def test_hostile_interactivity_payloads(world: World) -> None:
    gen, tally = strategies(world), world.tally("interactivity")

    @settings(max_examples=INTERACTIONS, **SETTINGS)
    @given(gen.interactions, st.integers(0, 2**32))
    def run(payload: dict[str, Any], seed: int) -> None:
        variants = [payload, *mutants(payload, seed)]
        post_all(world, tally, "interaction", [(gen.interaction_body(v), FORM) for v in variants])

    run()
    assert tally.total >= INTERACTIONS * (1 + MUTANTS) * 0.95, tally.report()
    assert_no_harm(world)


@pytest.mark.slow
def test_hostile_events_and_raw_bodies(world: World) -> None:
    gen, tally = strategies(world), world.tally("events_and_raw")
    raw = st.one_of(
        st.binary(max_size=2_000).map(lambda b: (b, FORM)),
        st.binary(max_size=200).map(lambda b: (b, "application/json")),
        junk_json.map(lambda j: (json.dumps(j).encode(), "application/json")),
        junk_json.map(lambda j: (urlencode({"payload": json.dumps(j)}).encode(), FORM)),
        st.tuples(st.binary(max_size=200), st.sampled_from(["text/plain", "", "multipart/x"])),
    )

    @settings(max_examples=EVENTS_AND_JUNK, **SETTINGS)
    @given(gen.events, raw, st.integers(0, 2**32))
    def run(event: dict[str, Any], junk: tuple[bytes, str], seed: int) -> None:
        variants = [event, *mutants(event, seed)][:MUTANTS]
        sent = [(gen.json_body(v), "application/json") for v in variants]
        post_all(world, tally, "event/raw", [*sent, junk])

    run()
    assert tally.total >= EVENTS_AND_JUNK * (1 + MUTANTS) * 0.95, tally.report()
    assert_no_harm(world)


@pytest.mark.slow
def test_forged_ownership_never_runs_or_cancels_anything(world: World) -> None:
    """Well-formed requests from other users naming Alice's real operations, views and
    buttons: confirm, edit the tags of, cancel, undo and retry what is hers."""
    gen, tally = strategies(world), world.tally("forged_ownership")
    plan = st.integers(0, len(world.open_plans) - 1)
    done = st.sampled_from(world.done_ops)

    def confirm(i: int, user: str, typed: str | None) -> bytes:
        _, view = world.open_plans[i]
        return submission(view, user, tags_value(typed if typed else OPEN_PLANS[i][1]))

    def close(i: int, user: str) -> bytes:
        _, view = world.open_plans[i]
        return interaction_body(
            {
                "type": "view_closed",
                "user": {"id": user},
                "team": {"id": "T0TEST"},
                "view": view,
                "is_cleared": False,
            }
        )

    def click(action_id: str, op_id: str, user: str) -> bytes:
        return gen.interaction_body(
            {
                "type": "block_actions",
                "user": {"id": user, "team_id": "T0TEST"},
                "team": {"id": "T0TEST"},
                "container": {"type": "message", "channel_id": "C0OPS"},
                "channel": {"id": "C0OPS"},
                "response_url": "ISSUED",
                "trigger_id": "ISSUED",
                "actions": [{"action_id": action_id, "value": op_id, "type": "button"}],
            }
        )

    user = st.one_of(
        st.sampled_from(HOSTILE_USERS),
        st.from_regex(r"[UW][A-Z0-9]{2,12}", fullmatch=True).filter(lambda u: u not in TRUSTED),
    )
    typed = st.one_of(st.sampled_from(["Prime", '"Hot Deal" VIP', "x"]), junk_text)
    forged = st.one_of(
        st.builds(confirm, plan, user, st.none()),
        st.builds(confirm, plan, user, typed),
        st.builds(close, plan, user),
        st.builds(click, st.sampled_from(["untag_undo", "untag_retry"]), done, user),
        st.builds(
            click,
            st.sampled_from(["untag_undo", "untag_retry"]),
            st.sampled_from([op for op, _ in world.open_plans]),
            user,
        ),
    )

    @settings(max_examples=FORGED // (1 + MUTANTS), **SETTINGS)
    @given(st.lists(forged, min_size=1 + MUTANTS, max_size=1 + MUTANTS))
    def run(bodies: list[bytes]) -> None:
        post_all(world, tally, "forged", [(body, FORM) for body in bodies])

    run()
    assert tally.total >= FORGED * 0.95, tally.report()
    assert_no_harm(world)


# -- signatures and replays ------------------------------------------------------------------

SIGNATURE_ATTACKS = 600


@pytest.mark.slow
def test_signature_attacks_are_refused_and_change_nothing(world: World) -> None:
    """Alice's own confirm, as the attacker would love to send it: with a wrong, missing,
    stale, future or malformed signature.  Every one is a 401 and nothing runs."""
    tally = world.tally("signature_attacks")
    op_id, view = world.open_plans[0]
    body = submission(view, ALICE, tags_value(OPEN_PLANS[0][1]))
    wrong_secret = {"CANARY-slack-signing-4b9e0d", "", "x", "test-signing-secret"}

    def attack(kind: str, shift: int, junk: str, secret: str) -> dict[str, str]:
        now = int(time.time())
        good = signed(body)
        if kind == "stale":
            return signed(body, timestamp=now - 301 - shift)
        if kind == "future":
            return signed(body, timestamp=now + 301 + shift)
        if kind == "wrong-secret":
            from sandbox.slack import sign_request

            return {**sign_request(secret, body), "Content-Type": FORM}
        if kind == "timestamp-swapped":  # signature of one moment, timestamp of another
            return {**good, "X-Slack-Request-Timestamp": str(now - 1 - shift % 200)}
        if kind == "junk-timestamp":
            return {**good, "X-Slack-Request-Timestamp": junk}
        if kind == "junk-signature":
            return {**good, "X-Slack-Signature": junk}
        if kind == "junk-after-v0":  # well-formed enough to be compared
            return {**good, "X-Slack-Signature": "v0=" + junk}
        if kind == "bit-flip":
            sig = good["X-Slack-Signature"]
            pos = 3 + shift % 64
            flipped = sig[:pos] + ("0" if sig[pos] != "0" else "1") + sig[pos + 1 :]
            return {**good, "X-Slack-Signature": flipped}
        if kind == "no-signature":
            return {k: v for k, v in good.items() if k != "X-Slack-Signature"}
        if kind == "no-timestamp":
            return {k: v for k, v in good.items() if k != "X-Slack-Request-Timestamp"}
        if kind == "v1-scheme":
            return {**good, "X-Slack-Signature": "v1=" + good["X-Slack-Signature"][3:]}
        raise AssertionError(kind)

    kinds = st.sampled_from(
        [
            "stale",
            "future",
            "wrong-secret",
            "timestamp-swapped",
            "junk-timestamp",
            "junk-signature",
            "junk-after-v0",
            "bit-flip",
            "no-signature",
            "no-timestamp",
            "v1-scheme",
        ]
    )
    printable_latin1 = st.characters(min_codepoint=32, max_codepoint=255).filter(
        lambda c: not 127 <= ord(c) < 160  # what an HTTP header can carry
    )
    junk_ascii = st.one_of(
        st.text(printable_latin1, max_size=30),
        st.sampled_from(
            [
                "-1",
                "0",
                "1e9",
                "1700000000.5",
                " 1700000000",
                "99999999999999999999",
                "v0=",
                "v0=" + "0" * 64,
                "v0=" + "g" * 64,
            ]
        ),
    )

    @settings(max_examples=SIGNATURE_ATTACKS, **SETTINGS)
    @given(kinds, st.integers(0, 10**9), junk_ascii, st.sampled_from(sorted(wrong_secret)))
    def run(kind: str, shift: int, junk: str, secret: str) -> None:
        headers = attack(kind, shift, junk, secret)
        reply = send(world.fake, world.url, body, headers)
        check(tally, f"signature {kind}", body, reply)
        assert reply.status == 401, f"{kind} ({junk!r}, {shift}) was answered {reply.status}"

    run()
    assert tally.total >= SIGNATURE_ATTACKS * 0.95
    assert_no_harm(world)
    assert executed(world.database).statuses[op_id] == "previewed"


@pytest.mark.parametrize(
    "size", [MAX_BODY - 100, MAX_BODY + 1, 2 * MAX_BODY, MAX_DRAIN], ids=lambda n: f"{n}B"
)
def test_bodies_up_to_and_beyond_the_limit(world: World, size: int) -> None:
    tally = world.tally(f"body_{size}")
    pad = size - len(urlencode({"command": "/untag", "user_id": MALLORY, "text": ""}))
    bodies = {
        "command": urlencode({"command": "/untag", "user_id": MALLORY, "text": "x" * pad}),
        "payload": urlencode({"payload": json.dumps({"type": "view_submission", "x": "é" * 8})})
        + "&pad="
        + "y" * size,
    }
    for label, text in bodies.items():
        body = text.encode()[:size]
        reply = send(world.fake, world.url, body, signed(body))
        check(tally, f"{label} {len(body)} bytes", body, reply)
        assert (reply.status == 413) == (len(body) > MAX_BODY), (label, len(body), reply.status)
    assert_no_harm(world)


REPLAYS = 20


def test_a_replayed_confirm_runs_at_most_once(world: World) -> None:
    """Slack's scheme accepts a body replayed with its signature within 5 minutes; the claim
    in the database is what keeps the replay from running twice.  Alice confirms her last open
    plan; the identical signed bytes are then replayed, at once and one by one."""
    import threading

    tally = world.tally("replays")
    op_id, view = world.open_plans[-1]
    body = submission(view, ALICE, tags_value(OPEN_PLANS[-1][1]))
    headers = signed(body)
    replies: list[SlackReply] = []
    start = threading.Barrier(REPLAYS // 2)

    def deliver() -> None:
        start.wait()
        replies.append(send(world.fake, world.url, body, headers))

    threads = [threading.Thread(target=deliver) for _ in range(REPLAYS // 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(
        lambda: executed(world.database).statuses[op_id] == "succeeded", 30, "the confirmed run"
    )
    for _ in range(REPLAYS // 2):  # later replays, still inside the 5-minute window
        replies.append(send(world.fake, world.url, body, headers))
    for reply in replies:
        check(tally, "replay", body, reply)
    assert [r.body for r in replies].count("") == 1  # the one that ran
    assert all("Already handled" in r.body for r in replies if r.body)
    world.settle()
    new = provider_writes(world.sandbox)[len(world.writes) :]
    assert [(p, m, path) for p, m, path, _ in new] == [
        ("constantcontact", "POST", "/v3/activities/contacts_taggings_remove")
    ]
    state = executed(world.database)
    assert state.confirmations[-1] == (op_id, ALICE)
    assert len(state.confirmations) == len(world.ran.confirmations) + 1
    # From here on this is part of what legitimately ran.
    world.writes = provider_writes(world.sandbox)
    world.ran = state
    world.open_plans.pop()
    assert_no_harm(world)


def test_secrets_appear_nowhere(world: World) -> None:
    """After everything above: no canary in a log line (before or after redaction), in the
    database file, in any message or view the app posted to Slack, or in an answer."""
    assert world.taps is not None and world.taps.redacted.lines > 0
    assert world.taps.raw.leaks == set() and world.taps.redacted.leaks == set()
    stored = database_bytes(world.database)
    slack = world.fake
    posted = [m.all_text() + json.dumps(m.params) for m in slack.messages]
    views = json.dumps(list(slack.views.values())) + json.dumps(slack.home_views)
    for secret in SECRETS:
        assert secret.encode() not in stored, secret
        assert not any(secret in text for text in posted), secret
        assert secret not in views, secret
    assert len(posted) > 2  # the hostile runs made the app answer in Slack too


def test_alice_can_still_confirm_after_all_that(world: World) -> None:
    op_id, view = world.open_plans[0]
    done = world.fake.submit_view(
        world.url, view["id"], tags_value(OPEN_PLANS[0][1]), user_id=ALICE
    )
    assert done.status == 200 and done.body == ""
    wait_until(lambda: executed(world.database).statuses[op_id] == "succeeded", 30, "her removal")
    new = provider_writes(world.sandbox)[len(world.writes) :]
    assert [(p, m) for p, m, _, _ in new] == [("zoho", "POST")]


# -- the same against a real `untag serve` ------------------------------------------------------

SERVE_EXAMPLES = 900  # each sent with its MUTANTS variants


@pytest.mark.slow
def test_hostile_requests_against_untag_serve(tmp_path: Path) -> None:
    """A sample of the same generated requests against ``untag serve`` (gunicorn, a process
    of its own), on canary credentials; checked once the server has stopped, i.e. once every
    background job it started has finished."""
    with (
        Sandbox(port=0, seed_demo=True, credentials=CANARY_PROVIDERS).start() as sb,
        FakeSlack(bot_token=CANARY_BOT_TOKEN, signing_secret=CANARY_SIGNING_SECRET).start() as fs,
    ):
        env = {**serve_env(tmp_path, sb, fs), **{k.upper(): str(v) for k, v in UNPACED.items()}}
        with serving(tmp_path, env) as [served]:
            world = build_world(fs, sb, served.url, tmp_path / "untag.db")
            gen, tally = Strategies(world), world.tally("untag_serve")
            drawn = st.one_of(
                gen.interactions.map(lambda p: ("interaction", p)),
                gen.commands.map(lambda c: ("command", c)),
            )

            @settings(max_examples=SERVE_EXAMPLES, **SETTINGS)
            @given(drawn, st.integers(0, 2**32))
            def run(kind_and_payload: tuple[str, dict[str, Any]], seed: int) -> None:
                kind, payload = kind_and_payload
                if kind == "command":
                    forms = [payload, *mutants(payload, seed, flat=True)]
                    bodies = [(gen.command_body(f), FORM) for f in forms]
                else:
                    variants = [payload, *mutants(payload, seed)]
                    bodies = [(gen.interaction_body(v), FORM) for v in variants]
                post_all(world, tally, kind, bodies)

            run()
            world.pool.shutdown()
        log = served.log
        assert tally.total >= SERVE_EXAMPLES * (1 + MUTANTS) * 0.95, tally.report()
        assert_no_harm(world)
        messages = [m.all_text() + json.dumps(m.params) for m in fs.messages]
    assert log.count("POST /slack/events") >= tally.total
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    stored = database_bytes(tmp_path / "untag.db")
    for secret in SECRETS:
        assert secret not in log, secret
        assert secret.encode() not in stored, secret
        assert not any(secret in text for text in messages), secret
    figures = tally.figures()
    write_figures(figures)
    print("\nslack hostile figures (untag serve):", json.dumps(figures))
