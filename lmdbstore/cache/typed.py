"""TypedCache: a typed view of one namespace of a cache store, that never raises.

A cache is an optimisation: when it fails, the client must go on as if it had missed. So a
miss, a value that cannot be decoded, and a failing backend all make `TypedCache.get`
return ``None``; a failing write is a no-op. Each failure is logged (logger
``lmdbstore.cache``) and nothing is raised, except cancellation. Keys become strings with
``str`` (JIDs already are); values are CBOR by default (``encode``/``decode`` replace it).
The default decoder is `lmdbstore.codec.loads`: plain data only (maps, arrays, strings,
numbers, booleans, null; no CBOR tags, so no dates, sets or shared references) at most 16
levels deep, because a shared cache (Redis) is written by other processes too, and a tag may
build arbitrary objects or expand a few bytes into gigabytes. A value the default encoder
writes with a tag (a ``datetime``, say) therefore reads back as a miss: pass your own
``encode``/``decode`` for such values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

import cbor2

from lmdbstore import codec, validate
from lmdbstore.cache.base import ttl_seconds
from lmdbstore.cache.memory import MemoryCacheStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from lmdbstore.cache.base import CacheStore

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")

log = logging.getLogger("lmdbstore.cache")

_plain_data: Callable[[bytes], Any] = codec.loads


class TypedCache(Generic[K, V]):
    """Values of type ``V`` under keys of type ``K``, in namespace ``ns`` of ``store``."""

    def __init__(
        self,
        store: CacheStore,
        ns: str,
        ttl: float | None = None,
        *,
        encode: Callable[[V], bytes] = cbor2.dumps,
        decode: Callable[[bytes], V] = _plain_data,
    ) -> None:
        self.store = store
        self.ns = validate.namespace(ns)
        self.ttl = ttl_seconds(ttl)
        self._encode = encode
        self._decode = decode
        self._count = 0

    @classmethod
    def from_memory(
        cls, ns: str = "default", *, ttl: float | None = None, max_entries: int = 10_000
    ) -> Self:
        """A cache in this process (a `MemoryCacheStore` of its own)."""
        return cls(MemoryCacheStore(max_entries), ns, ttl)

    @classmethod
    def from_store(cls, store: CacheStore, ns: str, ttl: float | None = None) -> Self:
        """A cache in namespace ``ns`` of ``store`` (memory, LMDB, Redis or your own)."""
        return cls(store, ns, ttl)

    async def _quietly(self, what: str, action: Awaitable[R], default: R) -> R:
        try:
            return await action
        except Exception as exc:
            log.warning("cache %s %s failed, treated as a miss: %s", self.ns, what, exc)
            return default

    async def get(self, key: K) -> V | None:
        """The cached value, or ``None`` (absent, expired, undecodable, backend down)."""
        raw = await self._quietly("get", self.store.get(self.ns, str(key)), None)
        if raw is None:
            return None
        try:
            return self._decode(raw)
        except Exception as exc:
            log.warning("cache %s: undecodable value for %r dropped: %s", self.ns, key, exc)
            return None

    async def insert(self, key: K, value: V) -> None:
        """Cache ``value`` for the cache's TTL; a failure is logged and ignored."""
        try:
            raw = self._encode(value)
        except Exception as exc:
            log.warning("cache %s: cannot encode the value for %r: %s", self.ns, key, exc)
            return
        await self._quietly("insert", self.store.set(self.ns, str(key), raw, self.ttl), None)

    async def invalidate(self, key: K) -> None:
        """Drop one entry."""
        await self._quietly("invalidate", self.store.delete(self.ns, str(key)), None)

    async def invalidate_all(self) -> None:
        """Drop every entry of this cache's namespace (other namespaces keep theirs)."""
        await self._quietly("invalidate_all", self.store.clear(self.ns), None)
        self._count = 0

    async def clear(self) -> None:
        """The same as `invalidate_all`; both names are kept for clients written
        against either."""
        await self.invalidate_all()

    def entry_count(self) -> int:
        """Entries as last counted (exact for a memory store, which is counted now; for
        other stores, as of the last `entry_count_async` or `run_pending_tasks`)."""
        if isinstance(self.store, MemoryCacheStore):
            return self.store.count(self.ns)
        return self._count

    async def entry_count_async(self) -> int:
        """Entries in the namespace now, asked of the store (0 when it fails)."""
        self._count = await self._quietly("count", self.store.entry_count(self.ns), 0)
        return self._count

    async def run_pending_tasks(self) -> None:
        """Do the housekeeping now: sweep expired entries (stores that keep them, memory and
        LMDB, have a ``sweep``) and refresh `entry_count`."""
        sweep = cast("Callable[[], Awaitable[Any]] | None", getattr(self.store, "sweep", None))
        if sweep is not None:
            await self._quietly("sweep", sweep(), None)
        await self.entry_count_async()


@dataclass
class CacheStores:
    """Where each of the client's caches lives."""

    group_cache: CacheStore
    device_registry_cache: CacheStore
    lid_pn_cache: CacheStore

    @classmethod
    def all(cls, store: CacheStore) -> Self:
        """Every cache in the same store."""
        return cls(store, store, store)


@dataclass
class Caches:
    """The client's caches, built by `CacheConfig.open_caches`."""

    group: TypedCache[str, Any]
    device_registry: TypedCache[str, Any]
    lid_pn: TypedCache[str, Any]


@dataclass
class CacheConfig:
    """How the client caches: the stores (``None``: one in-process store, bounded by
    ``max_entries``) and each cache's TTL in seconds (``None``: no expiry)."""

    cache_stores: CacheStores | None = None
    group_ttl: float | None = 3600.0
    device_registry_ttl: float | None = 3600.0
    lid_pn_ttl: float | None = None
    max_entries: int = 10_000

    def open_caches(self) -> Caches:
        """The three typed caches, in namespaces ``group``, ``device_registry``, ``lid_pn``."""
        stores = self.cache_stores or CacheStores.all(MemoryCacheStore(self.max_entries))
        return Caches(
            TypedCache(stores.group_cache, "group", self.group_ttl),
            TypedCache(stores.device_registry_cache, "device_registry", self.device_registry_ttl),
            TypedCache(stores.lid_pn_cache, "lid_pn", self.lid_pn_ttl),
        )
