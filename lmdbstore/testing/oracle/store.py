"""OracleStore: the state machine's model of the contract (see `lmdbstore.testing.oracle`).

It keeps plain dicts per device and shares only validation with the stores. Data lives as
long as the object (and its ``for_device`` handles) does.
"""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING, Self

from lmdbstore import validate
from lmdbstore.derived import DerivedMethods
from lmdbstore.errors import DeviceDeletedError, StoreClosedError, TransactionConflictError
from lmdbstore.protocols import Backend, with_docs_of
from lmdbstore.testing.oracle.appsync import MemoryAppSyncStore
from lmdbstore.testing.oracle.chat import MemoryChatSettingsStore
from lmdbstore.testing.oracle.contact import MemoryContactStore
from lmdbstore.testing.oracle.device import MemoryDeviceStore
from lmdbstore.testing.oracle.eventbuf import MemoryEventBufferStore
from lmdbstore.testing.oracle.msgsecret import MemoryMsgSecretStore
from lmdbstore.testing.oracle.protocol import MemoryProtocolStore
from lmdbstore.testing.oracle.signal import MemorySignalStore
from lmdbstore.testing.oracle.state import NO_LIMITS, DeviceData, MemoryData, trim

if TYPE_CHECKING:
    from lmdbstore.types import Limits


@with_docs_of(Backend)
class OracleStore(
    MemorySignalStore,
    MemoryAppSyncStore,
    MemoryProtocolStore,
    MemoryMsgSecretStore,
    MemoryContactStore,
    MemoryChatSettingsStore,
    MemoryEventBufferStore,
    MemoryDeviceStore,
    DerivedMethods,
):
    """The store in memory; ``OracleStore()`` is ready to use."""

    def __init__(
        self,
        *,
        device_id: int = 1,
        limits: Limits = NO_LIMITS,
        _data: MemoryData | None = None,
    ) -> None:
        super().__init__(
            MemoryData() if _data is None else _data,
            validate.u32(device_id, "device_id"),
            validate.limits(limits),
        )

    def for_device(self, device_id: int) -> Self:
        """A handle on the same data bound to ``device_id``."""
        if self._closed:
            raise StoreClosedError("this store handle is closed")
        return type(self)(device_id=device_id, limits=self._limits, _data=self._data)

    async def close(self) -> None:
        """Close this handle (idempotent); the data stays with the other handles. On a
        transaction handle: discard the transaction."""
        if not self._closed:
            self._closed = True
            self._release_device()

    def _exclusive(self) -> contextlib.AbstractAsyncContextManager[object]:
        """Nothing to hold: the oracle runs one call at a time."""
        return contextlib.nullcontext()

    def _start_transaction(self) -> Self:
        """A handle on a private deep copy of this device's data (and of every device
        record, for ``create``). The commit refuses with a conflict when anything of this
        device changed since the copy was taken: coarser than a read set, and exact for
        the sequential runs the oracle checks."""
        data = self._data
        began = copy.deepcopy(self._d)
        private = MemoryData(
            devices={**data.devices, self._device_id: copy.deepcopy(began)},
            handles=data.handles,
            last_device_id=data.last_device_id,
            snapshots=data.snapshots,
        )
        handle = type(self)(device_id=self._device_id, limits=self._limits, _data=private)
        handle._base = (data, began)
        return handle

    async def _commit_transaction(self) -> None:
        assert self._base is not None
        if self._life.deleted:
            raise DeviceDeletedError("this transaction's device was deleted: nothing written")
        data, began = self._base
        if data.devices.get(self._device_id, DeviceData()) != began:
            raise TransactionConflictError("this device's data changed while the transaction ran")
        for device_id, device_data in self._data.devices.items():
            if device_id == self._device_id or device_id not in data.devices:
                data.devices[device_id] = device_data
        trim(data.devices.setdefault(self._device_id, DeviceData()), self._limits)
        data.last_device_id = max(data.last_device_id, self._data.last_device_id)
