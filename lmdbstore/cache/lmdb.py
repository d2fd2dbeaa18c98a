"""LmdbCacheStore: cache entries in the ``cache`` sub-database of an LmdbStore's environment.

Entries belong to the store handle's device, like every other record, and survive a reopen:
a warm start finds them. Each value is stored with its expiry time (Unix milliseconds, wall
clock, so that it means the same after a restart); an expired entry is never returned. An
index ``expires_at · namespace · key`` lets a write sweep what has expired: every ``set``
deletes up to `SWEEP_PER_WRITE` expired entries in its own transaction, and
`LmdbCacheStore.sweep` deletes all of them. Reads are inline, writes group-committed,
like the store's own.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lmdbstore import clock, codec, keys, validate
from lmdbstore.cache.base import CacheStore, entry, namespace, ttl_seconds
from lmdbstore.keys import CacheTag
from lmdbstore.protocols import with_docs_of

if TYPE_CHECKING:
    from lmdbstore.lmdb_store import LmdbStore
    from lmdbstore.storage.view import ReadView, WriteView

_DB = "cache"
SWEEP_PER_WRITE = 16
"""Expired entries a ``set`` deletes on its way (bounds the extra work of one write)."""


@with_docs_of(CacheStore)
class LmdbCacheStore:
    """A `CacheStore` in ``store``'s environment, for its device."""

    def __init__(self, store: LmdbStore) -> None:
        self._store = store
        self._entries = keys.prefix(keys.device_prefix(store.device_id), CacheTag.ENTRY)
        self._index = keys.prefix(keys.device_prefix(store.device_id), CacheTag.ENTRY_BY_EXPIRY)

    def _key(self, ns: str, key: str) -> bytes:
        return self._entries + keys.s(ns.encode()) + keys.s(key.encode())

    def _index_key(self, k: bytes, expires_ms: int) -> bytes:
        return self._index + keys.i64(expires_ms) + k[len(self._entries) :]

    def _drop(self, view: WriteView, k: bytes) -> None:
        raw = view.pop(_DB, k)
        if raw is not None:
            expires = codec.load(_DB, k, raw, codec.read_cache_entry)[1]
            if expires is not None:
                view.delete(_DB, self._index_key(k, expires))

    def _store_entry(self, view: WriteView, k: bytes, value: bytes, expires_ms: int | None) -> None:
        self._drop(view, k)
        view.put(_DB, k, codec.dump_cache_entry(value, expires_ms))
        if expires_ms is not None:
            view.put(_DB, self._index_key(k, expires_ms), b"")

    def _sweep(self, view: WriteView, now_ms: int, limit: int | None) -> int:
        """Delete entries expired at ``now_ms`` (at most ``limit``), oldest first."""
        stop = self._index + keys.i64(now_ms + 1)
        swept = 0
        for index_key, _ in view.scan(_DB, self._index, stop):
            if limit is not None and swept >= limit:
                break
            view.delete(_DB, index_key)
            view.delete(_DB, self._entries + index_key[len(self._index) + 8 :])
            swept += 1
        return swept

    async def get(self, ns: str, key: str) -> bytes | None:
        k = self._key(*entry(ns, key))
        found = await self._store._load(_DB, k, codec.read_cache_entry)
        if found is None:
            return None
        value, expires = found
        return None if expires is not None and expires <= clock.now_ms() else value

    async def set(self, ns: str, key: str, value: bytes, ttl: float | None) -> None:
        k = self._key(*entry(ns, key))
        record_value = validate.blob(value, "value")
        seconds = ttl_seconds(ttl)
        now = clock.now_ms()
        expires = None if seconds is None else now + max(1, math.ceil(seconds * 1000))

        def op(view: WriteView) -> None:
            self._store_entry(view, k, record_value, expires)
            self._sweep(view, now, SWEEP_PER_WRITE)

        await self._store._write(op, 1 + SWEEP_PER_WRITE)

    async def delete(self, ns: str, key: str) -> None:
        k = self._key(*entry(ns, key))
        await self._store._write(lambda view: self._drop(view, k), 1)

    async def clear(self, ns: str) -> None:
        start = self._entries + keys.s(namespace(ns).encode())

        def op(view: WriteView) -> None:
            for k, _ in view.scan_prefix(_DB, start):
                self._drop(view, k)

        await self._store._write(op)

    async def entry_count(self, ns: str) -> int:
        start = self._entries + keys.s(namespace(ns).encode())
        now = clock.now_ms()

        def count(view: ReadView) -> int:
            alive = 0
            for k, raw in view.scan_prefix(_DB, start):
                expires = codec.load(_DB, k, raw, codec.read_cache_entry)[1]
                alive += expires is None or expires > now
            return alive

        return await self._store._read_in_thread(count)

    async def sweep(self) -> int:
        """Delete every expired entry of this device now; how many."""
        now = clock.now_ms()
        return await self._store._write(lambda view: self._sweep(view, now, None))
