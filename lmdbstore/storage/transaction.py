"""Transactions: optimistic, buffered, committed in one write of the storage.

The one transaction mechanism of every storage. A transaction handle is a store whose
storage is a `TransactionStorage`. Every domain method runs unchanged on it: its
operations see a `TransactionView`, which reads the transaction's own writes first and the
storage (a fresh read, inline) otherwise, and which buffers writes instead of making them.
So nothing is locked while user code awaits.

What was read from the storage is remembered: each key with the value seen (``None`` for
absent), the value a take found (``None`` too), and for each range scan the part of the
range its reader went through (an empty range too) with a digest of the items there. The
commit is one `Storage.write`: inside it, it checks every remembered read against the
current data, raises `TransactionConflictError` (writing nothing) when one changed, and
otherwise applies the buffered writes. Reads are repeatable: a key read twice returns what
it returned the first time.

A scan reads the storage lazily, in chunks of growing size, each in a short read of its
own, and is merged with the transaction's own writes as it goes. So a scan its reader
stops early (the first key of a device, the greatest pre-key id) reads and covers only
what it went through, and a scan of a million records never holds them all: no list of
them to build, keep until the commit and free at once, which would hold the event loop
(freeing a big container is one call that keeps the interpreter's lock). Chunks come from
different moments; the check at the commit, from one, decides.

A tally (`lmdbstore.storage.view.WriteView.tally`) is not read: its deltas are added at
the commit, so two transactions that count records never conflict over the count (one
that reads a tally it counts in sees the stored count plus its deltas, unchecked). Work
registered with `lmdbstore.storage.view.WriteView.at_commit` runs last, inside the
commit's write.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from lmdbstore.errors import DeviceDeletedError, TransactionConflictError
from lmdbstore.keys import added_to_tally, u64
from lmdbstore.storage import INLINE_RECORDS
from lmdbstore.storage.view import PrefixScans

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lmdbstore.devices import Life
    from lmdbstore.storage import Storage
    from lmdbstore.storage.view import ReadView, WriteView

R = TypeVar("R")
Slot = tuple[str, bytes]

FIRST_CHUNK, LAST_CHUNK = 16, 1024
"""The items a scan reads in its first short read of the storage, and at most in one:
the size doubles from chunk to chunk (an early stop reads little, a long scan few times)."""


class ScanRead:
    """What one scan of a transaction read: the range of `ReadView.scan` it was asked for,
    how far its reader went (``end``, the last key it reached; ``exhausted``: the whole
    range), and the count and digest of the storage's items up to there."""

    __slots__ = ("count", "db", "digest", "end", "exhausted", "reverse", "start", "stop")

    def __init__(self, db: str, start: bytes, stop: bytes | None, reverse: bool) -> None:
        self.db, self.start, self.stop, self.reverse = db, start, stop, reverse
        self.end: bytes | None = None
        self.exhausted = False
        self.count = 0
        self.digest = hashlib.blake2b(digest_size=16)

    def add(self, key: bytes, value: bytes) -> None:
        """Count a storage item the reader went past."""
        self.count += 1
        self.digest.update(b"%d:%d:" % (len(key), len(value)) + key)
        self.digest.update(value)  # not joined: a big value is hashed without the lock

    def covers(self, key: bytes) -> bool:
        """Whether a storage item at ``key`` (inside the range) was gone through."""
        if self.exhausted:
            return True
        if self.end is None:
            return False
        return key >= self.end if self.reverse else key <= self.end

    def unchanged(self, view: ReadView) -> bool:
        """Whether ``view`` holds the same items where this scan went."""
        if self.end is None and not self.exhausted:
            return True  # its reader took nothing from it
        again = ScanRead(self.db, self.start, self.stop, self.reverse)
        for key, value in view.scan(self.db, self.start, self.stop, reverse=self.reverse):
            if not self.covers(key):
                break
            again.add(key, value)
        return again.count == self.count and again.digest.digest() == self.digest.digest()


def _first_items(
    view: ReadView, *, db: str, start: bytes, stop: bytes | None, reverse: bool, n: int | None
) -> list[tuple[bytes, bytes]]:
    return list(itertools.islice(view.scan(db, start, stop, reverse=reverse), n))


class TransactionState:
    """The buffered writes and the remembered reads of one transaction."""

    def __init__(self) -> None:
        self.writes: dict[Slot, bytes | None] = {}
        self.reads: dict[Slot, bytes | None] = {}
        self.scans: list[ScanRead] = []
        self.tallies: dict[Slot, int] = {}
        self.at_commit: dict[object, Callable[[WriteView], object]] = {}

    def saved(self) -> tuple[dict[Slot, bytes | None], dict[Slot, int], dict[object, Any]]:
        """What an operation that raises must leave as it was."""
        return dict(self.writes), dict(self.tallies), dict(self.at_commit)

    def restore(
        self, saved: tuple[dict[Slot, bytes | None], dict[Slot, int], dict[object, Any]]
    ) -> None:
        self.writes, self.tallies, self.at_commit = saved


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
        if slot in state.tallies:
            return self._counted(db, key, state.tallies[slot])
        if slot not in state.reads:
            state.reads[slot] = self._storage.get(db, key)
        return state.reads[slot]

    def _counted(self, db: str, key: bytes, delta: int) -> bytes | None:
        """A tally this transaction counts in: the storage's, plus ``delta``. Not a read
        the commit checks (the deltas are added to whatever the tally is then)."""
        count = added_to_tally(db, key, self._storage.get(db, key), delta)
        return u64(count) if count else None

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        read = ScanRead(db, start, stop, reverse)
        self._state.scans.append(read)
        # The transaction's own writes in range, as they are now: the caller may write while
        # iterating, as on every view.
        mine = sorted(
            (
                (key, value)
                for (write_db, key), value in self._state.writes.items()
                if write_db == db and key >= start and (stop is None or key < stop)
            ),
            reverse=reverse,
        )
        return self._merged(read, self._chunks(read), mine)

    def _chunks(self, read: ScanRead) -> Iterator[tuple[bytes, bytes]]:
        """The storage's items of ``read``'s range, in chunks of growing size (of a
        storage whose scans do not resume cheaply, `Storage.scans_resume`: in one)."""
        db, low, high, reverse = read.db, read.start, read.stop, read.reverse
        size: int | None = FIRST_CHUNK if self._storage.scans_resume else None
        while True:
            chunk = self._storage.read(
                functools.partial(
                    _first_items, db=db, start=low, stop=high, reverse=reverse, n=size
                )
            )
            yield from chunk
            if size is None or len(chunk) < size:
                return
            if reverse:
                high = chunk[-1][0]
            else:
                low = chunk[-1][0] + b"\x00"  # the least key after the last
            size = min(2 * size, LAST_CHUNK)

    @staticmethod
    def _merged(
        read: ScanRead,
        theirs: Iterator[tuple[bytes, bytes]],
        mine: list[tuple[bytes, bytes | None]],
    ) -> Iterator[tuple[bytes, bytes]]:
        """The storage's items overlaid with the transaction's own writes (``None``: a
        delete), in scan order; ``read`` follows how far the reader goes."""
        before = bytes.__gt__ if read.reverse else bytes.__lt__
        stored = next(theirs, None)
        at = 0
        while stored is not None or at < len(mine):
            own = mine[at] if at < len(mine) else None
            if own is None or (stored is not None and before(stored[0], own[0])):
                assert stored is not None
                key, value = stored
                read.add(key, value)
                stored = next(theirs, None)
            else:
                if stored is not None and stored[0] == own[0]:  # overwritten by our own
                    read.add(*stored)
                    stored = next(theirs, None)
                key, written = own
                at += 1
                if written is None:
                    read.end = key
                    continue
                value = written
            read.end = key
            yield key, value
        read.exhausted = True

    def put(self, db: str, key: bytes, value: bytes) -> None:
        self._state.writes[(db, key)] = value

    def delete(self, db: str, key: bytes) -> bool:
        existed = self.get(db, key) is not None
        self._state.writes[(db, key)] = None
        self._state.tallies.pop((db, key), None)  # a tally deleted: counting starts again
        return existed

    def tally(self, db: str, key: bytes, delta: int) -> None:
        tallies = self._state.tallies
        tallies[(db, key)] = tallies.get((db, key), 0) + delta

    def at_commit(self, key: object, fn: Callable[[WriteView], object]) -> None:
        self._state.at_commit.setdefault(key, fn)

    def pop(self, db: str, key: bytes) -> bytes | None:
        value = self.get(db, key)
        if value is not None:
            self._state.writes[(db, key)] = None
        return value


class TransactionStorage:
    """The `lmdbstore.storage.Storage` of a transaction handle: reads and writes go
    through a `TransactionView`; everything else (paths, open devices) is the real
    storage's."""

    def __init__(self, storage: Storage, life: Life) -> None:
        self.real = storage
        self.state = TransactionState()
        self.view = TransactionView(storage, self.state)
        self._life = life

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
        before = self.state.saved()
        try:
            return op(self.view)
        except BaseException:
            self.state.restore(before)
            raise

    def _check(self, view: ReadView) -> None:
        """Raise TransactionConflictError if anything this transaction read has changed,
        DeviceDeletedError if its device was deleted (checked inside the commit's write,
        after any deletion committed before it)."""
        if self._life.deleted:
            raise DeviceDeletedError("this transaction's device was deleted: nothing written")
        state = self.state
        for (db, key), seen in state.reads.items():
            if view.get(db, key) != seen:
                raise TransactionConflictError(
                    f"a record this transaction read changed ({db} key {key.hex()})"
                )
        for read in state.scans:
            if not read.unchanged(view):
                raise TransactionConflictError(
                    f"records this transaction scanned changed ({read.db} from {read.start.hex()})"
                )

    async def commit(self, fence: Callable[[WriteView], None] | None = None) -> None:
        """Check the reads and apply the writes, in one write transaction (a transaction
        that wrote nothing is checked in a read transaction). ``fence``: run first in that
        write, to refuse it (a device lease's, `lmdbstore.domains.lease`)."""
        if not self._writes():
            if self.real.inline_reads and self._checked() <= INLINE_RECORDS:
                self.real.read(self._check)
            else:  # a long check (a scan) never runs on the event loop
                await self.real.read_in_thread(self._check)
            return
        await self.real.write(self._applying(fence), self._records())

    def commit_blocking(self, fence: Callable[[WriteView], None] | None = None) -> None:
        """`commit`, on this thread (`lmdbstore.sync`); a long check (a scan) as a long
        read, which never holds up the storage's resizes, as `commit` does."""
        if not self._writes():
            if self._checked() <= INLINE_RECORDS:
                self.real.read(self._check)
            else:
                self.real.read_long(self._check)
            return
        self.real.write_blocking(self._applying(fence), self._records())

    def _applying(self, fence: Callable[[WriteView], None] | None) -> Callable[[WriteView], None]:
        if fence is None:
            return self._apply

        def fenced(view: WriteView) -> None:
            fence(view)
            self._apply(view)

        return fenced

    def _writes(self) -> bool:
        """Whether the commit writes anything."""
        state = self.state
        return bool(state.writes or state.tallies or state.at_commit)

    def _apply(self, view: WriteView) -> None:
        """The commit's operation: check the reads, make the buffered writes, add the
        tallies' deltas, then run what waited for the commit (`WriteView.at_commit`)."""
        self._check(view)
        state = self.state
        for (db, key), value in state.writes.items():
            if value is None:
                view.delete(db, key)
            else:
                view.put(db, key, value)
        for (db, key), delta in state.tallies.items():
            view.tally(db, key, delta)
        for fn in state.at_commit.values():
            fn(view)

    def _records(self) -> int | None:
        """How many records the commit touches, the ones it checks included; ``None``
        (no bound) when it runs work that waited for the commit (a size cap's eviction)."""
        state = self.state
        if state.at_commit:
            return None
        return len(state.writes) + len(state.tallies) + self._checked()

    def _checked(self) -> int:
        """How many records the commit's check reads."""
        state = self.state
        return len(state.reads) + sum(read.count + 1 for read in state.scans)
