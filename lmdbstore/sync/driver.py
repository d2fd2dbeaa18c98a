"""The domain layer driven by plain calls.

Every domain method is written once, as a coroutine (`lmdbstore.domains`), and waits only
through a handful of calls of its handle: a read, a write, a hop off the event loop, a
pause, a shield. `BlockingDriver` gives each of those its blocking form, which returns
without ever suspending: a write waits for its commit on this thread
(`lmdbstore.storage.Storage.write_blocking`), blocking work runs here instead of on a
worker thread. A coroutine that never suspends finishes on its first step, and `drive`
takes that step and returns what it returned (a few hundred nanoseconds: no event loop,
no thread hop). So the blocking API runs the very code of the async API.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, TypeVar, cast

from lmdbstore.domains.handle import DomainHandle
from lmdbstore.lmdb_store import LmdbStore
from lmdbstore.memory_store import MemoryStore
from lmdbstore.sqlite_store import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from contextlib import AbstractAsyncContextManager, AbstractContextManager

    from lmdbstore.sqlite_store.database import Database
    from lmdbstore.storage.transaction import TransactionStorage
    from lmdbstore.storage.view import ReadView, WriteView

R = TypeVar("R")


def drive(coroutine: Coroutine[Any, Any, R]) -> R:
    """What ``coroutine`` returns (or raises), run to its end on this thread. It must not
    suspend: every wait of a `BlockingDriver` handle blocks instead."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return cast("R", finished.value)
    coroutine.close()
    raise RuntimeError("an lmdbstore call of the blocking API waited for an event loop")


async def _sleep(seconds: float) -> None:
    """A pause that blocks the thread (and so never suspends)."""
    time.sleep(seconds)


class BlockingDriver(DomainHandle):
    """The blocking form of every wait of a handle (see the module docstring). Mixed in
    before a store class, it makes that store's coroutines run to their end at once."""

    async def _read(self, fn: Callable[[ReadView], R]) -> R:
        return self._storage_open().read(fn)

    async def _read_in_thread(self, fn: Callable[[ReadView], R]) -> R:
        return self._storage_open().read_long(fn)

    @staticmethod
    async def _off_loop(fn: Callable[..., R], *args: object) -> R:
        return fn(*args)

    async def _get(self, db: str, key: bytes) -> bytes | None:
        return self._storage_open().get(db, key)

    async def _batch(self, items: object, work: Callable[[], R]) -> R:
        return work()

    def _exclusive(self) -> AbstractAsyncContextManager[object]:
        return self._storage_open().gate.exclusive(_sleep)

    async def _write(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        if self._lease is not None:
            op = self._fenced(op)
        return self._storage_open().write_blocking(op, records)

    async def _commit_transaction(self) -> None:
        cast("TransactionStorage", self._storage).commit_blocking(self._lease_fence())

    _pause = staticmethod(_sleep)

    @staticmethod
    def _shielded(shield: bool) -> AbstractContextManager[object]:
        return contextlib.nullcontext()


class BlockingLmdbStore(BlockingDriver, LmdbStore):
    """`LmdbStore`, driven by plain calls."""


class BlockingSqliteStore(BlockingDriver, SqliteStore):
    """`SqliteStore`, driven by plain calls."""

    @staticmethod
    async def _close_database(database: Database) -> None:
        database.close()  # waits for the write in flight (the writer connection's mutex)


class BlockingMemoryStore(BlockingDriver, MemoryStore):
    """`MemoryStore`, driven by plain calls."""
