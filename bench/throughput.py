"""Benchmark of provider throughput against rate limits: untag beside a naive per-record loop.

    .venv/bin/python -m bench.throughput [--zoho 10000] [--fernand 2000] [--cc 5000]
                                         [--alta 150] [--fernand-scale 200]
                                         [--naive-budget 90] [--no-wait]

The sandbox enforces the documented limits: Alta 100 requests/min, Constant
Contact 4/s (and 10,000/day), Zoho 10 requests in flight; Fernand's 5 writes
and 20 reads a minute are multiplied by ``--fernand-scale`` (default 200:
1,000 writes and 4,000 reads a minute, in the same 60-second sliding window)
on both sides, since 2,000 writes at 5 a minute would take 6.7 hours.
untag is configured the same way (its client-side pacing), runs in-process
(``build_runtime``, SQLite, audit log, as ``untag run`` does) and removes one
tag from every record: preview (``plan``) and removal (``execute``) are
measured separately.  The sandbox runs in a process of its own (``untag
sandbox``, seeded and read over its ``/_sandbox`` control API), as a real
provider would: in-process, its HTTP handling would compete with untag for the
GIL.  Constant Contact activities complete at once, so the figures show our
request pattern rather than simulated processing time.

The naive loop beside it sends one plain-httpx request per record, no
pacing, no batching, and sleeps out each 429 (``Retry-After``, Fernand's
reset epoch, else 1 s).  It gets ``--naive-budget`` seconds per provider;
past that its time is extrapolated linearly (it is sequential) and marked ``~``.

Per provider and phase: requests made against the minimum possible, 429s
received (from the sandbox's request log), wall time against the time the
rate limit makes unavoidable (``(ceil(n / limit) - 1) x window``), and that
floor as a share of the wall time (the achieved share of the allowed rate).
"""

from __future__ import annotations

import argparse
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import quote

import httpx

from bench._common import load_average, machine, print_table, wait_for_quiet
from bench._remote import LogCounts, RemoteSandbox, remote_sandbox
from bot.config import load_settings
from bot.runtime import Runtime, build_runtime
from commands.actions import Action, ProviderName
from commands.results import Outcome

USER = "U0BENCH"
ZOHO_UNTAG, ZOHO_NAIVE = 554023300000000000, 554023400000000000
FERNAND_UNTAG, FERNAND_NAIVE = 3_000_000, 4_000_000
TAG, NAIVE_TAG = "Bulk", "Naive"
EVERYONE = "Everyone"  # on so many contacts that a preview reads contacts one by one


@dataclass
class Row:
    """One measured phase."""

    provider: str
    who: str
    phase: str
    done: int  # records handled
    total: int  # records asked for
    requests: int
    minimum: int | None
    throttled: int
    wall: float
    floor: float | None  # seconds the rate limit makes unavoidable
    note: str = ""

    @property
    def estimated_wall(self) -> float:
        """Wall time for all records (extrapolated when the loop ran out of budget)."""
        return self.wall * self.total / self.done if self.done else math.nan

    def cells(self) -> tuple[str, ...]:
        partial = self.done < self.total
        wall = f"~{self.estimated_wall:,.1f}" if partial else f"{self.wall:,.1f}"
        requests = (
            f"~{self.requests * self.total / max(self.done, 1):,.0f}"
            if partial
            else (f"{self.requests:,}")
        )
        share = "-"
        if self.floor:
            share = f"{self.floor / self.estimated_wall:.1%}"
        return (
            self.provider,
            self.who,
            self.phase,
            f"{self.total:,}",
            requests,
            f"{self.minimum:,}" if self.minimum is not None else "-",
            str(self.throttled) + (" (so far)" if partial and self.throttled else ""),
            wall,
            f"{self.floor:,.1f}" if self.floor is not None else "-",
            share,
            self.note,
        )


HEADER = (
    "provider",
    "who",
    "phase",
    "records",
    "requests",
    "minimum",
    "429s",
    "wall s",
    "floor s",
    "floor/wall",
    "note",
)


def floor(requests: int, limit: int, window: float) -> float:
    """Seconds a sliding-window limit of ``limit`` per ``window`` forces on ``requests`` calls."""
    return max(0, math.ceil(requests / limit) - 1) * window


class Log:
    """Slices of the sandbox's request log, by provider, since a mark, as counts."""

    def __init__(self, sandbox: RemoteSandbox) -> None:
        self.sandbox = sandbox

    def mark(self) -> int:
        return self.sandbox.counts().end

    def since(self, mark: int, provider: str) -> LogCounts:
        return self.sandbox.counts(mark, provider)

    def wait_window(self, provider: str, window: float) -> None:
        """Sleep until no request to ``provider`` is still inside its rate window."""
        counts = self.sandbox.counts(0, provider)
        if counts.last_at is not None:
            left = counts.last_at + window + 0.2 - counts.now
            if left > 0:
                print(f"  waiting {left:.0f} s for {provider}'s rate window to clear", flush=True)
                time.sleep(left)


@contextmanager
def peak_in_flight(sandbox: RemoteSandbox, api: str) -> Iterator[list[int]]:
    """The most requests ``api`` had in flight at once while the block ran (the sandbox counts
    each admission, so no peak is missed between samples)."""
    sandbox.reset_in_flight_peaks()
    peak = [0]
    try:
        yield peak
    finally:
        peak[0] = sandbox.peak_in_flight(api)


# -- untag ------------------------------------------------------------------------------------


def untag_runtime(env: Mapping[str, str], database: Path, fernand_scale: int) -> Runtime:
    values: dict[str, Any] = {k.lower(): v for k, v in env.items()}
    values.update(
        untag_database=database,
        fernand_writes_per_minute=5 * fernand_scale,
        fernand_reads_per_minute=20 * fernand_scale,
    )
    return build_runtime(load_settings(**values))


def run_untag(runtime: Runtime, log: Log, provider: str, action: Action) -> tuple[Row, Row, int]:
    """Preview then remove; the two phases' rows (requests and minimum filled in by the caller)."""
    mark = log.mark()
    started = time.perf_counter()
    plan = runtime.untag.plan(USER, action)
    previewed = time.perf_counter()
    preview_requests = log.since(mark, provider)
    mark = log.mark()
    report = runtime.untag.execute(USER, plan)
    finished = time.perf_counter()
    remove_requests = log.since(mark, provider)
    removed = sum(1 for r in report.results if r.outcome is Outcome.REMOVED)
    n = len(action.targets)
    preview = Row(
        provider,
        "untag",
        "preview",
        n,
        n,
        preview_requests.count,
        None,
        preview_requests.status(429),
        previewed - started,
        None,
    )
    remove = Row(
        provider,
        "untag",
        "remove",
        n,
        n,
        remove_requests.count,
        None,
        remove_requests.status(429),
        finished - previewed,
        None,
    )
    return preview, remove, n - removed


# -- the naive loop -----------------------------------------------------------------------------


def _wait_for(response: httpx.Response) -> float:
    """How long a naive client sleeps after a 429: what the provider said, else 1 s."""
    for name in ("retry-after", "ratelimit-reset"):
        value = response.headers.get(name)
        if value and value.replace(".", "", 1).isdigit():
            return float(value)
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.replace(".", "", 1).isdigit():
        seconds = float(reset)
        return max(seconds - time.time(), 0.0) if seconds > 1e9 else seconds
    return 1.0


def naive_loop(
    items: Sequence[str], call: Callable[[str], httpx.Response], budget: float
) -> tuple[int, float]:
    """One call per item, sleeping out 429s; stops after ``budget`` s. (items done, seconds)."""
    started = time.perf_counter()
    done = 0
    for item in items:
        if time.perf_counter() - started > budget:
            break
        while True:
            response = call(item)
            if response.status_code != 429:
                break
            time.sleep(_wait_for(response))
        done += 1
    return done, time.perf_counter() - started


def naive_row(
    log: Log, provider: str, total: int, run: Callable[[], tuple[int, float]], note: str
) -> Row:
    mark = log.mark()
    done, wall = run()
    requests = log.since(mark, provider)
    return Row(
        provider,
        "naive",
        "remove",
        done,
        total,
        requests.count,
        None,
        requests.status(429),
        wall,
        None,
        note,
    )


def zoho_token(client: httpx.Client, env: Mapping[str, str]) -> tuple[str, str]:
    body = client.post(
        env["ZOHO_ACCOUNTS_URL"] + "/oauth/v2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": env["ZOHO_CLIENT_ID"],
            "client_secret": env["ZOHO_CLIENT_SECRET"],
            "refresh_token": env["ZOHO_REFRESH_TOKEN"],
        },
    ).json()
    return str(body["access_token"]), str(body["api_domain"])


# -- the run --------------------------------------------------------------------------------


@dataclass
class Sizes:
    zoho: int
    fernand: int
    cc: int
    alta: int
    cc_one_by_one: int
    fernand_scale: int
    naive_budget: float


@dataclass
class Seeded:
    """What was seeded: per provider, the records for untag and, apart, for the naive loop."""

    ids: dict[str, tuple[list[str], list[str]]]
    naive_cc_tag: str  # the Constant Contact tag id the naive loop removes
    everyone_carriers: int  # contacts carrying EVERYONE (no phase removes it)


def seed(sandbox: RemoteSandbox, sizes: Sizes) -> Seeded:
    """Records for untag and, apart, for the naive loop (which removes another tag)."""
    ids: dict[str, tuple[list[str], list[str]]] = {}
    zoho = [str(ZOHO_UNTAG + i) for i in range(sizes.zoho)]
    zoho_naive = [str(ZOHO_NAIVE + i) for i in range(sizes.zoho)]
    sandbox.seed({"provider": "zoho", "module": "Leads", "ids": zoho, "tags": [TAG]})
    sandbox.seed({"provider": "zoho", "module": "Leads", "ids": zoho_naive, "tags": [NAIVE_TAG]})
    ids["zoho"] = (zoho, zoho_naive)
    fernand = [str(FERNAND_UNTAG + i) for i in range(sizes.fernand)]
    fernand_naive = [str(FERNAND_NAIVE + i) for i in range(sizes.fernand)]
    sandbox.seed({"provider": "fernand", "ids": fernand, "tags": [TAG]})
    sandbox.seed({"provider": "fernand", "ids": fernand_naive, "tags": [NAIVE_TAG]})
    ids["fernand"] = (fernand, fernand_naive)
    cc = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"cc/{i}")) for i in range(sizes.cc)]
    cc_naive = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"cc-naive/{i}")) for i in range(sizes.cc)]
    sandbox.seed({"provider": "constantcontact", "ids": cc, "tags": [TAG, EVERYONE]})
    naive_tags = sandbox.seed(
        {"provider": "constantcontact", "ids": cc_naive, "tags": [NAIVE_TAG, EVERYONE]}
    )["tag_ids"]
    # Listing a tag's contacts pays only when its pages are a tenth of the contacts asked
    # for: past 20 pages (10,000 contacts), a preview of 200 reads each contact instead.
    others = max(0, 10_001 - 2 * sizes.cc)
    sandbox.seed(
        {
            "provider": "constantcontact",
            "ids": [str(uuid.uuid5(uuid.NAMESPACE_URL, f"cc-other/{i}")) for i in range(others)],
            "tags": [EVERYONE],
        }
    )
    ids["constantcontact"] = (cc, cc_naive)
    alta = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"alta/{i}")) for i in range(sizes.alta)]
    alta_naive = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"alta-naive/{i}")) for i in range(sizes.alta)]
    for batch, tag in ((alta, TAG), (alta_naive, NAIVE_TAG)):
        sandbox.seed(
            {"provider": "alta", "entity_type": "emailThread", "ids": batch, "tags": [tag]}
        )
    ids["alta"] = (alta, alta_naive)
    return Seeded(ids, str(naive_tags[NAIVE_TAG]), 2 * sizes.cc + others)


def measure(sizes: Sizes) -> tuple[list[Row], list[str]]:
    limits = {
        "alta_per_minute": 100,
        "fernand_reads_per_minute": 20 * sizes.fernand_scale,
        "fernand_writes_per_minute": 5 * sizes.fernand_scale,
        "cc_per_second": 4,
        "cc_per_day": 10_000,
        "zoho_concurrency": 10,
    }
    rows: list[Row] = []
    notes: list[str] = []
    with (
        TemporaryDirectory(prefix="untag-bench-") as tmp,
        remote_sandbox(Path(tmp) / "sandbox.log") as sb,
    ):
        sb.set_limits(limits)
        sb.set_cc_items_per_second(None)
        seeded = seed(sb, sizes)
        log = Log(sb)
        env = sb.env()
        runtime = untag_runtime(env, Path(tmp) / "untag.db", sizes.fernand_scale)
        try:
            rows += untag_phases(runtime, log, sb, sizes, seeded, notes)
        finally:
            runtime.close()
        rows += naive_phases(log, env, sizes, seeded)
    return rows, notes


def untag_phases(
    runtime: Runtime,
    log: Log,
    sb: RemoteSandbox,
    sizes: Sizes,
    seeded: Seeded,
    notes: list[str],
) -> list[Row]:
    rows: list[Row] = []
    ids = seeded.ids
    fernand_writes = 5 * sizes.fernand_scale

    def record(name: str, action: Action) -> tuple[Row, Row]:
        print(f"  untag: {name} ({len(action.targets):,} records)…", flush=True)
        preview, remove, failed = run_untag(runtime, log, name, action)
        if failed:
            notes.append(f"untag {name}: {failed:,} records not removed")
        return preview, remove

    # Alta first and Fernand second: their windows are a minute long, and the naive
    # loop's turn for each comes after at least a minute of other work.
    alta = Action(
        provider=ProviderName.ALTA, scope="emailThread", targets=tuple(ids["alta"][0]), tags=(TAG,)
    )
    preview, remove = record("alta", alta)
    preview.minimum = 0
    remove.minimum, remove.floor = sizes.alta, floor(remove.requests, 100, 60.0)
    rows += [preview, remove]

    fernand = Action(provider=ProviderName.FERNAND, targets=tuple(ids["fernand"][0]), tags=(TAG,))
    preview, remove = record("fernand", fernand)
    preview.minimum = sizes.fernand + 1  # each conversation, and the tag catalogue once
    preview.floor = floor(preview.requests, 20 * sizes.fernand_scale, 60.0)
    remove.minimum = sizes.fernand  # one DELETE per tag per conversation: no batch API
    remove.floor = floor(remove.requests, fernand_writes, 60.0)
    rows += [preview, remove]

    zoho = Action(
        provider=ProviderName.ZOHO, scope="Leads", targets=tuple(ids["zoho"][0]), tags=(TAG,)
    )
    with peak_in_flight(sb, "zoho") as peak:
        preview, remove = record("zoho", zoho)
    preview.minimum = math.ceil(sizes.zoho / 100)  # GET ?ids= takes 100
    remove.minimum = math.ceil(sizes.zoho / 500)  # remove_tags takes 500
    remove.note = preview.note = f"peak {peak[0]} in flight (cap 10)"
    rows += [preview, remove]

    cc = Action(
        provider=ProviderName.CONSTANT_CONTACT,
        scope="contacts",
        targets=tuple(ids["constantcontact"][0]),
        tags=(TAG,),
    )
    preview, remove = record("constantcontact", cc)
    activities = math.ceil(sizes.cc / 500)
    # The catalogue, then either each contact or the pages of contacts carrying the tag.
    preview.minimum = 1 + min(sizes.cc, math.ceil(sizes.cc / 500))
    preview.floor = floor(preview.requests, 4, 1.0)
    remove.minimum = 2 * activities  # each activity created once and read once when done
    remove.floor = floor(remove.requests, 4, 1.0)
    posts = log.since(0, "constantcontact").method("POST")
    remove.note = f"{posts} activities + {remove.requests - posts} status reads"
    rows += [preview, remove]

    # Where 4/s binds: a preview that reads each contact (its tag is on too many contacts).
    single = Action(
        provider=ProviderName.CONSTANT_CONTACT,
        scope="contacts",
        targets=tuple(ids["constantcontact"][0][: sizes.cc_one_by_one]),
        tags=(EVERYONE,),
    )
    print(f"  untag: constantcontact preview one by one ({len(single.targets):,})…", flush=True)
    mark = log.mark()
    started = time.perf_counter()
    plan = runtime.untag.plan(USER, single)
    wall = time.perf_counter() - started
    runtime.untag.cancel(USER, plan.operation.id)
    reads = log.since(mark, "constantcontact")
    n = len(single.targets)
    rows.append(
        Row(
            "constantcontact",
            "untag",
            "preview 1 by 1",
            n,
            n,
            reads.count,
            1 + n,
            reads.status(429),
            wall,
            floor(reads.count, 4, 1.0),
            f"tag on {seeded.everyone_carriers:,} contacts",
        )
    )
    return rows


def naive_phases(log: Log, env: Mapping[str, str], sizes: Sizes, seeded: Seeded) -> list[Row]:
    rows: list[Row] = []
    ids = seeded.ids
    budget = sizes.naive_budget
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        log.wait_window("alta", 60.0)
        print(f"  naive: alta ({sizes.alta:,} records)…", flush=True)
        alta_headers = {"Authorization": f"Bearer {env['ALTA_API_TOKEN']}"}

        def alta(entity: str) -> httpx.Response:
            body = {"entityId": entity, "entityType": "emailThread", "tags": [NAIVE_TAG]}
            return client.post(
                env["ALTA_BASE_URL"] + "/tags/unassign", json=body, headers=alta_headers
            )

        row = naive_row(
            log, "alta", sizes.alta, lambda: naive_loop(ids["alta"][1], alta, budget), ""
        )
        row.minimum, row.floor = sizes.alta, floor(sizes.alta, 100, 60.0)
        rows.append(row)

        log.wait_window("fernand", 60.0)
        print(f"  naive: fernand ({sizes.fernand:,} records)…", flush=True)
        fernand_headers = {"X-API-Key": env["FERNAND_API_KEY"]}

        def fernand(conversation: str) -> httpx.Response:
            path = f"/conversations/{conversation}/tags/{quote(NAIVE_TAG, safe='')}"
            return client.delete(env["FERNAND_BASE_URL"] + path, headers=fernand_headers)

        row = naive_row(
            log,
            "fernand",
            sizes.fernand,
            lambda: naive_loop(ids["fernand"][1], fernand, budget),
            "",
        )
        row.minimum = sizes.fernand
        row.floor = floor(sizes.fernand, 5 * sizes.fernand_scale, 60.0)
        rows.append(row)

        print(f"  naive: zoho ({sizes.zoho:,} records)…", flush=True)
        token, api_domain = zoho_token(client, env)
        zoho_headers = {"Authorization": f"Zoho-oauthtoken {token}"}

        def zoho(record: str) -> httpx.Response:
            body = {"tags": [{"name": NAIVE_TAG}], "ids": [record]}
            url = f"{api_domain}/crm/v7/Leads/actions/remove_tags"
            return client.post(url, json=body, headers=zoho_headers)

        row = naive_row(
            log, "zoho", sizes.zoho, lambda: naive_loop(ids["zoho"][1], zoho, budget), ""
        )
        row.minimum = math.ceil(sizes.zoho / 500)
        rows.append(row)

        print(f"  naive: constantcontact ({sizes.cc:,} records)…", flush=True)
        cc_headers = {"Authorization": f"Bearer {env['CONSTANT_CONTACT_ACCESS_TOKEN']}"}
        tag_id = seeded.naive_cc_tag

        def cc(contact: str) -> httpx.Response:
            body = {"source": {"contact_ids": [contact]}, "tag_ids": [tag_id]}
            url = env["CONSTANT_CONTACT_BASE_URL"] + "/activities/contacts_taggings_remove"
            return client.post(url, json=body, headers=cc_headers)

        row = naive_row(
            log,
            "constantcontact",
            sizes.cc,
            lambda: naive_loop(ids["constantcontact"][1], cc, budget),
            "one activity per contact, never polled",
        )
        row.minimum = 2 * math.ceil(sizes.cc / 500)
        row.floor = floor(sizes.cc, 4, 1.0)
        rows.append(row)
    return rows


def ratios(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """Naive removal time against untag's whole job (preview + removal), per provider."""
    out: list[tuple[str, ...]] = []
    for provider in ("alta", "fernand", "zoho", "constantcontact"):
        ours = [
            r
            for r in rows
            if r.provider == provider and r.who == "untag" and r.phase in ("preview", "remove")
        ]
        naive = [r for r in rows if r.provider == provider and r.who == "naive"]
        if not ours or not naive:
            continue
        total = sum(r.wall for r in ours)
        remove = next(r for r in ours if r.phase == "remove")
        est = naive[0].estimated_wall
        approx = "~" if naive[0].done < naive[0].total else ""
        out.append(
            (
                provider,
                f"{total:,.1f}",
                f"{remove.wall:,.1f}",
                f"{approx}{est:,.1f}",
                f"{approx}{est / total:,.1f}x",
                f"{approx}{est / remove.wall:,.1f}x",
                f"{remove.throttled} vs {naive[0].throttled}",
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--zoho", type=int, default=10_000, help="Zoho Leads (10000)")
    parser.add_argument("--fernand", type=int, default=2_000, help="Fernand conversations (2000)")
    parser.add_argument("--cc", type=int, default=5_000, help="Constant Contact contacts (5000)")
    parser.add_argument("--alta", type=int, default=150, help="Alta threads (150)")
    parser.add_argument(
        "--cc-one-by-one", type=int, default=200, help="CC contacts previewed one by one (200)"
    )
    parser.add_argument("--fernand-scale", type=int, default=200, help="Fernand limits x (200)")
    parser.add_argument("--naive-budget", type=float, default=90.0, help="s per naive loop (90)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    args = parser.parse_args()

    load = load_average() if args.no_wait else wait_for_quiet()
    sizes = Sizes(
        args.zoho,
        args.fernand,
        args.cc,
        args.alta,
        args.cc_one_by_one,
        args.fernand_scale,
        args.naive_budget,
    )
    print(f"untag throughput benchmark on {machine().line()}; 1-min load {load:.2f}")
    print(
        f"limits: Alta 100/min, Fernand {5 * sizes.fernand_scale} writes and "
        f"{20 * sizes.fernand_scale} reads/min (x{sizes.fernand_scale}), Constant Contact 4/s, "
        "Zoho 10 in flight"
    )
    started = time.perf_counter()
    rows, notes = measure(sizes)
    print()
    print_table([r.cells() for r in rows], HEADER)
    print()
    print_table(
        ratios(rows),
        (
            "provider",
            "untag total s",
            "untag remove s",
            "naive s",
            "naive/untag total",
            "naive/untag remove",
            "429s untag vs naive",
        ),
    )
    for note in notes:
        print(f"note: {note}")
    took = time.perf_counter() - started
    print(f"\n(~ = extrapolated from a partial run; the benchmark took {took:.0f} s)")


if __name__ == "__main__":
    main()
