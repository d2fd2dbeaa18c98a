"""Transactions: optimistic, buffered, committed in one write of the storage.

The one transaction mechanism of every storage. A transaction handle is a store whose
storage is a `TransactionStorage`. Every domain method runs unchanged on it: its
operations see a `TransactionView`, which reads the transaction's own writes first and the
storage (a fresh read, inline) otherwise, and which buffers writes instead of making them.
So nothing is locked while user code awaits.

What was read from the storage is remembered: each key with the value seen (``None`` for
absent), each range scan with the items seen (an empty range too), and the value a take
found (``None`` too). The commit is one `Storage.write`: inside it, it checks every
remembered read against
the current data, raises `TransactionConflictError` (writing nothing) when one
changed, and otherwise applies the buffered writes. Reads are repeatable: a key read twice
returns what it returned the first time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from lmdbstore.errors import TransactionConflictError
from lmdbstore.storage import INLINE_RECORDS
from lmdbstore.storage.view import PrefixScans

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lmdbstore.storage import Storage
    from lmdbstore.storage.view import ReadView, WriteView

R = TypeVar("R")
Slot = tuple[str, bytes]


class TransactionState:
    """The buffered writes and the remembered reads of one transaction."""

    def __init__(self) -> None:
        self.writes: dict[Slot, bytes | None] = {}
        self.reads: dict[Slot, bytes | None] = {}
        self.scans: list[tuple[str, bytes, bytes | None, list[tuple[bytes, bytes]]]] = []


class TransactionView(PrefixScans):
    """The storage as the transaction sees it, a `lmdbstore.storage.view.WriteView`
    (see the module docstring)."""

    __slots__ = ("_state", "_storage")

    def __init__(self, storage: Storage, state: TransactionState) -> None:
        self._storage = storage
        self._state = state

    def get(self, db: str, key: bytes) -> bytes | None:
        slot = (db, key)
        state = self._state
        if slot in state.writes:
            return state.writes[slot]
        if slot not in state.reads:
            state.reads[slot] = self._storage.get(db, key)
        return state.reads[slot]

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        seen = self._storage.read(lambda view: list(view.scan(db, start, stop)))
        self._state.scans.append((db, start, stop, seen))
        mine = [
            (key, value)
            for (write_db, key), value in self._state.writes.items()
            if write_db == db and key >= start and (stop is None or key < stop)
        ]
        if not mine:  # nothing of the transaction's own in range: the scan as it was
            return iter(seen[::-1] if reverse else list(seen))
        merged = dict(seen)
        for key, value in mine:
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        # Materialised, so the caller may write while iterating.
        return iter(sorted(merged.items(), reverse=reverse))

    def put(self, db: str, key: bytes, value: bytes) -> None:
        self._state.writes[(db, key)] = value

    def delete(self, db: str, key: bytes) -> bool:
        existed = self.get(db, key) is not None
        self._state.writes[(db, key)] = None
        return existed

    def pop(self, db: str, key: bytes) -> bytes | None:
        value = self.get(db, key)
        if value is not None:
            self._state.writes[(db, key)] = None
        return value


class TransactionStorage:
    """The `lmdbstore.storage.Storage` of a transaction handle: reads and writes go
    through a `TransactionView`; everything else (paths, open devices) is the real
    storage's."""

    def __init__(self, storage: Storage) -> None:
        self.real = storage
        self.state = TransactionState()
        self.view = TransactionView(storage, self.state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def get(self, db: str, key: bytes) -> bytes | None:
        return self.view.get(db, key)

    def read(self, fn: Callable[[ReadView], R]) -> R:
        return fn(self.view)

    def read_long(self, fn: Callable[[ReadView], R]) -> R:
        return fn(self.view)

    async def read_in_thread(self, fn: Callable[[ReadView], R]) -> R:
        """``fn`` of the view on a worker thread: a scan of unbounded length, which would
        stall the event loop inline (the transaction's task waits for it; nothing else
        uses the view meanwhile)."""
        return await anyio.to_thread.run_sync(fn, self.view)

    async def write(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        """Run ``op`` against the buffer now: here when it is small (``records``, as for
        `lmdbstore.storage.Storage.write`) and the real storage reads inline, else on a
        worker thread; if it raises, its writes are dropped."""
        if self.real.inline_reads and records is not None and records <= INLINE_RECORDS:
            return self._buffer(op)
        return await anyio.to_thread.run_sync(self._buffer, op)

    def write_blocking(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        """Run ``op`` against the buffer, on this thread."""
        return self._buffer(op)

    def _buffer(self, op: Callable[[WriteView], R]) -> R:
        before = dict(self.state.writes)
        try:
            return op(self.view)
        except BaseException:
            self.state.writes = before
            raise

    def _check(self, view: ReadView) -> None:
        """Raise TransactionConflictError if anything this transaction read has changed."""
        state = self.state
        for (db, key), seen in state.reads.items():
            if view.get(db, key) != seen:
                raise TransactionConflictError(
                    f"a record this transaction read changed ({db} key {key.hex()})"
                )
        for db, start, stop, items in state.scans:
            if list(view.scan(db, start, stop)) != items:
                raise TransactionConflictError(
                    f"records this transaction scanned changed ({db} from {start.hex()})"
                )

    async def commit(self) -> None:
        """Check the reads and apply the writes, in one write transaction (a transaction
        that wrote nothing is checked in a read transaction)."""
        if not self.state.writes:
            if self.real.inline_reads:
                self.real.read(self._check)
            else:
                await self.real.read_in_thread(self._check)
            return
        await self.real.write(self._apply, self._records())

    def commit_blocking(self) -> None:
        """`commit`, on this thread (`lmdbstore.sync`)."""
        if not self.state.writes:
            self.real.read(self._check)
            return
        self.real.write_blocking(self._apply, self._records())

    def _apply(self, view: WriteView) -> None:
        """The commit's operation: check the reads, then make the buffered writes."""
        self._check(view)
        for (db, key), value in self.state.writes.items():
            if value is None:
                view.delete(db, key)
            else:
                view.put(db, key, value)

    def _records(self) -> int:
        """How many records the commit touches, the ones it checks included."""
        state = self.state
        checked = len(state.reads) + sum(len(items) + 1 for *_, items in state.scans)
        return len(state.writes) + checked
