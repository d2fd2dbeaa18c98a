"""What a domain operation reads and writes through: ordered byte keys in named
sub-databases (`lmdbstore.storage.DOMAINS`), one consistent state per view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from lmdbstore.keys import prefix_end

if TYPE_CHECKING:
    from collections.abc import Iterator


class ReadView(Protocol):
    """A consistent state of a storage, read-only."""

    def get(self, db: str, key: bytes) -> bytes | None:
        """The value at ``key``, or ``None``."""
        ...

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """The items with ``start <= key < stop`` (``stop=None``: to the end), in key order or
        reversed. Deleting behind the iterator (through a `WriteView`) is safe."""
        ...

    def scan_prefix(self, db: str, key_prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The items whose key starts with ``key_prefix``, in key order."""
        ...

    def last(self, db: str, key_prefix: bytes) -> tuple[bytes, bytes] | None:
        """The greatest item whose key starts with ``key_prefix``."""
        ...


class WriteView(ReadView, Protocol):
    """A `ReadView` of a write that can also change it."""

    def put(self, db: str, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value``."""
        ...

    def delete(self, db: str, key: bytes) -> bool:
        """Remove ``key``; whether it existed."""
        ...

    def pop(self, db: str, key: bytes) -> bytes | None:
        """Remove ``key`` and return its value (atomic read-and-delete)."""
        ...


class PrefixScans:
    """`ReadView.scan_prefix` and `ReadView.last` from ``scan``, for every view."""

    __slots__ = ()

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        raise NotImplementedError

    def scan_prefix(self, db: str, key_prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.scan(db, key_prefix, prefix_end(key_prefix))

    def last(self, db: str, key_prefix: bytes) -> tuple[bytes, bytes] | None:
        return next(self.scan(db, key_prefix, prefix_end(key_prefix), reverse=True), None)
