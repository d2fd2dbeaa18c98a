"""The cache stores: one conformance suite for the three, TypedCache, Redis going away."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import redis.asyncio

from lmdbstore import (
    CacheConfig,
    CacheStores,
    EncryptionKey,
    LmdbCacheStore,
    LmdbStore,
    MemoryCacheStore,
    RedisCacheStore,
    TypedCache,
    ValidationError,
)
from lmdbstore.cache import lmdb as lmdb_cache
from lmdbstore.testing import CacheConformance

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from lmdbstore.testing.redis_server import RedisServer

pytestmark = pytest.mark.anyio


class TestMemoryCacheStore(CacheConformance):
    @pytest.fixture
    def cache_store(self) -> MemoryCacheStore:
        return MemoryCacheStore()


class TestLmdbCacheStore(CacheConformance):
    @pytest.fixture
    async def cache_store(self, tmp_path: Path) -> AsyncIterator[LmdbCacheStore]:
        async with await LmdbStore.open(tmp_path / "db") as store:
            yield LmdbCacheStore(store)


class TestEncryptedLmdbCacheStore(CacheConformance):
    @pytest.fixture
    async def cache_store(self, tmp_path: Path) -> AsyncIterator[LmdbCacheStore]:
        key = EncryptionKey(bytes(32))
        async with await LmdbStore.open(tmp_path / "db", encryption=key) as store:
            yield LmdbCacheStore(store)


class TestRedisCacheStore(CacheConformance):
    @pytest.fixture
    async def cache_store(self, redis_url: str) -> AsyncIterator[RedisCacheStore]:
        client = redis.asyncio.Redis.from_url(redis_url)
        await client.flushdb()  # test isolation only: the store itself never flushes
        yield RedisCacheStore(client)
        await client.aclose()


async def test_memory_store_is_bounded() -> None:
    store = MemoryCacheStore(max_entries=3)
    for i in range(5):
        await store.set("ns", f"k{i}", b"v", None)
    assert await store.entry_count("ns") == 3
    assert await store.get("ns", "k4") == b"v"
    assert await store.get("ns", "k0") is None
    with pytest.raises(ValidationError):
        MemoryCacheStore(max_entries=0)


async def test_lmdb_cache_survives_reopen_and_is_per_device(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db") as store:
        await LmdbCacheStore(store).set("group", "g1", b"meta", None)
        await LmdbCacheStore(store).set("group", "g2", b"soon gone", 0.05)
        other = store.for_device(2)
        assert await LmdbCacheStore(other).get("group", "g1") is None
        await other.close()
    await anyio.sleep(0.1)
    async with await LmdbStore.open(tmp_path / "db") as store:
        cache = LmdbCacheStore(store)
        assert await cache.get("group", "g1") == b"meta"
        assert await cache.get("group", "g2") is None
        assert await cache.sweep() == 1
        assert await cache.entry_count("group") == 1


async def test_lmdb_cache_sweeps_on_write(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db") as store:
        cache = LmdbCacheStore(store)
        for i in range(40):
            await cache.set("ns", f"k{i}", b"v", 0.05)
        await anyio.sleep(0.1)
        await cache.set("ns", "fresh", b"v", None)  # sweeps a bounded number on its way
        report = await store.resource_report()
        # 40 entries and their 40 index keys, minus what one write swept, plus "fresh"
        assert report.entries["cache"] == 80 - 2 * lmdb_cache.SWEEP_PER_WRITE + 1
        assert await cache.sweep() == 40 - lmdb_cache.SWEEP_PER_WRITE
        assert (await store.resource_report()).entries["cache"] == 1


async def test_typed_cache_round_trip_and_counts() -> None:
    cache: TypedCache[str, dict[str, Any]] = TypedCache.from_memory("groups", ttl=60)
    assert await cache.get("g@g.us") is None
    await cache.insert("g@g.us", {"subject": "hi", "members": ["a@lid"]})
    assert await cache.get("g@g.us") == {"subject": "hi", "members": ["a@lid"]}
    assert cache.entry_count() == 1
    await cache.invalidate("g@g.us")
    assert await cache.get("g@g.us") is None
    await cache.insert("x", {"n": 1})
    await cache.invalidate_all()
    assert await cache.entry_count_async() == 0
    await cache.insert("x", {"n": 1})
    await cache.clear()
    await cache.run_pending_tasks()
    assert cache.entry_count() == 0


async def test_typed_cache_turns_failures_into_misses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryCacheStore()
    cache: TypedCache[str, int] = TypedCache.from_store(store, "n")
    await store.set("n", "broken", b"\xff\xfe not cbor", None)
    with caplog.at_level(logging.WARNING, logger="lmdbstore.cache"):
        assert await cache.get("broken") is None
        await cache.insert("", 1)  # an unusable key: logged, not raised
        await cache.insert("k", object())  # type: ignore[arg-type]  # not encodable
    assert len(caplog.records) == 3
    async with await LmdbStore.open(tmp_path / "db") as lmdb_store:
        on_disk: TypedCache[str, int] = TypedCache.from_store(LmdbCacheStore(lmdb_store), "n")
        await on_disk.insert("k", 7)
        assert await on_disk.get("k") == 7
    assert await on_disk.get("k") is None  # the store is closed: a miss, not an error
    await on_disk.insert("k", 8)
    assert await on_disk.entry_count_async() == 0


async def test_the_default_decoder_takes_plain_data_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A shared cache is written by other processes: a value with CBOR tags (shared
    # references that expand, dates, sets, regular expressions) is a miss, never an object.
    import datetime

    import cbor2

    store = MemoryCacheStore()
    cache: TypedCache[str, object] = TypedCache.from_store(store, "n")
    level: list[object] = ["a" * 1024]
    for _ in range(3):
        level = [level] * 1000
    planted = {
        "shared": cbor2.dumps(level, value_sharing=True),
        "date": cbor2.dumps(datetime.datetime.now(datetime.UTC)),
        "set": cbor2.dumps({1, 2}),
        "regex": bytes.fromhex("d82361") + b"a",
        "deep": b"\x81" * 100 + b"\x01",
    }
    for key, raw in planted.items():
        await store.set("n", key, raw, None)
    with caplog.at_level(logging.WARNING, logger="lmdbstore.cache"):
        for key in planted:
            assert await cache.get(key) is None, key
    assert len(caplog.records) == len(planted)
    await cache.insert("plain", {"a": [1, 2.5, None, True, b"x", "y"]})
    assert await cache.get("plain") == {"a": [1, 2.5, None, True, b"x", "y"]}


async def test_cache_config_builds_the_three_caches(tmp_path: Path) -> None:
    caches = CacheConfig(group_ttl=10).open_caches()
    await caches.group.insert("g", 1)
    assert await caches.group.get("g") == 1
    assert await caches.lid_pn.get("g") is None
    assert caches.group.ttl == 10
    async with await LmdbStore.open(tmp_path / "db") as store:
        persistent = CacheConfig(cache_stores=CacheStores.all(LmdbCacheStore(store)))
        built = persistent.open_caches()
        await built.device_registry.insert("5511", [1, 2])
        assert await LmdbCacheStore(store).get("device_registry", "5511") is not None


async def test_redis_going_away_is_a_miss_and_it_recovers(redis_server: RedisServer) -> None:
    store = RedisCacheStore.from_url(redis_server.url, timeout=0.5)
    cache: TypedCache[str, str] = TypedCache.from_store(store, "lid_pn", ttl=60)
    await cache.insert("9@lid", "5511")
    assert await cache.get("9@lid") == "5511"
    redis_server.kill()
    with anyio.fail_after(10):
        assert await cache.get("9@lid") is None
        await cache.insert("8@lid", "5512")  # a no-op, not an error
        assert await cache.entry_count_async() == 0
    redis_server.start()  # same port, empty (no persistence)
    with anyio.fail_after(10):
        while await cache.get("8@lid") is None:
            await cache.insert("8@lid", "5512")
            await anyio.sleep(0.05)
    assert await cache.get("8@lid") == "5512"
    await store.close()
