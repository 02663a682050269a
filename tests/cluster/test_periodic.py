"""The cluster's periodic tasks stop even when a cancellation is swallowed mid-action, as
redis-py can swallow one that lands inside a command (a full test run hung on that)."""

from __future__ import annotations

import asyncio
import time

from aiolwm2m.cluster.periodic import Periodic


async def test_runs_every_interval_and_reports_failures() -> None:
    runs: list[float] = []
    errors: list[Exception] = []

    async def action() -> None:
        runs.append(time.monotonic())
        if len(runs) == 2:
            raise RuntimeError("redis went away")

    periodic = Periodic(0.05, action, errors.append, "test")
    periodic.start()
    await asyncio.sleep(0.28)
    await periodic.stop()
    assert 4 <= len(runs) <= 6
    assert [str(e) for e in errors] == ["redis went away"]
    count = len(runs)
    await asyncio.sleep(0.12)
    assert len(runs) == count  # stopped for good


async def test_stops_at_once_between_runs() -> None:
    async def action() -> None:
        pass

    periodic = Periodic(3600, action, lambda e: None, "test")
    periodic.start()
    await asyncio.sleep(0.01)
    started = time.monotonic()
    await periodic.stop()
    assert time.monotonic() - started < 0.5


async def test_a_swallowed_cancellation_does_not_keep_it_running() -> None:
    entered = asyncio.Event()
    runs = 0

    async def swallowing_action() -> None:
        # What a client library that catches CancelledError inside a command does.
        nonlocal runs
        runs += 1
        entered.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)

    periodic = Periodic(0.01, swallowing_action, lambda e: None, "test")
    periodic.start()
    await entered.wait()
    started = time.monotonic()
    async with asyncio.timeout(10):
        await periodic.stop()
    # The stop waited its bounded time, cancelled, and the loop saw the flag afterwards.
    assert time.monotonic() - started < 5
    await asyncio.sleep(0.2)
    assert runs == 1
