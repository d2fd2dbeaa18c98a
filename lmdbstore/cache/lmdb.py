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

from lmdbstore import clock, validate
from lmdbstore.cache.base import CacheStore, entry, ttl_seconds
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
        self._entries = store._records("cache_entry")

    def _sweep(self, view: WriteView, now_ms: int, limit: int | None) -> int:
        """Delete entries expired at ``now_ms`` (at most ``limit``), oldest first."""
        return self._entries.expire(view, "cache_entry_by_expiry", now_ms + 1, limit)

    async def get(self, ns: str, key: str) -> bytes | None:
        k = self._entries.key(entry(ns, key))
        found = await self._store._load(_DB, k, self._entries.decode)
        if found is None:
            return None
        value, expires = found
        return None if expires is not None and expires <= clock.now_ms() else value

    async def set(self, ns: str, key: str, value: bytes, ttl: float | None) -> None:
        components = entry(ns, key)
        record_value = validate.blob(value, "value")
        seconds = ttl_seconds(ttl)
        now = clock.now_ms()
        expires = None if seconds is None else now + max(1, math.ceil(seconds * 1000))

        def op(view: WriteView) -> None:
            self._entries.put(view, components, (record_value, expires))
            self._sweep(view, now, SWEEP_PER_WRITE)

        await self._store._write(op, 1 + SWEEP_PER_WRITE)

    async def delete(self, ns: str, key: str) -> None:
        components = entry(ns, key)
        await self._store._write(lambda view: self._entries.take(view, components), 1)

    async def clear(self, ns: str) -> None:
        name = validate.namespace(ns)

        def op(view: WriteView) -> None:
            for components in self._entries.under(view, (name,)):
                self._entries.take(view, components)

        await self._store._write(op)

    async def entry_count(self, ns: str) -> int:
        name = validate.namespace(ns)
        now = clock.now_ms()

        def count(view: ReadView) -> int:
            alive = 0
            for _, (_, expires) in self._entries.scan(view, (name,)):
                alive += expires is None or expires > now
            return alive

        return await self._store._read_in_thread(count)

    async def sweep(self) -> int:
        """Delete every expired entry of this device now; how many."""
        now = clock.now_ms()
        return await self._store._write(lambda view: self._sweep(view, now, None))
