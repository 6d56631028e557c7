"""bot.jobs: bounded lanes, and places reserved before the job is known."""

from __future__ import annotations

import threading

from bot.jobs import Jobs


def test_a_reserved_place_counts_until_it_is_released_or_its_job_ends() -> None:
    jobs = Jobs(workers=1, backlog=0, preview_workers=1, preview_backlog=1)
    try:
        first, second = jobs.reserve_preview(), jobs.reserve_preview()
        assert first is not None and second is not None
        assert jobs.reserve_preview() is None  # two places: both held
        assert not jobs.wait_idle(0.01)  # a reserved place is a job on its way

        first.release()
        first.release()  # twice is once
        gate, ran = threading.Event(), threading.Event()
        second.submit(lambda: (gate.wait(5), ran.set()))
        second.release()  # after submit: the job holds the place, not the caller
        third = jobs.reserve_preview()
        assert third is not None and jobs.reserve_preview() is None
        third.release()

        gate.set()
        assert jobs.wait_idle(5) and ran.is_set()
        assert jobs.submit_preview(lambda: None) and jobs.submit_preview(lambda: None)
        assert jobs.wait_idle(5)
    finally:
        jobs.shutdown()


def test_long_work_and_previews_are_bounded_apart() -> None:
    jobs = Jobs(workers=1, backlog=1, preview_workers=1, preview_backlog=0)
    gate = threading.Event()
    try:
        assert jobs.submit("execute", gate.wait) and jobs.submit("execute", gate.wait)
        assert not jobs.submit("execute", gate.wait)  # the long-work queue is full …
        assert jobs.submit_preview(gate.wait)  # … and a preview still has its place
        assert not jobs.submit_preview(gate.wait)
    finally:
        gate.set()
        assert jobs.wait_idle(5)
        jobs.shutdown()
