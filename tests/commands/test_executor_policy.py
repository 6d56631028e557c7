"""The engine under a policy: allowed, denied (and audited), denied at submit, groups, help."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.config import load_settings
from bot.groups import slack_groups_of
from bot.runtime import build_runtime
from commands.actions import Action, ProviderName
from commands.errors import AuthorizationDenied, ConfigError
from commands.executor import Untag
from commands.policy import Permissions, Request, Verb
from sandbox.slack import FakeSlack
from storage import AuditFilter, AuditLog, Event, OperationStore, OpStatus, PlanStore, open_database
from tests.commands.test_executor import FakeZoho

ALICE, BOB, MALLORY, AUDITOR, ADMIN = "U0ALICE", "U0BOB", "U0MALLORY", "U0AUDITOR", "U0ADMIN"
SALES_OPS = "S0SALESOPS"
TEAM = "T0TEST"

POLICY = f"""
team = "{TEAM}"

[[allow]]
users = ["{ALICE}"]
providers = ["zoho", "fernand"]
modules = ["Leads"]

[[allow]]
groups = ["{SALES_OPS}"]
providers = ["zoho"]
modules = ["Contacts"]
operations = ["remove"]

[[allow]]
users = ["{AUDITOR}"]
operations = ["audit"]
"""


def write(path: Path, text: str) -> None:
    """Replace the policy; its mtime moves on even within one clock tick."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    later = max(path.stat().st_mtime_ns, before + 1_000_000_000)
    os.utime(path, ns=(later, later))


class Engine:
    def __init__(self, tmp_path: Path, groups: dict[str, set[str]] | None = None) -> None:
        self.policy = tmp_path / "policy.toml"
        write(self.policy, POLICY)
        members = groups or {}
        db = open_database(tmp_path / "untag.db")
        self.audit = AuditLog(db, b"k" * 32)
        self.provider = FakeZoho()
        self.permissions = Permissions.from_file(
            self.policy, {ADMIN}, groups_of=lambda user: frozenset(members.get(user, set()))
        )
        self.untag = Untag(
            {ProviderName.ZOHO: self.provider},
            OperationStore(db),
            PlanStore(db),
            audit=self.audit,
            permissions=self.permissions,
        )

    def denials(self) -> list[Event]:
        return self.audit.query(AuditFilter(kind="denied"), limit=None)

    def kinds(self) -> list[str]:
        return [e.kind for e in reversed(self.audit.query(limit=None))]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path, {BOB: {SALES_OPS}})


def leads(*targets: str, tag: str = "Prime") -> Action:
    return Action(
        provider=ProviderName.ZOHO, scope="Leads", targets=targets or ("1001",), tags=(tag,)
    )


def test_an_allowed_user_previews_and_executes(engine: Engine) -> None:
    engine.untag.check(ALICE, leads())
    report = engine.untag.execute(ALICE, engine.untag.plan(ALICE, leads()))
    assert report.operation.status == OpStatus.SUCCEEDED
    assert engine.provider.removes == 1
    assert engine.denials() == []
    assert engine.audit.verify().ok


def test_a_denied_user_is_refused_before_the_modal_and_the_refusal_is_audited(
    engine: Engine,
) -> None:
    with pytest.raises(AuthorizationDenied, match="may not remove tags in zoho Leads"):
        engine.untag.check(MALLORY, leads())
    with pytest.raises(AuthorizationDenied):
        engine.untag.plan(MALLORY, leads())
    assert engine.kinds() == ["denied", "denied"]  # nothing requested, nothing read
    denied = engine.denials()[0]
    assert denied.actor == MALLORY
    assert denied.detail["provider"] == "zoho" and denied.detail["scope"] == "Leads"
    assert "not granted by the untag policy" in str(denied.detail["reason"])
    assert engine.provider.removes == 0


def test_a_module_outside_the_rule_is_denied(engine: Engine) -> None:
    deals = leads().model_copy(update={"scope": "Deals"})
    with pytest.raises(AuthorizationDenied, match="zoho Deals"):
        engine.untag.check(ALICE, deals)


def test_denied_at_submit_when_the_policy_changed_after_the_preview(engine: Engine) -> None:
    plan = engine.untag.plan(ALICE, leads())
    # While the modal is open, an admin takes Alice out of the policy.
    write(engine.policy, POLICY.replace(f'users = ["{ALICE}"]', 'users = ["U0SOMEONE"]'))
    with pytest.raises(AuthorizationDenied):
        engine.untag.confirm(ALICE, plan.operation.id)
    assert engine.provider.removes == 0
    stored = engine.untag.operations.get(plan.operation.id)
    assert stored is not None and stored.status == OpStatus.PREVIEWED  # never claimed
    denied = engine.denials()[0]
    assert denied.op_id == plan.operation.id and denied.actor == ALICE
    assert engine.kinds()[-1] == "denied"


def test_submit_from_another_workspace_is_denied(engine: Engine) -> None:
    plan = engine.untag.plan(ALICE, leads())
    with pytest.raises(AuthorizationDenied, match="not enabled for this Slack workspace"):
        engine.untag.authorize(ALICE, plan.action, op_id=plan.operation.id, team="T0ELSEWHERE")
    assert engine.denials()[0].team == "T0ELSEWHERE"
    engine.untag.authorize(ALICE, plan.action, op_id=plan.operation.id, team=TEAM)


def test_a_group_member_is_allowed_and_others_are_not(engine: Engine) -> None:
    contacts = leads().model_copy(update={"scope": "Contacts"})
    report = engine.untag.execute(BOB, engine.untag.plan(BOB, contacts))
    assert report.operation.status == OpStatus.SUCCEEDED
    with pytest.raises(AuthorizationDenied):
        engine.untag.check(BOB, leads())  # the group's rule is Contacts only
    with pytest.raises(AuthorizationDenied):
        engine.untag.check(MALLORY, contacts)


def test_undo_and_retry_need_their_own_operations(engine: Engine) -> None:
    contacts = leads("1001", "1003").model_copy(update={"scope": "Contacts"})
    report = engine.untag.execute(BOB, engine.untag.plan(BOB, contacts))  # 1003 is locked
    assert report.operation.status == OpStatus.PARTIALLY_FAILED
    with pytest.raises(AuthorizationDenied, match="may not undo in zoho Contacts"):
        engine.untag.undo(BOB, report.operation.id)
    with pytest.raises(AuthorizationDenied, match="may not retry in zoho Contacts"):
        engine.untag.retry_failed(BOB, report.operation.id)
    assert [e.detail["operation"] for e in engine.denials()] == ["retry", "undo"]
    assert engine.provider.undos == 0
    # Alice's rule has the default operations: remove, undo, retry.
    mine = engine.untag.execute(ALICE, engine.untag.plan(ALICE, leads("1001", tag="VIP")))
    assert engine.untag.undo(ALICE, mine.operation.id).operation.status == OpStatus.SUCCEEDED


def test_help_lists_only_the_enabled_providers_the_user_may_run(engine: Engine) -> None:
    assert engine.untag.allowed_providers(ALICE) == [ProviderName.ZOHO]  # fernand is not enabled
    assert engine.untag.allowed_providers(BOB) == [ProviderName.ZOHO]
    assert engine.untag.allowed_providers(MALLORY) == []
    assert engine.untag.allowed_providers(ADMIN) == [ProviderName.ZOHO]


def test_audit_queries_need_a_grant(engine: Engine) -> None:
    assert engine.untag.may_audit(AUDITOR) and engine.untag.may_audit(ADMIN)
    assert not engine.untag.may_audit(ALICE)
    with pytest.raises(AuthorizationDenied, match="may not query the audit log"):
        engine.untag.authorize(ALICE, Request(Verb.AUDIT))
    assert engine.denials()[0].detail["operation"] == "audit"


def test_without_a_policy_the_defaults_hold(tmp_path: Path) -> None:
    db = open_database(tmp_path / "untag.db")
    untag = Untag(
        {ProviderName.ZOHO: FakeZoho()}, OperationStore(db), PlanStore(db), admins={ADMIN}
    )
    untag.check(MALLORY, leads())
    assert untag.allowed_providers(MALLORY) == [ProviderName.ZOHO]
    assert not untag.may_audit(MALLORY) and untag.may_audit(ADMIN)
    assert untag.is_admin(ADMIN) and not untag.is_admin(MALLORY)


# --------------------------------------------------------------------------- through Slack


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def test_group_membership_is_read_from_slack_once_per_ttl(tmp_path: Path, slack: FakeSlack) -> None:
    engine = Engine(tmp_path)
    slack.usergroups[SALES_OPS] = [BOB]
    slack.usergroups["S0UNRELATED"] = [BOB, MALLORY]
    client = WebClient(token="xoxb-test-token", base_url=slack.api_url)
    # What build_app does once it has its client:
    engine.permissions.resolve_groups_with(
        slack_groups_of(client, engine.permissions.referenced_groups)
    )
    contacts = leads().model_copy(update={"scope": "Contacts"})
    engine.untag.check(BOB, contacts)
    engine.untag.plan(BOB, contacts)
    asked = [c.params["usergroup"] for c in slack.calls_to("usergroups.users.list")]
    assert asked == [SALES_OPS]  # only the group the policy names, once
    with pytest.raises(AuthorizationDenied):
        engine.untag.check(MALLORY, contacts)


def test_a_slack_failure_denies_with_a_warning(
    tmp_path: Path, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine(tmp_path)  # the fake knows no S0SALESOPS: no_such_subteam
    client = WebClient(token="xoxb-test-token", base_url=slack.api_url)
    engine.permissions.resolve_groups_with(
        slack_groups_of(client, engine.permissions.referenced_groups)
    )
    with pytest.raises(AuthorizationDenied):
        engine.untag.check(BOB, leads().model_copy(update={"scope": "Contacts"}))
    assert "no_such_subteam" in caplog.text


# --------------------------------------------------------------------------- start-up


def test_a_malformed_policy_stops_start_up_before_anything_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    policy = tmp_path / "policy.toml"
    policy.write_text('[[allow]]\nusers = ["alice"]\n', encoding="utf-8")
    settings = load_settings(untag_database=tmp_path / "untag.db", untag_policy=policy)
    with pytest.raises(ConfigError) as caught:
        build_runtime(settings)
    assert str(caught.value) == (
        f"UNTAG_POLICY {policy}: [[allow]] rule 1, users: 'alice' is not a Slack user id "
        "like U0123ABCD (names are not matched, only ids)"
    )
    assert not (tmp_path / "untag.db").exists()


def test_start_up_follows_the_policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    policy = tmp_path / "policy.toml"
    write(policy, POLICY)
    settings = load_settings(
        untag_database=tmp_path / "untag.db", untag_policy=policy, untag_admins=ADMIN
    )
    runtime = build_runtime(settings, groups_of=lambda user: {SALES_OPS} if user == BOB else set())
    try:
        contacts = Request(Verb.REMOVE, ProviderName.ZOHO, "Contacts")
        assert runtime.untag.permissions.decide(BOB, contacts).allowed
        assert not runtime.untag.permissions.decide(MALLORY, contacts).allowed
        assert runtime.untag.is_admin(ADMIN)
    finally:
        runtime.close()
