"""The conformance suite of lmdbstore.testing, run against every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from lmdbstore import EncryptionKey, LmdbStore, MemoryStore, SqliteStore
from lmdbstore.postgres_store import PostgresStore
from lmdbstore.testing import (
    AppSyncConformance,
    LeaseConformance,
    PeerConformance,
    ProtocolConformance,
    SignalConformance,
    TransactionConformance,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


class Conformance(
    SignalConformance,
    AppSyncConformance,
    ProtocolConformance,
    PeerConformance,
    TransactionConformance,
    LeaseConformance,
):
    """Every conformance suite; each test class below gives it a store (its ``store``
    fixture)."""


class TestLmdbStore(Conformance):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[LmdbStore]:
        store = await LmdbStore.open(tmp_path / "store")
        yield store
        await store.close()


class TestEncryptedLmdbStore(Conformance):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[LmdbStore]:
        store = await LmdbStore.open(tmp_path / "store", encryption=EncryptionKey(bytes(32)))
        yield store
        await store.close()


class TestMemoryStore(Conformance):
    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        store = MemoryStore()
        yield store
        await store.close()


class TestSqliteStore(Conformance):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SqliteStore]:
        store = await SqliteStore.open(tmp_path / "store.db")
        yield store
        await store.close()


class TestEncryptedSqliteStore(Conformance):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SqliteStore]:
        store = await SqliteStore.open(tmp_path / "store.db", encryption=EncryptionKey(bytes(32)))
        yield store
        await store.close()


class TestPostgresStore(Conformance):
    @pytest.fixture
    async def store(self, postgres_url: str, postgres_schema: str) -> AsyncIterator[PostgresStore]:
        store = await PostgresStore.open(postgres_url, schema=postgres_schema)
        yield store
        await store.close()


class TestEncryptedPostgresStore(Conformance):
    @pytest.fixture
    async def store(self, postgres_url: str, postgres_schema: str) -> AsyncIterator[PostgresStore]:
        key = EncryptionKey(bytes(32))
        store = await PostgresStore.open(postgres_url, schema=postgres_schema, encryption=key)
        yield store
        await store.close()


class TestLmdbStoreOnTrio(SignalConformance, TransactionConformance):
    """The engine's writer wakes trio's loop as well as asyncio's."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "trio"

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[LmdbStore]:
        store = await LmdbStore.open(tmp_path / "store")
        yield store
        await store.close()


class TestPostgresStoreOnTrio(TransactionConformance):
    """PostgresStore's writer thread and its reads' worker threads on trio's loop (the
    transaction suite: writes, conflicts, cancellation; each test makes a schema, about a
    second, so not every suite)."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "trio"

    @pytest.fixture
    async def store(self, postgres_url: str, postgres_schema: str) -> AsyncIterator[PostgresStore]:
        store = await PostgresStore.open(postgres_url, schema=postgres_schema)
        yield store
        await store.close()
