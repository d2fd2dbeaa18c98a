"""The LMDB engine: one shared environment per path, inline reads, a group-commit writer.

Design (see DESIGN.md section 4 and NOTES.md for the measured costs behind it):

- **One environment per path per process.** LMDB refuses to open a path twice in a process,
  so every handle of a path (every ``for_device`` handle too) shares one `Engine`,
  reference-counted; the last handle to close closes it.
- **Reads inline.** A point read is a read transaction and a ``get`` (~1 us); a thread hop
  costs 50-100 times that, so point reads run on the caller's thread. Reads never hold a
  transaction across an ``await``.
- **Writes by group commit.** A write is a synchronous operation ``op(view)`` queued to one
  writer thread per environment. The thread drains the queue, runs every queued operation in
  one write transaction and commits once (one fsync for the batch), then wakes each waiting
  event loop with a single callback. A write transaction therefore begins and ends on one
  thread, as LMDB requires. An operation that raises is dropped from its batch and the rest
  is replayed, so one bad operation fails alone. A caller resumes only after the commit that
  holds its write, at the environment's durability. Cancelled while its write is still
  queued (waiting for the lock, perhaps held by another process), a caller withdraws it and
  the cancellation propagates at once; once the writer has taken it, the caller waits for
  that commit and returns. So a raised cancellation means not applied.
- **Map growth.** ``MapFullError`` aborts the batch; the writer doubles the map (bounded by
  ``max_size``) while no read transaction of this process is open, and replays the batch.
  Readers pass a gate that the resize closes for its duration. Growth by another process is
  picked up on ``MapResizedError``.
- **Durability.** ``"full"`` fsyncs every commit (LMDB's ``sync`` and ``metasync``).
  ``"normal"`` commits without fsync and makes that safe against power loss with
  checkpoints (see `lmdbstore.durability`). As such a commit costs a few microseconds, less
  than a thread hop, a small write (`INLINE_RECORDS`) that finds no other writer
  commits on the caller's thread (``inline``); other writes are queued and
  group-committed.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import operator
import os
import threading
import time
import types
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar, cast

import anyio
import cbor2
import lmdb

from lmdbstore import codec, keys
from lmdbstore import durability as power_loss
from lmdbstore.devices import Devices
from lmdbstore.encryption import EncryptionKey, KeyProvider, resolve_key
from lmdbstore.errors import (
    DatabaseError,
    MigrationError,
    ReadOnlyError,
    StoreClosedError,
    StoreConnectionError,
    ValidationError,
)
from lmdbstore.keys import DOMAINS, FORMAT_KEY, FORMAT_VERSION, MIGRATED_FORMATS
from lmdbstore.kinds import COUNTED
from lmdbstore.storage import INLINE_RECORDS
from lmdbstore.storage.gate import WriteGate
from lmdbstore.storage.sealed import ENCRYPTION_KEY, Cipher, cipher_for, sealed_view
from lmdbstore.storage.view import PrefixScans
from lmdbstore.storage.writer import Request, Writer, others_ready

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from lmdbstore.storage.view import ReadView, WriteView

R = TypeVar("R")

Durability = Literal["full", "normal"]
Mode = Literal["full", "normal", "readonly"]
"""How an engine is open: at a durability, or read-only (``readonly=True``)."""

DEFAULT_MAP_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_READERS = 256
"""Reader slots of a new environment's lock file (shared by every process; the first
process to open the environment sets the size, later ones use it)."""

READERS_FULL_WAIT = 2.0
"""Seconds a read waits, backing off, for a slot of a full reader table before it fails."""

DEFAULT_SYNC_INTERVAL = 0.1
"""With ``durability="normal"``, seconds between checkpoints: what a power loss may cost."""


FLAGS: dict[str, dict[str, bool]] = {
    "full": {"sync": True, "metasync": True},
    "normal": {"sync": False, "metasync": False},
}
"""The LMDB flags of each level ("normal" is safe without fsync only with checkpoints)."""

REMOVED_LEVELS = {
    "process": 'durability="process" is gone: "normal" now commits without fsync as it did,'
    " and survives a power loss, which it did not",
}


def wrap_lmdb_error(exc: lmdb.Error) -> DatabaseError:
    """An lmdb failure as the error the public API raises."""
    return DatabaseError(f"LMDB error: {exc}")


class LmdbReadView(PrefixScans):
    """A `lmdbstore.storage.view.ReadView` of one LMDB transaction."""

    __slots__ = ("_dbs", "_txn")

    def __init__(self, txn: lmdb.Transaction[bytes], dbs: dict[str, lmdb._Database]) -> None:
        self._txn = txn
        self._dbs = dbs

    def get(self, db: str, key: bytes) -> bytes | None:
        return self._txn.get(key, db=self._dbs[db])

    def entries(self, db: str) -> int:
        """How many keys ``db`` holds (index entries included)."""
        count: int = self._txn.stat(self._dbs[db])["entries"]
        return count

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        return _in_range(db, self._items(db, start, stop, reverse), start, stop, reverse=reverse)

    def _items(
        self, db: str, start: bytes, stop: bytes | None, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        # The keys of a read transaction do not change under the cursor: step through the
        # tree in its own order.
        cursor = self._txn.cursor(db=self._dbs[db])
        if not reverse:
            return cursor.iternext() if cursor.set_range(start) else iter(())
        return cursor.iterprev() if _last_below(cursor, stop) else iter(())


class _LongReadView(LmdbReadView):
    """The view of a long read (`Engine.snapshot`): each of its LMDB calls, or chunk of a
    scan's, passes the reader gate on its own (see `_ReaderGate`)."""

    __slots__ = ("_gate",)

    def __init__(
        self, txn: lmdb.Transaction[bytes], dbs: dict[str, lmdb._Database], gate: _ReaderGate
    ) -> None:
        super().__init__(txn, dbs)
        self._gate = gate

    def get(self, db: str, key: bytes) -> bytes | None:
        self._gate.enter()
        try:
            return super().get(db, key)
        finally:
            self._gate.leave()

    def entries(self, db: str) -> int:
        self._gate.enter()
        try:
            return super().entries(db)
        finally:
            self._gate.leave()

    def _items(
        self, db: str, start: bytes, stop: bytes | None, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        self._gate.enter()
        try:
            items = super()._items(db, start, stop, reverse)
        finally:
            self._gate.leave()
        return self._gate.chunk(items)


def _last_below(cursor: lmdb.Cursor[bytes], stop: bytes | None) -> bool:
    """Put ``cursor`` on the last key below ``stop`` (None: the last key); whether any."""
    return bool(cursor.prev() if stop is not None and cursor.set_range(stop) else cursor.last())


def _in_range(
    db: str,
    items: Iterator[tuple[bytes, bytes]],
    start: bytes,
    stop: bytes | None,
    *,
    reverse: bool,
) -> Iterator[tuple[bytes, bytes]]:
    """``items`` (in key order, or reverse) up to the end of ``[start, stop)``, each key
    checked to pass the one before: a damaged tree is reported, never walked in circles or
    silently skipped."""
    last: bytes | None = None
    for key, value in items:
        if (key < start) if reverse else (stop is not None and key >= stop):
            return
        if last is not None and ((key >= last) if reverse else (key <= last)):
            raise _out_of_order(db, key)
        yield key, value
        last = key


EXPIRY_CHUNK = 4096
"""Index entries an expiry collects before it deletes them and their records
(`LmdbWriteView.delete_indexed`): its memory stays bounded however much expires, and one
seek a chunk costs nothing against its 4,096 rows."""


def _out_of_order(db: str, key: bytes) -> DatabaseError:
    return DatabaseError(f"the {db} tree is damaged: its keys are out of order at {key.hex()}")


class LmdbWriteView(LmdbReadView):
    """A `lmdbstore.storage.view.WriteView` of the writer's LMDB transaction."""

    __slots__ = ()

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        # The cursor re-seeks after each item, so that deleting behind it is safe (in a
        # damaged tree a re-seek can go back: _in_range stops that).
        cursor = self._txn.cursor(db=self._dbs[db])
        return _in_range(db, _reseeking(cursor, start, stop, reverse), start, stop, reverse=reverse)

    def put(self, db: str, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._dbs[db])

    def put_many(self, db: str, items: Iterable[tuple[bytes, bytes]]) -> None:
        """One ``putmulti`` call: a quarter of the cost of a ``put`` per item (measured on
        batches of 812 pre-keys). Items in ascending key order past the last key stored
        (a bulk load: an import, a migration, ids that grow) go in LMDB's append mode,
        which starts a new page where a full one would be split at its middle: the pages
        end full rather than five-sixths full for 600-byte sessions (measured: 100,000
        sessions take 68 MB against 83 MB), and no item is searched for."""
        pairs = items if isinstance(items, list) else list(items)
        cursor = self._txn.cursor(db=self._dbs[db])
        keys_ = list(map(operator.itemgetter(0), pairs))  # compared in C: half the time
        append = (
            bool(pairs)
            and all(map(operator.lt, keys_, itertools.islice(keys_, 1, None)))
            and (not cursor.last() or cursor.key() < keys_[0])
        )
        cursor.putmulti(pairs, append=append)

    def delete(self, db: str, key: bytes) -> bool:
        return self._txn.delete(key, db=self._dbs[db])

    def pop(self, db: str, key: bytes) -> bytes | None:
        return self._txn.pop(key, db=self._dbs[db])

    def delete_indexed(
        self,
        db: str,
        index_start: bytes,
        stop: bytes | None,
        record_start: bytes,
        skip: int,
        limit: int | None = None,
    ) -> int:
        """Expiry a chunk of `EXPIRY_CHUNK` entries at a time, each step one loop in C
        over the chunk, not one of Python calls per row: one iteration collects the
        entries' keys; the entries are deleted where a cursor stands (each delete moves it
        to the next, so no seek); the records are popped through a second cursor, whose
        seek starts from the leaf page it stands on when the key is there (LMDB's cursor
        set), as it is when records expire in key order. Measured on 10,000 of 1,000,000
        sent messages: 0.50 µs a row on a bare environment, against 0.61 for a Python loop
        making the same calls; in a store, under its checkpoint's pin, 6.55 ms against 6.8
        for the whole call, most of it LMDB's own deletes. Keys must rise, across chunks
        too, as `_in_range` checks: a damaged tree is reported before a chunk of it is
        deleted."""
        handle = self._dbs[db]
        txn = self._txn
        entries = txn.cursor(db=handle)
        records = txn.cursor(db=handle)
        head = len(index_start) + skip
        deleted = 0
        last = b""
        while deleted != limit and entries.set_range(index_start):
            walk: Iterator[bytes] = entries.iternext(values=False)
            if stop is not None:
                walk = itertools.takewhile(stop.__gt__, walk)
            size = EXPIRY_CHUNK if limit is None else min(EXPIRY_CHUNK, limit - deleted)
            chunk = list(itertools.islice(walk, size))
            if not chunk:
                break
            if not all(map(operator.lt, itertools.chain((last,), chunk), chunk)):
                pairs = itertools.pairwise([last, *chunk])
                raise _out_of_order(db, next(key for before, key in pairs if key <= before))
            last = chunk[-1]
            entries.set_range(index_start)  # the chunk's first entry, found as it was
            collections.deque(
                itertools.starmap(entries.delete, itertools.repeat((), len(chunk))), 0
            )
            collections.deque(map(records.pop, [record_start + key[head:] for key in chunk]), 0)
            deleted += len(chunk)
        return deleted


def _reseeking(
    cursor: lmdb.Cursor[bytes], start: bytes, stop: bytes | None, reverse: bool
) -> Iterator[tuple[bytes, bytes]]:
    """The items from ``start`` on (or, ``reverse``, from the last below ``stop`` down),
    seeking again from each key yielded, which the caller may have deleted meanwhile."""
    if not reverse:
        found = cursor.set_range(start)
        while found:
            key, value = cursor.item()
            yield key, value
            found = cursor.set_range(key + b"\x00")
        return
    found = _last_below(cursor, stop)
    while found:
        key, value = cursor.item()
        yield key, value
        found = cursor.prev() if cursor.set_range(key) else cursor.last()


SCAN_SLICE = 0.002
"""Seconds a long read walks before it sleeps for `SCAN_PAUSE`. py-lmdb releases the
interpreter lock in every call (a read transaction's begin, a get, a commit), so each point
read or write of the event loop gives the lock away; a scan thread that never sleeps takes
it each time and keeps it for up to the switch interval (5 ms), and a loop making a few
calls in a row waits that long for each. Measured on 1,000,000 sessions: the loop's worst
lag during ``verify``, a conflict and ten point reads fell from 22-30 ms to 7 ms, and
``verify`` took no longer."""
SCAN_PAUSE = 0.0002
"""See `SCAN_SLICE`: 10% of a long read's time at most, given to other threads."""


class _ReaderGate:
    """Keeps this process's readers out of the way of a map resize and of a write
    transaction's abort, without letting a long scan hold either up for long.

    ``set_mapsize`` remaps the file: no read transaction of the process may be open across
    it (py-lmdb 3 refuses reads from one with an error). And py-lmdb 3 makes a
    write-transaction abort wait until no LMDB call of any thread of the process is
    running: readers that overlap without pause (several threads) would starve it forever.
    So readers register, and `exclusive` runs those two actions once they are out:

    - ``active``: short reads (a point read, a few) for their whole transaction, and each
      chunk of a long read's calls (`chunk`); `exclusive` waits for these, and while it
      runs (``resizing``) new ones wait. Each is microseconds.
    - ``scanning``: long reads (scans on worker threads, an export's snapshot) for their
      whole transaction, which may last seconds. Only a resize waits for them
      (``without_scans``), and while it does, new long reads wait (``scans_held``) but
      short reads go on: the event loop's point reads never wait behind a scan. An abort
      (a failed operation, a conflict) waits for one chunk at most.

    Registering appends to a list and then checks the flag; `exclusive` sets the flag and
    then waits for the list to empty. Under the GIL each step is atomic and every thread
    sees them in program order, so either the reader sees the flag and backs off, or
    `exclusive` sees the reader and waits. The read path takes no lock: a lock pair costs
    as much as the LMDB read itself.
    """

    __slots__ = (
        "_done",
        "_resize_lock",
        "_scans_done",
        "active",
        "resizing",
        "scanning",
        "scans_held",
    )

    def __init__(self) -> None:
        self.active: list[None] = []
        self.scanning: list[None] = []
        self.resizing = False
        self.scans_held = False
        self._done = threading.Event()
        self._done.set()
        self._scans_done = threading.Event()
        self._scans_done.set()
        self._resize_lock = threading.Lock()

    def enter(self) -> None:
        while True:
            self.active.append(None)
            if not self.resizing:
                return
            self.active.pop()
            self._done.wait()

    def leave(self) -> None:
        self.active.pop()

    def enter_scan(self) -> None:
        """A long read begins (`leave_scan` when its transaction has ended)."""
        while True:
            self.scanning.append(None)
            if not self.scans_held:
                return
            self.scanning.pop()
            self._scans_done.wait()

    def leave_scan(self) -> None:
        self.scanning.pop()

    def chunk(self, items: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
        """``items`` of a long read, pulled in chunks each inside the gate (8 items, then
        doubling up to 256): an abort waits for one chunk, not for the scan. Between chunks,
        once `SCAN_SLICE` has passed, the walk sleeps `SCAN_PAUSE` (outside the gate)."""
        size = 8
        slice_start = time.monotonic()
        while True:
            self.enter()
            try:
                found = list(itertools.islice(items, size))
            finally:
                self.leave()
            yield from found
            if len(found) < size:
                return
            size = min(size * 2, 256)
            if time.monotonic() - slice_start >= SCAN_SLICE:
                time.sleep(SCAN_PAUSE)
                slice_start = time.monotonic()

    def exclusive(self, action: Callable[[], None], *, without_scans: bool = False) -> None:
        """Run ``action`` once no short read or chunk is inside (``without_scans``: and no
        long read is open, for a resize); they wait meanwhile. Rare (a map growth or a
        failed batch), so waiting is a short poll."""
        with self._resize_lock:
            if without_scans:
                self._scans_done.clear()
                self.scans_held = True
            try:
                while without_scans and self.scanning:
                    time.sleep(0.001)
                self._done.clear()
                self.resizing = True
                try:
                    while self.active:
                        time.sleep(0.0001)
                    action()
                finally:
                    self.resizing = False
                    self._done.set()
            finally:
                if without_scans:
                    self.scans_held = False
                    self._scans_done.set()


class Engine:
    """One open LMDB environment, shared by every handle of its path in this process: a
    `lmdbstore.storage.Storage`."""

    inline_reads = True

    def __init__(
        self,
        path: str,
        env: lmdb.Environment,
        dbs: dict[str, lmdb._Database],
        durability: Mode,
        max_size: int | None,
        sync_interval: float,
        locks: tuple[power_loss.WriterLock | _NoLocks, power_loss.LevelLock | _NoLocks],
        checkpoints: power_loss.Checkpoints | None,
        closes_seen: int = 0,
        cipher: Cipher | None = None,
    ) -> None:
        self.path = path
        self.env = env
        self.dbs = dbs
        self.durability = durability
        self.max_size = max_size
        self._lock, self._level = locks
        self.checkpoints = checkpoints
        self.sync_interval = sync_interval
        self.inline = checkpoints is not None  # a commit needs no fsync
        self._closes_seen = closes_seen  # other processes' closes, as of the last check
        self.refs = 0
        self.devices = Devices()
        self._reader_gate = _ReaderGate()
        self._begin: Callable[..., lmdb.Transaction[bytes]] = env.begin
        self.forked = False  # set in a child process that inherited this engine by fork()
        self._writer = Writer(
            f"lmdbstore-writer:{path}",
            self._commit,
            self._lock.held,
            checkpoints.pace if checkpoints is not None else None,
        )
        self._closed = False
        self.gate = WriteGate()
        self.cipher = cipher
        """The keys of an encrypted store (`lmdbstore.storage.sealed`); ``None``: plain."""
        if cipher is not None:
            # The plain path pays nothing for encryption, not even a test: an encrypted
            # store's get is the cipher's read through the plain one.
            plain_get = types.MethodType(Engine.get, self)
            self.get = functools.partial(cipher.read, plain_get)  # type: ignore[method-assign]

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str,
        durability: Durability,
        map_size: int,
        max_size: int | None,
        sync_interval: float,
        max_readers: int = DEFAULT_MAX_READERS,
        key: EncryptionKey | None = None,
    ) -> Engine:
        """Open (creating if needed) the environment at ``path`` and check its format and
        its key (`encryption_of`); after a reboot, first return it to its last checkpoint.
        Blocking: call it from a worker thread."""
        try:
            if not os.path.isdir(path):
                os.makedirs(path, mode=0o700, exist_ok=True)
                power_loss.fsync_directory(os.path.dirname(path))  # the new entry is durable
            else:
                _refuse_a_foreign_directory(path)
            level = power_loss.LevelLock(path, durability)
        except (OSError, lmdb.Error) as exc:
            raise StoreConnectionError(f"cannot open LMDB store at {path!r}: {exc}") from None
        try:
            lock = power_loss.WriterLock(path)
        except OSError as exc:
            level.close()
            raise StoreConnectionError(f"cannot open LMDB store at {path!r}: {exc}") from None
        checked = "normal" if durability == "normal" and power_loss.boot_id() else "full"
        options: dict[str, Any] = {
            "max_dbs": len(DOMAINS) + 1,
            "max_readers": max_readers,
            "readahead": False,
            "mode": 0o600,  # data.mdb and lock.mdb hold keys: owner-only
            **FLAGS[checked],
        }
        try:
            with lock.held():
                power_loss.recover(path)
                power_loss.create_atomically(
                    path, lambda private: _build(private, map_size, options)
                )
                env = lmdb.Environment(path, map_size=map_size, **options)
                try:
                    checkpoints = None
                    if checked == "normal":
                        checkpoints = _first_checkpoint(env, path, lock, sync_interval)
                    else:
                        power_loss.forget_checkpoint(env, path)
                    dbs, cipher = _open_databases(env, checkpoints, key)
                    closes_seen = lock.closes()  # with the lock: see _commit
                except BaseException:
                    if checkpoints is not None:
                        checkpoints.release_pin()
                    env.close()
                    raise
        except (OSError, lmdb.Error) as exc:
            lock.close()
            level.close()
            raise StoreConnectionError(f"cannot open LMDB store at {path!r}: {exc}") from None
        except BaseException:
            lock.close()
            level.close()
            raise
        engine = cls(
            path,
            env,
            dbs,
            durability,
            max_size,
            sync_interval,
            (lock, level),
            checkpoints,
            closes_seen,
            cipher,
        )
        if checkpoints is not None:
            checkpoints.start()
        return engine

    @classmethod
    def open_readonly(
        cls, path: str, max_readers: int = DEFAULT_MAX_READERS, key: EncryptionKey | None = None
    ) -> Engine:
        """Open the existing store at ``path`` for inspection: LMDB ``readonly``, no
        lmdbstore file created beside it, nothing written; every write raises
        `ReadOnlyError`. A store that must first recover from a restart (see
        `lmdbstore.durability`) is refused: a writable open recovers it. Blocking."""
        if not os.path.isfile(os.path.join(path, power_loss.DATA_FILE)):
            raise StoreConnectionError(f"no LMDB store at {path!r} (readonly creates none)")
        if power_loss.recovery_due(path):
            raise StoreConnectionError(
                f"{path!r} has not recovered from a restart yet: open it once without"
                " readonly, which recovers it"
            )
        try:
            env = lmdb.Environment(
                path,
                readonly=True,
                create=False,
                max_dbs=len(DOMAINS) + 1,
                max_readers=max_readers,
                readahead=False,
            )
        except lmdb.Error as exc:
            raise StoreConnectionError(f"cannot open LMDB store at {path!r}: {exc}") from None
        try:
            raw = stored_format(env)
            if codec.stored_version(raw) in MIGRATED_FORMATS:
                raise StoreConnectionError(
                    f"{path!r} is in the format of an older lmdbstore and must be migrated"
                    " first: open it once without readonly"
                )
            check_format(raw)
            dbs = {name: env.open_db(name.encode(), create=False) for name in DOMAINS}
            with env.begin() as txn:
                cipher = encryption_of(path, txn, dbs, key, creates=False)
        except lmdb.NotFoundError:
            env.close()
            raise StoreConnectionError(
                f"not an lmdbstore store at {path!r}: it lacks lmdbstore's sub-databases or"
                " format version"
            ) from None
        except lmdb.Error as exc:
            env.close()
            raise StoreConnectionError(f"cannot open LMDB store at {path!r}: {exc}") from None
        except BaseException:
            env.close()
            raise
        return cls(
            path,
            env,
            dbs,
            "readonly",
            None,
            DEFAULT_SYNC_INTERVAL,
            (_NO_LOCKS, _NO_LOCKS),
            None,
            cipher=cipher,
        )

    @property
    def scans_resume(self) -> bool:
        """Whether a resumed scan costs what it reads: not on an encrypted store
        (`lmdbstore.storage.Storage.scans_resume`)."""
        return self.cipher is None

    @property
    def readonly(self) -> bool:
        """Whether the engine was opened with `open_readonly`."""
        return self.durability == "readonly"

    def close(self) -> None:
        """Finish the queued writes, flush, and close the environment. Blocking."""
        if self.forked:
            return  # see _after_fork_in_child
        self._closed = True
        self._writer.close()
        try:
            if self.checkpoints is not None:
                self.checkpoints.close(self._checkpoint_locked)
        finally:
            self.env.close()
            self._lock.close()
            self._level.close()

    # -- reads -----------------------------------------------------------------------------

    def read(self, fn: Callable[[ReadView], R], *, sealed: bool = True) -> R:
        """Run ``fn`` on a fresh read transaction, on this thread. Keep ``fn`` short (a few
        point reads); scans go through `read_in_thread`. ``sealed=False``: on an encrypted
        store, the stored keys and values."""
        txn = self._begin_reader()  # not through snapshot(): a generator costs a microsecond
        try:
            view = LmdbReadView(txn, self.dbs)
            return fn(sealed_view(view, self.cipher) if sealed else view)
        except lmdb.Error as exc:
            raise wrap_lmdb_error(exc) from None
        finally:
            txn.abort()
            self._reader_gate.leave()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[ReadView]:
        """One read transaction held for the block, on this thread: a consistent view for a
        long walk (a scan, an export). Its LMDB calls pass the gate in chunks, so that a
        failed write's abort never waits for the walk; map growth of this process does
        (new long reads wait meanwhile, short ones do not)."""
        gate = self._reader_gate
        txn = self._begin_reader(long=True)
        gate.leave()  # from here on, each call or chunk of calls enters on its own
        try:
            yield sealed_view(_LongReadView(txn, self.dbs, gate), self.cipher)
        except lmdb.Error as exc:
            raise wrap_lmdb_error(exc) from None
        finally:
            gate.enter()
            try:
                txn.abort()
            finally:
                gate.leave()
                gate.leave_scan()

    def _begin_reader(self, *, long: bool = False) -> lmdb.Transaction[bytes]:
        """A read transaction, with the resize gate entered (the caller leaves it; ``long``:
        and registered as a long read, `_ReaderGate.leave_scan` too). A map that another
        process grew is adopted. When the reader table is full, the slots of dead
        processes are reclaimed, then the read waits for a live one to end, backing off up
        to `READERS_FULL_WAIT` seconds in all before it fails."""
        if self.forked:
            raise StoreConnectionError(f"{self.path!r}: {FORKED}")
        gate = self._reader_gate
        resized = 0
        pause, deadline = 0.0005, None
        while True:
            if long:
                gate.enter_scan()
            gate.enter()
            try:
                return self.env.begin()
            except lmdb.Error as exc:
                gate.leave()  # a resize or a reclaim below must not wait for this read
                if long:
                    gate.leave_scan()
                if not isinstance(exc, lmdb.MapResizedError | lmdb.ReadersFullError):
                    raise wrap_lmdb_error(exc) from None
                # Only the kind is kept: an exception held in a local would tie this frame
                # (and with it open transactions) into a cycle that only the collector ends.
                map_resized = isinstance(exc, lmdb.MapResizedError)
            if map_resized:
                resized += 1
                if resized > 3:
                    raise DatabaseError("LMDB read failed: the map was resized again and again")
                with self._lock.held():
                    self._resize(lambda: self.env.set_mapsize(0))
            else:
                now = time.monotonic()
                if deadline is None:
                    self._reclaim_readers()
                    deadline = now + READERS_FULL_WAIT
                elif now >= deadline:
                    raise DatabaseError(
                        f"LMDB's reader table stayed full for {READERS_FULL_WAIT} s: more"
                        " reads at once than max_readers slots (open with a larger"
                        " max_readers)"
                    )
                else:
                    time.sleep(pause)
                    pause = min(pause * 2, 0.05)

    def get(self, db: str, key: bytes) -> bytes | None:
        """One point read: `read` without the closure and the view, because this is
        the hottest path of the library (a read transaction costs about a microsecond)."""
        gate = self._reader_gate
        active = gate.active
        active.append(None)  # gate.enter(), inlined
        try:
            if not gate.resizing:
                # db positional: py-lmdb parses it faster. The transaction is a temporary:
                # it is freed, and so aborted (its reader slot free), as soon as get returns,
                # without the cost of an abort call and a try block (about 0.1 µs).
                return self._begin(self.dbs[db]).get(key)
        except lmdb.Error:
            pass  # map resized, readers full, ...: the general path handles it
        finally:
            active.pop()
        return self.read(lambda view: view.get(db, key), sealed=False)

    async def read_in_thread(self, fn: Callable[[ReadView], R]) -> R:
        """`read_long` on a worker thread."""
        return await anyio.to_thread.run_sync(self.read_long, fn)

    def read_long(self, fn: Callable[[ReadView], R]) -> R:
        """``fn`` of a `snapshot`, on this thread: for scans whose size has no bound."""
        with self.snapshot() as view:
            return fn(view)

    def own_problems(self) -> list[str]:
        """Nothing: LMDB has no page checker of its own (``verify`` walks every record)."""
        return []

    # -- writes ----------------------------------------------------------------------------

    async def write(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        """Apply ``op`` in a write transaction and return its result once it is committed:
        on this thread when that needs no fsync, nobody is writing and ``op`` touches at most
        `INLINE_RECORDS` records (``records``; None: no bound), else through the writer
        thread. Cancelled while queued, the write is withdrawn and the cancellation raised;
        cancelled once the writer has taken it, it completes and returns."""
        self._check_writable()
        gate = self.gate  # see lmdbstore.storage.gate: run_transaction's last attempt
        if not gate.try_enter():
            await gate.enter()
        try:
            done, result = self._try_inline(op, records, from_loop=True)
            if done:
                return cast("R", result)
            return await self._writer.submit(op)
        finally:
            gate.leave()

    def write_blocking(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        """`write` for a thread that waits for the commit (`lmdbstore.sync`): inline when
        nobody is writing and ``op`` is small, whatever the durability (the fsync of
        ``"full"`` is what this caller waits for anyway); else through the writer thread,
        where writes of every thread and every event loop group-commit."""
        self._check_writable()
        if self.checkpoints is not None:
            self.checkpoints.pace()  # this caller waits anyway: here, not on the writer

        def write() -> R:
            done, result = self._try_inline(op, records, from_loop=False)
            if done:
                return cast("R", result)
            return self._writer.submit_blocking(op)

        return self.gate.passing(write)

    def _check_writable(self) -> None:
        if self.readonly:
            raise ReadOnlyError(f"{self.path!r} is open read-only")

    def _try_inline(
        self, op: Callable[[WriteView], R], records: int | None, *, from_loop: bool
    ) -> tuple[bool, R | None]:
        """``op`` committed on this thread if it is small and nobody writes: ``(True,
        result)``; else ``(False, None)``. From the event loop, only a commit that needs no
        fsync, and none while a scan runs (an abort would wait for the scan's LMDB call),
        while writes must wait for a checkpoint (`Checkpoints.pace`), or while other tasks
        of the loop are ready to run (`others_ready`: theirs join the writer's batch)."""
        if (
            records is None
            or records > INLINE_RECORDS
            or not self._writer.idle()
            or (
                from_loop
                and (
                    not self.inline
                    or self._reader_gate.scanning
                    or cast("power_loss.Checkpoints", self.checkpoints).behind
                    or others_ready()
                )
            )
            or not self._lock.acquire(blocking=False)
        ):
            return False, None
        try:
            return self._commit_inline(op)
        finally:
            self._lock.release()

    def _commit_inline(self, op: Callable[[WriteView], R]) -> tuple[bool, R | None]:
        """``op`` in its own write transaction on this thread, with the `WriterLock` held:
        ``(True, result)``, or ``(False, None)`` when the writer thread must do it: the map
        is full (growing it waits for readers: the writer thread's job) or another process
        grew it. No look at the map's use first: ``env.info()`` costs as much as the rest of
        a small commit, and a full map is met once per doubling. ``op``'s own error is
        raised."""
        if self._closed:
            raise StoreClosedError("the store is closed")
        if self._lock.closes() != self._closes_seen:
            return False, None  # the writer thread checkpoints first (see _commit)
        try:
            txn = self.env.begin(write=True)
        except lmdb.Error:
            return False, None
        try:
            result = op(sealed_view(LmdbWriteView(txn, self.dbs), self.cipher))
            txn.commit()
        except lmdb.MapFullError:
            self._reader_gate.exclusive(txn.abort)  # see _ReaderGate
            return False, None
        except Exception as exc:
            self._reader_gate.exclusive(txn.abort)
            raise _as_store_error(exc) from None
        if self.checkpoints is not None:
            self.checkpoints.committed()
        return True, result

    def _commit(self, batch: list[Request]) -> None:
        """Apply ``batch`` in one write transaction; failures are recorded per request. With
        the `WriterLock` held."""
        closes = self._lock.closes()
        if self.checkpoints is not None and closes != self._closes_seen:
            # Another process closed and released the pin of its last checkpoint, maybe
            # the file's newest: checkpoint before any commit may reuse those pages.
            self._checkpoint_locked()
            self._closes_seen = closes
        pending = batch
        while pending:
            culprit: Request | None = None
            try:
                txn = self.env.begin(write=True)
            except lmdb.MapResizedError:
                # Another process grew the map: adopt its size and begin again.
                self._resize(lambda: self.env.set_mapsize(0))
                continue
            except lmdb.Error as exc:
                for request in pending:
                    request.error = wrap_lmdb_error(exc)
                return
            view = sealed_view(LmdbWriteView(txn, self.dbs), self.cipher)
            try:
                for request in pending:
                    culprit = request
                    request.result = request.op(view)
                culprit = None
                txn.commit()
            except lmdb.MapFullError:
                self._reader_gate.exclusive(txn.abort)  # see _ReaderGate
                if self._grow():
                    continue
                blamed = culprit or pending[-1]
                blamed.error = DatabaseError(
                    f"the store is full: its map reached max_size={self.max_size} bytes"
                )
                pending = [r for r in pending if r is not blamed]
                continue
            except Exception as exc:
                self._reader_gate.exclusive(txn.abort)  # see _ReaderGate
                if culprit is None:  # the commit itself failed: nothing was written
                    error = _as_store_error(exc)
                    for request in pending:
                        request.error = error
                    return
                culprit.error = _as_store_error(exc)
                pending = [r for r in pending if r is not culprit]
                continue
            if self.checkpoints is not None:
                self.checkpoints.committed()
            return

    def _grow(self) -> bool:
        """Double the map (up to ``max_size``); False when it cannot grow any more. With the
        `WriterLock` held."""
        current = self.env.info()["map_size"]
        target = current * 2
        if self.max_size is not None:
            target = min(target, self.max_size)
        if target <= current:
            return False
        self._resize(lambda: self.env.set_mapsize(target))
        return True

    def _resize(self, resize: Callable[[], None]) -> None:
        """``resize()`` (a ``set_mapsize``) with no reader of this process inside. It ends
        every transaction of the process, the checkpoint's reader too, so a new checkpoint
        follows at once. With the `WriterLock` held: no commit of any process can reuse the
        old checkpoint's pages in between."""
        checkpoints = self.checkpoints
        if checkpoints is None:
            self._reader_gate.exclusive(resize, without_scans=True)
            return
        self._reader_gate.exclusive(lambda: checkpoints.unpinned(resize), without_scans=True)
        checkpoints.take_locked()

    def _checkpoint_locked(self) -> None:
        """A checkpoint now, with the `WriterLock` held; if another process has grown the
        map, adopting its size (which takes the checkpoint)."""
        assert self.checkpoints is not None
        try:
            self.checkpoints.take_locked()
        except lmdb.MapResizedError:
            self._resize(lambda: self.env.set_mapsize(0))

    def _reclaim_readers(self) -> None:
        """Free the reader slots of dead processes. A dead process's slot may hold the
        checkpoint the file names, so take one of our own first."""
        with self._lock.held():
            if self.checkpoints is not None:
                try:
                    self._checkpoint_locked()
                except lmdb.Error:  # the checkpoint needs a slot too: reclaim none this time
                    return
            self.env.reader_check()


def _as_store_error(exc: Exception) -> Exception:
    if isinstance(exc, lmdb.Error):
        return wrap_lmdb_error(exc)
    return exc


def _count_tallies(txn: lmdb.Transaction, dbs: dict[str, Any]) -> None:
    """The tallies of a store written before format 3 had them (`lmdbstore.keys.TALLY`):
    each device's entries of each counted index, counted in one walk of its sub-database
    (once, in the migrating transaction)."""
    for index in COUNTED:
        counts: dict[bytes, int] = {}
        with txn.cursor(db=dbs[index.db]) as cursor:
            for key in cursor.iternext(values=False):
                if len(key) > 4 and key[4] == index.tag:
                    dev = cast("bytes", key)[:4]
                    counts[dev] = counts.get(dev, 0) + 1
        for dev, count in counts.items():
            txn.put(keys.tally(dev, index.tag), keys.u64(count), db=dbs[index.db])


def check_format(raw: bytes) -> None:
    """MigrationError unless ``raw`` holds this library's on-disk format version."""
    version = codec.stored_version(raw)
    if version != FORMAT_VERSION:
        shown = "unreadable" if version is None else version
        raise MigrationError(
            f"on-disk format {shown} is not supported (this lmdbstore reads format"
            f" {FORMAT_VERSION})"
        )


class _NoLocks:
    """The writer and level locks of a read-only engine, which never writes: it takes no
    lock and creates no lock file."""

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        yield

    def acquire(self, blocking: bool = True) -> bool:
        return False

    def release(self) -> None:
        pass

    def closes(self) -> int:
        return 0

    def close(self) -> None:
        pass


_NO_LOCKS = _NoLocks()


def _refuse_a_foreign_directory(path: str) -> None:
    """`_refuse_a_foreign_environment` for an environment at ``path`` that lmdbstore never
    opened (a restored copy, or another program's), before any file of ours is created
    beside it. No recovery can be due there: lmdbstore never wrote to it."""
    if not os.path.exists(os.path.join(path, power_loss.DATA_FILE)) or os.path.exists(
        os.path.join(path, power_loss.LOCK_FILE)
    ):
        return
    env = lmdb.Environment(path, readonly=True, create=False, max_dbs=0)
    try:
        _refuse_a_foreign_environment(env)
    finally:
        env.close()


def _refuse_a_foreign_environment(env: lmdb.Environment) -> None:
    """StoreConnectionError, before anything is written, when the environment's main
    database holds anything but lmdbstore's sub-databases: another program's environment
    is not ours to add sub-databases and a format version to (``lmdbstore verify`` on it
    used to, and then said ok)."""
    with env.begin() as txn:
        foreign = sorted(
            key
            for key in txn.cursor().iternext(values=False)
            if key.decode(errors="replace") not in DOMAINS
        )
    if foreign:
        shown = ", ".join(repr(name)[1:] for name in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise StoreConnectionError(
            f"not an lmdbstore store: its main database holds {shown}{more}, which lmdbstore"
            " never writes (another program's LMDB environment?)"
        )


def stored_format(env: lmdb.Environment) -> bytes:
    """The stored format version of an existing environment, another program's refused
    first (`_refuse_a_foreign_environment`); `lmdb.NotFoundError` without lmdbstore's
    sub-databases or format version."""
    _refuse_a_foreign_environment(env)
    # Without a transaction of ours: py-lmdb opens it in a read transaction that it commits,
    # after which the handle is valid for every later transaction.
    meta = env.open_db(b"meta", create=False)
    with env.begin() as txn:
        raw: bytes | None = txn.get(FORMAT_KEY, db=meta)
    if raw is None:
        raise lmdb.NotFoundError("no format version")
    return raw


def _open_databases(
    env: lmdb.Environment,
    checkpoints: power_loss.Checkpoints | None = None,
    key: EncryptionKey | None = None,
) -> tuple[dict[str, lmdb._Database], Cipher | None]:
    """Open every sub-database and check (or write) the on-disk format version, and the
    cipher of an encrypted store (`encryption_of`). Stale reader slots of dead processes
    are reclaimed first. With the `WriterLock` held, after the first checkpoint
    (``checkpoints``, at ``"normal"``)."""
    try:
        env.reader_check()
        _refuse_a_foreign_environment(env)
        try:
            txn = env.begin(write=True)
        except lmdb.MapResizedError:
            # Another process grew the map past our map_size: adopt it (ending the
            # checkpoint's reader, so take a new checkpoint).
            if checkpoints is None:
                env.set_mapsize(0)
            else:
                checkpoints.unpinned(lambda: env.set_mapsize(0))
                checkpoints.take_locked()
            txn = env.begin(write=True)
        with txn:
            dbs = {name: env.open_db(name.encode(), txn=txn) for name in DOMAINS}
            raw = txn.get(FORMAT_KEY, db=dbs["meta"])
            if raw is None:
                if any(txn.stat(dbs[name])["entries"] for name in DOMAINS):
                    raise MigrationError("the store holds records but no format version")
                txn.put(FORMAT_KEY, cbor2.dumps(FORMAT_VERSION), db=dbs["meta"])
            elif codec.stored_version(raw) in MIGRATED_FORMATS:
                # Its missing sub-databases were created just above, in this transaction;
                # formats before 3 lack the tallies (format 4 only adds a record kind).
                if (codec.stored_version(raw) or 0) < 3:
                    _count_tallies(txn, dbs)
                txn.put(FORMAT_KEY, cbor2.dumps(FORMAT_VERSION), db=dbs["meta"])
            else:
                check_format(raw)
            cipher = encryption_of(env.path(), txn, dbs, key)
    except lmdb.Error as exc:
        raise StoreConnectionError(f"cannot open the sub-databases: {exc}") from None
    return dbs, cipher


def encryption_of(
    path: str,
    txn: lmdb.Transaction[bytes],
    dbs: dict[str, lmdb._Database],
    key: EncryptionKey | None,
    *,
    creates: bool = True,
) -> Cipher | None:
    """The cipher of the store at ``path`` opened with ``key`` (``None``: a plain store,
    `lmdbstore.storage.sealed.cipher_for`). With ``creates``, a new store opened with a
    key is made encrypted (``txn`` writes its record)."""
    record: bytes | None = txn.get(ENCRYPTION_KEY, db=dbs["meta"])

    def holds_records() -> bool:
        return any(txn.stat(dbs[name])["entries"] for name in DOMAINS if name != "meta")

    cipher = cipher_for(repr(path), record, key, holds_records if creates else None)
    if cipher is not None and record is None:
        txn.put(ENCRYPTION_KEY, cipher.record, db=dbs["meta"])
    return cipher


def _first_checkpoint(
    env: lmdb.Environment, path: str, lock: power_loss.WriterLock, interval: float
) -> power_loss.Checkpoints:
    """The checkpoints of a store opened at ``"normal"``, the first taken at once, before
    any write (see `lmdbstore.durability`). With the `WriterLock` held."""
    checkpoints = power_loss.Checkpoints(env, path, lock, interval)
    try:
        checkpoints.take_locked()
    except lmdb.MapResizedError:  # grown by another process: adopt its size
        env.set_mapsize(0)
        checkpoints.take_locked()
    return checkpoints


def _build(directory: str, map_size: int, options: dict[str, Any]) -> None:
    """A new environment in ``directory``: sub-databases and format version, synced."""
    env = lmdb.Environment(directory, map_size=map_size, **{**options, **FLAGS["full"]})
    try:
        _open_databases(env)  # plain: a key's record is written by the open that follows
        env.sync(True)
    finally:
        env.close()


# -- the per-process registry of open environments ------------------------------------------

_registry: dict[str, Engine] = {}
_registry_lock = threading.Lock()


def acquire(
    path: str,
    durability: Mode,
    map_size: int,
    max_size: int | None,
    sync_interval: float = DEFAULT_SYNC_INTERVAL,
    max_readers: int = DEFAULT_MAX_READERS,
    encryption: EncryptionKey | KeyProvider | None = None,
) -> Engine:
    """The engine of ``path``, opened if needed (``durability="readonly"``: with
    `Engine.open_readonly`), with one more reference; ``encryption``'s key (a provider is
    called here) must be the store's. Blocking."""
    key = resolve_key(encryption)
    if durability not in FLAGS and durability != "readonly":
        raise ValidationError(f"durability must be one of {sorted(FLAGS)}, not {durability!r}")
    real = os.path.realpath(path)
    with _registry_lock:
        engine = _registry.get(real)
        if engine is not None and engine.forked:
            raise StoreConnectionError(f"{real!r}: {FORKED}")
        if engine is None:
            if durability == "readonly":
                engine = Engine.open_readonly(real, max_readers, key)
            else:
                engine = Engine.open(
                    real, durability, map_size, max_size, sync_interval, max_readers, key
                )
            _registry[real] = engine
        elif (engine.durability, engine.max_size, engine.sync_interval) != (
            durability,
            max_size,
            sync_interval,
        ):
            raise StoreConnectionError(
                f"{real!r} is already open in this process with durability="
                f"{engine.durability!r}, max_size={engine.max_size!r},"
                f" sync_interval={engine.sync_interval!r}"
            )
        elif (engine.cipher is None) != (key is None) or (
            engine.cipher is not None and not engine.cipher.same_key(cast("EncryptionKey", key))
        ):
            raise StoreConnectionError(
                f"{real!r} is already open in this process "
                + (
                    "without encryption"
                    if engine.cipher is None
                    else "with another key"
                    if key is not None
                    else "with encryption: open it with its key"
                )
            )
        engine.refs += 1
        return engine


def add_reference(engine: Engine) -> None:
    """One more handle shares ``engine``."""
    with _registry_lock:
        engine.refs += 1


def release(engine: Engine) -> None:
    """Drop one reference; the last one closes the environment. Blocking."""
    with _registry_lock:
        engine.refs -= 1
        if engine.refs:
            return
        if _registry.get(engine.path) is engine:
            del _registry[engine.path]
    engine.close()


FORKED = (
    "this process was forked while the store was open in its parent: LMDB forbids using the "
    "parent's environment in the child, and py-lmdb still counts it as open here, so the "
    "path cannot be opened again in this process. Open the store after forking, or start "
    "worker processes with the 'spawn' method"
)


def _refuse_in_forked_child(*_args: object) -> NoReturn:
    raise lmdb.Error("environment inherited across fork()")


def _after_fork_in_child() -> None:
    """Make every inherited engine refuse service (reads, writes, new opens of its path)
    instead of touching an LMDB handle across fork, which could corrupt the parent's
    reader table."""
    for engine in _registry.values():
        engine.forked = True
        engine._closed = True
        engine._begin = _refuse_in_forked_child
        _inherited.append(engine.env)  # never closed nor freed here: that would touch LMDB


_inherited: list[lmdb.Environment] = []


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["Durability", "Engine", "LmdbReadView", "LmdbWriteView"]
