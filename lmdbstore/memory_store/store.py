"""MemoryStore: every domain method over the memory storage, for users' tests.

It runs the same domain layer, transactions and ``verify`` as LmdbStore over ordered maps
in this process (`lmdbstore.storage.memory`), so what passes on it behaves the same on
disk, conflicts included (on the read set, exactly). It needs no opening; data lives as
long as the object and its ``for_device`` handles do.
"""

from __future__ import annotations

from typing import Self, cast

from lmdbstore import validate
from lmdbstore.derived import DerivedMethods
from lmdbstore.domains import AllDomains
from lmdbstore.domains.handle import NO_LIMITS
from lmdbstore.errors import StoreClosedError
from lmdbstore.protocols import Backend, with_docs_of
from lmdbstore.storage.memory import MemoryStorage
from lmdbstore.types import REPORT_DOMAINS, Limits, ResourceReport


@with_docs_of(Backend)
class MemoryStore(AllDomains, DerivedMethods):
    """The store in memory; ``MemoryStore()`` is ready to use. ``limits``: the size caps
    of `Limits` (none by default), kept by this handle, its `for_device` handles and their
    transactions."""

    def __init__(
        self,
        *,
        device_id: int = 1,
        limits: Limits = NO_LIMITS,
        _storage: MemoryStorage | None = None,
    ) -> None:
        storage = MemoryStorage() if _storage is None else _storage
        super().__init__(storage, validate.u32(device_id, "device_id"))
        self._with_limits(validate.limits(limits))

    def _memory(self) -> MemoryStorage:
        return cast("MemoryStorage", self._storage_open())

    def for_device(self, device_id: int) -> Self:
        """A handle on the same data bound to ``device_id``."""
        if self._closed:
            raise StoreClosedError("this store handle is closed")
        return type(self)(device_id=device_id, limits=self._limits, _storage=self._memory())

    async def close(self) -> None:
        """Close this handle (idempotent); the data stays with the other handles. On a
        transaction handle: discard the transaction."""
        if not self._closed:
            self._closed = True
            self._release_device()

    async def snapshot_db(self, name: str, extra_content: bytes | None = None) -> None:
        """Keep a copy of every device's data in memory under the sanitised ``name``
        (there is no file to write)."""
        safe = validate.snapshot_name(name)
        validate.optional(extra_content, "extra_content", validate.blob)
        self._memory().keep_snapshot(safe)

    async def resource_report(self) -> ResourceReport:
        """Entries per domain, every key of every device counted as LMDB counts them
        (index entries included); nothing on disk."""
        found = self._memory().entries()
        return ResourceReport(
            backend="memory",
            path=None,
            bytes_on_disk=0,
            entries={name: found[name] for name in REPORT_DOMAINS},
            durability="memory",
        )
