"""A write handed to a worker thread that its caller may still withdraw: the cancellation
rule of the SQL storages' writes.

Cancelled before the worker has begun the write's transaction (waiting for another
connection's lock, say), the write is withdrawn, never applied, and the cancellation
propagates at once; cancelled once it has begun, the caller waits for it (it is short)
and gets its outcome, the cancellation striking at its next await. So a cancelled write
raised, and one that returned was applied, as on LMDB.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TypeVar, cast

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

R = TypeVar("R")


class Withdrawn(Exception):
    """The caller of a write was cancelled before the write began: it is not applied."""


class Claim:
    """Who owns a write in flight: the worker thread once it has begun it (``taken``), or
    the caller, cancelled before that (``withdrawn``); and the outcome, for a caller that
    waits for a taken write."""

    __slots__ = ("done", "error", "lock", "result", "taken", "withdrawn")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taken = False
        self.withdrawn = False
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None

    def take(self) -> None:
        """Begin the write, unless it was withdrawn (`Withdrawn`)."""
        with self.lock:
            if self.withdrawn:
                raise Withdrawn
            self.taken = True

    def withdraw(self) -> bool:
        """Withdraw the write unless it has begun; whether it was withdrawn."""
        with self.lock:
            self.withdrawn = not self.taken
            return self.withdrawn


async def in_thread(work: Callable[[Claim], R]) -> R:
    """``work(claim)`` on a worker thread, where it calls ``claim.take()`` as its
    transaction begins (see the module docstring)."""
    claim = Claim()

    def run() -> None:
        try:
            claim.result = work(claim)
        except BaseException as exc:  # handed to the caller, if it still waits
            claim.error = exc
        finally:
            claim.done.set()

    try:
        await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        if claim.withdraw():
            raise
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(claim.done.wait)
    if claim.error is not None:
        raise claim.error
    return cast("R", claim.result)
