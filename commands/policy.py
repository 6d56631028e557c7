"""Who may do what: ``UNTAG_ADMINS`` and the optional ``UNTAG_POLICY`` file.

Without a policy, everyone may request removals (and undo or retry their own);
account-wide deletion and audit queries are for admins.  With a policy, nothing
is allowed that an ``[[allow]]`` rule does not grant, except to admins::

    team = "T0TEST"                   # optional: only this Slack workspace
    admins = ["U0ADMIN"]              # optional, added to UNTAG_ADMINS

    [[allow]]
    users = ["U0ALICE"]               # Slack user ids ("*": everyone)
    groups = ["S0SALESOPS"]           # Slack user group ids
    providers = ["zoho", "bigin"]     # absent or ["*"]: every provider
    modules = ["Leads", "Contacts"]   # absent or ["*"]: every module
    operations = ["remove"]           # default ["remove", "undo", "retry"]

Only immutable ids are matched, never names.  The file is read again whenever
it changes on disk, so a change made while a confirmation modal is open
applies when it is submitted.  A file that no longer loads denies everything
to everyone but ``UNTAG_ADMINS`` until it is fixed: failing open would undo a
revocation that was mistyped.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from commands.actions import Action, ProviderName
from commands.errors import ConfigError
from commands.grammar import ALTA_ENTITY_TYPES, BIGIN_MODULES, ZOHO_MODULES, normalise_key

__all__ = [
    "EMPTY_GROUP_TTL",
    "GROUP_TTL",
    "MODULES",
    "Decision",
    "Permissions",
    "Policy",
    "Request",
    "Rule",
    "Verb",
    "load_policy",
]

log = logging.getLogger(__name__)

GROUP_TTL = 300.0
"""Seconds a user's group membership is trusted before it is looked up again."""

EMPTY_GROUP_TTL = 30.0
"""Seconds an empty answer is kept: short, since a Slack hiccup also answers "no groups"."""

ANY = "*"

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}|local:\S+")  # local:<login>: the command line
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
_TEAM_ID = re.compile(r"T[A-Z0-9]{2,}")

MODULES: dict[ProviderName, tuple[str, ...]] = {
    ProviderName.ZOHO: ZOHO_MODULES,
    ProviderName.BIGIN: BIGIN_MODULES,
    ProviderName.ALTA: ALTA_ENTITY_TYPES,
    ProviderName.CONSTANT_CONTACT: ("contacts",),
    ProviderName.FERNAND: (),
}
"""What ``modules`` may name per provider: :attr:`Action.scope` values."""


class Verb(StrEnum):
    """What a rule's ``operations`` can grant."""

    REMOVE = "remove"
    DELETE_TAGS = "delete-tags"  # Constant Contact's account-wide deletion
    UNDO = "undo"
    RETRY = "retry"
    AUDIT = "audit"  # audit queries; not per provider


DEFAULT_VERBS = frozenset({Verb.REMOVE, Verb.UNDO, Verb.RETRY})
ADMIN_ONLY = frozenset({Verb.DELETE_TAGS, Verb.AUDIT})
"""What needs an admin when there is no policy file."""


@dataclass(frozen=True)
class Request:
    """What is asked, as the policy sees it: an operation on a provider's module."""

    operation: Verb
    provider: ProviderName | None = None
    scope: str | None = None

    @classmethod
    def of(cls, action: Action) -> Request:
        return cls(Verb(action.operation.value), action.provider, action.scope)

    def describe(self) -> str:
        if self.operation is Verb.AUDIT:
            return "query the audit log"
        where = " ".join(w for w in (self.provider, self.scope) if w)
        verb = {
            Verb.REMOVE: "remove tags",
            Verb.DELETE_TAGS: "delete tags account-wide",
            Verb.UNDO: "undo",
            Verb.RETRY: "retry",
        }[self.operation]
        return f"{verb} in {where}" if where else verb


@dataclass(frozen=True)
class Decision:
    """The answer, with a reason fit to show the user (it names no one)."""

    allowed: bool
    reason: str


class Rule(BaseModel):
    """One ``[[allow]]`` table: these users and groups may do these operations there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    providers: frozenset[ProviderName] | None = None  # None: every provider
    modules: frozenset[str] | None = None  # None: every module, folded by normalise_key
    operations: frozenset[Verb] = DEFAULT_VERBS

    @field_validator("providers", "modules", mode="before")
    @classmethod
    def _star_is_all(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list):
            return value
        if not value:
            raise ValueError('an empty list grants nothing; use ["*"] for all or leave it out')
        if ANY in value:
            if len(value) > 1:
                raise ValueError('"*" cannot be combined with names')
            return None
        if info.field_name == "providers":  # names are case-insensitive, as in commands
            return [v.lower() if isinstance(v, str) else v for v in value]
        return value

    @field_validator("modules")
    @classmethod
    def _known_modules(
        cls, value: frozenset[str] | None, info: ValidationInfo
    ) -> frozenset[str] | None:
        if value is None or "providers" not in info.data:  # a bad providers list is reported
            return value
        providers = info.data["providers"] or ProviderName
        known = {normalise_key(m): m for p in providers for m in MODULES[p]}
        for module in sorted(value):
            if normalise_key(module) not in known:
                names = ", ".join(sorted(known.values())) or "none (no modules there)"
                raise ValueError(f"unknown module {module!r}; known here: {names}")
        return frozenset(map(normalise_key, value))  # compared folded, like the parser's words

    @field_validator("users")
    @classmethod
    def _user_ids(cls, value: frozenset[str]) -> frozenset[str]:
        return _ids(value, _USER_ID, "a Slack user id like U0123ABCD", star=True)

    @field_validator("groups")
    @classmethod
    def _group_ids(cls, value: frozenset[str]) -> frozenset[str]:
        return _ids(value, _GROUP_ID, "a Slack user group id like S0123ABCD")

    @model_validator(mode="after")
    def _coherent(self) -> Rule:
        if not self.users and not self.groups:
            raise ValueError("names no users or groups, so it grants nothing")
        if not self.operations:
            raise ValueError("operations is empty, so it grants nothing")
        if Verb.AUDIT in self.operations and (self.providers or self.modules):
            raise ValueError(
                "audit queries cover every provider: grant audit in a rule without "
                "providers or modules"
            )
        if self.modules is not None and Verb.DELETE_TAGS in self.operations:
            raise ValueError("delete-tags is account-wide: grant it in a rule without modules")
        return self

    def covers(self, request: Request, *, any_module: bool = False) -> bool:
        """The operation, provider and module are in this rule (whoever asks)."""
        if request.operation not in self.operations:
            return False
        if request.operation is Verb.AUDIT:
            return True
        if self.providers is not None and request.provider not in self.providers:
            return False
        if self.modules is None or any_module:
            return True
        # Scope-less actions (Fernand, account-wide deletion) need a rule without modules.
        return request.scope is not None and normalise_key(request.scope) in self.modules

    def names(self, user: str) -> bool:
        return user in self.users or ANY in self.users


class Policy(BaseModel):
    """The whole ``UNTAG_POLICY`` file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team: str | None = None
    admins: frozenset[str] = frozenset()
    allow: tuple[Rule, ...] = ()

    @field_validator("team")
    @classmethod
    def _team_id(cls, value: str | None) -> str | None:
        if value is not None and not _TEAM_ID.fullmatch(value):
            raise ValueError(f"{value!r} is not a Slack team id like T0123ABCD")
        return value

    @field_validator("admins")
    @classmethod
    def _admin_ids(cls, value: frozenset[str]) -> frozenset[str]:
        return _ids(value, _USER_ID, "a Slack user id like U0123ABCD")

    @property
    def groups(self) -> frozenset[str]:
        """Every user group id the rules name."""
        return frozenset(g for rule in self.allow for g in rule.groups)


def _ids(
    values: frozenset[str], shape: re.Pattern[str], what: str, *, star: bool = False
) -> frozenset[str]:
    for value in sorted(values):
        if not (shape.fullmatch(value) or (star and value == ANY)):
            raise ValueError(f"{value!r} is not {what} (names are not matched, only ids)")
    return values


def load_policy(path: Path) -> Policy:
    """Read and check a policy file; any problem is a :class:`ConfigError` of one line."""
    where = f"UNTAG_POLICY {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: not valid TOML: {_one_line(str(exc))}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    parts: list[str] = []
    for part in first["loc"]:
        if isinstance(part, int):
            # allow[0] is "rule 1" to whoever reads the file; set members have no useful index.
            if parts and parts[-1] == "allow":
                parts[-1] = f"[[allow]] rule {part + 1}"
            continue
        parts.append(str(part))
    reason = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        reason = "unknown key (a typo?)"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{', '.join(parts) or 'file'}: {_one_line(reason)}{suffix}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _no_groups(user: str) -> frozenset[str]:
    return frozenset()


class Permissions:
    """Decides whether a user may do something, from the policy and the admins.

    ``groups_of`` answers which user groups a user belongs to (the Slack layer
    passes one that asks the Web API); answers are cached per user for
    ``ttl`` seconds of ``clock``.  ``team`` pins the workspace when the policy
    does not.  A decision for a ``team`` of ``None`` comes from a surface
    without a workspace (console, ``untag run``), where the pin does not apply.
    """

    def __init__(
        self,
        policy: Policy | None,
        admins: Collection[str] = frozenset(),
        groups_of: Callable[[str], Collection[str]] = _no_groups,
        team: str | None = None,
        *,
        source: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = GROUP_TTL,
    ) -> None:
        self._policy = policy
        self._admins = frozenset(admins)
        self._groups_of = groups_of
        self._team = team
        self._source = source
        self._stamp = _stamp(source) if source else None
        self._broken: str | None = None
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path | None, admins: Collection[str], **options: Any) -> Permissions:
        """Load ``path`` now (a bad file raises :class:`ConfigError`) and follow its changes."""
        if path is None:
            return cls(None, admins, **options)
        stamp = _stamp(path)  # before reading: a change while reading is seen next time
        permissions = cls(load_policy(path), admins, source=path, **options)
        permissions._stamp = stamp
        return permissions

    @property
    def policy(self) -> Policy | None:
        """The policy in force now (re-read if its file changed)."""
        return self._current()

    def resolve_groups_with(self, groups_of: Callable[[str], Collection[str]]) -> None:
        """Use ``groups_of`` from now on (the Slack app has its Web API client only later)."""
        with self._lock:
            self._groups_of = groups_of
            self._cache.clear()

    def referenced_groups(self) -> frozenset[str]:
        """The user group ids the policy names: the only ones worth looking up."""
        policy = self._current()
        return policy.groups if policy else frozenset()

    def is_admin(self, user: str) -> bool:
        """``UNTAG_ADMINS`` and the policy's ``admins``: they may do everything."""
        return self._is_admin(user, self._current())

    def decide(self, user: str, request: Action | Request, *, team: str | None = None) -> Decision:
        """May ``user`` (in workspace ``team``) do ``request``?"""
        asked = request if isinstance(request, Request) else Request.of(request)
        return self._decide(user, team, asked, any_module=False)

    def may_audit(self, user: str, *, team: str | None = None) -> bool:
        return self.decide(user, Request(Verb.AUDIT), team=team).allowed

    def allowed_providers(self, user: str, *, team: str | None = None) -> list[ProviderName]:
        """The providers where ``user`` may remove (or delete) tags, in one module at least."""
        return [
            provider
            for provider in ProviderName
            if any(
                self._decide(user, team, Request(verb, provider), any_module=True).allowed
                for verb in (Verb.REMOVE, Verb.DELETE_TAGS)
            )
        ]

    def _is_admin(self, user: str, policy: Policy | None) -> bool:
        return bool(user) and (
            user in self._admins or (policy is not None and user in policy.admins)
        )

    def _decide(self, user: str, team: str | None, asked: Request, *, any_module: bool) -> Decision:
        policy = self._current()
        pinned = (policy.team if policy else None) or self._team
        if team is not None and pinned is not None and team != pinned:
            return Decision(False, "untag is not enabled for this Slack workspace")
        if not user:
            return Decision(False, "the requesting user is unknown")
        if self._is_admin(user, policy):
            return Decision(True, "admin")
        if policy is None:
            if asked.operation is Verb.DELETE_TAGS:
                return Decision(
                    False, "account-wide tag deletion is limited to admins (UNTAG_ADMINS)"
                )
            if asked.operation is Verb.AUDIT:
                return Decision(False, "audit queries are limited to admins (UNTAG_ADMINS)")
            return Decision(True, "allowed to everyone (no UNTAG_POLICY)")
        if self._broken:
            return Decision(False, "the untag policy cannot be read right now; ask an untag admin")
        rules = [rule for rule in policy.allow if rule.covers(asked, any_module=any_module)]
        if any(rule.names(user) for rule in rules):
            return Decision(True, "granted by the untag policy")
        # Only now ask Slack, and only when a rule that would grant this names a group.
        wanted = frozenset(g for rule in rules for g in rule.groups)
        if wanted and wanted & self._groups(user):
            return Decision(True, "granted by the untag policy (user group)")
        return Decision(False, f"you may not {asked.describe()} (not granted by the untag policy)")

    def _groups(self, user: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(user)
            resolve = self._groups_of
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            groups = frozenset(resolve(user))
        except Exception:  # a resolver must never turn a permission check into a crash
            log.warning(
                "user group lookup failed for %s; treating as no groups", user, exc_info=True
            )
            return frozenset()
        ttl = self._ttl if groups else min(self._ttl, EMPTY_GROUP_TTL)
        with self._lock:
            self._cache[user] = (now + ttl, groups)
        return groups

    def _current(self) -> Policy | None:
        """The policy, re-read when its file changed since the last look (one ``stat``)."""
        if self._source is None:
            return self._policy
        stamp = _stamp(self._source)
        with self._lock:
            if stamp == self._stamp:
                return self._policy
            self._stamp = stamp
            try:
                self._policy, self._broken = load_policy(self._source), None
                log.warning("UNTAG_POLICY %s changed; reloaded", self._source)
            except ConfigError as exc:
                self._policy, self._broken = Policy(), str(exc)
                log.error("%s; denying everyone but UNTAG_ADMINS until it is fixed", exc)
            self._cache.clear()  # the rules may name other groups now
            return self._policy


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file apart: mtime, size and inode (editors often replace the file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
