"""The five 500-record removals of the fault suite: what each sandbox holds and what is asked.

Every scenario has a few records that must fail for a reason the provider gives (a record
that does not exist, or a locked Zoho record), so that "failed with a reason" is exercised by
something other than the injected faults, and a tag (``Keep``) that must survive.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from commands.actions import Action, ProviderName
from sandbox import Fault, Sandbox
from tests.reliability.harness import Seeded

RECORDS = 500


def refused(count: int) -> int:
    """How many records the provider itself refuses: missing ones (Alta, Fernand, Constant
    Contact) or locked ones (Zoho and Bigin, ``RECORD_LOCKED``); 5 of 500."""
    return max(1, count // 100)


@dataclass(frozen=True)
class Scenario:
    """One provider's run: its seed, the removal, where its writes go, and its signal."""

    name: ProviderName
    sandbox_name: str  # the provider name the sandbox records and faults by
    write_method: str
    write_path: str  # a fragment of every removal request's path
    refreshes: bool  # OAuth: an expired token mid-run must be refreshed once
    build: Callable[[Sandbox, int], Seeded]  # the sandbox, how many records

    def action(self, seeded: Seeded) -> Action:
        return Action(
            provider=self.name, scope=seeded.scope, targets=seeded.targets, tags=seeded.requested
        )


def _uuid(n: int) -> str:
    return str(uuid.UUID(int=(0x5EED << 96) + n, version=4))


def _alta(sb: Sandbox, count: int) -> Seeded:
    targets = tuple(_uuid(i) for i in range(count))
    present = targets[: count - refused(count)]
    sb.state.alta.add_entities("emailThread", present, ["Hot Lead", "Keep"])

    def read(target: str) -> list[str] | None:
        try:
            return sb.state.alta.tags_of(target)
        except KeyError:
            return None

    return Seeded(
        "alta",
        "emailThread",
        targets,
        ("Hot Lead",),
        {t: ("Hot Lead", "Keep") for t in present},
        read,
    )


def _fernand(sb: Sandbox, count: int) -> Seeded:
    ids = [100_000 + i for i in range(count)]
    present = ids[: count - refused(count)]
    before: dict[str, tuple[str, ...]] = {}
    for n in present:
        # Every third conversation carries both requested tags: two DELETEs, one per tag.
        tags = ("VIP", "Urgent", "Keep") if n % 3 == 0 else ("VIP", "Keep")
        sb.state.fernand.add_conversation(n, tags)
        before[str(n)] = tags

    def read(target: str) -> list[str] | None:
        try:
            return sb.state.fernand.tags_of(int(target))
        except KeyError:
            return None

    return Seeded("fernand", None, tuple(map(str, ids)), ("VIP", "Urgent"), before, read)


def _zoho_like(
    store_name: str, module: str, base: int, tag: str
) -> Callable[[Sandbox, int], Seeded]:
    def build(sb: Sandbox, count: int) -> Seeded:
        store = sb.state.zoho if store_name == "zoho" else sb.state.bigin
        targets = tuple(str(base + i) for i in range(count))
        store.add_records(module, targets, [tag, "Keep"])
        for target in targets[-refused(count) :]:
            store.lock(module, target)

        def read(target: str) -> list[str] | None:
            try:
                return store.tags_of(module, target)
            except KeyError:
                return None

        return Seeded(
            store_name, module, targets, (tag,), {t: (tag, "Keep") for t in targets}, read
        )

    return build


def _cc(sb: Sandbox, count: int) -> Seeded:
    targets = tuple(_uuid(10_000 + i) for i in range(count))
    present = targets[: count - refused(count)]
    before: dict[str, tuple[str, ...]] = {}
    for i, contact in enumerate(present):
        # Two groups of alike contacts: two activities.
        tags = ("VIP", "Promo", "Keep") if i % 4 == 0 else ("VIP", "Keep")
        sb.state.constantcontact.add_contact(contact, tags)
        before[contact] = tags

    def read(target: str) -> list[str] | None:
        try:
            return sb.state.constantcontact.tag_names_of(target)
        except KeyError:
            return None

    return Seeded("constantcontact", "contacts", targets, ("VIP", "Promo"), before, read)


SCENARIOS = {
    "alta": Scenario(
        ProviderName.ALTA, "alta", "POST", "/tags/unassign", refreshes=False, build=_alta
    ),
    "fernand": Scenario(
        ProviderName.FERNAND, "fernand", "DELETE", "/tags/", refreshes=False, build=_fernand
    ),
    "zoho": Scenario(
        ProviderName.ZOHO,
        "zoho",
        "POST",
        "remove_tags",
        refreshes=True,
        build=_zoho_like("zoho", "Leads", 554023000200000000, "Prime"),
    ),
    "bigin": Scenario(
        ProviderName.BIGIN,
        "bigin",
        "POST",
        "remove_tags",
        refreshes=True,
        build=_zoho_like("bigin", "Contacts", 2445013000200000000, "Hot Deal"),
    ),
    "constantcontact": Scenario(
        ProviderName.CONSTANT_CONTACT,
        "constantcontact",
        "POST",
        "contacts_taggings_remove",
        refreshes=True,
        build=_cc,
    ),
}

SLOW = 1.5  # seconds a slow response takes; the client's timeout is 1 s
RATE_429, RATE_503, RATE_DROP, RATE_SLOW, MAX_SLOW = 0.20, 0.05, 0.03, 0.02, 4


def fault_mix(scenario: Scenario) -> list[Fault]:
    """The faults of one run, first match wins.

    First, once each and for certain, the cases a bulk provider might otherwise dodge (Zoho,
    Bigin and Constant Contact make one write per 500 records): the first removal request is
    slower than the timeout (applied at the provider, unknown to us), the next one gets the
    provider's 429, and, for OAuth providers, the access token expires in the middle of the
    run (on the removal for Zoho and Bigin, on an activity poll for Constant Contact).
    Then, drawn from the sandbox's seeded generator for every request: 20 % 429 with the
    provider's own signal, 5 % 503, 3 % dropped connections, 2 % slower than the timeout
    (at most four).
    """
    name, write = scenario.sandbox_name, scenario.write_path
    faults = [
        Fault(
            name,
            "latency",
            seconds=SLOW,
            count=1,
            method=scenario.write_method,
            path_contains=write,
        ),
    ]
    # And once, the provider's own 429 signal on the removal itself.
    faults.append(
        Fault(
            name, "status", status=429, count=1, method=scenario.write_method, path_contains=write
        )
    )
    if scenario.refreshes:
        where = (
            {"method": "GET", "path_contains": "/activities/"}
            if name == "constantcontact"
            else {"method": "POST", "path_contains": write}
        )
        faults.append(Fault(name, "expire_token", count=1, **where))  # type: ignore[arg-type]
    return [
        *faults,
        Fault(name, "status", status=429, probability=RATE_429),
        Fault(name, "status", status=503, probability=RATE_503),
        Fault(name, "drop", probability=RATE_DROP),
        Fault(name, "latency", seconds=SLOW, probability=RATE_SLOW, count=MAX_SLOW),
    ]
