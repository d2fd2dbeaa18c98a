"""DeviceStore in memory: the reference model of the LMDB and SQLite backends."""

from __future__ import annotations

import copy

from lmdbstore import validate
from lmdbstore.errors import ValidationError
from lmdbstore.kinds import TABLES_OF
from lmdbstore.testing.oracle.state import DeviceData, MemoryHandle
from lmdbstore.types import REPORT_DOMAINS, Device, ResourceReport


class MemoryDeviceStore(MemoryHandle):
    """The `DeviceStore` methods of `OracleStore`."""

    async def delete_device(self) -> int:
        if self._closed:
            self._check_open()
        if self._is_transaction:
            raise ValidationError("delete_device is not available in a transaction")
        if self._life.deleted:
            return 0
        found = self._data.devices.pop(self._device_id, None)
        self._life.deleted = True
        self._data.handles.renew(self._device_id)
        return 0 if found is None else found.record_count()

    async def save(self, device: Device) -> None:
        self._d.device = validate.device(device)

    async def load(self) -> Device | None:
        return copy.deepcopy(self._d.device)

    async def exists(self) -> bool:
        return self._d.device is not None

    async def create(self) -> int:
        """Allocate a device id that no record and no open handle uses, persist a default
        `Device` for it and return the id."""
        self._d  # noqa: B018 - a closed handle refuses before anything changes
        data = self._data
        used = data.handles.busy()
        used |= {d for d, dev in data.devices.items() if dev.device is not None}
        candidate = max(used | {data.last_device_id}, default=0) + 1
        while candidate in data.devices and data.devices[candidate].holds_records():
            candidate += 1
        validate.u32(candidate, "allocated device id")
        data.last_device_id = candidate
        data.devices.setdefault(candidate, DeviceData()).device = Device()
        return candidate

    async def snapshot_db(self, name: str, extra_content: bytes | None = None) -> None:
        """Keep a deep copy of every device's data under the sanitised ``name``."""
        safe = validate.snapshot_name(name)
        validate.optional(extra_content, "extra_content", validate.blob)
        self._d  # noqa: B018 - a closed handle refuses before anything changes
        self._data.snapshots[safe] = copy.deepcopy(self._data.devices)

    async def device_ids(self) -> list[int]:
        """The devices that hold records, ascending."""
        self._check_open()
        return sorted(d for d, data in self._data.devices.items() if data.holds_records())

    async def verify(self) -> list[str]:
        """Nothing can be malformed in memory: always empty (the contract of the other
        backends' ``verify``)."""
        self._check_open()
        return []

    async def resource_report(self) -> ResourceReport:
        """Records per domain, of every device of this store's data."""
        self._check_open()
        entries = dict.fromkeys(REPORT_DOMAINS, 0)
        for d in self._data.devices.values():
            for name, value in vars(d).items():
                domain = _FIELD_DOMAINS.get(name)
                if domain is None or value is None:
                    continue
                if not isinstance(value, dict):
                    entries[domain] += 1  # the latest sync key id, the device record
                elif name in ("mutation_macs", "sender_key_devices"):
                    entries[domain] += sum(len(rows) for rows in value.values())
                else:
                    entries[domain] += len(value)
        return ResourceReport(
            backend="memory", path=None, bytes_on_disk=0, entries=entries, durability="memory"
        )


_RENAMED = {"latest_sync_key": "latest_sync_key_id", "app_state_versions": "versions"}
_FIELD_DOMAINS = {
    _RENAMED.get(kind, kind): domain for domain, kinds in TABLES_OF.items() for kind in kinds
} | {"device": "device"}
"""The domain of each field of `DeviceData` that holds records: named after the record
tables of `lmdbstore.kinds.TABLES_OF`, but for the few renamed here."""
