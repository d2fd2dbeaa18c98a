"""The data of an OracleStore: plain dicts per device, shared by its ``for_device`` handles."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from lmdbstore.derived import DeviceHandle
from lmdbstore.devices import Devices
from lmdbstore.types import Limits

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


NO_LIMITS = Limits()


def trim(d: DeviceData, limits: Limits) -> None:
    """Enforce ``limits`` on ``d`` as the contract says (DESIGN.md section 1b, "Size caps"),
    written from it, by sorting: above a cap, evict down to 3/4 of it, sent messages by
    (created_at, chat, id), expiring secrets in whole (expires_at, chat, msg_id) groups."""
    cap = limits.sent_messages
    if cap is not None and len(d.sent_messages) > cap:
        oldest = sorted(d.sent_messages, key=lambda k: (d.sent_messages[k][1], k))
        for k in oldest[: len(oldest) - cap * 3 // 4]:
            del d.sent_messages[k]
    cap = limits.msg_secrets
    expiring = [k for k, (_, expires_at, _) in d.msg_secrets.items() if expires_at]
    if cap is not None and len(expiring) > cap:
        groups: dict[tuple[int, str, str], list[tuple[str, str, str]]] = {}
        for k in expiring:
            groups.setdefault((d.msg_secrets[k][1], k[0], k[2]), []).append(k)
        left = len(expiring)
        for group in sorted(groups):
            if left <= cap * 3 // 4:
                break
            for k in groups[group]:
                del d.msg_secrets[k]
            left -= len(groups[group])


class MemoryHandle(DeviceHandle):
    """A view of one device's data, under its store's `Limits`."""

    def __init__(self, data: MemoryData, device_id: int, limits: Limits = NO_LIMITS) -> None:
        super().__init__(data.handles, device_id)
        self._data = data
        self._limits = limits
        # On a transaction handle: the store's data, and this device's data as it was when
        # the transaction began.
        self._base: tuple[MemoryData, DeviceData] | None = None

    def _trim(self) -> None:
        """After a write that adds capped records: the caps (a transaction's at its
        commit)."""
        if self._base is None:
            trim(self._d, self._limits)

    @property
    def _d(self) -> DeviceData:
        self._check_open()
        return self._data.devices.setdefault(self._device_id, DeviceData())
