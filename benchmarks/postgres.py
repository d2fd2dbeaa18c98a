"""PostgresStore on the workloads users live on (``python -m benchmarks --postgres``, not in
the default run; it needs the ``postgres`` extra): against the store a user writes first on
the same server (one statement per call in autocommit, on a psycopg pool: `NaiveStore`),
and against LmdbStore and SqliteStore at the default durability.

The server is ``LMDBSTORE_BENCH_POSTGRES_URL`` when set, else a throwaway cluster of the
installed PostgreSQL (`lmdbstore.testing.postgres_server`) with its fsyncs on: a commit
costs what it costs in production. Each store works in a schema of its own.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from benchmarks.report import ENCRYPTED_POSTGRES, NAIVE, PREFIX
from benchmarks.workloads import (
    DECRYPT_SENDERS,
    IDENTITY,
    RECORD,
    Row,
    address,
    decrypt_message,
    fill_sessions,
    in_parallel,
    open_pair,
    seed_senders,
    timed,
)
from lmdbstore.testing.postgres_server import PostgresServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
    from pathlib import Path

    import psycopg_pool

URL_VARIABLE = "LMDBSTORE_BENCH_POSTGRES_URL"


@contextlib.contextmanager
def server() -> Iterator[str]:
    """The URL of the server to measure on (see the module docstring)."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        yield url
        return
    if not PostgresServer.available():
        raise RuntimeError(
            f"--postgres needs PostgreSQL's server installed (initdb), or {URL_VARIABLE}"
        )
    cluster = PostgresServer(durable=True)
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


async def drop_schema(url: str, schema: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


class NaiveStore:
    """What a user writes first: a psycopg pool of autocommit connections (as many as
    PostgresStore's default pool), one statement per call, in a schema of its own."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, schema: str) -> NaiveStore:
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        await drop_schema(url, schema)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f"CREATE SCHEMA {schema}")
            for table, value in (("sessions", "record"), ("identities", "key")):
                await conn.execute(
                    f"CREATE TABLE {schema}.{table} (device_id BIGINT, address TEXT,"
                    f" {value} BYTEA NOT NULL, PRIMARY KEY (device_id, address))"
                )
            await conn.execute(
                f"CREATE TABLE {schema}.prekeys (device_id BIGINT, id BIGINT,"
                " record BYTEA NOT NULL, PRIMARY KEY (device_id, id))"
            )

        async def configure(conn: Any) -> None:
            await conn.execute(f"SET search_path TO {schema}")

        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=10,
            max_size=10,
            kwargs={"autocommit": True},
            configure=configure,
            open=False,
        )
        await pool.open(wait=True)
        return cls(pool)

    async def _run(self, statement: str, parameters: tuple[Any, ...]) -> Any:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(statement, parameters)
            return await cursor.fetchone() if cursor.description else None

    async def put_session(self, address: str, record: bytes) -> None:
        await self._run(
            "INSERT INTO sessions VALUES (1, %s, %s)"
            " ON CONFLICT (device_id, address) DO UPDATE SET record = EXCLUDED.record",
            (address, record),
        )

    async def get_session(self, address: str) -> bytes | None:
        row = await self._run(
            "SELECT record FROM sessions WHERE device_id = 1 AND address = %s", (address,)
        )
        return None if row is None else bytes(row[0])

    async def put_identity(self, address: str, key: bytes) -> None:
        await self._run(
            "INSERT INTO identities VALUES (1, %s, %s)"
            " ON CONFLICT (device_id, address) DO UPDATE SET key = EXCLUDED.key",
            (address, key),
        )

    async def load_identity(self, address: str) -> bytes | None:
        row = await self._run(
            "SELECT key FROM identities WHERE device_id = 1 AND address = %s", (address,)
        )
        return None if row is None else bytes(row[0])

    async def store_prekey(self, prekey_id: int, record: bytes) -> None:
        await self._run("INSERT INTO prekeys VALUES (1, %s, %s)", (prekey_id, record))

    async def remove_prekey(self, prekey_id: int) -> None:
        await self._run("DELETE FROM prekeys WHERE device_id = 1 AND id = %s", (prekey_id,))

    async def close(self) -> None:
        await self._pool.close()


@contextlib.asynccontextmanager
async def the_stores(url: str, tmp: Path, name: str) -> AsyncIterator[dict[str, Any]]:
    """PostgresStore (plain and encrypted), the naive store, LmdbStore and SqliteStore
    (default durability), by engine name, each empty; closed after."""
    from lmdbstore import EncryptionKey
    from lmdbstore.postgres_store import PostgresStore  # the postgres extra, when asked for

    schema = f"bench_{name}"
    for old in (schema, f"{schema}_sealed"):  # left by an earlier run on the same server
        await drop_schema(url, old)
    async with contextlib.AsyncExitStack() as stack:
        ours = await PostgresStore.open(url, schema=schema)
        stack.push_async_callback(ours.close)
        key = EncryptionKey.generate()
        sealed = await PostgresStore.open(url, schema=f"{schema}_sealed", encryption=key)
        stack.push_async_callback(sealed.close)
        naive = await NaiveStore.open(url, f"{schema}_naive")
        stack.push_async_callback(naive.close)
        lmdb_store, sqlite_store = await open_pair(tmp, name, "normal", "NORMAL")
        stack.push_async_callback(lmdb_store.close)
        stack.push_async_callback(sqlite_store.close)
        yield {
            "PostgresStore": ours,
            ENCRYPTED_POSTGRES: sealed,
            NAIVE: naive,
            "LmdbStore": lmdb_store,
            "SqliteStore": sqlite_store,
        }


async def each(
    workload: str, ops: int, stores: dict[str, Any], run: Callable[[Any], Awaitable[None]]
) -> list[Row]:
    return [
        await timed(PREFIX + workload, engine, ops, lambda s=store: run(s))
        for engine, store in stores.items()
    ]


async def concurrent_writes(url: str, tmp: Path, n: int) -> list[Row]:
    """64 tasks writing sessions at once, each write awaited: a busy bot."""
    async with the_stores(url, tmp, "concurrent") as stores:

        async def run(store: Any) -> None:
            await in_parallel(64, n, lambda i: store.put_session(address(i), RECORD))

        return await each("64 concurrent writers, put_session", n, stores, run)


async def sequential_writes(url: str, tmp: Path, n: int) -> list[Row]:
    async with the_stores(url, tmp, "sequential") as stores:

        async def run(store: Any) -> None:
            for i in range(n):
                await store.put_session(address(i), RECORD)

        return await each("sequential awaited put_session", n, stores, run)


async def point_reads(url: str, tmp: Path, n: int) -> list[Row]:
    async with the_stores(url, tmp, "reads") as stores:
        for store in stores.values():
            await fill_sessions_of(store, 1_000)

        async def run(store: Any) -> None:
            for i in range(n):
                await store.get_session(address(i % 1_000))

        return await each("point reads, get_session", n, stores, run)


async def decrypt_loop(url: str, tmp: Path, messages: int) -> list[Row]:
    """Load the identity, get and put the session, remove the used pre-key; one message
    at a time, each awaited (as `benchmarks.workloads.decrypt_loop`)."""
    async with the_stores(url, tmp, "decrypt") as stores:
        for store in stores.values():
            await seed_senders_of(store, DECRYPT_SENDERS)
            if isinstance(store, NaiveStore):
                for i in range(messages):
                    await store.store_prekey(i + 1, RECORD[:100])
            else:
                await store.store_prekeys_batch([(i + 1, RECORD[:100]) for i in range(messages)])

        async def run(store: Any) -> None:
            for i in range(messages):
                await decrypt_message(store, i)

        return await each("sequential decrypt loop", messages, stores, run)


async def fill_sessions_of(store: Any, count: int) -> None:
    if isinstance(store, NaiveStore):
        await in_parallel(16, count, lambda i: store.put_session(address(i), RECORD))
    else:
        await fill_sessions(store, count)


async def seed_senders_of(store: Any, count: int) -> None:
    if isinstance(store, NaiveStore):
        for c in range(count):
            await store.put_identity(address(c), IDENTITY)
            await store.put_session(address(c), RECORD)
    else:
        await seed_senders(store, count)


async def all_rows(tmp: Path, scale: int) -> list[Row]:
    """Every PostgreSQL workload, on one server (see the module docstring)."""
    with server() as url:
        return [
            *await concurrent_writes(url, tmp, 12_000 // scale),
            *await sequential_writes(url, tmp, 2_000 // scale),
            *await point_reads(url, tmp, 5_000 // scale),
            *await decrypt_loop(url, tmp, 1_000 // scale),
        ]
