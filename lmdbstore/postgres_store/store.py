"""PostgresStore: the PostgreSQL backend, for bots on many hosts that share their state."""

from __future__ import annotations

from typing import Self

import anyio

from lmdbstore import clock, validate
from lmdbstore.domains.handle import NO_LIMITS
from lmdbstore.encryption import Encryption, check_encryption, resolve_key
from lmdbstore.errors import DatabaseError, StoreClosedError, ValidationError
from lmdbstore.postgres_store.database import (
    MIGRATIONS,
    PgDatabase,
    QmarkConnection,
    schema_name,
    split_url,
)
from lmdbstore.protocols import Backend, with_docs_of
from lmdbstore.sql_store import SqlStore, rows_per_domain
from lmdbstore.storage.postgres import PostgresStorage
from lmdbstore.types import Limits, ResourceReport


@with_docs_of(Backend)
class PostgresStore(SqlStore[PgDatabase]):
    """The store on PostgreSQL. Open with `open`; close with `close` or ``async with``.

    Calls run on anyio worker threads, each on a pooled connection (see
    `lmdbstore.postgres_store.database`): reads in a repeatable-read snapshot, writes in
    serializable transactions retried when another process or host writes the same rows,
    so that the store behaves across hosts as the embedded ones do within one.
    `for_device` gives a handle bound to another device of the same schema. Use a store
    from the event loop that opened it.
    """

    _storage_class = PostgresStorage

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        device_id: int = 1,
        schema: str | None = None,
        pool_size: int = 10,
        readonly: bool = False,
        limits: Limits = NO_LIMITS,
        encryption: Encryption | None = None,
    ) -> Self:
        """Open (creating its tables if needed) the store in schema ``schema`` of the
        PostgreSQL database ``url`` (``postgresql://user:password@host:port/database``, or
        any libpq connection URL) for ``device_id``.

        ``schema``: the store's schema, ``lmdbstore`` by default; the URL may name it
        instead after a ``#`` (``postgresql://host/db#fleet_a``: what `path` shows).

        ``pool_size``: at most how many connections the store keeps (1-1000).

        ``readonly=True`` opens an existing store for inspection: nothing is created or
        migrated (a schema without lmdbstore's current tables is refused), and every
        write raises `ReadOnlyError`.

        ``limits``: the size caps of `Limits` (none by default), enforced by the writes of
        this handle, of its `for_device` handles and of their transactions.

        ``encryption``: the store's `EncryptionKey`, or a function that returns it (see
        `lmdbstore.encryption`), as for `LmdbStore.open`. An encrypted schema keeps its
        sealed records in one table (``sealed``) in LMDB's byte layout, as an encrypted
        SQLite store does: the server, its backups and ``pg_dump`` see hashes and
        ciphertext. The key is checked when the store opens; a schema is encrypted by the
        first open that creates it, and only then.
        """
        server, name = split_url(url, schema)
        validate.u32(device_id, "device_id")
        size = validate.u32(pool_size, "pool_size")
        if not 1 <= size <= 1000:
            raise ValidationError(f"pool_size must be 1 to 1000, not {pool_size!r}")
        only = validate.flag(readonly, "readonly")
        caps = validate.limits(limits)
        encryption = check_encryption(encryption)

        def opened() -> PgDatabase:
            key = resolve_key(encryption)  # a provider may block
            return PgDatabase.open(server, name, size, only, key)

        database = await cls._off_loop(opened)
        return cls(PostgresStorage(database), device_id)._with_limits(caps)

    @property
    def path(self) -> str:
        """The database URL, without its password, and ``#`` the schema."""
        return super().path

    @property
    def format_version(self) -> int:
        """The schema version of the store (open migrates it to this library's)."""
        return len(MIGRATIONS)

    @staticmethod
    async def _close_database(database: PgDatabase) -> None:
        """Close the pool, on a worker thread, whatever cancels the caller."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(database.close)

    async def copy_to(self, target: str) -> None:
        """Copy the store (every device), hot and consistent, into the new schema
        ``target`` of the same database, which `open` opens with ``schema=target``: one
        repeatable-read transaction creates its tables and copies every row, while
        writers go on."""
        name = schema_name(target)
        await self._off_loop(self._db().copy_schema, name, None)

    async def snapshot_db(self, name: str, extra_content: bytes | None = None) -> None:
        """Copy the store (see `copy_to`) into the new schema ``<schema>_snapshot_<unix
        seconds>_<name>`` (the characters of ``name`` outside ``[A-Za-z0-9_]`` become
        ``_``), which `open` opens with that ``schema``; ``extra_content`` goes to its
        one-row table ``snapshot_extra``. A name that makes the schema's name longer than
        PostgreSQL's 63 bytes, or a snapshot of the same name in the same second, is a
        `DatabaseError`."""
        safe = validate.snapshot_name(name).replace(".", "_").replace("-", "_")
        extra = validate.optional(extra_content, "extra_content", validate.blob)
        if self._closed:
            raise StoreClosedError("this store handle is closed")
        database = self._db()
        target = f"{database.schema}_snapshot_{clock.now()}_{safe}"
        if len(target) > 63:
            raise DatabaseError(f"the snapshot schema {target!r} is longer than 63 bytes")
        await self._off_loop(database.copy_schema, target, extra)

    async def resource_report(self) -> ResourceReport:
        """The bytes of the schema's tables and indexes, rows per domain (all devices;
        ``cache`` is always 0: PostgresStore keeps no cache; of an encrypted store, its
        items, index entries included), pooled connections; rows per table in
        ``details``."""
        database = self._db()

        def report(conn: QmarkConnection) -> ResourceReport:
            details: dict[str, int] = {}
            entries = rows_per_domain(conn, details)
            size = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = ? AND c.relkind = 'r'",
                (database.schema,),
            ).fetchone()[0]
            durability = conn.execute("SHOW synchronous_commit").fetchone()[0]
            stats = database.pool.get_stats()
            return ResourceReport(
                backend="postgres",
                path=database.path,
                bytes_on_disk=int(size),
                entries=entries,
                durability=f"synchronous_commit={durability}",
                readers_in_use=int(stats.get("pool_size", 0)),
                details=details,
            )

        return await self._off_loop(database.read_sync, report)
