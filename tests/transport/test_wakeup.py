"""The transports' shared wake-up timer: one timer, at the earliest deadline asked for."""

from __future__ import annotations

import asyncio

from aiolwm2m.transport.wakeup import Wakeup


async def fired_at(arm: list[float | None], *, cancel: bool = False,
                   wait: float = 0.3) -> list[float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    fired: list[float] = []
    wakeup = Wakeup(loop, loop.time, lambda: fired.append(loop.time() - start))
    for offset in arm:
        wakeup.at(None if offset is None else start + offset)
    if cancel:
        wakeup.cancel()
    await asyncio.sleep(wait)
    return fired


async def test_a_later_deadline_keeps_the_earlier_timer() -> None:
    fired = await fired_at([0.05, 0.2])
    assert len(fired) == 1 and 0.05 <= fired[0] < 0.15


async def test_an_earlier_deadline_replaces_the_timer() -> None:
    fired = await fired_at([0.2, 0.05])
    assert len(fired) == 1 and 0.05 <= fired[0] < 0.15


async def test_none_asks_for_nothing_and_cancel_stops_it() -> None:
    assert await fired_at([None], wait=0.05) == []
    assert await fired_at([0.02], cancel=True, wait=0.1) == []


async def test_it_can_be_armed_again_after_firing() -> None:
    loop = asyncio.get_running_loop()
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if count < 3:
            wakeup.at(loop.time() + 0.01)

    wakeup = Wakeup(loop, loop.time, tick)
    wakeup.at(loop.time())
    await asyncio.sleep(0.2)
    assert count == 3
