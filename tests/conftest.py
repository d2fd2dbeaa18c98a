"""Shared fixtures: stores and their URLs on each backend, Redis, and the opt-in marker for
slow tests."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from lmdbstore.testing.postgres_server import PostgresServer
from lmdbstore.testing.redis_server import RedisServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from lmdbstore import LmdbStore

settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("long", max_examples=5000, deadline=None)
# HYPOTHESIS_PROFILE=long runs the long profile before an issue is called resolved.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run the slow stress tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def lmdb_store(tmp_path: Path) -> AsyncIterator[LmdbStore]:
    from lmdbstore import LmdbStore

    store = await LmdbStore.open(tmp_path / "store")
    yield store
    await store.close()


@pytest.fixture(params=["lmdb", "sqlite", "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new store's URL on each backend (``lmdbstore.open`` and ``lmdbstore.sync.open``)."""
    return {
        "lmdb": f"lmdb://{tmp_path / 'store'}",
        "sqlite": f"sqlite://{tmp_path / 'store.db'}",
        "memory": "memory://",
    }[str(request.param)]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The Redis the tests use: ``LMDBSTORE_TEST_REDIS_URL`` (``.ci/run`` starts one) or a
    server started here for the session."""
    url = os.environ.get("LMDBSTORE_TEST_REDIS_URL")
    if url:
        yield url
        return
    if not RedisServer.available():
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    server = RedisServer()
    server.start()
    yield server.url
    server.kill()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The PostgreSQL database the tests use: ``LMDBSTORE_TEST_POSTGRES_URL``, or a
    throwaway server started here for the session (`PostgresServer`; ``.ci/run`` installs
    PostgreSQL). Each test works in a schema of its own (`postgres_schema`)."""
    url = os.environ.get("LMDBSTORE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if not PostgresServer.available():
        pytest.skip("PostgreSQL is not installed (.ci/run installs it)")
    server = PostgresServer(durable=False)
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A schema name of this test's own, dropped (with every snapshot of it) after it."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
            (name + "%",),
        )
        for (schema,) in rows.fetchall():
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["lmdb", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new store on each backend that other processes can open too (for the
    tests that run real processes against one store); PostgreSQL's in a schema of its own."""
    if request.param == "postgres":
        schema = request.getfixturevalue("postgres_schema")
        return f"{request.getfixturevalue('postgres_url')}#{schema}"
    return f"{request.param}://{tmp_path / 'store'}"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may kill and restart."""
    if not RedisServer.available():
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    server = RedisServer()
    server.start()
    yield server
    server.kill()
