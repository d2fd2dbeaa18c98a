"""What a domain operation reads and writes through: ordered byte keys in named
sub-databases (`lmdbstore.storage.DOMAINS`), one consistent state per view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

from lmdbstore.errors import SerializationError
from lmdbstore.keys import added_to_tally, device_prefix, prefix_end, read_u32, u32, u64
from lmdbstore.validate import U32_MAX

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from lmdbstore.kinds import Kind


class ReadView(Protocol):
    """A consistent state of a storage, read-only."""

    def get(self, db: str, key: bytes) -> bytes | None:
        """The value at ``key``, or ``None``."""
        ...

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """The items with ``start <= key < stop`` (``stop=None``: to the end), in key order or
        reversed. Deleting behind the iterator (through a `WriteView`) is safe."""
        ...

    def scan_prefix(self, db: str, key_prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The items whose key starts with ``key_prefix``, in key order."""
        ...

    def last(self, db: str, key_prefix: bytes) -> tuple[bytes, bytes] | None:
        """The greatest item whose key starts with ``key_prefix``."""
        ...

    def first_device(self, db: str, at: int) -> int | None:
        """The least device id from ``at`` on with a key in ``db``; ``None``: none."""
        ...

    def walk(self, db: str, key_prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The items whose key starts with ``key_prefix``, in no promised order (an
        encrypted store's are in stored order, `lmdbstore.storage.sealed`): a walk of
        everything (an export, a count) that holds nothing in memory."""
        ...

    def audit(
        self, db: str, key_prefix: bytes
    ) -> Iterator[tuple[bytes, bytes] | SerializationError]:
        """`walk` for ``verify``: each item, or in its place the error of one that
        cannot be read (an encrypted store's value that fails authentication), so that
        the walk goes on; not necessarily in key order."""
        ...


class WriteView(ReadView, Protocol):
    """A `ReadView` of a write that can also change it."""

    def put(self, db: str, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value``."""
        ...

    def delete(self, db: str, key: bytes) -> bool:
        """Remove ``key``; whether it existed."""
        ...

    def pop(self, db: str, key: bytes) -> bytes | None:
        """Remove ``key`` and return its value (atomic read-and-delete)."""
        ...

    def put_many(self, db: str, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Set every key of ``items`` (a storage may batch them)."""
        ...

    def tally(self, db: str, key: bytes, delta: int) -> None:
        """Add ``delta`` to the tally at ``key`` (`lmdbstore.keys.TALLY`: absent is 0, 0 is
        removed, it never goes below 0). A transaction adds its deltas at its commit
        without reading the tally first, so two transactions that count never conflict
        over it (SQLite keeps a tally as a row of its ``tallies`` table)."""
        ...

    def at_commit(self, key: object, fn: Callable[[WriteView], object]) -> None:
        """Run ``fn`` on the write that commits this one, after all its other changes: on
        a storage's own view, now (so its caller calls this last); on a transaction's,
        once per ``key``, inside the write that checks and applies the transaction."""
        ...

    def put_records(self, kind: Kind, device: int, rows: Sequence[Sequence[Any]]) -> None:
        """Set a record of ``kind`` of ``device`` per row: the kind's key components, then
        its fields (`lmdbstore.kinds`); a storage may write rows without the byte form.
        Only for kinds that no index is derived from (an index is the caller's to keep)."""
        ...

    def delete_indexed(
        self,
        db: str,
        index_start: bytes,
        stop: bytes | None,
        record_start: bytes,
        skip: int,
        limit: int | None = None,
    ) -> int:
        """Expiry: delete every index entry in ``[index_start, stop)`` (the first ``limit``
        only, if given) and, with each, the record at ``record_start`` plus the entry's key
        past ``index_start`` and ``skip`` bytes (its time); how many. A storage may do it
        in one statement."""
        ...


class PrefixScans:
    """What every view derives from its primitives: `ReadView.scan_prefix`,
    `ReadView.last`, `ReadView.first_device`, `ReadView.walk`, `ReadView.audit`, and the
    generic
    `WriteView.put_many`, `WriteView.tally`, `WriteView.at_commit`,
    `WriteView.put_records` and `WriteView.delete_indexed`."""

    __slots__ = ()

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        raise NotImplementedError

    def get(self, db: str, key: bytes) -> bytes | None:
        raise NotImplementedError

    def put(self, db: str, key: bytes, value: bytes) -> None:
        raise NotImplementedError

    def delete(self, db: str, key: bytes) -> bool:
        raise NotImplementedError

    def first_device(self, db: str, at: int) -> int | None:
        if at > U32_MAX:
            return None
        item = next(self.scan(db, u32(at), None), None)
        if item is None:
            return None
        if len(item[0]) < 4:
            raise SerializationError(db, item[0], "a key too short for a device")
        return int(read_u32(item[0], 0)[0])

    def put_many(self, db: str, items: Iterable[tuple[bytes, bytes]]) -> None:
        for key, value in items:
            self.put(db, key, value)

    def tally(self, db: str, key: bytes, delta: int) -> None:
        raw = self.get(db, key)
        count = added_to_tally(db, key, raw, delta)
        if count:
            self.put(db, key, u64(count))
        elif raw is not None:
            self.delete(db, key)

    def at_commit(self, key: object, fn: Callable[[WriteView], object]) -> None:
        fn(cast("WriteView", self))

    def put_records(self, kind: Kind, device: int, rows: Sequence[Sequence[Any]]) -> None:
        self.put_many(kind.db, kind.items(device_prefix(device) + bytes((kind.tag,)), rows))

    def delete_indexed(
        self,
        db: str,
        index_start: bytes,
        stop: bytes | None,
        record_start: bytes,
        skip: int,
        limit: int | None = None,
    ) -> int:
        deleted = 0
        head = len(index_start) + skip
        for index_key, _ in self.scan(db, index_start, stop):
            if deleted == limit:
                break
            self.delete(db, index_key)
            self.delete(db, record_start + index_key[head:])
            deleted += 1
        return deleted

    def scan_prefix(self, db: str, key_prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.scan(db, key_prefix, prefix_end(key_prefix))

    def walk(self, db: str, key_prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.scan_prefix(db, key_prefix)

    def audit(
        self, db: str, key_prefix: bytes
    ) -> Iterator[tuple[bytes, bytes] | SerializationError]:
        return self.scan_prefix(db, key_prefix)

    def last(self, db: str, key_prefix: bytes) -> tuple[bytes, bytes] | None:
        return next(self.scan(db, key_prefix, prefix_end(key_prefix), reverse=True), None)
