"""SqliteStore: the SQLite backend, the baseline users compare lmdbstore with and the way in
for state kept in SQLite."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, cast

import anyio

from lmdbstore import validate
from lmdbstore.derived import DerivedMethods
from lmdbstore.errors import ValidationError
from lmdbstore.protocols import Backend, with_docs_of
from lmdbstore.sqlite_store import schema
from lmdbstore.sqlite_store.appsync import SqliteAppSyncStore
from lmdbstore.sqlite_store.database import Database, Synchronous
from lmdbstore.sqlite_store.device import SqliteDeviceStore
from lmdbstore.sqlite_store.msgsecret import SqliteMsgSecretStore
from lmdbstore.sqlite_store.protocol import SqliteProtocolStore
from lmdbstore.sqlite_store.signal import SqliteSignalStore
from lmdbstore.sqlite_store.transaction import TransactionDatabase

if TYPE_CHECKING:
    import os


@with_docs_of(Backend)
class SqliteStore(
    SqliteSignalStore,
    SqliteAppSyncStore,
    SqliteProtocolStore,
    SqliteMsgSecretStore,
    SqliteDeviceStore,
    DerivedMethods,
):
    """The store on SQLite. Open with `open`; close with `close` or ``async with``.

    Blocking calls run on anyio worker threads; writes go one at a time through one writer
    connection, reads through a pool of reader connections (see
    `lmdbstore.sqlite_store.database`). `for_device` gives a handle bound to
    another device of the same database. Use a store from the event loop that opened it.
    """

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        device_id: int = 1,
        synchronous: Synchronous = "NORMAL",
    ) -> Self:
        """Open (creating if needed) the SQLite database file ``path`` (or
        ``sqlite://path``) for ``device_id``.

        ``synchronous``: ``"NORMAL"`` (default: in WAL mode a power loss may undo the last
        commits, never corrupts) or ``"FULL"`` (every commit synced).
        """
        file = validate.store_path(path, "sqlite://", "file")
        validate.u32(device_id, "device_id")
        mode = synchronous.upper() if isinstance(synchronous, str) else synchronous
        if mode not in ("NORMAL", "FULL"):
            raise ValidationError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        database = await anyio.to_thread.run_sync(Database.open, file, cast("Synchronous", mode))
        return cls(database, device_id)

    def for_device(self, device_id: int) -> Self:
        """A handle on the same database bound to ``device_id``; close it like the store.
        The connections close with the last handle."""
        validate.u32(device_id, "device_id")
        database = self._db()
        database.references += 1
        return type(self)(database, device_id)

    @property
    def path(self) -> str:
        """The database file."""
        return self._database.path

    @property
    def format_version(self) -> int:
        """The schema version of the database (open migrates it to this library's)."""
        return len(schema.MIGRATIONS)

    async def close(self) -> None:
        """Close this handle (idempotent); the last handle waits for the write in flight
        and closes the connections."""
        if self._closed:
            return
        self._closed = True
        database = self._database
        self._release_device()
        if isinstance(database, TransactionDatabase):
            return  # a transaction handle: discarded
        database.references -= 1
        if database.references == 0:
            with anyio.CancelScope(shield=True):
                async with database.write_lock:
                    await anyio.to_thread.run_sync(database.close)

    def _start_transaction(self) -> Self:
        logged = TransactionDatabase(self._db())
        return type(self)(cast("Database", logged), self._device_id)

    async def _commit_transaction(self) -> None:
        await cast("TransactionDatabase", self._database).commit()
