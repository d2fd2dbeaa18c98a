"""MemoryStore: an in-process reference model with the semantics of every backend.

Meant for users' tests and as the model the other backends are checked against: it keeps
plain dicts, shares validation with the other backends, and needs no opening. Data lives as
long as the object (and its ``for_device`` handles) does.
"""

from __future__ import annotations

from typing import Self

from lmdbstore import validate
from lmdbstore.derived import DerivedMethods
from lmdbstore.errors import StoreClosedError
from lmdbstore.memory_store.appsync import MemoryAppSyncStore
from lmdbstore.memory_store.device import MemoryDeviceStore
from lmdbstore.memory_store.msgsecret import MemoryMsgSecretStore
from lmdbstore.memory_store.protocol import MemoryProtocolStore
from lmdbstore.memory_store.signal import MemorySignalStore
from lmdbstore.memory_store.state import MemoryData


class MemoryStore(
    MemorySignalStore,
    MemoryAppSyncStore,
    MemoryProtocolStore,
    MemoryMsgSecretStore,
    MemoryDeviceStore,
    DerivedMethods,
):
    """The store in memory; ``MemoryStore()`` is ready to use."""

    def __init__(self, *, device_id: int = 1, _data: MemoryData | None = None) -> None:
        super().__init__(
            MemoryData() if _data is None else _data, validate.u32(device_id, "device_id")
        )

    def for_device(self, device_id: int) -> Self:
        """A handle on the same data bound to ``device_id``."""
        if self._closed:
            raise StoreClosedError("this store handle is closed")
        return type(self)(device_id=device_id, _data=self._data)

    async def close(self) -> None:
        """Close this handle (idempotent); the data stays with the other handles."""
        if not self._closed:
            self._closed = True
            self._data.open_devices[self._device_id] -= 1
