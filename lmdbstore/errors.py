"""The exceptions lmdbstore raises.

Every failure that reaches a caller is a `StoreError`; no raw ``lmdb.Error``,
``sqlite3.Error`` or ``cbor2`` exception escapes a public method. A call that raises
has written nothing.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every lmdbstore error."""


class ValidationError(StoreError, ValueError):
    """An argument is unusable: wrong type, wrong length, empty, NUL-bearing, out of range,
    or a key that would exceed the storage key limit. Raised before anything is written."""


class SerializationError(StoreError):
    """A stored record cannot be decoded. The message names the domain and the key."""

    def __init__(self, domain: str, key: bytes, reason: str) -> None:
        super().__init__(f"cannot decode {domain} record at key {key.hex()}: {reason}")
        self.domain = domain
        self.key = key
        self.reason = reason


class DatabaseError(StoreError):
    """The database engine failed (I/O error, full map beyond ``max_size``, corruption)."""


class StoreConnectionError(StoreError):
    """The store cannot be opened: bad path, permissions, lock, or a conflicting open."""


class MigrationError(StoreError):
    """The on-disk format is newer than this library or unknown to it."""


class NoStoreError(StoreConnectionError):
    """A read-only open (which creates nothing) found no store where it looked: the
    command line's exit status 3."""


class NotFoundError(StoreError):
    """A record that the operation requires does not exist."""


class StoreClosedError(StoreError):
    """The store (or this handle of it) is closed."""


class DeviceDeletedError(StoreClosedError):
    """This handle's device was deleted (``delete_device``), by this handle or another of
    this process: every call but ``close`` and ``delete_device`` refuses."""


class DeviceLeaseError(StoreError):
    """The device's lease is held by another holder (at ``acquire_device_lease``), or this
    holder's lease is lost (a write of the handle that held it)."""


class ReadOnlyError(StoreError):
    """A write to a store opened with ``readonly=True``; nothing was written."""


class TransactionConflictError(StoreError):
    """Another writer changed a record this transaction read; nothing was written."""


__all__ = [
    "DatabaseError",
    "DeviceDeletedError",
    "MigrationError",
    "NotFoundError",
    "ReadOnlyError",
    "SerializationError",
    "StoreClosedError",
    "StoreConnectionError",
    "StoreError",
    "TransactionConflictError",
    "ValidationError",
]
