"""Pluggable caches (DESIGN.md section 2): the `CacheStore` contract, three stores
(in memory, in the LMDB environment, in Redis) and `TypedCache` on top of any."""

from lmdbstore.cache.base import CacheStore
from lmdbstore.cache.lmdb import LmdbCacheStore
from lmdbstore.cache.memory import MemoryCacheStore
from lmdbstore.cache.redis import RedisCacheStore
from lmdbstore.cache.typed import CacheConfig, Caches, CacheStores, TypedCache

__all__ = [
    "CacheConfig",
    "CacheStore",
    "CacheStores",
    "Caches",
    "LmdbCacheStore",
    "MemoryCacheStore",
    "RedisCacheStore",
    "TypedCache",
]
