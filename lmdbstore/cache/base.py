"""The `CacheStore` contract, and the argument checks every cache store shares.

A cache store keeps opaque values under ``(namespace, key)``, each with an optional time to
live. Namespaces and keys are key strings (1-255 UTF-8 bytes, no NUL); a namespace holds no
``:``, because the Redis store names its keys ``{namespace}:{key}`` and clears a namespace
by that prefix. A TTL is a positive number of seconds, or ``None`` for no expiry.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from lmdbstore import validate
from lmdbstore.errors import ValidationError


@runtime_checkable
class CacheStore(Protocol):
    """Where cached values live. Every method is ``async``; failures raise
    `StoreError` (a `TypedCache` turns them into misses)."""

    async def get(self, ns: str, key: str) -> bytes | None:
        """The value, or ``None`` when absent or expired."""

    async def set(self, ns: str, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value``, expiring ``ttl`` seconds from now (never when ``None``)."""

    async def delete(self, ns: str, key: str) -> None:
        """Drop the entry (no error when absent)."""

    async def clear(self, ns: str) -> None:
        """Drop every entry of the namespace, and only those."""

    async def entry_count(self, ns: str) -> int:
        """How many unexpired entries the namespace holds."""


def entry(ns: object, key: object) -> tuple[str, str]:
    """A (namespace, key) pair whose composite LMDB key fits."""
    checked_ns = validate.namespace(ns)
    _, raw_key = validate.key_strings(((checked_ns, "ns"), (key, "key")), index_bytes=8)
    return checked_ns, raw_key.decode()


def ttl_seconds(value: object) -> float | None:
    """``None``, or a finite number of seconds above zero."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"ttl must be a number of seconds or None, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(f"ttl must be above zero and finite, not {value!r}")
    return float(value)
