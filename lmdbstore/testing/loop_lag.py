"""How long the event loop is held: the worst lateness of a 1 ms ticker while an action runs.

Used by the loop-lag tests and the benchmark's loop-lag rows. Python's cyclic garbage
collector is off while it measures: a full collection stops every thread for a time that
grows with the whole heap of the process, whichever thread allocates (CI once saw 117 ms
after a thousand tests; see "Garbage-collector pauses" in the decisions page), so the figure
is what the store's own code holds the loop for.
"""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

TICK = 0.001
"""The ticker's period, in seconds."""


async def worst_lag(action: Callable[[], Awaitable[object]]) -> float:
    """The worst lateness, in seconds, of a `TICK` ticker on this event loop while
    ``action()`` runs on it, with the garbage collector off."""
    gc.collect()
    gc.disable()
    try:
        return await _ticking(action)
    finally:
        gc.enable()


async def _ticking(action: Callable[[], Awaitable[object]]) -> float:
    worst = 0.0
    done = False

    async def tick() -> None:
        nonlocal worst
        while not done:
            start = time.perf_counter()
            await anyio.sleep(TICK)
            worst = max(worst, time.perf_counter() - start - TICK)

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        await anyio.sleep(10 * TICK)
        await action()
        done = True
    return worst
