"""The data of an OracleStore: plain dicts per device, shared by its ``for_device`` handles."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from lmdbstore.derived import DeviceHandle
from lmdbstore.devices import Devices

if TYPE_CHECKING:
    from lmdbstore.types import (
        AppStateSyncKey,
        BufferedEvent,
        ChatSettings,
        ContactInfo,
        Device,
        DeviceListRecord,
        HashState,
        LidPnMappingEntry,
        TcTokenEntry,
    )


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
    sender_key_devices: dict[str, dict[str, bool]] = field(default_factory=dict)
    lid_mappings: dict[str, tuple[LidPnMappingEntry, int]] = field(default_factory=dict)
    mapping_seq: int = 0
    base_keys: dict[tuple[str, ...], bytes] = field(default_factory=dict)
    device_lists: dict[str, DeviceListRecord] = field(default_factory=dict)
    group_metadata: dict[str, bytes] = field(default_factory=dict)
    tc_tokens: dict[str, TcTokenEntry] = field(default_factory=dict)
    sent_messages: dict[tuple[str, ...], tuple[bytes, int]] = field(default_factory=dict)
    pending_inbound: dict[tuple[str, ...], tuple[bytes, int]] = field(default_factory=dict)
    msg_secrets: dict[tuple[str, str, str], tuple[bytes, int, int]] = field(default_factory=dict)
    chat_settings: dict[str, ChatSettings] = field(default_factory=dict)
    contacts: dict[str, ContactInfo] = field(default_factory=dict)
    buffered_events: dict[bytes, BufferedEvent] = field(default_factory=dict)
    outgoing_events: dict[tuple[str, str], tuple[str, bytes, int]] = field(default_factory=dict)
    device: Device | None = None

    def record_count(self) -> int:
        """How many records are kept (what the API reads back; the write sequence of LID
        mappings is bookkeeping)."""
        count = 0
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, dict):
                count += sum(len(v) if isinstance(v, dict) else 1 for v in value.values())
            elif value is not None and not isinstance(value, int):
                count += 1
        return count

    def holds_records(self) -> bool:
        """Whether any record is kept (an emptied collection of mutation MACs or sender-key
        rows is no record, as in the other backends)."""
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, dict):
                if any(not isinstance(v, dict) or v for v in value.values()):
                    return True
            elif value not in (None, 0):
                return True
        return False


@dataclass
class MemoryData:
    """The database: every device's data."""

    devices: dict[int, DeviceData] = field(default_factory=dict)
    handles: Devices = field(default_factory=Devices)
    last_device_id: int = 0
    snapshots: dict[str, dict[int, DeviceData]] = field(default_factory=dict)


class MemoryHandle(DeviceHandle):
    """A view of one device's data."""

    def __init__(self, data: MemoryData, device_id: int) -> None:
        super().__init__(data.handles, device_id)
        self._data = data

    @property
    def _d(self) -> DeviceData:
        self._check_open()
        return self._data.devices.setdefault(self._device_id, DeviceData())
