"""What every domain mixin shares: the storage, the device, and the plumbing from async
methods to inline reads and storage writes."""

from __future__ import annotations

import functools
from collections.abc import Sized
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

import anyio

from lmdbstore import codec, keys, validate
from lmdbstore.derived import DeviceHandle
from lmdbstore.domains import caps
from lmdbstore.domains.records import Records
from lmdbstore.storage.transaction import TransactionStorage
from lmdbstore.types import Limits
from lmdbstore.validate import MAX_KEY_PART

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Sequence
    from contextlib import AbstractAsyncContextManager

    from lmdbstore.domains.lease import DeviceLease
    from lmdbstore.kinds import Kind
    from lmdbstore.storage import Storage
    from lmdbstore.storage.view import ReadView, WriteView

R = TypeVar("R")
T = TypeVar("T")
A = TypeVar("A")
H = TypeVar("H", bound="DomainHandle")

NO_LIMITS = Limits()

INLINE_BATCH = 256
"""Most items of a batch handled on the caller's thread (about a microsecond each: a
batch of this size stays well under a millisecond); larger ones go to a worker thread."""


def point_read(read: Callable[[H, A], R]) -> Callable[[H, A], Coroutine[Any, Any, R]]:
    """The domain method whose whole work is ``read``, a point read of one argument
    (microseconds, never a wait): run on the caller's thread when the storage reads inline,
    else on a worker thread. The blocking API calls ``read`` itself (`blocking_form`):
    the hottest reads then cost no coroutine."""

    @functools.wraps(read)
    async def method(self: H, argument: A) -> R:
        if self._inline:
            return read(self, argument)
        return await self._off_loop(read, self, argument)

    method.blocking_form = read  # type: ignore[attr-defined]
    return method


def blocking_form(method: object) -> Callable[..., Any] | None:
    """The plain function behind a `point_read` method, or ``None``."""
    return getattr(method, "blocking_form", None)


def named_blob_read(
    method: str, db: str, tag: int, what: str
) -> Callable[[DomainHandle, object], bytes | None]:
    """The read behind the `point_read` method named ``method``: the opaque record of kind
    ``tag`` in ``db`` named by a key string (``what`` in errors), or ``None``. Sessions and
    identities, the hottest reads of the library: the method's whole work is this one
    function, with the key's validation, its encoding and the value's decoding inlined for
    their common case (each Python call layer costs a twentieth of the read)."""

    def read(self: DomainHandle, name: object) -> bytes | None:
        if self._closed or self._life.deleted:
            self._check_open()
        if (
            type(name) is str
            and name.isascii()
            and 0 < len(name) <= MAX_KEY_PART
            and "\0" not in name
        ):
            raw_name = name.encode()  # validate.text's fast case, inlined
        else:
            raw_name = validate.text(name, what)
        key = self._prefixes[tag] + raw_name + b"\x00"
        raw = self._storage.get(db, key)
        return None if raw is None else codec.load_blob(db, key, raw)

    read.__name__ = read.__qualname__ = method
    return read


class DomainHandle(DeviceHandle):
    """A view of one device's records in a shared `Storage`."""

    def __init__(self, storage: Storage, device_id: int) -> None:
        super().__init__(storage.devices, device_id)
        self._storage = storage
        # Whether reads may run on this thread (else on worker threads: `Storage.inline_reads`).
        self._inline = storage.inline_reads
        self._dev = keys.device_prefix(device_id)
        # dev · tag for every tag: the head of every key, built once.
        self._prefixes = [keys.prefix(self._dev, tag) for tag in range(keys.TAG_LIMIT)]
        self._record_sets: dict[str, Records] = {}
        self._limits = NO_LIMITS
        # Per cap, how many records this handle's last capped write left below it: a hint
        # (other writers move the count) of which writes cannot evict.
        self._headroom: dict[str, int] = {}
        # The device lease this handle holds (`lmdbstore.domains.lease`), if any.
        self._lease: DeviceLease | None = None

    def _records(self, kind: str) -> Records:
        """The records of ``kind`` of this device, with their index entries kept in step."""
        found = self._record_sets.get(kind)
        if found is None:
            found = self._record_sets[kind] = Records(kind, self._device_id)
        return found

    def _storage_open(self) -> Storage:
        self._check_open()
        return self._storage

    def _start_transaction(self) -> Self:
        """A handle of the same class whose storage is a new `TransactionStorage`."""
        handle = object.__new__(type(self))
        storage = cast("Storage", TransactionStorage(self._storage_open(), self._life))
        DomainHandle.__init__(handle, storage, self._device_id)
        handle._limits = self._limits
        handle._lease = self._lease
        return handle

    def _with_limits(self, limits: Limits) -> Self:
        """This handle, capped by ``limits`` (its store's, given at open)."""
        self._limits = limits
        return self

    def _capped(self, view: WriteView, cap: str) -> None:
        """Evict what the cap ``cap`` of `Limits` (if set) asks, once the write on ``view``
        is done (`lmdbstore.domains.caps`): the last call of a write that adds records."""
        limit: int | None = getattr(self._limits, cap)
        if limit is not None:
            records = self._records(caps.CAPPED[cap][0])

            def settle(done: WriteView) -> None:
                self._headroom[cap] = limit - caps.evict(done, records, cap, limit)

            view.at_commit(cap, settle)

    def _capped_records(self, cap: str, records: int) -> int | None:
        """``records``, the bound of a write that adds at most that many records under the
        cap ``cap``, or ``None`` when it may evict (as far as this handle knows: its last
        capped write left too little room, or there was none yet): an eviction is no small
        write (`Storage.write`). A wrong guess costs where the write runs, never what it
        does."""
        if getattr(self._limits, cap) is None or self._is_transaction:
            return records  # a transaction's writes are buffered; its commit decides
        return records if self._headroom.get(cap, 0) >= records else None

    def _release_device(self) -> None:
        """At close: also stop renewing the lease this handle holds, if any (it lapses
        after its ttl; `DeviceLease.release` gives it up at once). A transaction's handle
        shares its store handle's lease, which outlives it."""
        super()._release_device()
        if self._lease is not None and not self._is_transaction:
            self._lease.abandon()

    def _fenced(self, op: Callable[[WriteView], R]) -> Callable[[WriteView], R]:
        """``op``, refused at once if this handle's lease is lost, and refused inside its
        own write transaction unless the lease's record is still this holder's
        (`DeviceLease.fence`). A released lease fences nothing; a transaction's buffered
        writes are fenced at its commit instead."""
        fence = self._lease_fence()
        if fence is None or self._is_transaction:
            return op

        def fenced(view: WriteView) -> R:
            fence(view)
            return op(view)

        return fenced

    async def _commit_transaction(self) -> None:
        await cast("TransactionStorage", self._storage).commit(self._lease_fence())

    def _lease_fence(self) -> Callable[[WriteView], None] | None:
        """The fence of this handle's lease (`DeviceLease.fence`), run first in each of its
        writes and transactions' commits; ``None`` without a lease or once it is released.
        A lost lease is refused here, before anything is queued."""
        lease = self._lease
        if lease is None or lease.released:
            return None
        if lease.lost:
            lease.check()
        return lease.fence

    def _named_key(self, tag: int, name: object, what: str) -> bytes:
        """The key of the record of kind ``tag`` named by the key string ``name``: the key of
        most point reads. It cannot exceed the limit (5 + 255 + 1 bytes)."""
        return self._prefixes[tag] + validate.text(name, what) + b"\x00"

    async def _read(self, fn: Callable[[ReadView], R]) -> R:
        """``fn`` of a consistent view: a short read, here when the storage reads inline."""
        storage = self._storage_open()
        if self._inline:
            return storage.read(fn)
        return await storage.read_in_thread(fn)

    async def _read_in_thread(self, fn: Callable[[ReadView], R]) -> R:
        """``fn`` of a consistent view, off the event loop: a scan of unbounded length."""
        return await self._storage_open().read_in_thread(fn)

    async def _read_batch(self, items: Sized, fn: Callable[[ReadView], R]) -> R:
        """``fn`` reading each of ``items``: off the event loop past `INLINE_BATCH`."""
        if len(items) > INLINE_BATCH:
            return await self._read_in_thread(fn)
        return await self._read(fn)

    @staticmethod
    async def _off_loop(fn: Callable[..., R], *args: object) -> R:
        """``fn(*args)`` on a worker thread: blocking work (opening, closing, copying, the
        point reads of a storage that does not read inline)."""
        return await anyio.to_thread.run_sync(fn, *args)

    async def _get(self, db: str, key: bytes) -> bytes | None:
        storage = self._storage_open()
        if self._inline:
            return storage.get(db, key)
        return await self._off_loop(storage.get, db, key)

    async def _batch(self, items: object, work: Callable[[], R]) -> R:
        """``work()``: the validation, key building, encoding or reading of a batch of
        ``items``; here for a small batch, on a worker thread for one of more than
        `INLINE_BATCH` items, so that the event loop never runs a long one."""
        if isinstance(items, Sized) and len(items) > INLINE_BATCH:
            return await anyio.to_thread.run_sync(work)
        return work()

    def _exclusive(self) -> AbstractAsyncContextManager[object]:
        return self._storage_open().gate.exclusive()

    async def _write(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        """``op`` committed; ``records``: how many records it touches at most (None: no
        bound), which lets a storage commit it on this thread (`Storage.write`)."""
        if self._lease is not None:
            op = self._fenced(op)
        return await self._storage_open().write(op, records)

    async def _load(
        self, db: str, key: bytes, decoder: Callable[[dict[str, object]], R]
    ) -> R | None:
        """The decoded record at ``key``, or ``None``."""
        raw = await self._get(db, key)
        return None if raw is None else codec.load(db, key, raw, decoder)

    async def _load_blob(self, db: str, key: bytes) -> bytes | None:
        """The opaque value of the blob record at ``key`` (see `codec.dump_blob`)."""
        raw = await self._get(db, key)
        return None if raw is None else codec.load_blob(db, key, raw)

    async def _write_each(
        self,
        items: Sequence[object],
        what: str,
        check: Callable[[object, str], T],
        write: Callable[[WriteView, T], object],
        *,
        cap: str | None = None,
    ) -> int:
        """Each of ``items`` checked by ``check`` (off the event loop past `INLINE_BATCH`),
        then all written by ``write`` in one operation; how many. ``cap``: the cap of
        `Limits` that the records written count against."""
        checked = await self._batch(items, lambda: validate.each(items, what, check))

        def op(view: WriteView) -> int:
            for item in checked:
                write(view, item)
            if cap is not None:
                self._capped(view, cap)
            return len(checked)

        bound = len(checked) if cap is None else self._capped_records(cap, len(checked))
        return await self._write(op, bound)

    async def _put(self, db: str, key: bytes, value: bytes) -> None:
        await self._write(lambda view: view.put(db, key, value), 1)

    async def _put_many(self, db: str, items: Iterable[tuple[bytes, bytes]]) -> None:
        pairs = items if isinstance(items, list) else list(items)
        await self._write(lambda view: view.put_many(db, pairs), len(pairs))

    async def _put_records(self, kind: Kind, rows: Sequence[Sequence[Any]]) -> None:
        """Records of ``kind`` (one that no index derives from), a row each: its key
        components, then its fields (`lmdbstore.kinds`)."""
        device = self._device_id
        await self._write(lambda view: view.put_records(kind, device, rows), len(rows))

    async def _delete(self, db: str, *keys_: bytes) -> None:
        def op(view: WriteView) -> None:
            for key in keys_:
                view.delete(db, key)

        await self._write(op, len(keys_))
