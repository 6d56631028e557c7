"""Benchmark of Slack ack latency under load, untag against a call-then-ack baseline.

    .venv/bin/python -m bench.ack [--commands 2000] [--concurrency 50] [--latency 1.0]
                                  [--threads 16] [--workers 1] [--no-wait] [--json FILE]

``untag serve`` runs as a subprocess (real gunicorn, loopback) against the
sandbox and a fake Slack, both in this process.  Five bulk removals are
started through Slack first (command → preview modal → Remove): Zoho 1,500
Leads, Bigin 1,500 Companies, Fernand 30 conversations, Constant Contact 40
contacts and Alta 300 threads.  Then every provider call is made slow (a
sandbox ``latency`` fault of ``--latency`` seconds) and ``--commands`` signed
slash commands are sent, ``--concurrency`` at a time: nine in ten are
``zoho Leads <id> Prime`` (views.open at once, a preview job queued), one in
ten ``help``.  They come from ``bench._load``, a load generator in a process
of its own (one asyncio loop, keep-alive connections, a fraction of a
millisecond of CPU per command), with a fresh trigger_id per command from the
fake Slack, as Slack sends them.  Ack latency is the generator's time from
sending the request to the complete answer.

The same load then goes to the baseline (``bench.baseline_app``, served the
same way), which reads the record from the slow provider before acking, and
first, as a calibration, to a no-op app served the same way
(``bench.floor_app``): what the machine, gunicorn and this load generator
cost by themselves.

Prints p50/p95/p99/max, the share over 3 s, and our p99 against the
baseline's; draws ``bench/ack_latency.png`` when matplotlib is installed
(``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._common import (
    UNTAG,
    Memory,
    Served,
    cpu_seconds,
    free_port,
    load_average,
    machine,
    memory,
    percentile,
    print_table,
    process_tree,
    serve,
    stop,
    wait_for_quiet,
)
from sandbox import Fault, Limits, Sandbox
from sandbox.slack import FakeSlack

BOT_TOKEN = "xoxb-bench-ack-token"
SECRET = "bench-ack-signing-secret"
SLOW_PROVIDERS = ("alta", "fernand", "zoho", "bigin", "constantcontact")
DEADLINE = 3.0
LOAD_USERS = 50
HELP_EVERY = 10
BULK_USER = "U0BULK"
ROOT = Path(__file__).resolve().parents[1]
PLOT = Path(__file__).with_name("ack_latency.png")
BUSY = "untag is busy"  # in an ack, or as the title of a modal updated after it

ZOHO_LOAD_BASE = 554023200000000000
ZOHO_BULK_BASE = 554023100000000000
BIGIN_BULK_BASE = 2445013100000000000
FERNAND_BULK_BASE = 900_000


@dataclass(frozen=True)
class Bulk:
    """One bulk removal started before the load: its command and the tag typed to confirm."""

    provider: str
    text: str
    tag: str
    size: int


@dataclass
class Sample:
    started: float  # seconds since the load began
    latency: float  # seconds until the whole answer arrived
    status: int  # HTTP status, 0 for a transport error
    kind: str  # "remove" or "help"
    busy: bool = False  # acked with "untag is busy" (the preview queue was full): no modal


@dataclass
class Stack:
    """The sandbox, the fake Slack, and the environment pointing a server at both."""

    sandbox: Sandbox
    slack: FakeSlack
    env: dict[str, str]
    workdir: Path
    bulks: list[Bulk] = field(default_factory=list)


def _ids(base: int, count: int) -> list[str]:
    return [str(base + i) for i in range(count)]


def _uuids(prefix: str, count: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{prefix}/{i}")) for i in range(count)]


def seed(sandbox: Sandbox, load_records: int) -> list[Bulk]:
    """Records for the load's commands and the five bulk removals."""
    state = sandbox.state
    state.zoho.add_records("Leads", _ids(ZOHO_LOAD_BASE, load_records), ["Prime"])
    zoho = _ids(ZOHO_BULK_BASE, 1500)
    state.zoho.add_records("Leads", zoho, ["Bulk"])
    bigin = _ids(BIGIN_BULK_BASE, 1500)
    state.bigin.add_records("Accounts", bigin, ["Bulk"])
    fernand = list(range(FERNAND_BULK_BASE, FERNAND_BULK_BASE + 30))
    state.fernand.add_conversations(fernand, ["Bulk"])
    contacts = _uuids("cc", 40)
    state.constantcontact.add_contacts(contacts, ["Bulk"])
    threads = _uuids("alta", 300)
    state.alta.add_entities("emailThread", threads, ["Bulk"])
    return [
        Bulk("zoho", f"zoho Leads {','.join(zoho)} Bulk", "Bulk", len(zoho)),
        Bulk("bigin", f"bigin Companies {','.join(bigin)} Bulk", "Bulk", len(bigin)),
        Bulk("fernand", f"fernand {','.join(map(str, fernand))} Bulk", "Bulk", len(fernand)),
        Bulk("constantcontact", f"cc contacts {','.join(contacts)} Bulk", "Bulk", len(contacts)),
        Bulk("alta", f"alta thread {','.join(threads)} Bulk", "Bulk", len(threads)),
    ]


@contextmanager
def stack(load_records: int) -> Iterator[Stack]:
    """Sandbox and fake Slack on loopback, seeded; torn down on the way out.

    Zoho's concurrency limit is lifted in the sandbox so that the baseline's 16
    concurrent reads are slowed like untag's instead of being refused at once
    with 429s (untag still caps itself at 10).  Fernand reads are raised to
    600/min on both sides so the bulk preview takes seconds, not minutes; its
    writes stay at 5/min.  Constant Contact activities progress at 1 contact/s.
    """
    limits = Limits(zoho_concurrency=None, fernand_reads_per_minute=600)
    with (
        tempfile.TemporaryDirectory(prefix="untag-bench-") as tmp,
        Sandbox(port=0, seed_demo=True, limits=limits, cc_items_per_second=1.0).start() as sb,
        FakeSlack(bot_token=BOT_TOKEN, signing_secret=SECRET).start() as slack,
    ):
        workdir = Path(tmp)
        bulks = seed(sb, load_records)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("ALTA_", "FERNAND_", "ZOHO_", "BIGIN_", "CONSTANT_CONTACT_", "UNTAG_", "SLACK_")
            )
        }
        env.update(sb.env())
        env.update(
            {
                "UNTAG_DATABASE": str(workdir / "untag.db"),
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.api_url,
                "FERNAND_READS_PER_MINUTE": "600",
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        yield Stack(sb, slack, env, workdir, bulks)


def start_untag(st: Stack, *, workers: int, threads: int, name: str = "untag") -> Served:
    port = free_port()
    argv = [UNTAG, "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers), "--threads", str(threads)]
    return serve(argv, st.env, st.workdir, port, st.workdir / f"{name}.log")


def start_module(st: Stack, module: str, *, workers: int, threads: int) -> Served:
    """Another app of ``bench`` (the baseline, the floor) served by ``bot.serving.run_gunicorn``."""
    port = free_port()
    argv = [sys.executable, "-m", module, "--port", str(port)]
    argv += ["--workers", str(workers), "--threads", str(threads)]
    env = {**st.env, "PYTHONPATH": str(ROOT)}
    return serve(argv, env, st.workdir, port, st.workdir / f"{module}.log")


def _tags_value(tag: str) -> dict[str, dict[str, dict[str, str]]]:
    return {"tags": {"tags_input": {"type": "plain_text_input", "value": tag}}}


def start_bulk_removals(st: Stack, served: Served, latency: float, timeout: float = 120.0) -> float:
    """Run each bulk command to its preview modal, slow the providers down, press Remove.

    The previews are read at full speed (they would take minutes at ``latency``
    per call); the removals then run against the slow sandbox.  Returns the
    seconds it took.
    """
    started = time.monotonic()
    slack = st.slack
    for bulk in st.bulks:
        reply = slack.slash_command(served.events_url, bulk.text, user_id=BULK_USER)
        if reply.status != 200:
            raise RuntimeError(f"bulk {bulk.provider} command answered {reply.status}")

    def confirms() -> list[dict[str, Any]]:
        return [v for v in list(slack.views.values()) if v.get("callback_id") == "untag_confirm"]

    slack.wait_for(lambda: len(confirms()) >= len(st.bulks), timeout=timeout, message="bulk")
    slow_down(st.sandbox, latency)
    for view in confirms():
        done = slack.submit_view(served.events_url, view["id"], _tags_value("Bulk"))
        if done.status != 200:
            raise RuntimeError(f"bulk confirmation answered {done.status}")
    return time.monotonic() - started


def slow_down(sandbox: Sandbox, seconds: float) -> None:
    """Every provider call waits ``seconds`` before it is answered (token endpoints excepted)."""
    for provider in SLOW_PROVIDERS:
        sandbox.add_fault(Fault(provider=provider, kind="latency", seconds=seconds))


def command_text(index: int, load_records: int) -> str:
    if index % HELP_EVERY == HELP_EVERY - 1:
        return "help"
    return f"zoho Leads {ZOHO_LOAD_BASE + index % load_records} Prime"


def _load(
    url: str, slack: FakeSlack, commands: int, concurrency: int, load_records: int
) -> tuple[list[Sample], float, float]:
    """Send the commands from ``bench._load`` in its own process: samples, wall and its CPU."""
    texts = [command_text(i, load_records) for i in range(commands)]
    spec = {
        "url": url,
        "slack_url": slack.url,
        "concurrency": concurrency,
        "busy_marker": BUSY,
        "fields": {
            "team_id": slack.identity.team_id,
            "team_domain": slack.identity.team_domain,
            "api_app_id": slack.identity.app_id,
            "channel_id": "C0LOAD",
        },
        "commands": [[f"U0LOAD{i % LOAD_USERS:02d}", text] for i, text in enumerate(texts)],
    }
    env = {**os.environ, "BENCH_SIGNING_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench._load"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr.decode(errors='replace')}")
    result = json.loads(done.stdout)
    samples = [
        Sample(started, latency, status, "help" if texts[index] == "help" else "remove", busy)
        for index, started, latency, status, busy in result["samples"]
    ]
    return samples, float(result["wall"]), float(result["cpu"])


@dataclass
class Load:
    """One load run: the samples, its wall time, and the CPU seconds spent meanwhile."""

    samples: list[Sample]
    wall: float
    server_cpu: float  # the server's processes (gunicorn master and workers)
    load_cpu: float  # the load generator's process
    fakes_cpu: float  # this process: the fake Slack and the sandbox answering the server


def run_load(
    url: str, slack: FakeSlack, commands: int, concurrency: int, load_records: int, server: int
) -> Load:
    """Send the commands to the server whose master is ``server`` (a pid)."""
    pids = process_tree(server)
    server_before = sum(cpu_seconds(p) for p in pids)
    fakes_before = time.process_time()
    samples, wall, load_cpu = _load(url, slack, commands, concurrency, load_records)
    return Load(
        samples,
        wall,
        sum(cpu_seconds(p) for p in pids) - server_before,
        load_cpu,
        time.process_time() - fakes_before,
    )


@dataclass
class Summary:
    name: str
    count: int
    wall: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    over_3s: int
    errors: int
    server_cpu_ms: float  # per command
    load_cpu_ms: float  # per command
    fakes_cpu_ms: float  # per command
    server_p50_ms: float | None = None
    server_p99_ms: float | None = None

    @property
    def rate(self) -> float:
        return self.count / self.wall if self.wall else 0.0

    def row(self) -> tuple[str, ...]:
        server = (
            f"{self.server_p50_ms:.1f} / {self.server_p99_ms:.1f}"
            if self.server_p50_ms is not None and self.server_p99_ms is not None
            else "-"
        )
        return (
            self.name,
            f"{self.count:,}",
            f"{self.rate:,.0f}/s",
            f"{self.p50_ms:,.1f}",
            f"{self.p95_ms:,.1f}",
            f"{self.p99_ms:,.1f}",
            f"{self.max_ms:,.1f}",
            f"{self.over_3s} ({self.over_3s / self.count:.1%})",
            str(self.errors),
            server,
            f"{self.server_cpu_ms:.2f} + {self.load_cpu_ms:.2f} + {self.fakes_cpu_ms:.2f}",
        )


HEADER = (
    "server",
    "commands",
    "rate",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "over 3 s",
    "non-200",
    "in-app p50/p99 ms",
    "CPU ms/cmd server + load + fakes",
)

_LOG_LINE = re.compile(r"POST /slack/events (\d{3}) (\d+)ms")


def server_times(log: Path) -> list[float]:
    """Milliseconds per ``POST /slack/events`` as the app logged them (WSGI entry to answer)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [float(m.group(2)) for m in _LOG_LINE.finditer(text)]


def summarize(name: str, load: Load, log: Path | None) -> Summary:
    samples = load.samples
    latencies = [s.latency for s in samples]
    inside = server_times(log)[-len(samples) :] if log else []
    return Summary(
        name=name,
        count=len(samples),
        wall=load.wall,
        p50_ms=percentile(latencies, 50) * 1000,
        p95_ms=percentile(latencies, 95) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        max_ms=max(latencies) * 1000,
        over_3s=sum(1 for s in samples if s.latency > DEADLINE),
        errors=sum(1 for s in samples if s.status != 200),
        server_cpu_ms=load.server_cpu / len(samples) * 1000,
        load_cpu_ms=load.load_cpu / len(samples) * 1000,
        fakes_cpu_ms=load.fakes_cpu / len(samples) * 1000,
        server_p50_ms=percentile(inside, 50) if inside else None,
        server_p99_ms=percentile(inside, 99) if inside else None,
    )


def bulk_progress(sandbox: Sandbox, since: float) -> dict[str, int]:
    """Provider writes made since ``since`` (sandbox clock), per provider: the bulk jobs' work."""
    counts: dict[str, int] = {}
    for request in sandbox.requests:
        if request.at >= since and request.method != "GET":
            counts[request.provider] = counts.get(request.provider, 0) + 1
    return counts


@dataclass
class UntagRun:
    summary: Summary
    samples: list[Sample]
    idle: Memory
    after: Memory
    healthy_after: float
    bulk_setup: float
    bulk_writes: dict[str, int]
    views_opened: int
    previews: int  # preview modals filled in by a job during the load
    busy: int  # commands told "untag is busy" in a modal opened for it (the job queue was full)
    busy_acks: int  # commands told "untag is busy" in the ack itself, with no modal


def run_untag(
    st: Stack, *, commands: int, concurrency: int, latency: float, workers: int, threads: int
) -> UntagRun:
    """untag serve: start it, start the bulk removals, slow the providers, send the load."""
    served = start_untag(st, workers=workers, threads=threads)
    try:
        time.sleep(1.0)  # let the workers settle before reading "idle" memory
        idle = memory(served.process.pid)
        setup = start_bulk_removals(st, served, latency)
        since = st.sandbox.clock.time()
        opened_before = len(st.slack.calls_to("views.open"))
        updated_before = len(st.slack.calls_to("views.update"))
        load = run_load(
            served.events_url, st.slack, commands, concurrency, commands, served.process.pid
        )
        writes = bulk_progress(st.sandbox, since)
        opened = len(st.slack.calls_to("views.open")) - opened_before
        titles = [_title(c.params) for c in st.slack.calls_to("views.update")[updated_before:]]
        after = memory(served.process.pid)
    finally:
        stop(served)
    summary = summarize("untag serve", load, served.log)
    samples = load.samples
    busy = titles.count(BUSY)
    return UntagRun(
        summary,
        samples,
        idle,
        after,
        served.healthy_after,
        setup,
        writes,
        opened,
        len(titles) - busy,
        busy,
        sum(1 for s in samples if s.busy),
    )


def _title(params: dict[str, Any]) -> str:
    view = params.get("view")
    title = view.get("title") if isinstance(view, dict) else None
    return str(title.get("text", "")) if isinstance(title, dict) else ""


def run_module(
    st: Stack,
    module: str,
    label: str,
    *,
    commands: int,
    concurrency: int,
    workers: int,
    threads: int,
) -> tuple[Summary, list[Sample]]:
    """The same load against another app (no bulk removals: it has no jobs to run)."""
    served = start_module(st, module, workers=workers, threads=threads)
    try:
        load = run_load(
            served.events_url, st.slack, commands, concurrency, commands, served.process.pid
        )
    finally:
        stop(served)
    return summarize(label, load, None), load.samples


Series = tuple[str, list[Sample], str, str]
"""A latency distribution to draw: label, samples, colour, line style."""


def plot(series: list[Series], path: Path, title: str) -> bool:
    """The latency distributions (CDF, log scale); False when matplotlib is missing."""
    try:
        # Imported by name: matplotlib is an optional extra, absent from the type check too.
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        print(
            "matplotlib is not installed: no plot. Install the bench extra "
            "(.venv/bin/pip install -e '.[bench]', or .venv/bin/pip install matplotlib)."
        )
        return False
    fig, ax = plt.subplots(figsize=(9.5, 6.2), dpi=110)
    for label, samples, color, style in series:
        values = sorted(s.latency * 1000 for s in samples)
        share = [(i + 1) / len(values) * 100 for i in range(len(values))]
        p99 = percentile(values, 99)
        ax.step(
            values,
            share,
            where="post",
            color=color,
            linestyle=style,
            linewidth=1.8,
            label=f"{label}: p50 {percentile(values, 50):,.0f} ms, p99 {p99:,.0f} ms",
        )
    ax.axvline(100, color="#2ca02c", linestyle="--", linewidth=1)
    ax.text(104, 2, "target:\np99 ≤ 100 ms", color="#2ca02c", fontsize=9)
    ax.axvline(DEADLINE * 1000, color="black", linestyle=":", linewidth=1)
    ax.text(DEADLINE * 1000 * 1.04, 50, "Slack\ngives up\n(3 s)", fontsize=9)
    ax.axhline(99, color="grey", linewidth=0.6)
    ax.text(12_000, 96.5, "99 %", color="grey", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(1, 20_000)
    ax.set_xlabel("ack latency: request sent to answer received (ms, log scale)")
    ax.set_ylabel("commands acknowledged within that time (%)")
    ax.set_ylim(0, 101)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=9, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=2000, help="slash commands (2000)")
    parser.add_argument("--concurrency", type=int, default=50, help="in flight at once (50)")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per provider call")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (1)")
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads (16)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    parser.add_argument("--no-floor", action="store_true", help="skip the no-op calibration")
    parser.add_argument("--json", type=Path, default=None, help="write the samples here")
    parser.add_argument("--plot", type=Path, default=PLOT, help=f"the PNG ({PLOT.name})")
    args = parser.parse_args()

    load = load_average() if args.no_wait else wait_for_quiet()
    print(f"untag ack benchmark on {machine().line()}")
    print(
        f"{args.commands:,} signed slash commands, {args.concurrency} at a time, 1 in "
        f"{HELP_EVERY} `help`; every provider call slowed to {args.latency:g} s; "
        f"gunicorn {args.workers} worker(s) x {args.threads} threads; 1-min load {load:.2f}"
    )
    load_args = {
        "commands": args.commands,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "threads": args.threads,
    }
    floor: tuple[Summary, list[Sample]] | None = None
    baseline: tuple[Summary, list[Sample]] | None = None
    with stack(args.commands) as st:
        if not args.no_floor:
            print("  floor: a no-op app under the same load…", flush=True)
            floor = run_module(st, "bench.floor_app", "floor (no-op app)", **load_args)
        print("  untag serve…", flush=True)
        untag = run_untag(st, latency=args.latency, **load_args)
        if not args.no_baseline:
            print("  baseline…", flush=True)
            baseline = run_module(
                st, "bench.baseline_app", "baseline (call, then ack)", **load_args
            )
    print()
    rows = [r[0].row() for r in (floor, (untag.summary, untag.samples), baseline) if r]
    print_table(rows, HEADER)
    print()
    print(
        f"untag: healthy {untag.healthy_after:.2f} s after start; bulk removals confirmed in "
        f"{untag.bulk_setup:.1f} s; provider writes by them during the load: {untag.bulk_writes}"
    )
    print(
        f"untag: during the load {untag.views_opened:,} modals opened; {untag.previews:,} "
        f"filled in by a preview job, {untag.busy:,} updated to say the job queue was full; "
        f"{untag.busy_acks:,} commands told so in the ack, with no modal"
    )
    print(f"untag: memory idle {untag.idle.describe()}; after the load {untag.after.describe()}")
    series: list[Series] = [("untag serve", untag.samples, "#1f77b4", "-")]
    if baseline is not None:
        ratio = baseline[0].p99_ms / untag.summary.p99_ms
        print(f"baseline p99 / untag p99 = {ratio:,.1f}x (target >= 10x)")
        series.append(("baseline: call the provider, then ack", baseline[1], "#d62728", "-"))
    if floor is not None:
        series.append(("floor: no-op app, same server and load", floor[1], "#7f7f7f", "--"))
    title = (
        f"Slash-command ack latency: {args.commands:,} commands, {args.concurrency} in flight, "
        f"5 bulk removals running, provider calls slowed to {args.latency:g} s\n"
        f"{machine().line()}"
    )
    if plot(series, args.plot, title):
        print(f"plot: {args.plot}")
    if args.json is not None:
        payload = {
            "load": load,
            "floor": asdict(floor[0]) if floor else None,
            "untag": asdict(untag.summary),
            "baseline": asdict(baseline[0]) if baseline else None,
            "samples": {
                "floor": [asdict(s) for s in floor[1]] if floor else [],
                "untag": [asdict(s) for s in untag.samples],
                "baseline": [asdict(s) for s in baseline[1]] if baseline else [],
            },
        }
        args.json.write_text(json.dumps(payload))


if __name__ == "__main__":
    main()
