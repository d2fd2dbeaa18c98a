"""DeviceStore: the device record (sub-database ``device``), device allocation, the
devices of a database and ``verify``. Copies and resource reports belong to each store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import codec, keys, validate
from lmdbstore.domains import verify
from lmdbstore.domains.handle import DomainHandle
from lmdbstore.errors import ValidationError
from lmdbstore.keys import DOMAINS, LAST_DEVICE_KEY
from lmdbstore.kinds import BY_NAME, BY_TAG, COUNTED
from lmdbstore.types import Device

if TYPE_CHECKING:
    from lmdbstore.storage.view import ReadView, WriteView

_DB = "device"
_LEASE = BY_NAME["device_lease"]
DEVICE_DOMAINS = tuple(db for db in DOMAINS if db not in ("cache", "meta"))
"""The sub-databases of device records (cache entries are the cache's, not the device's)."""


class DeviceDomain(DomainHandle):
    """The `DeviceStore` methods every store shares."""

    async def save(self, device: Device) -> None:
        value = codec.dump_device(validate.device(device))
        await self._put(_DB, self._records("device").key(()), value)

    async def load(self) -> Device | None:
        return await self._load(_DB, self._records("device").key(()), codec.read_device)

    async def exists(self) -> bool:
        k = self._records("device").key(())
        return await self._read(lambda view: view.get(_DB, k) is not None)

    async def create(self) -> int:
        """Allocate a device id that no record and no open handle of this database uses,
        persist a default `Device` for it and return the id."""
        busy = self._storage_open().devices.busy()

        def op(view: WriteView) -> int:
            counter = view.get("meta", LAST_DEVICE_KEY)
            used = set(busy)
            for k, _ in view.scan(_DB, b"", None):
                BY_NAME["device"].parse_key(k)  # a malformed key is refused, not misread
                used.add(keys.read_u32(k, 0)[0])
            if counter is not None:
                used.add(keys.load_device_counter(counter))
            candidate = max(used, default=0) + 1
            while any(view.first_device(db, candidate) == candidate for db in DOMAINS):
                candidate += 1
            validate.u32(candidate, "allocated device id")
            view.put("meta", LAST_DEVICE_KEY, keys.u32(candidate))
            view.put(_DB, BY_NAME["device"].key_bytes(candidate, ()), codec.dump_device(Device()))
            return candidate

        return await self._write(op)

    async def delete_device(self) -> int:
        if self._closed:
            self._check_open()
        if self._is_transaction:
            raise ValidationError(
                "delete_device is not available in a transaction: call it on the store"
            )
        life = self._life
        if life.deleted:
            return 0
        dev = self._dev

        def op(view: WriteView) -> int:
            records = 0
            for db in DEVICE_DOMAINS:
                for key, _ in view.scan_prefix(db, dev):
                    kind = BY_TAG.get((db, key[4])) if len(key) > 4 else None
                    # A lease is bookkeeping, as an index entry is: not a record.
                    records += kind is not None and not kind.is_index and kind is not _LEASE
                    view.delete(db, key)
            for index in COUNTED:  # where a storage keeps them apart from its scans
                view.delete(index.db, keys.tally(dev, index.tag))
            # Inside the write: the writes of this device's handles that the storage runs
            # after it refuse (a transaction's commit checks this first).
            life.deleted = True
            return records

        try:
            deleted = await self._write(op)
        except BaseException:
            life.deleted = False
            raise
        self._storage.devices.renew(self._device_id)
        return deleted

    async def device_ids(self) -> list[int]:
        """The devices that hold records in this database, ascending."""

        def scan(view: ReadView) -> list[int]:
            found: set[int] = set()
            for db in DOMAINS:
                if db == "meta":
                    continue
                device = view.first_device(db, 0)
                while device is not None:
                    found.add(device)
                    device = view.first_device(db, device + 1)  # skip to the next device
            return sorted(found)

        return await self._read_in_thread(scan)

    async def verify(self) -> list[str]:
        """Every problem of the database, all devices: records that do not decode, keys
        of unknown kinds, index entries missing or stray (see
        `lmdbstore.domains.verify`). One consistent read; writes nothing."""
        problems = await self._read_in_thread(verify.problems)
        return problems + await self._off_loop(self._storage_open().own_problems)
