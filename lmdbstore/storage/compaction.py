"""``lmdbstore compact``: give back the space a store no longer uses.

An LMDB file never shrinks. Pages that commits free are reused by later commits, but at
``"normal"`` a checkpoint keeps the pages of its snapshot from reuse until the next one is
durable (`lmdbstore.durability`), so under a steady stream of writes a store carries tens
of megabytes of free pages (measured: 1,000 sessions take 1.0 MB, and 35 MB after 8,400
writes at full speed). And LMDB splits a full page at its middle and never merges
half-full ones, so records written in random order leave pages about two-thirds full.
`compact_lmdb` copies every sub-database in key order into a new environment, in LMDB's
append mode (each page filled before the next is begun), and renames it over
``data.mdb`` (measured: 100,000 sessions written in random order, 221 MB; LMDB's own
compacting copy, which keeps each page as it is, 98 MB; this copy, 69 MB, as SQLite):

- **Alone.** It runs only while no other process has the store open, read-only ones
  included, and holds off every opener until it is done: it takes both level locks (which
  every writable open shares) and LMDB's own lock-file lock (which every open takes), each
  without waiting, and fails with `StoreConnectionError` when one is held.
- **Nothing is lost at any moment.** Before copying, every commit is fsynced and the
  checkpoint file removed (as an open at ``"full"`` does), so no later recovery can write
  old meta pages over the new file. The copy is built in a private directory inside the
  store's, fsynced, then renamed into place with a fresh lock file, and the directory
  fsynced: a crash leaves the old file or the new one, each whole (and maybe the private
  directory, which the next compaction removes).

`recode_lmdb` is the same copy with every record opened with one key and sealed with
another (``lmdbstore encrypt``, ``decrypt``, ``rekey``; `lmdbstore.storage.sealed`): the
same locks, the same rename, so a crash leaves the store under its old key or its new one.

`compact_sqlite` runs SQLite's ``VACUUM``, which SQLite makes safe against other processes
itself (it waits for their transactions, up to the busy timeout). `recode_sqlite` converts
a SQLite store in one of its write transactions (other processes wait, or read the old
state), then vacuums it, so that no freed page keeps the old bytes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import itertools
import os
import shutil
import sqlite3
import tempfile
from typing import TYPE_CHECKING, Any

import lmdb

from lmdbstore import durability, files, keys
from lmdbstore.errors import DatabaseError, StoreConnectionError, ValidationError
from lmdbstore.keys import DOMAINS
from lmdbstore.kinds import TABLES_OF, is_tally
from lmdbstore.sqlite_store.database import Database
from lmdbstore.storage.lmdb import FLAGS, check_format, stored_format
from lmdbstore.storage.sealed import (
    ENCRYPTION_KEY,
    Cipher,
    Recoding,
    SealedReadView,
    SealedWriteView,
    cipher_for,
)
from lmdbstore.storage.sealed_rows import SealedRows
from lmdbstore.storage.sql import SQLITE, SqlView

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lmdbstore.encryption import EncryptionKey

LMDB_LOCK_FILE = "lock.mdb"
COPY_ROOM = 64 << 20
"""Bytes of map the copy gets beyond twice the store's (see `_copy_in_key_order`)."""
COPY_CHUNK = 10_000
"""Records per write transaction of the copy: memory stays bounded by one chunk."""
BUILD_PREFIX = ".lmdbstore-compact-"
BUSY_TIMEOUT = 5.0
"""Seconds `compact_sqlite` waits for other processes' transactions."""


def _open_lock(directory: str, name: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    return os.open(os.path.join(directory, name), flags, files.FILE_MODE)


@contextlib.contextmanager
def _alone(path: str) -> Iterator[None]:
    """Hold every lock an opener of the store at ``path`` takes, or fail at once."""
    with contextlib.ExitStack() as held:

        def locked(name: str, lock: Callable[[int], object]) -> None:
            fd = _open_lock(path, name)
            held.callback(os.close, fd)
            lock(fd)

        try:
            for name in durability.LEVEL_FILES.values():
                locked(name, lambda fd: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
            # LMDB keeps a shared fcntl lock on its lock file's first byte while open. This
            # one goes with the first close of that file in this process (POSIX): the copy's
            # own environment then holds it shared until its close, and the level locks keep
            # writable openers out after that.
            locked(LMDB_LOCK_FILE, lambda fd: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0))
        except OSError as exc:
            # A lock held elsewhere is EAGAIN (POSIX allows EACCES for fcntl's); anything
            # else is a file that cannot be opened.
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or exc.filename is not None:
                raise StoreConnectionError(f"cannot compact {path!r}: {exc}") from None
            raise StoreConnectionError(
                f"{path!r} is open in another process: compact needs the store to itself"
            ) from None
        yield


def compact_lmdb(path: str) -> None:
    """Rewrite the LMDB store at ``path`` without its free pages (see the module)."""
    _rewrite(path, lambda _env: None)


def recode_lmdb(path: str, old: EncryptionKey | None, new: EncryptionKey | None) -> None:
    """Rewrite the LMDB store at ``path``, encrypted with ``old`` (``None``: plain), so that
    it is encrypted with ``new`` (``None``: plain; see the module). A wrong ``old``, or one
    given for a plain store or missing for an encrypted one, is a `StoreConnectionError`
    before anything is written; a record that does not open, a `SerializationError`."""
    if old is None and new is None:
        raise ValidationError("give the store's key, a new key, or both")

    def recoding(env: lmdb.Environment) -> Recoding:
        with env.begin() as txn:
            record = txn.get(ENCRYPTION_KEY, db=env.open_db(b"meta", txn=txn, create=False))
        cipher = cipher_for(repr(path), record, old)  # a conversion creates no store
        return Recoding(cipher, None if new is None else Cipher.create(new))

    _rewrite(path, recoding)


def _rewrite(path: str, recoding: Callable[[lmdb.Environment], Recoding | None]) -> None:
    """Copy the LMDB store at ``path`` in key order, ``recoding(env)``'s way if any, and
    rename the copy into place (see the module)."""
    if not os.path.isfile(os.path.join(path, durability.DATA_FILE)):
        raise StoreConnectionError(f"no LMDB store at {path!r}")
    with _alone(path):
        lock = durability.WriterLock(path)
        try:
            with lock.held():
                durability.recover(path)
                for stale in glob.glob(os.path.join(path, BUILD_PREFIX + "*")):
                    shutil.rmtree(stale, ignore_errors=True)  # of a compaction that crashed
                _copy_into_place(path, recoding)
        finally:
            lock.close()


def _copy_into_place(path: str, recoding: Callable[[lmdb.Environment], Recoding | None]) -> None:
    try:
        env = lmdb.Environment(
            path, create=False, max_dbs=len(DOMAINS) + 1, readahead=False, **FLAGS["full"]
        )
    except lmdb.Error as exc:
        raise StoreConnectionError(f"cannot open LMDB store at {path!r}: {exc}") from None
    build = tempfile.mkdtemp(prefix=BUILD_PREFIX, dir=path)
    try:
        try:
            check_format(stored_format(env))
            recode = recoding(env)
            durability.forget_checkpoint(env, path)
            _copy_in_key_order(env, build, recode)
        except lmdb.NotFoundError:
            raise StoreConnectionError(f"not an lmdbstore store at {path!r}") from None
        except lmdb.Error as exc:
            raise DatabaseError(f"cannot compact {path!r}: {exc}") from None
        finally:
            env.close()
        built = os.path.join(build, durability.DATA_FILE)
        os.replace(built, os.path.join(path, durability.DATA_FILE))
        os.replace(os.path.join(build, LMDB_LOCK_FILE), os.path.join(path, LMDB_LOCK_FILE))
        durability.fsync_directory(path)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _copy_in_key_order(source: lmdb.Environment, build: str, recode: Recoding | None) -> None:
    """Every sub-database of ``source`` into a new environment in ``build``, in key order,
    appended (`COPY_CHUNK` records a transaction), then synced. With ``recode``, each
    item is recoded first; a chunk is then sorted and put, since the new keys are in
    another order."""
    target = lmdb.Environment(
        build,
        # Room to spare (the file grows only as pages are written): the copy's own free
        # list and branch pages may not fit in the map of a store compacted before.
        map_size=2 * source.info()["map_size"] + COPY_ROOM,
        max_dbs=len(DOMAINS) + 1,
        mode=files.FILE_MODE,
        sync=False,
        metasync=False,
    )
    try:
        # Handles first: one opened after the reader began is not valid in it.
        tables = {name: source.open_db(name.encode(), create=False) for name in DOMAINS}
        with source.begin() as reader:
            for name, table in tables.items():
                items: Iterator[tuple[bytes, bytes]] = reader.cursor(db=table).iternext()
                if recode is not None:
                    items = recode.items(name, items)
                into = target.open_db(name.encode())
                while chunk := list(itertools.islice(items, COPY_CHUNK)):
                    if recode is not None:
                        chunk.sort()
                    with target.begin(write=True, db=into) as writer:
                        writer.cursor().putmulti(chunk, append=recode is None)
        target.sync(True)
    finally:
        target.close()


def recode_sqlite(path: str, old: EncryptionKey | None, new: EncryptionKey | None) -> None:
    """`recode_lmdb` for the SQLite store at ``path``: in one write transaction, every
    item is read under ``old`` (from the kinds' tables, or the ``sealed`` table) and written
    under ``new`` (to the other; a rekey stages the new items in a temporary table), the
    old ones are deleted, and the store is vacuumed. A failure changes nothing."""
    if old is None and new is None:
        raise ValidationError("give the store's key, a new key, or both")
    database = Database.open(path, "FULL", old)  # checks the key: the store is ours
    try:
        cipher = database.cipher
        target = None if new is None else Cipher.create(new)
        database.write_blocking(lambda conn: _recode_rows(conn, cipher, target))
        try:
            database.on_own_connection(_vacuum)
        except DatabaseError as exc:
            raise DatabaseError(
                f"{path!r} was converted, but its free pages may still hold the old bytes"
                f" until it is compacted (lmdbstore compact): {exc}"
            ) from None
    finally:
        database.close()


def _vacuum(conn: sqlite3.Connection) -> None:
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _recode_rows(conn: sqlite3.Connection, old: Cipher | None, new: Cipher | None) -> None:
    """Every item of the store on ``conn`` (in a write transaction) moved from ``old``'s
    form to ``new``'s (see `recode_sqlite`)."""
    conn.execute("PRAGMA secure_delete = ON")  # deleted rows are zeroed, not left behind
    plain = SqlView(conn, SQLITE)  # read-only: it walks its cursors as it goes
    source = plain if old is None else SealedReadView(SealedRows(conn, plain), old)
    writer = SqlView(conn, SQLITE, writable=True)
    target: Any = writer
    if new is not None:
        conn.execute(
            "CREATE TEMP TABLE staging (db TEXT NOT NULL, k BLOB NOT NULL, v BLOB NOT NULL,"
            " PRIMARY KEY (db, k))"
        )
        target = SealedWriteView(SealedRows(conn, writer, writable=True, table="staging"), new)
    devices: set[bytes] = set()
    for db in DOMAINS:
        if db == "meta":
            continue
        items = (item for item in source.walk(db, b"") if not is_tally(db, item[0]))
        while chunk := list(itertools.islice(items, COPY_CHUNK)):  # the tallies stay
            target.put_many(db, chunk)
            devices.update(key[:4] for key, _ in chunk)
    if old is None:  # a plain store derives its LID write sequence; a sealed one keeps it
        for dev in devices:
            seq = plain.get("protocol", keys.write_seq(dev))
            if seq is not None:
                target.put("protocol", keys.write_seq(dev), seq)
        for tables in TABLES_OF.values():
            for table in tables:
                conn.execute(f"DELETE FROM {table}")
    conn.execute("DELETE FROM sealed")
    if new is not None:
        conn.execute("INSERT INTO sealed SELECT db, k, v FROM temp.staging")
        conn.execute("DROP TABLE temp.staging")
        conn.execute("INSERT INTO sealed VALUES ('meta', ?, ?)", (ENCRYPTION_KEY, new.record))


def compact_sqlite(path: str) -> None:
    """``VACUUM`` the SQLite store at ``path``, then truncate its write-ahead log."""
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreConnectionError(f"cannot open SQLite store at {path!r}: {exc}") from None
    try:
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as exc:
        raise StoreConnectionError(f"cannot compact {path!r}: {exc}") from None
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot compact {path!r}: {exc}") from None
    finally:
        db.close()
