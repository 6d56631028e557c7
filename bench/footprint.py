"""Benchmark of untag's footprint: memory of ``untag serve`` idle and after the ack load,
time from start to a healthy ``/healthz``, and ``untag --help``.

    .venv/bin/python -m bench.footprint [--starts 5] [--commands 2000] [--concurrency 50]
                                        [--no-wait]

Memory is read from ``/proc`` for gunicorn's master and every worker:
``VmRSS`` (``/proc/<pid>/status``) per process and summed, and ``Pss``
(``/proc/<pid>/smaps_rollup``) summed, which counts the pages a forked worker
shares with its master once instead of twice.  "After the load" is after the
untag half of ``bench.ack`` (its bulk removals and slash commands, same
defaults), run against the same server.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from bench import ack
from bench._common import (
    UNTAG,
    load_average,
    machine,
    memory,
    print_table,
    stop,
    wait_for_quiet,
)


def help_seconds(runs: int) -> list[float]:
    """Wall seconds of ``untag --help``, each in a fresh process."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([UNTAG, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--starts", type=int, default=5, help="cold starts to time (5)")
    parser.add_argument("--commands", type=int, default=2000, help="ack load (2000)")
    parser.add_argument("--concurrency", type=int, default=50, help="ack concurrency (50)")
    parser.add_argument("--latency", type=float, default=1.0, help="provider latency (1.0 s)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (1)")
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads (16)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    args = parser.parse_args()

    load = load_average() if args.no_wait else wait_for_quiet()
    print(f"untag footprint benchmark on {machine().line()}; 1-min load {load:.2f}")
    helps = help_seconds(args.starts)
    rows: list[tuple[str, str]] = [
        (
            f"`untag --help`, median of {len(helps)}",
            f"{statistics.median(helps):.2f} s (min {min(helps):.2f})",
        )
    ]
    with ack.stack(args.commands) as st:
        starts = []
        for _ in range(args.starts):
            served = ack.start_untag(st, workers=args.workers, threads=args.threads)
            starts.append(served.healthy_after)
            time.sleep(2.0)  # idle: the worker has booted and nothing has arrived
            idle = memory(served.process.pid)
            stop(served)
        rows.append(
            (
                f"`untag serve` start to healthy /healthz, median of {len(starts)}",
                f"{statistics.median(starts):.2f} s (max {max(starts):.2f})",
            )
        )
        rows.append(("memory idle (master + workers)", idle.describe()))
        run = ack.run_untag(
            st,
            commands=args.commands,
            concurrency=args.concurrency,
            latency=args.latency,
            workers=args.workers,
            threads=args.threads,
        )
        rows.append(("memory idle, before the ack load", run.idle.describe()))
        rows.append(
            (
                f"memory after the ack load ({args.commands:,} commands)",
                run.after.describe(),
            )
        )
    print()
    print_table(rows, ("measure", "result"))


if __name__ == "__main__":
    main()
