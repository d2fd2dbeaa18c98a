"""`SyncPostgresStore`: PostgresStore in the blocking API, imported when first asked for
(psycopg is an optional dependency)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from lmdbstore.postgres_store import PostgresStore
from lmdbstore.sync.driver import BlockingDriver
from lmdbstore.sync.store import SyncStore

if TYPE_CHECKING:
    from lmdbstore.postgres_store.database import PgDatabase


class BlockingPostgresStore(BlockingDriver, PostgresStore):
    """`PostgresStore`, driven by plain calls."""

    @staticmethod
    async def _close_database(database: PgDatabase) -> None:
        database.close()  # the pool waits for the calls in flight


class SyncPostgresStore(SyncStore):
    """`PostgresStore`, blocking: every call on the caller's thread, on a pooled
    connection. Open with `open`."""

    _driving = BlockingPostgresStore

    @classmethod
    def open(cls, url: str, **options: Any) -> Self:
        """Open (creating its tables if needed) the store of the PostgreSQL database
        ``url``, with the options and errors of ``PostgresStore.open``."""
        return cls._open(url, options)
