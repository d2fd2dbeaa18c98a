"""The memory storage: ordered byte maps in this process, the storage of MemoryStore.

It keeps exactly the keys and values an LMDB environment would (the domain layer builds
them), in one sorted map per sub-database, so MemoryStore runs the same domain code, the
same transactions and the same ``verify`` as LmdbStore. Every operation runs on the
caller's thread under one lock (a batch that a handle moves to a worker thread reads
safely while the event loop writes); there is no writer thread and nothing to fsync. An
operation that raises is undone: each write records what it replaced.
"""

from __future__ import annotations

import bisect
import threading
from typing import TYPE_CHECKING, TypeVar

import cbor2

from lmdbstore.devices import Devices
from lmdbstore.keys import DOMAINS, FORMAT_KEY, FORMAT_VERSION
from lmdbstore.storage.gate import WriteGate
from lmdbstore.storage.view import PrefixScans

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lmdbstore.storage.view import ReadView, WriteView

R = TypeVar("R")


class SortedMap:
    """One sub-database: a dict for point access and a sorted list of its keys for scans
    (an insert is a binary search and a ``memmove``: fine at the sizes tests use)."""

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.values: dict[bytes, bytes] = {}

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self.values:
            bisect.insort(self.keys, key)
        self.values[key] = value

    def delete(self, key: bytes) -> None:
        del self.values[key]
        del self.keys[bisect.bisect_left(self.keys, key)]

    def copy(self) -> SortedMap:
        twin = SortedMap()
        twin.keys = list(self.keys)
        twin.values = dict(self.values)
        return twin


class MemoryView(PrefixScans):
    """A `lmdbstore.storage.view.WriteView` of the maps. With an ``undo`` list, every
    change appends what it replaced (``None``: the key was absent)."""

    __slots__ = ("_maps", "_undo")

    def __init__(
        self, maps: dict[str, SortedMap], undo: list[tuple[str, bytes, bytes | None]] | None
    ) -> None:
        self._maps = maps
        self._undo = undo

    def get(self, db: str, key: bytes) -> bytes | None:
        return self._maps[db].values.get(key)

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        # Each step seeks afresh from the key just yielded, so that the caller may change
        # the map between steps (as LMDB's cursor walk allows).
        found = self._maps[db]
        ordered = found.keys
        if not reverse:
            at = bisect.bisect_left(ordered, start)
            while at < len(ordered) and (stop is None or ordered[at] < stop):
                key = ordered[at]
                yield key, found.values[key]
                at = bisect.bisect_right(ordered, key)
            return
        at = len(ordered) if stop is None else bisect.bisect_left(ordered, stop)
        while at > 0 and ordered[at - 1] >= start:
            key = ordered[at - 1]
            yield key, found.values[key]
            at = bisect.bisect_left(ordered, key)

    def put(self, db: str, key: bytes, value: bytes) -> None:
        found = self._maps[db]
        if self._undo is not None:
            self._undo.append((db, key, found.values.get(key)))
        found.put(key, value)

    def delete(self, db: str, key: bytes) -> bool:
        return self.pop(db, key) is not None

    def pop(self, db: str, key: bytes) -> bytes | None:
        found = self._maps[db]
        value = found.values.get(key)
        if value is not None:
            if self._undo is not None:
                self._undo.append((db, key, value))
            found.delete(key)
        return value


class MemoryStorage:
    """A `lmdbstore.storage.Storage` in memory (see the module docstring)."""

    inline_reads = True
    scans_resume = True

    def __init__(self) -> None:
        self.devices = Devices()
        self._maps = {db: SortedMap() for db in DOMAINS}
        self._maps["meta"].put(FORMAT_KEY, cbor2.dumps(FORMAT_VERSION))
        self._lock = threading.Lock()
        self.gate = WriteGate()
        self.snapshots: dict[str, dict[str, SortedMap]] = {}

    def get(self, db: str, key: bytes) -> bytes | None:
        with self._lock:
            return self._maps[db].values.get(key)

    def read(self, fn: Callable[[ReadView], R]) -> R:
        with self._lock:
            return fn(MemoryView(self._maps, None))

    def read_long(self, fn: Callable[[ReadView], R]) -> R:
        return self.read(fn)

    async def read_in_thread(self, fn: Callable[[ReadView], R]) -> R:
        """``fn`` on the caller's thread: the memory storage has no other."""
        return self.read(fn)

    async def write(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        gate = self.gate  # see lmdbstore.storage.gate: run_transaction's last attempt
        if not gate.try_enter():
            await gate.enter()
        try:
            return self._apply(op)
        finally:
            gate.leave()

    def write_blocking(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        return self.gate.passing(lambda: self._apply(op))

    def _apply(self, op: Callable[[WriteView], R]) -> R:
        """``op`` under the lock; undone if it raises."""
        undo: list[tuple[str, bytes, bytes | None]] = []
        with self._lock:
            try:
                return op(MemoryView(self._maps, undo))
            except BaseException:
                for db, key, value in reversed(undo):
                    found = self._maps[db]
                    if value is None:
                        found.delete(key)
                    else:
                        found.put(key, value)
                raise

    def own_problems(self) -> list[str]:
        """Nothing: memory has no pages to check."""
        return []

    def keep_snapshot(self, name: str) -> None:
        """Keep a copy of every map under ``name`` (MemoryStore's ``snapshot_db``)."""
        with self._lock:
            self.snapshots[name] = {db: found.copy() for db, found in self._maps.items()}

    def entries(self) -> dict[str, int]:
        """How many keys each sub-database holds (index entries included)."""
        with self._lock:
            return {db: len(found.values) for db, found in self._maps.items()}
