"""MemoryCacheStore: in process, per-entry TTL and a bound on the number of entries.

Built on `cachetools.TLRUCache` (time-aware least recently used): each entry carries
its own expiry, and past ``max_entries`` the least recently used entry goes. Expired entries
are dropped as the cache is used. ``clear`` and ``entry_count`` walk every entry (of every
namespace): fine for an in-process cache, which is small by design.
"""

from __future__ import annotations

import math
import time

import cachetools

from lmdbstore import validate
from lmdbstore.cache.base import CacheStore, entry, ttl_seconds
from lmdbstore.errors import ValidationError
from lmdbstore.protocols import with_docs_of


def _expiry(_key: tuple[str, str], item: tuple[bytes, float | None], now: float) -> float:
    ttl = item[1]
    return math.inf if ttl is None else now + ttl


@with_docs_of(CacheStore)
class MemoryCacheStore:
    """A `CacheStore` in this process's memory."""

    def __init__(self, max_entries: int = 10_000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValidationError(f"max_entries must be a positive int, not {max_entries!r}")
        self._entries: cachetools.TLRUCache[tuple[str, str], tuple[bytes, float | None]] = (
            cachetools.TLRUCache(max_entries, _expiry, timer=time.monotonic)
        )

    async def get(self, ns: str, key: str) -> bytes | None:
        found = self._entries.get(entry(ns, key))
        return None if found is None else found[0]

    async def set(self, ns: str, key: str, value: bytes, ttl: float | None) -> None:
        item = (validate.blob(value, "value"), ttl_seconds(ttl))
        self._entries[entry(ns, key)] = item

    async def delete(self, ns: str, key: str) -> None:
        self._entries.pop(entry(ns, key), None)

    async def clear(self, ns: str) -> None:
        name = validate.namespace(ns)
        for k in [k for k in self._entries if k[0] == name]:
            self._entries.pop(k, None)

    async def entry_count(self, ns: str) -> int:
        return self.count(ns)

    def count(self, ns: str) -> int:
        """`entry_count`, without awaiting (the entries are here)."""
        name = validate.namespace(ns)
        self._entries.expire()
        return sum(1 for k in self._entries if k[0] == name)

    async def sweep(self) -> None:
        """Drop every expired entry now."""
        self._entries.expire()
