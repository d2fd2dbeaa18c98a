"""SqliteStore: the SQLite backend, the baseline users compare lmdbstore with and the way in
for state kept in SQLite."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Self, cast

import anyio

from lmdbstore import files, validate
from lmdbstore.domains.handle import NO_LIMITS
from lmdbstore.encryption import Encryption, check_encryption, resolve_key
from lmdbstore.errors import DatabaseError, ValidationError
from lmdbstore.protocols import Backend, with_docs_of
from lmdbstore.sql_store import SqlStore, rows_per_domain
from lmdbstore.sqlite_store import schema
from lmdbstore.sqlite_store.database import Database, Synchronous
from lmdbstore.storage.sqlite import SqliteStorage
from lmdbstore.types import Limits, ResourceReport

if TYPE_CHECKING:
    import sqlite3

_WAL_SUFFIXES = ("", "-wal", "-shm")


@with_docs_of(Backend)
class SqliteStore(SqlStore[Database]):
    """The store on SQLite. Open with `open`; close with `close` or ``async with``.

    Blocking calls run on anyio worker threads; writes go one at a time through one writer
    connection, reads through a pool of reader connections (see
    `lmdbstore.sqlite_store.database`). `for_device` gives a handle bound to
    another device of the same database. Use a store from the event loop that opened it.
    """

    _storage_class = SqliteStorage

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        device_id: int = 1,
        synchronous: Synchronous = "NORMAL",
        readonly: bool = False,
        limits: Limits = NO_LIMITS,
        encryption: Encryption | None = None,
    ) -> Self:
        """Open (creating if needed) the SQLite database file ``path`` (or
        ``sqlite://path``) for ``device_id``.

        ``synchronous``: ``"NORMAL"`` (default: in WAL mode a power loss may undo the last
        commits, never corrupts) or ``"FULL"`` (every commit synced).

        ``readonly=True`` opens an existing store for inspection (SQLite's ``mode=ro``):
        the database file keeps its bytes (its ``-wal``/``-shm`` files may appear), every
        write raises `ReadOnlyError`; a path with no store, or a schema that needs
        migrating, is refused.

        ``limits``: the size caps of `Limits` (none by default), enforced by the writes of
        this handle, of its `for_device` handles and of their transactions.

        ``encryption``: the store's `EncryptionKey`, or a function that returns it (see
        `lmdbstore.encryption`), as for `LmdbStore.open`. An encrypted SQLite store keeps
        its sealed records in one table (``sealed``) in LMDB's byte layout, not in a table
        per kind: SQL on its file sees hashes and ciphertext.
        """
        file = validate.store_path(path, "sqlite://", "file")
        validate.u32(device_id, "device_id")
        caps = validate.limits(limits)
        encryption = check_encryption(encryption)
        mode = synchronous.upper() if isinstance(synchronous, str) else synchronous
        if mode not in ("NORMAL", "FULL"):
            raise ValidationError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        readonly = validate.flag(readonly, "readonly")

        def opened() -> Database:
            key = resolve_key(encryption)  # a provider may block
            if readonly:
                return Database.open_readonly(file, key)
            return Database.open(file, cast("Synchronous", mode), key)

        database = await cls._off_loop(opened)
        return cls(SqliteStorage(database), device_id)._with_limits(caps)

    @property
    def path(self) -> str:
        """The database file."""
        return super().path

    @property
    def format_version(self) -> int:
        """The schema version of the database (open migrates it to this library's)."""
        return len(schema.MIGRATIONS)

    @staticmethod
    async def _close_database(database: Database) -> None:
        """Close the connections once the writes queued before are done."""
        with anyio.CancelScope(shield=True):
            async with database.write_lock:
                await anyio.to_thread.run_sync(database.close)

    async def copy_to(self, target: str) -> None:
        """Copy the database (every device), hot and consistent, into the new file
        ``target`` with ``VACUUM INTO`` (from a read transaction, so writers go on)."""
        target = validate.store_path(target, "sqlite://", "file")

        def copy(conn: sqlite3.Connection) -> None:
            if any(os.path.lexists(target + suffix) for suffix in _WAL_SUFFIXES):
                raise DatabaseError(f"{target!r} already exists")
            try:
                files.create_file(target)  # owner-only, never through a link
            except OSError as exc:
                raise DatabaseError(f"cannot write {target!r}: {exc}") from None
            conn.execute("VACUUM INTO ?", (target,))

        await self._off_loop(self._db().on_own_connection, copy)

    async def resource_report(self) -> ResourceReport:
        """Bytes on disk (database, WAL and shared memory), rows per domain (all devices;
        ``cache`` is always 0: SQLite keeps no cache; of an encrypted store, its items,
        index entries included), reader connections; pages and rows per table in
        ``details``."""
        database = self._db()

        def report(conn: sqlite3.Connection) -> ResourceReport:
            details = {
                name: int(conn.execute(f"PRAGMA {name}").fetchone()[0])
                for name in ("page_size", "page_count", "freelist_count")
            }
            entries = rows_per_domain(conn, details)
            return ResourceReport(
                backend="sqlite",
                path=database.path,
                bytes_on_disk=sum(
                    os.path.getsize(database.path + s)
                    for s in _WAL_SUFFIXES
                    if os.path.exists(database.path + s)
                ),
                entries=entries,
                durability=database.synchronous,
                readers_in_use=database.readers,
                details=details,
            )

        return await self._off_loop(database.read_sync, report)
