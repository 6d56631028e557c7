"""Shared machinery of the fault suite: a runtime on the sandbox, spies, and the comparisons.

- :func:`runtime_on` builds the real untag runtime (``build_runtime``) pointed at a sandbox,
  with canary credentials, a small client timeout and pacing raised out of the way.
- :class:`SendSpy` records every exchange as *the client* saw it (status, or the transport
  failure), which the sandbox cannot know: a request that timed out on our side may still have
  been applied at the provider.
- :func:`real_retries` keeps stamina's real retry path (real attempt counts, Retry-After and
  reset waits honoured, exponential backoff computed) but replaces tenacity's sleep with a
  recorder, so a run that "waits" minutes finishes in seconds and every wait is checked.
- :func:`differences` compares, record by record, the sandbox's state with the operation's
  stored results and the audit log's ``record`` events.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

import stamina
import tenacity
from stamina.instrumentation import LoggingOnRetryHook, RetryDetails, set_on_retry_hooks

from bot.config import load_settings
from bot.logs import RedactingFilter, configure_logging, protect
from bot.runtime import Runtime, build_runtime
from commands.errors import ProviderError
from commands.http import ApiResponse
from sandbox import Credentials, RecordedRequest, Sandbox
from storage import ResultRecord

USER = "U0FAULTS"

CANARIES = Credentials(
    alta_token="CANARY-alta-f4u1t",
    fernand_key="sk_CANARY-fernand-f4u1t",
    zoho_client_id="zoho-canary-client-f4u1t",
    zoho_client_secret="CANARY-zoho-secret-f4u1t",
    zoho_refresh_token="1000.CANARY-zoho-refresh-f4u1t",
    cc_client_id="cc-canary-client-f4u1t",
    cc_client_secret="CANARY-cc-secret-f4u1t",
    cc_refresh_token="CANARY-cc-refresh-f4u1t",
    cc_access_token="CANARY-cc-access-f4u1t",
)
SECRETS = (
    CANARIES.alta_token,
    CANARIES.fernand_key,
    CANARIES.zoho_client_secret,
    CANARIES.zoho_refresh_token,
    CANARIES.cc_client_secret,
    CANARIES.cc_refresh_token,
    CANARIES.cc_access_token,
)

OK_OUTCOMES = frozenset({"removed", "not present"})
IN_DOUBT_CODES = frozenset({"in_doubt", "activity_running"})
"""Result codes that say the provider may have applied the change although we saw no success."""

# Pacing far above anything a test reaches: the pacers still run, they just never wait.
UNPACED: dict[str, Any] = {
    "alta_requests_per_minute": 1_000_000,
    "fernand_reads_per_minute": 1_000_000,
    "fernand_writes_per_minute": 1_000_000,
    "constant_contact_requests_per_second": 1_000_000,
}


def runtime_on(sb: Sandbox, database: Path, **overrides: Any) -> Runtime:
    """The real runtime, configured like ``untag`` would be from ``sb.env()``."""
    values: dict[str, Any] = {k.lower(): v for k, v in sb.env().items()}
    values.update(untag_database=database, untag_http_timeout=1.0, **UNPACED)
    values.update(overrides)
    return build_runtime(load_settings(**values))


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll for a condition the test set in motion; fail loudly when it never comes."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not reached in time: {what}"
        time.sleep(0.02)


# -- what the client saw ------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request as the client saw it: a status, or the transport failure it raised."""

    provider: str
    method: str
    path: str  # path and query, without scheme and host
    body: Any
    status: int | None
    error: str | None

    @property
    def answered(self) -> bool:
        """A final answer about the records: not a retryable refusal, not a transport failure."""
        return self.status is not None and self.status not in (401, 429, 502, 503, 504)

    @property
    def in_doubt(self) -> bool:
        """A write that was sent but whose answer never arrived: it may have been applied."""
        return self.error is not None and self.method != "GET" and "Connect" not in self.error


class SendSpy:
    """Wraps ``HttpClient.send`` of one runtime and records every exchange."""

    def __init__(self, runtime: Runtime) -> None:
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        original = runtime.http.send

        def send(
            provider: str,
            method: str,
            url: str,
            headers: Mapping[str, str],
            params: Mapping[str, str] | None = None,
            json: Any = None,
        ) -> ApiResponse:
            parts = urlsplit(url)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            try:
                response = original(provider, method, url, headers, params, json)
            except ProviderError as exc:
                self._add(Exchange(provider, method, path, json, None, exc.message))
                raise
            self._add(Exchange(provider, method, path, json, response.status_code, None))
            return response

        runtime.http.send = send  # type: ignore[method-assign]

    def _add(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def mark(self) -> int:
        with self._lock:
            return len(self.exchanges)

    def since(self, mark: int, until: int | None = None) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges[mark:until])


# -- retries with a recorded, fake sleep --------------------------------------------------------


@dataclass
class RetryLog:
    """Every retry stamina scheduled (wait and cause), and what tenacity was asked to sleep."""

    retries: list[RetryDetails] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, details: RetryDetails) -> None:
        with self._lock:
            self.retries.append(details)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)

    def waits_for(self, cause: type[BaseException]) -> list[float]:
        with self._lock:
            return [d.wait_for for d in self.retries if isinstance(d.caused_by, cause)]


@contextmanager
def real_retries() -> Iterator[RetryLog]:
    """stamina as in production (not testing mode), with tenacity's sleep recorded instead."""
    record = RetryLog()
    nap: Any = tenacity.nap  # its ``time`` is what tenacity's default sleep calls
    original = nap.time
    set_on_retry_hooks([LoggingOnRetryHook, record.hook])
    nap.time = SimpleNamespace(sleep=record.sleep)
    try:
        with stamina.set_testing(False):
            yield record
    finally:
        nap.time = original
        set_on_retry_hooks(None)


# -- logs, captured raw and redacted ------------------------------------------------------------


class RawRecords(logging.Handler):
    """Keeps every record's full text (message, arguments, extras, traceback) before redaction."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.getMessage(), repr(record.__dict__)]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        self.texts.append("\n".join(parts))


@contextmanager
def production_logging(secrets: Sequence[str]) -> Iterator[tuple[RawRecords, RedactingFilter]]:
    """DEBUG logging through the project's own set-up (``configure_logging`` then ``protect``).

    A raw handler sits first on the root logger, so it sees records before the redaction
    filter rewrites them: our own code must not log a secret even where the filter would
    catch it.  Everything is put back afterwards.
    """
    import bot.logs

    root = logging.getLogger()
    raw = RawRecords()
    root.handlers.insert(0, raw)
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "stamina")}
    level = root.level
    redactor = configure_logging(logging.DEBUG)
    raw.removeFilter(redactor)  # the raw handler is there to see what the filter hides
    protect(secrets)
    try:
        yield raw, redactor
    finally:
        for handler in root.handlers:
            handler.removeFilter(redactor)
        root.removeHandler(raw)
        bot.logs._installed.remove(redactor)
        root.setLevel(level)
        for name, value in quiet.items():
            logging.getLogger(name).setLevel(value)


def leaked(texts: Sequence[str], secrets: Sequence[str] = SECRETS) -> list[str]:
    """The secrets that appear in any of ``texts``."""
    return sorted({s for s in secrets for t in texts if s in t})


def database_bytes(database: Path) -> bytes:
    """The database file with its WAL and shared-memory files, and the audit key file."""
    return b"".join(
        p.read_bytes()
        for p in sorted(database.parent.iterdir())
        if p.name.startswith(database.name)
    )


# -- the record-by-record comparison ------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """The records one scenario starts from and how to read them back from the sandbox."""

    provider: str
    scope: str | None
    targets: tuple[str, ...]
    requested: tuple[str, ...]
    before: Mapping[str, tuple[str, ...]]  # target -> tags at the start; absent: no such record
    read: Callable[[str], list[str] | None]  # target -> tags now, None when it does not exist


def record_events(runtime: Runtime, op_id: str) -> list[Mapping[str, object]]:
    audit = runtime.untag.audit
    assert audit is not None
    events = [e for e in audit.query(limit=None) if e.kind == "record" and e.op_id == op_id]
    return [e.detail for e in reversed(events)]  # oldest first


def differences(
    runtime: Runtime, seeded: Seeded, op_ids: Sequence[str], *, settled: bool
) -> list[str]:
    """Every disagreement between the sandbox, the stored results and the audit log.

    What agrees, per record, taking the newest result across the operation and its retries:

    - removed / not present: none of the requested tags is on the record any more;
    - not found: the record does not exist at the provider;
    - anything else (failed, locked): a code and a message say why; every tag some result
      reported removed is gone, and every other requested tag the record carried is still
      there, except, before reconciliation (``settled=False``), when the result says it is in
      doubt (a write was sent and its answer lost): then either state is allowed;
    - tags that were not requested are never touched.
    """
    found: list[str] = []
    results: dict[str, dict[str, ResultRecord]] = {}
    for op_id in op_ids:
        stored = runtime.untag.operations.results(op_id)
        results[op_id] = {r.target: r for r in stored}
        events = record_events(runtime, op_id)
        counts = Counter(str(e["target"]) for e in events)
        found += [f"{op_id}: {t} has {n} record events" for t, n in counts.items() if n != 1]
        if set(counts) != set(results[op_id]):
            found.append(f"{op_id}: audit targets differ from stored results")
        for event in events:
            result = results[op_id].get(str(event["target"]))
            if result is None:
                continue
            removed = event["removed"]
            logged = (
                event["outcome"],
                tuple(removed) if isinstance(removed, list) else removed,
                event.get("code"),
                event.get("message"),
            )
            if logged != (result.outcome, result.removed, result.code, result.message):
                found.append(f"{op_id}: {result.target} audit {logged} != stored {result}")
    wanted = {t.casefold() for t in seeded.requested}
    for target in dict.fromkeys(seeded.targets):
        chain = [results[op][target] for op in op_ids if target in results[op]]
        if not chain:
            found.append(f"{target}: no result at all")
            continue
        final = chain[-1]
        before = seeded.before.get(target)
        now = seeded.read(target)
        if before is None or final.outcome == "not found":
            if before is not None or now is not None or final.outcome != "not found":
                found.append(f"{target}: exists={now is not None} but result {final.outcome}")
            continue
        if now is None:
            found.append(f"{target}: the record vanished")
            continue
        untouched = [t for t in before if t.casefold() not in wanted]
        if [t for t in now if t.casefold() not in wanted] != untouched:
            found.append(f"{target}: tags that were not requested changed: {before} -> {now}")
        still = {t.casefold() for t in now} & wanted
        if final.outcome in OK_OUTCOMES:
            if still:
                found.append(f"{target}: result {final.outcome} but still tagged {sorted(still)}")
            continue
        if not final.code or not final.message:
            found.append(f"{target}: {final.outcome} without a reason")
        reported = {t.casefold() for r in chain for t in r.removed}
        if still & reported:
            found.append(f"{target}: reported removed but still tagged {sorted(still & reported)}")
        carried = {t.casefold() for t in before} & wanted
        missing = carried - reported - still
        if missing and (settled or final.code not in IN_DOUBT_CODES):
            found.append(f"{target}: {final.outcome} ({final.code}) but {sorted(missing)} gone")
    return found


# -- "nothing that succeeded was sent again" ----------------------------------------------------


Key = tuple[str, str | None]
"""A record, and for providers that remove one tag per call (Fernand), the tag."""


def removal_keys(provider: str, method: str, path: str, body: Any) -> list[Key]:
    """The records (and tags) a removal request names, or ``[]`` for any other request."""
    path_only, _, query = path.partition("?")
    if method == "POST" and path_only.endswith("/tags/unassign") and isinstance(body, dict):
        return [(str(body["entityId"]).lower(), None)]
    if method == "DELETE" and "/conversations/" in path_only:
        segments = path_only.split("/")
        index = segments.index("conversations")
        return [(segments[index + 1], unquote(segments[index + 3]).casefold())]
    if method == "POST" and path_only.endswith("/actions/remove_tags"):
        if isinstance(body, dict) and isinstance(body.get("ids"), list):
            return [(str(i), None) for i in body["ids"]]
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        return [(unquote(i), None) for i in params.get("ids", "").split(",") if i]
    if method == "POST" and path_only.endswith("/contacts_taggings_remove"):
        contacts = body["source"]["contact_ids"] if isinstance(body, dict) else []
        return [(str(c), None) for c in contacts]
    return []


def recorded_keys(request: RecordedRequest) -> list[Key]:
    try:
        body = request.json() if request.body else None
    except ValueError:  # a form (token requests): never a removal
        return []
    path = request.path + (f"?{request.query}" if request.query else "")
    return removal_keys(request.provider, request.method, path, body)


def duplicate_sends(
    ops: Sequence[tuple[str, Sequence[Exchange]]],
    recorded: Sequence[RecordedRequest],
    done_before: Mapping[str, set[str]],
) -> list[str]:
    """Evidence that a record was sent again after it had succeeded.

    - within one operation, a record (and tag) gets at most one answered removal;
    - a retry sends nothing for a record its origin already settled (``done_before``);
    - the provider applied a removal at most once per answer we received, plus once per
      request whose answer was lost (timed out or dropped after it was sent).
    """
    found: list[str] = []
    answered: Counter[Key] = Counter()
    in_doubt: Counter[Key] = Counter()
    for op_id, exchanges in ops:
        per_op: Counter[Key] = Counter()
        for ex in exchanges:
            keys = removal_keys(ex.provider, ex.method, ex.path, ex.body)
            for key in keys:
                if key[0] in done_before.get(op_id, set()):
                    found.append(f"{op_id}: {key} sent again after it had succeeded")
                if ex.answered:
                    per_op[key] += 1
                    answered[key] += 1 if ex.status is not None and ex.status < 300 else 0
                elif ex.in_doubt:
                    in_doubt[key] += 1
        found += [f"{op_id}: {k} answered {n} times" for k, n in per_op.items() if n > 1]
    applied: Counter[Key] = Counter()
    for request in recorded:
        if request.status is not None and 200 <= request.status < 300:
            applied.update(recorded_keys(request))
    for key, count in applied.items():
        if count > answered[key] + in_doubt[key]:
            found.append(f"{key} applied {count} times for {answered[key]} answers")
    return found


def settle_sandbox(sb: Sandbox, spy: SendSpy, timeout: float = 30.0) -> None:
    """Wait until every request the sandbox is still answering (slow ones) has been answered.

    Each dropped connection leaves one request without a status for good, and the client saw
    each of those as a failed connection: so the sandbox is settled when the unanswered
    requests are exactly as many as the drops the client saw.
    """

    def settled() -> bool:
        drops = sum(1 for e in spy.since(0) if e.error and "RemoteProtocolError" in e.error)
        return sum(1 for r in sb.requests if r.status is None) == drops

    wait_until(settled, timeout, "sandbox still answering slow requests")


def write_figures(figures: Mapping[str, object]) -> None:
    """Append one JSON line to ``$UNTAG_RELIABILITY_FIGURES`` when set (for RELIABILITY.md)."""
    target = os.environ.get("UNTAG_RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps(figures, sort_keys=True) + "\n")
