"""Conformance tests of CacheStore. Needs a ``cache_store`` fixture: an empty store."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from lmdbstore.errors import ValidationError

BAD_CALLS: list[tuple[str, tuple[object, ...]]] = [
    ("get", ("", "k")),
    ("get", ("a:b", "k")),
    ("get", ("ns", "")),
    ("get", ("ns", None)),
    ("set", ("ns", "k\x00", b"v", None)),
    ("set", ("ns", "k", "text", None)),
    ("set", ("ns", "k", b"v", 0)),
    ("set", ("ns", "k", b"v", -1.0)),
    ("set", ("ns", "k", b"v", float("nan"))),
    ("set", ("ns", "k", b"v", "60")),
    ("set", ("ns", "k", b"v", True)),
    ("set", ("n" * 255, "k" * 255, b"v", None)),
    ("delete", (None, "k")),
    ("delete", ("ns", "k" * 256)),
    ("clear", ("",)),
    ("clear", ("a:b",)),
    ("entry_count", (42,)),
]


class CacheConformance:
    """CacheStore semantics (DESIGN.md section 2). Needs a ``cache_store`` fixture."""

    pytestmark = pytest.mark.anyio

    async def test_cache_round_trip(self, cache_store: Any) -> None:
        assert await cache_store.get("ns", "k") is None
        await cache_store.set("ns", "k", b"v", None)
        assert await cache_store.get("ns", "k") == b"v"
        await cache_store.set("ns", "k", b"", None)
        assert await cache_store.get("ns", "k") == b""
        await cache_store.set("ns", "ключ", bytes(range(256)), 60)
        assert await cache_store.get("ns", "ключ") == bytes(range(256))
        await cache_store.delete("ns", "k")
        await cache_store.delete("ns", "absent")
        assert await cache_store.get("ns", "k") is None

    async def test_cache_namespaces_are_separate(self, cache_store: Any) -> None:
        for ns in ("a", "a*", "ab", "[a]"):
            await cache_store.set(ns, "k1", ns.encode(), None)
            await cache_store.set(ns, "k2", ns.encode(), 60)
        await cache_store.clear("a*")
        await cache_store.clear("[a]")
        assert await cache_store.entry_count("a*") == 0
        assert await cache_store.entry_count("a") == 2
        assert await cache_store.entry_count("ab") == 2
        assert await cache_store.get("a", "k1") == b"a"
        assert await cache_store.get("ab", "k2") == b"ab"
        await cache_store.clear("absent")

    async def test_cache_ttl_expires(self, cache_store: Any) -> None:
        await cache_store.set("ns", "short", b"1", 0.3)
        await cache_store.set("ns", "long", b"2", 60)
        await cache_store.set("ns", "forever", b"3", None)
        await cache_store.set("ns", "renewed", b"4", 0.3)
        await cache_store.set("ns", "renewed", b"5", None)  # a later set replaces the TTL
        assert await cache_store.get("ns", "short") == b"1"
        assert await cache_store.entry_count("ns") == 4
        await anyio.sleep(0.6)
        assert await cache_store.get("ns", "short") is None
        assert await cache_store.get("ns", "long") == b"2"
        assert await cache_store.get("ns", "forever") == b"3"
        assert await cache_store.get("ns", "renewed") == b"5"
        assert await cache_store.entry_count("ns") == 3

    @pytest.mark.parametrize(("method", "args"), BAD_CALLS, ids=lambda v: str(v)[:40])
    async def test_cache_bad_input_is_refused_and_writes_nothing(
        self, cache_store: Any, method: str, args: tuple[object, ...]
    ) -> None:
        await cache_store.set("ns", "k", b"v", None)
        with pytest.raises(ValidationError):
            await getattr(cache_store, method)(*args)
        assert await cache_store.get("ns", "k") == b"v"
        assert await cache_store.entry_count("ns") == 1
