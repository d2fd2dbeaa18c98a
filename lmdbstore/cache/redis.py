"""RedisCacheStore: cache entries in Redis, for processes on several hosts.

Keys are ``{namespace}:{key}``; a TTL is the server's own (``SET ... PX``), so expiry needs
nothing from us. ``clear`` and ``entry_count`` walk the namespace with ``SCAN MATCH`` (glob
characters of the namespace escaped), never ``KEYS`` or ``FLUSHDB``: the server may hold
other data and stays responsive. Needs the ``redis`` package: ``pip install
'lmdbstore[redis]'``. A Redis failure (server down, timeout) is a
`DatabaseError`; `TypedCache` turns it
into a miss, and the client reconnects by itself once the server is back.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Self

from lmdbstore import validate
from lmdbstore.cache.base import CacheStore, entry, ttl_seconds
from lmdbstore.errors import DatabaseError, StoreConnectionError
from lmdbstore.protocols import with_docs_of

if TYPE_CHECKING:
    from collections.abc import Awaitable

SCAN_BATCH = 500
"""Keys asked of the server per SCAN step (and deleted per UNLINK)."""

_GLOB = re.compile(r"([*?\[\]\\])")


def _redis() -> Any:
    try:
        import redis.asyncio
    except ImportError:  # pragma: no cover - the extra is installed in the tests
        raise StoreConnectionError(
            "RedisCacheStore needs the redis package: pip install 'lmdbstore[redis]'"
        ) from None
    return redis


@with_docs_of(CacheStore)
class RedisCacheStore:
    """A `CacheStore` in Redis, through ``redis.asyncio``."""

    def __init__(self, client: Any) -> None:
        """Use an existing ``redis.asyncio.Redis`` client (``decode_responses`` off)."""
        self._client = client
        self._errors: tuple[type[BaseException], ...] = (
            _redis().RedisError,
            OSError,
            TimeoutError,
        )

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 2.0) -> Self:
        """A store on a new client for ``url`` (``redis://host:port/db``); ``timeout`` bounds
        connecting and each command, so a dead server is a quick miss, not a hang."""
        client = _redis().asyncio.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        return cls(client)

    async def close(self) -> None:
        """Close the client's connections."""
        await self._call(self._client.aclose())

    async def _call(self, pending: Awaitable[Any]) -> Any:
        try:
            return await pending
        except self._errors as exc:
            raise DatabaseError(f"redis: {exc}") from None

    async def get(self, ns: str, key: str) -> bytes | None:
        found = await self._call(self._client.get(":".join(entry(ns, key))))
        return None if found is None else bytes(found)

    async def set(self, ns: str, key: str, value: bytes, ttl: float | None) -> None:
        name = ":".join(entry(ns, key))
        data = validate.blob(value, "value")
        seconds = ttl_seconds(ttl)
        px = None if seconds is None else max(1, math.ceil(seconds * 1000))
        await self._call(self._client.set(name, data, px=px))

    async def delete(self, ns: str, key: str) -> None:
        await self._call(self._client.delete(":".join(entry(ns, key))))

    async def _names(self, ns: str) -> list[bytes]:
        pattern = _GLOB.sub(r"\\\1", validate.namespace(ns)) + ":*"
        names: list[bytes] = []
        cursor = 0
        while True:
            cursor, batch = await self._call(
                self._client.scan(cursor=cursor, match=pattern, count=SCAN_BATCH)
            )
            names.extend(batch)
            if cursor == 0:
                return names

    async def clear(self, ns: str) -> None:
        names = await self._names(ns)
        for start in range(0, len(names), SCAN_BATCH):
            await self._call(self._client.unlink(*names[start : start + SCAN_BATCH]))

    async def entry_count(self, ns: str) -> int:
        return len(set(await self._names(ns)))  # SCAN may return a key twice
