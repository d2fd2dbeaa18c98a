"""The data of a MemoryStore: plain dicts per device, shared by its ``for_device`` handles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lmdbstore.errors import StoreClosedError

if TYPE_CHECKING:
    from lmdbstore.types import AppStateSyncKey, HashState


@dataclass
class DeviceData:
    """Everything one device keeps. Values are immutable bytes or private copies."""

    identities: dict[str, bytes] = field(default_factory=dict)
    sessions: dict[str, bytes] = field(default_factory=dict)
    prekeys: dict[int, tuple[bytes, bool]] = field(default_factory=dict)
    signed_prekeys: dict[int, bytes] = field(default_factory=dict)
    sender_keys: dict[str, bytes] = field(default_factory=dict)
    sync_keys: dict[bytes, AppStateSyncKey] = field(default_factory=dict)
    latest_sync_key_id: bytes | None = None
    versions: dict[str, HashState] = field(default_factory=dict)
    mutation_macs: dict[str, dict[bytes, bytes]] = field(default_factory=dict)


@dataclass
class MemoryData:
    """The database: every device's data."""

    devices: dict[int, DeviceData] = field(default_factory=dict)


class MemoryHandle:
    """A view of one device's data."""

    def __init__(self, data: MemoryData, device_id: int) -> None:
        self._data = data
        self._device_id = device_id
        self._closed = False

    @property
    def device_id(self) -> int:
        """The device whose records this handle reads and writes."""
        return self._device_id

    @property
    def _d(self) -> DeviceData:
        if self._closed:
            raise StoreClosedError("this store handle is closed")
        return self._data.devices.setdefault(self._device_id, DeviceData())
