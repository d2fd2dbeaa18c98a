"""The SQLite engine of SqliteStore: connections, worker threads, the serialised writer.

The configuration a careful SQLite user chooses:

- ``journal_mode=WAL`` (readers and the writer do not block each other),
  ``synchronous=NORMAL`` by default (``FULL`` on request), ``busy_timeout=30000``,
  ``temp_store=MEMORY``, ``foreign_keys=ON`` and a small page cache (2 MiB per connection).
- **One writer connection.** Writes are serialised by an `anyio.Lock` (so a waiting
  writer holds no worker thread) and each runs as one ``BEGIN IMMEDIATE`` transaction on an
  anyio worker thread: the write lock is taken at ``BEGIN``, so no statement inside can hit
  the busy-upgrade deadlock of deferred transactions, and a batch is one transaction.
- **Reader connections.** A pool of ``query_only`` connections, one per read in flight, so a
  read never waits behind a write. A read runs in a deferred transaction: one snapshot even
  when it takes several statements.
- **Busy.** SQLite itself waits up to ``busy_timeout`` for another process's lock. If it
  still reports the database busy or locked, the whole transaction is rolled back and
  retried with exponential backoff (1 ms doubling to 250 ms) for up to
  `RETRY_SECONDS`; only then does the caller get a `DatabaseError`. No
  ``sqlite3`` exception reaches a caller.

A `Database` is created by ``SqliteStore.open`` inside an event loop and is used from
that loop (its write lock belongs to it); its ``for_device`` handles share it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import sqlite3
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Literal, TypeVar

import anyio

from lmdbstore import files
from lmdbstore.devices import Devices
from lmdbstore.errors import (
    DatabaseError,
    ReadOnlyError,
    StoreClosedError,
    StoreConnectionError,
)
from lmdbstore.sqlite_store import schema
from lmdbstore.storage import claim, ddl
from lmdbstore.storage.claim import Claim, Withdrawn
from lmdbstore.storage.gate import WriteGate
from lmdbstore.storage.sealed_rows import sql_cipher

if TYPE_CHECKING:
    from collections.abc import Callable

    from lmdbstore.encryption import EncryptionKey
    from lmdbstore.storage.sealed import Cipher

R = TypeVar("R")

Synchronous = Literal["NORMAL", "FULL"]

BUSY_TIMEOUT_MS = 30_000
"""How long SQLite waits on another connection's lock before reporting busy."""

RETRY_SECONDS = 120.0
"""How long a busy transaction is retried (after SQLite's own wait) before it fails."""

CACHE_KIB = 2048
"""Page cache per connection: small, as the many-connections reference setup uses."""

_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is SQLite reporting another connection's lock (busy or locked)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    message = str(exc)
    return "database is locked" in message or "database is busy" in message


def retrying(attempt: Callable[[], R], claim: Claim | None = None) -> R:
    """Run ``attempt`` (one whole transaction) until it is not refused as busy, backing off
    exponentially; other sqlite3 errors become `DatabaseError`. With a ``claim``, a write
    whose caller withdrew it meanwhile stops (`Withdrawn`)."""
    delay = 0.001
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            return attempt()
        except sqlite3.Error as exc:
            busy, error = is_busy(exc), str(exc)
        # Raised here rather than in the except block, where the sqlite3 error would stay
        # attached as its context, and with it the frames of the failed attempt: a cursor
        # there keeps its statement unfinished, and so a read snapshot open that stops the
        # WAL's checkpoints, for as long as anyone holds our exception (found by the raw
        # fuzzer: a VACUUM waited out its busy timeout behind a failed export's cursor).
        if not busy:
            raise DatabaseError(f"SQLite error: {error}")
        if time.monotonic() >= deadline:
            raise DatabaseError(
                f"the database stayed locked by another connection for over "
                f"{RETRY_SECONDS:.0f} s: {error}"
            )
        if claim is not None and claim.withdrawn:
            raise Withdrawn
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


WRITER_BUSY_MS = 20
"""The writer's own busy timeout: it waits for another connection's lock in `retrying`,
which a cancelled caller can stop, rather than inside SQLite, which nothing can."""


def _connect(
    path: str,
    synchronous: Synchronous,
    *,
    query_only: bool,
    readonly: bool = False,
    busy_ms: int | None = None,
) -> sqlite3.Connection:
    """A connection to ``path``; with ``readonly``, SQLite's ``mode=ro``, which writes
    nothing to the database file (its ``-wal``/``-shm`` may appear). ``busy_ms``: how long
    SQLite itself waits for another connection's lock (default `BUSY_TIMEOUT_MS`)."""
    busy = BUSY_TIMEOUT_MS if busy_ms is None else busy_ms
    conn = sqlite3.connect(
        f"file:{urllib.parse.quote(path)}?mode=ro" if readonly else path,
        uri=readonly,
        timeout=busy / 1000,
        isolation_level=None,  # we issue BEGIN and COMMIT ourselves
        check_same_thread=False,  # used from anyio worker threads, one at a time
        cached_statements=256,
    )
    try:
        for pragma in (
            f"busy_timeout={busy}",
            f"synchronous={synchronous}",
            "temp_store=MEMORY",
            "foreign_keys=ON",
            f"cache_size=-{CACHE_KIB}",
            f"query_only={int(query_only)}",
        ):
            # A second process opening while the first writes can find the file busy even
            # here: the same backoff as for a transaction.
            retrying(functools.partial(conn.execute, f"PRAGMA {pragma}"))
    except BaseException:
        conn.close()
        raise
    return conn


def _in_transaction(
    conn: sqlite3.Connection,
    begin: str,
    fn: Callable[[sqlite3.Connection], R],
) -> R:
    conn.execute(begin)
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


class Database:
    """One SQLite file, its writer connection and its reader pool."""

    def __init__(self, path: str, synchronous: Synchronous, readonly: bool = False) -> None:
        self.path = path
        self.synchronous = synchronous
        self.readonly = readonly
        # The writer waits for other connections' locks in retrying(), where a cancelled
        # caller can stop it (see write), rather than inside SQLite.
        self.writer = _connect(
            path,
            synchronous,
            query_only=readonly,
            readonly=readonly,
            busy_ms=min(BUSY_TIMEOUT_MS, WRITER_BUSY_MS),
        )
        self._writer_mutex = threading.Lock()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._reader_count = 0
        self._pool_lock = threading.Lock()
        self.write_lock = anyio.Lock()
        self.references = 1
        self.devices = Devices()
        self.gate = WriteGate()  # see lmdbstore.storage.gate
        self.closed = False
        self.cipher: Cipher | None = None
        """The keys of an encrypted store (`lmdbstore.storage.sealed`), set by the open."""

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open_readonly(cls, path: str, key: EncryptionKey | None = None) -> Database:
        """Connect to the existing database ``path`` with ``mode=ro``, and check that it
        holds lmdbstore's current schema and that ``key`` is its key (`sql_cipher`;
        blocking). Nothing is written; every write raises `ReadOnlyError`."""
        if not os.path.isfile(path):
            raise StoreConnectionError(f"no SQLite store at {path!r} (readonly creates none)")

        def check(conn: sqlite3.Connection) -> Cipher | None:
            _check_current(conn)
            return sql_cipher(conn, repr(path), key, writable=False)

        def prepare(database: Database) -> None:
            database.cipher = retrying(lambda: _in_transaction(database.writer, "BEGIN", check))

        return cls._connected(path, "NORMAL", prepare, readonly=True)

    @classmethod
    def open(
        cls, path: str, synchronous: Synchronous, key: EncryptionKey | None = None
    ) -> Database:
        """Connect, switch to WAL and bring the schema to the current version, and check
        ``key`` (`sql_cipher`; blocking). A new database file is created owner-only (its
        WAL and shared-memory files take its mode), never through a link."""
        try:
            files.create_file(path)
        except FileExistsError:
            pass  # an existing database, or what connecting will refuse
        except OSError as exc:
            raise StoreConnectionError(f"cannot create SQLite file {path!r}: {exc}") from None

        def prepare(database: Database) -> None:
            # Before WAL, which rewrites the file header: another program's database is
            # refused as it was found.
            retrying(lambda: _tables(database.writer))
            retrying(lambda: database.writer.execute("PRAGMA journal_mode=WAL"))

            def migrated(conn: sqlite3.Connection) -> Cipher | None:
                _migrate(conn)
                return sql_cipher(conn, repr(path), key, writable=True)

            database.cipher = retrying(
                lambda: _in_transaction(database.writer, "BEGIN IMMEDIATE", migrated)
            )

        return cls._connected(path, synchronous, prepare)

    @classmethod
    def _connected(
        cls,
        path: str,
        synchronous: Synchronous,
        prepare: Callable[[Database], object],
        *,
        readonly: bool = False,
    ) -> Database:
        """A `Database` of ``path`` once ``prepare(database)`` has run; closed again, and
        the failure a `StoreConnectionError`, when either fails."""
        try:
            database = cls(path, synchronous, readonly=readonly)
        except (sqlite3.Error, DatabaseError) as exc:
            raise StoreConnectionError(f"cannot open SQLite database {path!r}: {exc}") from None
        try:
            prepare(database)
        except DatabaseError as exc:
            database.close()
            raise StoreConnectionError(f"cannot open SQLite database {path!r}: {exc}") from None
        except BaseException:
            database.close()
            raise
        return database

    # -- reads and writes --------------------------------------------------------------------

    def check_open(self) -> None:
        if self.closed:
            raise StoreClosedError("this store is closed")

    def read_sync(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """``fn(connection)`` in one read transaction, on this thread."""
        return self.query_sync(lambda conn: _in_transaction(conn, "BEGIN", fn))

    def query_sync(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """``fn(connection)`` on a reader in autocommit mode, on this thread: for one
        statement, which SQLite runs on one snapshot by itself."""
        conn = self._take_reader()
        try:
            return retrying(lambda: fn(conn))
        finally:
            self._give_back(conn)

    async def write(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """``fn(connection)`` in one immediate write transaction on a worker thread, after
        every earlier write of this database. An exception from ``fn`` rolls it back.

        Cancelled before the transaction has begun, the write is withdrawn, never applied;
        cancelled once it has begun, the caller waits for its outcome
        (`lmdbstore.storage.claim`)."""
        self._check_writable()
        async with self.write_lock:
            self.check_open()
            return await claim.in_thread(lambda taken: self.write_sync(fn, taken))

    def write_blocking(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """`write` on this thread, for a caller that blocks until the commit
        (`lmdbstore.sync`): the writer connection is taken in turn with every other
        write."""
        self._check_writable()
        return self.write_sync(fn, Claim())

    def _check_writable(self) -> None:
        self.check_open()
        if self.readonly:
            raise ReadOnlyError(f"{self.path!r} is open read-only")

    def write_sync(self, fn: Callable[[sqlite3.Connection], R], claim: Claim) -> R:
        """The blocking part of `write` (the caller holds the write lock). The writer
        connection is used by one thread at a time, a withdrawn write's included."""

        def claimed(conn: sqlite3.Connection) -> R:
            claim.take()
            return fn(conn)

        with self._writer_mutex:
            return retrying(lambda: _in_transaction(self.writer, "BEGIN IMMEDIATE", claimed), claim)

    def on_own_connection(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """``fn(connection)`` on this thread (blocking), with a connection of its own in
        autocommit mode (for ``VACUUM INTO``, which neither a transaction nor a
        ``query_only`` connection can run); a reader as far as the writer is concerned."""
        self.check_open()
        try:
            conn = _connect(self.path, self.synchronous, query_only=False, readonly=self.readonly)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open a SQLite connection: {exc}") from None
        try:
            return retrying(lambda: fn(conn))
        finally:
            conn.close()

    def _take_reader(self) -> sqlite3.Connection:
        try:
            return self._readers.get_nowait()
        except queue.Empty:
            pass
        try:
            conn = _connect(self.path, self.synchronous, query_only=True, readonly=self.readonly)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open a SQLite reader: {exc}") from None
        with self._pool_lock:
            self._reader_count += 1
        return conn

    def _give_back(self, conn: sqlite3.Connection) -> None:
        with self._pool_lock:
            if self.closed:
                conn.close()
                self._reader_count -= 1
                return
        self._readers.put(conn)

    @property
    def readers(self) -> int:
        """Reader connections open (idle or in use)."""
        return self._reader_count

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection (blocking); reads in flight close theirs when done."""
        with self._pool_lock:
            self.closed = True
            while True:
                try:
                    conn = self._readers.get_nowait()
                except queue.Empty:
                    break
                conn.close()
                self._reader_count -= 1
        with self._writer_mutex, contextlib.suppress(sqlite3.Error):  # a withdrawn write ends
            self.writer.close()


def _tables(conn: sqlite3.Connection) -> set[str]:
    """The tables of the database; StoreConnectionError when it holds tables but not
    lmdbstore's schema version (another program's database, not ours to write to)."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    ddl.stored_version(conn, tables, len(schema.MIGRATIONS))
    return tables


def _check_current(conn: sqlite3.Connection) -> None:
    """That the database holds lmdbstore's current schema, without changing it (for a
    read-only open, which cannot migrate)."""
    version = ddl.stored_version(conn, _tables(conn), len(schema.MIGRATIONS))
    if version is None:
        raise StoreConnectionError("not an lmdbstore store: no schema version")
    if version < len(schema.MIGRATIONS):
        raise StoreConnectionError(
            f"schema version {version} must be migrated first: open it once without readonly"
        )


def _migrate(conn: sqlite3.Connection) -> None:
    """Create the schema or run the missing forward migrations (inside one transaction)."""
    ddl.migrate(conn, _tables(conn), schema.MIGRATIONS, schema.VERSION_TABLE)
