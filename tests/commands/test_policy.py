"""Permissions: the default rules, a policy's grid, groups and their cache, team pinning, reload."""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.actions import ProviderName
from commands.errors import ConfigError
from commands.grammar import normalise_key
from commands.policy import (
    EMPTY_GROUP_TTL,
    MODULES,
    Permissions,
    Policy,
    Request,
    Verb,
    load_policy,
)

ALICE, BOB, CAROL, AUDITOR, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0AUDITOR", "U0MALLORY"
ADMIN, POLICY_ADMIN = "U0ADMIN", "U0PADMIN"
SALES_OPS = "S0SALESOPS"
TEAM = "T0TEST"

POLICY = f"""
team = "{TEAM}"
admins = ["{POLICY_ADMIN}"]

[[allow]]                      # Alice: Zoho leads only, with undo and retry (the default)
users = ["{ALICE}"]
providers = ["zoho"]
modules = ["Leads"]

[[allow]]                      # sales ops: removals in Bigin and Fernand
groups = ["{SALES_OPS}"]
providers = ["bigin", "fernand"]
operations = ["remove"]

[[allow]]
users = ["{CAROL}"]
providers = ["constantcontact"]
operations = ["delete-tags"]

[[allow]]
users = ["{AUDITOR}"]
operations = ["audit"]
"""

Z, B, F, CC, A = (
    ProviderName.ZOHO,
    ProviderName.BIGIN,
    ProviderName.FERNAND,
    ProviderName.CONSTANT_CONTACT,
    ProviderName.ALTA,
)
REMOVE, DELETE, UNDO, RETRY, AUDIT = (
    Verb.REMOVE,
    Verb.DELETE_TAGS,
    Verb.UNDO,
    Verb.RETRY,
    Verb.AUDIT,
)


def groups(mapping: dict[str, set[str]]) -> Callable[[str], frozenset[str]]:
    return lambda user: frozenset(mapping.get(user, set()))


def write(path: Path, text: str) -> Path:
    """Write the policy and move its mtime on: two writes within one clock tick look alike."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    later = max(path.stat().st_mtime_ns, before + 1_000_000_000)
    os.utime(path, ns=(later, later))
    return path


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    return write(tmp_path / "policy.toml", POLICY)


@pytest.fixture
def permissions(policy_file: Path) -> Permissions:
    return Permissions.from_file(
        policy_file, {ADMIN}, groups_of=groups({BOB: {SALES_OPS}, MALLORY: {"S0OTHER"}})
    )


# --------------------------------------------------------------------------- the grids

WITHOUT_POLICY = [
    (MALLORY, REMOVE, Z, "Leads", True),
    (MALLORY, REMOVE, F, None, True),
    (MALLORY, UNDO, B, "Contacts", True),
    (MALLORY, RETRY, A, "emailThread", True),
    (MALLORY, DELETE, CC, None, False),
    (MALLORY, AUDIT, None, None, False),
    (ADMIN, DELETE, CC, None, True),
    (ADMIN, AUDIT, None, None, True),
    ("", REMOVE, Z, "Leads", False),
]


@pytest.mark.parametrize(("user", "verb", "provider", "scope", "allowed"), WITHOUT_POLICY)
def test_without_a_policy_everyone_removes_and_admins_delete_and_audit(
    user: str, verb: Verb, provider: ProviderName | None, scope: str | None, allowed: bool
) -> None:
    permissions = Permissions(None, {ADMIN})
    decision = permissions.decide(user, Request(verb, provider, scope))
    assert decision.allowed is allowed, decision.reason


WITH_POLICY = [
    # a user named by a rule: its provider, module and operations only
    (ALICE, REMOVE, Z, "Leads", True),
    (ALICE, REMOVE, Z, "leads", True),  # module names compare like the parser's
    (ALICE, UNDO, Z, "Leads", True),
    (ALICE, RETRY, Z, "Leads", True),
    (ALICE, REMOVE, Z, "Deals", False),
    (ALICE, REMOVE, B, "Contacts", False),
    (ALICE, DELETE, CC, None, False),
    (ALICE, AUDIT, None, None, False),
    # a group member: the group's rule
    (BOB, REMOVE, B, "Contacts", True),
    (BOB, REMOVE, F, None, True),
    (BOB, UNDO, B, "Contacts", False),
    (BOB, REMOVE, Z, "Leads", False),
    # account-wide deletion and audit need their own rule
    (CAROL, DELETE, CC, None, True),
    (CAROL, REMOVE, CC, "contacts", False),
    (AUDITOR, AUDIT, None, None, True),
    (AUDITOR, REMOVE, Z, "Leads", False),
    # deny by default: a user no rule names, in a group no rule names
    (MALLORY, REMOVE, Z, "Leads", False),
    (MALLORY, REMOVE, F, None, False),
    (MALLORY, UNDO, A, "emailThread", False),
    (MALLORY, AUDIT, None, None, False),
    # admins from UNTAG_ADMINS and from the policy may do everything
    (ADMIN, DELETE, CC, None, True),
    (ADMIN, AUDIT, None, None, True),
    (ADMIN, REMOVE, A, "linkedinConversation", True),
    (POLICY_ADMIN, DELETE, CC, None, True),
    (POLICY_ADMIN, RETRY, F, None, True),
]


@pytest.mark.parametrize(("user", "verb", "provider", "scope", "allowed"), WITH_POLICY)
def test_with_a_policy_only_the_rules_grant(
    permissions: Permissions,
    user: str,
    verb: Verb,
    provider: ProviderName | None,
    scope: str | None,
    allowed: bool,
) -> None:
    decision = permissions.decide(user, Request(verb, provider, scope))
    assert decision.allowed is allowed, decision.reason
    assert permissions.decide(user, Request(verb, provider, scope), team=TEAM) == decision


def test_a_denial_says_what_was_refused_and_names_no_one(permissions: Permissions) -> None:
    decision = permissions.decide(MALLORY, Request(REMOVE, Z, "Leads"))
    assert (
        decision.reason == "you may not remove tags in zoho Leads (not granted by the untag policy)"
    )
    assert not permissions.may_audit(MALLORY)
    assert permissions.may_audit(AUDITOR) and permissions.may_audit(ADMIN)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (ALICE, [Z]),
        (BOB, [F, B]),
        (CAROL, [CC]),
        (AUDITOR, []),
        (MALLORY, []),
        (ADMIN, list(ProviderName)),
    ],
)
def test_allowed_providers_are_what_help_shows(
    permissions: Permissions, user: str, expected: list[ProviderName]
) -> None:
    assert permissions.allowed_providers(user) == expected


def test_without_a_policy_help_shows_every_provider() -> None:
    assert Permissions(None, ()).allowed_providers(MALLORY) == list(ProviderName)


# --------------------------------------------------------------------------- team pinning


def test_the_policy_pins_the_workspace_for_everyone(permissions: Permissions) -> None:
    for user in (ALICE, ADMIN, POLICY_ADMIN):
        decision = permissions.decide(user, Request(REMOVE, Z, "Leads"), team="T0ELSEWHERE")
        assert not decision.allowed
        assert decision.reason == "untag is not enabled for this Slack workspace"
    assert permissions.decide(ALICE, Request(REMOVE, Z, "Leads"), team=TEAM).allowed
    assert permissions.allowed_providers(ALICE, team="T0ELSEWHERE") == []
    assert not permissions.may_audit(ADMIN, team="T0ELSEWHERE")


def test_a_pin_without_a_policy_file() -> None:
    permissions = Permissions(None, {ADMIN}, team=TEAM)
    assert not permissions.decide(MALLORY, Request(REMOVE, Z, "Leads"), team="T0ELSEWHERE").allowed
    assert permissions.decide(MALLORY, Request(REMOVE, Z, "Leads"), team=TEAM).allowed
    # The console and `untag run` have no workspace: the pin does not apply there.
    assert permissions.decide(MALLORY, Request(REMOVE, Z, "Leads")).allowed


# --------------------------------------------------------------------------- groups


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Resolver:
    """Membership that tests change, counting the lookups."""

    def __init__(self, members: dict[str, set[str]]) -> None:
        self.members = members
        self.calls: list[str] = []
        self.fail = False

    def __call__(self, user: str) -> frozenset[str]:
        self.calls.append(user)
        if self.fail:
            raise ConnectionError("slack is down")
        return frozenset(self.members.get(user, set()))


def grouped(resolver: Resolver, clock: Clock, ttl: float = 300.0) -> Permissions:
    return Permissions(load_policy_text(POLICY), {ADMIN}, groups_of=resolver, clock=clock, ttl=ttl)


def load_policy_text(text: str) -> Policy:
    return Policy.model_validate(tomllib.loads(text))


def test_group_membership_is_cached_for_the_ttl() -> None:
    clock, resolver = Clock(), Resolver({BOB: {SALES_OPS}})
    permissions = grouped(resolver, clock, ttl=300)
    bigin = Request(REMOVE, B, "Contacts")
    assert permissions.decide(BOB, bigin).allowed
    clock.now += 299
    resolver.members[BOB] = set()  # removed from the group in Slack
    assert permissions.decide(BOB, bigin).allowed  # still cached
    assert resolver.calls == [BOB]
    clock.now += 2
    assert not permissions.decide(BOB, bigin).allowed  # looked up again
    assert resolver.calls == [BOB, BOB]


def test_an_empty_answer_is_kept_briefly() -> None:
    clock, resolver = Clock(), Resolver({})
    permissions = grouped(resolver, clock)
    bigin = Request(REMOVE, B, "Contacts")
    assert not permissions.decide(BOB, bigin).allowed
    resolver.members[BOB] = {SALES_OPS}  # added to the group
    clock.now += EMPTY_GROUP_TTL - 1
    assert not permissions.decide(BOB, bigin).allowed
    clock.now += 2
    assert permissions.decide(BOB, bigin).allowed
    assert resolver.calls == [BOB, BOB]


def test_groups_are_looked_up_only_when_a_group_rule_could_grant() -> None:
    clock, resolver = Clock(), Resolver({BOB: {SALES_OPS}})
    permissions = grouped(resolver, clock)
    assert permissions.decide(ALICE, Request(REMOVE, Z, "Leads")).allowed  # named directly
    assert not permissions.decide(BOB, Request(REMOVE, Z, "Leads")).allowed  # no group rule there
    assert permissions.decide(ADMIN, Request(REMOVE, B, "Contacts")).allowed
    assert resolver.calls == []


def test_a_failing_lookup_denies_and_is_not_cached(caplog: pytest.LogCaptureFixture) -> None:
    clock, resolver = Clock(), Resolver({BOB: {SALES_OPS}})
    permissions = grouped(resolver, clock)
    resolver.fail = True
    with caplog.at_level(logging.WARNING, logger="commands.policy"):
        assert not permissions.decide(BOB, Request(REMOVE, B, "Contacts")).allowed
    assert "user group lookup failed" in caplog.text
    resolver.fail = False
    assert permissions.decide(BOB, Request(REMOVE, B, "Contacts")).allowed


def test_a_resolver_set_later_replaces_the_cache() -> None:
    permissions = grouped(Resolver({}), Clock())
    assert not permissions.decide(BOB, Request(REMOVE, F)).allowed
    permissions.resolve_groups_with(Resolver({BOB: {SALES_OPS}}))
    assert permissions.decide(BOB, Request(REMOVE, F)).allowed
    assert permissions.referenced_groups() == {SALES_OPS}


# --------------------------------------------------------------------------- the file


def test_a_changed_file_applies_at_the_next_decision(
    permissions: Permissions, policy_file: Path
) -> None:
    leads = Request(REMOVE, Z, "Leads")
    assert permissions.decide(ALICE, leads).allowed
    write(policy_file, POLICY.replace(f'users = ["{ALICE}"]', 'users = ["U0SOMEONE"]'))
    assert not permissions.decide(ALICE, leads).allowed
    write(policy_file, POLICY)
    assert permissions.decide(ALICE, leads).allowed


def test_a_file_broken_later_denies_all_but_the_configured_admins(
    permissions: Permissions, policy_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    leads = Request(REMOVE, Z, "Leads")
    with caplog.at_level(logging.ERROR, logger="commands.policy"):
        write(policy_file, POLICY + "\n[[allow]\n")
        decision = permissions.decide(ALICE, leads)
    assert not decision.allowed
    assert "cannot be read" in decision.reason
    assert "not valid TOML" in caplog.text
    assert not permissions.decide(POLICY_ADMIN, leads).allowed  # its admins went with it
    assert permissions.decide(ADMIN, leads).allowed
    policy_file.unlink()  # a deleted policy must not fall back to "everyone may remove"
    assert not permissions.decide(ALICE, leads).allowed
    write(policy_file, POLICY)
    assert permissions.decide(ALICE, leads).allowed


def test_the_example_policy_reads_as_documented(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    assert policy.team == TEAM and policy.admins == {POLICY_ADMIN}
    alice = policy.allow[0]
    assert alice.operations == {REMOVE, UNDO, RETRY}  # the default
    assert alice.providers == frozenset({Z}) and alice.modules == frozenset({"leads"})
    assert policy.allow[3].providers is None  # absent: every provider
    assert policy.groups == {SALES_OPS}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[allow]\nusers = 1", "not valid TOML"),
        ('team = "acme"', "team: 'acme' is not a Slack team id"),
        ('[[allow]]\nusers = ["alice"]', "[[allow]] rule 1, users: 'alice' is not a Slack user id"),
        ('[[allow]]\ngroups = ["sales-ops"]', "groups: 'sales-ops' is not a Slack user group id"),
        ('[[allow]]\nuser = ["U0ALICE"]', "[[allow]] rule 1, user: unknown key"),
        ('[[allows]]\nusers = ["U0ALICE"]', "allows: unknown key"),
        ('[[allow]]\nproviders = ["zoho"]', "names no users or groups"),
        ('[[allow]]\nusers = ["U0A1"]\nproviders = ["hubspot"]', "providers: Input should be"),
        ('[[allow]]\nusers = ["U0A1"]\noperations = ["nuke"]', "operations: Input should be"),
        ('[[allow]]\nusers = ["U0A1"]\nproviders = []', "an empty list grants nothing"),
        ('[[allow]]\nusers = ["U0A1"]\nproviders = ["*", "zoho"]', '"*" cannot be combined'),
        (
            '[[allow]]\nusers = ["U0A1"]\nproviders = ["zoho"]\nmodules = ["Lead"]',
            "unknown module 'Lead'; known here: Accounts",
        ),
        (
            '[[allow]]\nusers = ["U0A1"]\nproviders = ["fernand"]\nmodules = ["Inbox"]',
            "known here: none",
        ),
        (
            '[[allow]]\nusers = ["U0A1"]\nproviders = ["zoho"]\noperations = ["audit"]',
            "grant audit in a rule without providers or modules",
        ),
        (
            '[[allow]]\nusers = ["U0A1"]\nmodules = ["contacts"]\noperations = ["delete-tags"]',
            "delete-tags is account-wide",
        ),
        ('admins = ["*"]', "admins: '*' is not a Slack user id"),
    ],
)
def test_a_malformed_policy_is_one_line_naming_the_file(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"UNTAG_POLICY {path}: ")
    assert fragment in message
    assert "\n" not in message


def test_a_missing_policy_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy.toml: cannot be read \(No such file"):
        Permissions.from_file(tmp_path / "policy.toml", {ADMIN})


# --------------------------------------------------------------------------- random policies

USERS = ["U0A", "U0B", "U0C", "U0D"]
GROUPS = ["S0X", "S0Y", "S0Z"]


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    verbs = draw(st.sets(st.sampled_from(list(Verb)), min_size=1))
    users = draw(st.sets(st.sampled_from([*USERS, "*"])))
    groups = draw(st.sets(st.sampled_from(GROUPS), min_size=0 if users else 1))
    rule: dict[str, Any] = {
        "users": sorted(users),
        "groups": sorted(groups),
        "operations": sorted(verbs),
    }
    if Verb.AUDIT in verbs:
        return rule  # audit covers every provider
    providers = draw(st.none() | st.sets(st.sampled_from(list(ProviderName)), min_size=1))
    if providers is not None:
        rule["providers"] = sorted(providers)
    known = sorted({m for p in providers or ProviderName for m in MODULES[p]})
    if Verb.DELETE_TAGS not in verbs and known and draw(st.booleans()):
        rule["modules"] = sorted(draw(st.sets(st.sampled_from(known), min_size=1)))
    return rule


policies = st.builds(
    lambda allow, admins: Policy.model_validate({"allow": allow, "admins": sorted(admins)}),
    st.lists(rules(), max_size=4),
    st.sets(st.sampled_from(USERS), max_size=1),
)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    verb = draw(st.sampled_from(list(Verb)))
    if verb is Verb.AUDIT:
        return Request(verb)
    provider = draw(st.sampled_from(list(ProviderName)))
    return Request(verb, provider, draw(st.sampled_from([None, *MODULES[provider]])))


def granted_by_some_rule(policy: Policy, user: str, mine: frozenset[str], asked: Request) -> bool:
    """The specification, written out plainly: a rule that names the user covers the request."""
    for rule in policy.allow:
        who = user in rule.users or "*" in rule.users or bool(mine & rule.groups)
        what = asked.operation in rule.operations
        if asked.operation is not Verb.AUDIT:
            what = what and (rule.providers is None or asked.provider in rule.providers)
            what = what and (
                rule.modules is None
                or (asked.scope is not None and normalise_key(asked.scope) in rule.modules)
            )
        if who and what:
            return True
    return False


@settings(max_examples=400, deadline=None)
@given(
    policy=policies,
    user=st.sampled_from([*USERS, "U0NOBODY"]),
    membership=st.sets(st.sampled_from(GROUPS)),
    asked=requests(),
)
def test_random_policies_grant_exactly_what_their_rules_allow(
    policy: Policy, user: str, membership: set[str], asked: Request
) -> None:
    mine = frozenset(membership)
    permissions = Permissions(policy, {"U0ROOT"}, groups_of=lambda _: mine)
    decision = permissions.decide(user, asked)
    expected = user in policy.admins or granted_by_some_rule(policy, user, mine, asked)
    assert decision.allowed is expected, (decision.reason, policy)
    # Nothing at all outside the rules: an unknown workspace, an empty user id.
    pinned = Permissions(policy, (), groups_of=lambda _: mine, team="T0HOME")
    assert not pinned.decide(user, asked, team="T0AWAY").allowed
    assert not permissions.decide("", asked).allowed


def test_the_readme_example_policy_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Permissions") :]
    example = section[section.index("```toml") + len("```toml") : section.index("```\n\n")]
    policy = load_policy(write(tmp_path / "policy.toml", example))
    assert policy.groups == {SALES_OPS} and len(policy.allow) == 3
