"""The write gate of a storage: how `run_transaction` gets its turn.

A transaction commits only if what it read is unchanged, so under a steady stream of plain
writes to the keys it reads, every attempt may conflict and it would starve (measured before
this gate: 2 of 20 committed on LMDB, 0 of 20 on SQLite, with 100 tasks writing the key).
So the last attempt of `run_transaction`, after a conflict, runs *exclusively*: it holds the
gate, which keeps every other write of this process from committing until it is done
(writes already committing finish first), and its own commit passes. Writes of other
processes are not held: against those, only the retries help.

Each storage's ``write`` passes the gate with `try_enter` and `leave` (a list append and
an attribute check: the fast path costs nanoseconds); a write that finds the gate held waits
in `enter`, polling every `POLL` seconds on its own event loop, which works from any thread
and any loop; a blocking write (`lmdbstore.sync`) passes it in `passing`, polling with
``time.sleep``. The holder is known by a context variable, so that the holder's own writes
(its commit) pass and tasks it starts do too.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from typing import TYPE_CHECKING, TypeVar

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

R = TypeVar("R")

POLL = 0.001
"""Seconds between two looks at a held gate, at first: a waiting write doubles its pause
up to `MAX_POLL`, so that a hundred waiting writes do not keep the event loop busy (on
trio, whose sleeps cost more, a hundred tasks polling every millisecond starved the
holder itself: a run_transaction took 5-90 s instead of 0.1 s)."""

MAX_POLL = 0.016
"""The longest pause of a write waiting at a held gate: how late it may pass once the
gate is free."""

_HOLDING: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "lmdbstore_write_gate", default=None
)


class WriteGate:
    """See the module docstring. One per database, shared by its handles."""

    __slots__ = ("_acquire", "active", "holder")

    def __init__(self) -> None:
        self.active: list[None] = []  # writes past the gate (append and pop are atomic)
        self.holder: object | None = None
        self._acquire = threading.Lock()

    def try_enter(self) -> bool:
        """Pass the gate if nobody else holds it; `leave` after the write."""
        self.active.append(None)
        holder = self.holder
        if holder is None or holder is _HOLDING.get():
            return True
        self.active.pop()
        return False

    async def enter(self) -> None:
        """Pass the gate once it is free (or held by this context)."""
        pause = POLL
        while not self.try_enter():
            await anyio.sleep(pause)
            pause = min(pause * 2, MAX_POLL)

    def leave(self) -> None:
        self.active.pop()

    def passing(self, fn: Callable[[], R]) -> R:
        """``fn()`` past the gate, waiting on this thread while another holds it: a
        blocking write's way through."""
        pause = POLL
        while not self.try_enter():
            time.sleep(pause)
            pause = min(pause * 2, MAX_POLL)
        try:
            return fn()
        finally:
            self.active.pop()

    @contextlib.asynccontextmanager
    async def exclusive(
        self, sleep: Callable[[float], Awaitable[object]] = anyio.sleep
    ) -> AsyncIterator[None]:
        """Hold the gate for the block: once the writes already past it are done, no
        other write of this process commits until the block ends. ``sleep`` waits between
        two looks (one that blocks its thread, for the blocking API)."""
        token = object()
        while not self._acquire.acquire(blocking=False):  # another holder: wait our turn
            await sleep(POLL)
        try:
            self.holder = token
            reset = _HOLDING.set(token)
            try:
                while self.active:  # writes that passed before: let them commit
                    await sleep(POLL)
                yield
            finally:
                _HOLDING.reset(reset)
                self.holder = None
        finally:
            self._acquire.release()
