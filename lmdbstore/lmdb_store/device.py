"""DeviceStore on LMDB: the device record (sub-database ``device``), device allocation,
snapshots and the resource report."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import lmdb

from lmdbstore import codec, keys, validate
from lmdbstore.engine import DOMAINS, LAST_DEVICE_KEY, wrap_lmdb_error
from lmdbstore.errors import DatabaseError
from lmdbstore.keys import DeviceTag
from lmdbstore.lmdb_store import verify
from lmdbstore.lmdb_store.handle import LmdbHandle
from lmdbstore.types import REPORT_DOMAINS, Device, ResourceReport

if TYPE_CHECKING:
    from lmdbstore.engine import ReadView, WriteView

_DB = "device"


class LmdbDeviceStore(LmdbHandle):
    """The `DeviceStore` methods of `LmdbStore`."""

    async def save(self, device: Device) -> None:
        value = codec.dump_device(validate.device(device))
        await self._put(_DB, self._key(DeviceTag.DEVICE), value)

    async def load(self) -> Device | None:
        return self._load(_DB, self._key(DeviceTag.DEVICE), codec.read_device)

    async def exists(self) -> bool:
        k = self._key(DeviceTag.DEVICE)
        return self._read(lambda view: view.get(_DB, k) is not None)

    async def create(self) -> int:
        """Allocate a device id that no record and no open handle of this database uses,
        persist a default `Device` for it and return the id."""
        busy = {d for d, n in self._engine_open().open_devices.items() if n > 0}

        def op(view: WriteView) -> int:
            counter = view.get("meta", LAST_DEVICE_KEY)
            used = busy | {keys.read_u32(k, 0)[0] for k, _ in view.scan(_DB, b"", None)}
            if counter is not None:
                used.add(keys.read_u32(counter, 0)[0])
            candidate = max(used, default=0) + 1
            while any(next(view.scan_prefix(db, keys.u32(candidate)), None) for db in DOMAINS):
                candidate += 1
            validate.u32(candidate, "allocated device id")
            view.put("meta", LAST_DEVICE_KEY, keys.u32(candidate))
            view.put(
                _DB, keys.make(keys.u32(candidate), DeviceTag.DEVICE), codec.dump_device(Device())
            )
            return candidate

        return await self._write(op)

    async def copy_to(self, target: str) -> None:
        """Copy the whole environment (every device), hot and consistent, into the new
        directory ``target``, compacted (LMDB's compacting copy). Writers go on meanwhile."""
        target = validate.store_path(target, "lmdb://", "directory")
        engine = self._engine_open()

        def copy() -> None:
            try:
                os.mkdir(target)
                engine.env.copy(target, compact=True)
            except FileExistsError:
                raise DatabaseError(f"{target!r} already exists") from None
            except OSError as exc:
                raise DatabaseError(f"cannot write {target!r}: {exc}") from None
            except lmdb.Error as exc:
                raise wrap_lmdb_error(exc) from None

        await self._read_in_thread(lambda _view: copy())

    async def device_ids(self) -> list[int]:
        """The devices that hold records in this environment, ascending."""

        def scan(view: ReadView) -> list[int]:
            found: set[int] = set()
            for db in DOMAINS:
                if db == "meta":
                    continue
                start = b""
                while (item := next(view.scan(db, start, None), None)) is not None:
                    device = keys.read_u32(item[0], 0)[0]
                    found.add(device)
                    if device == validate.U32_MAX:
                        break
                    start = keys.device_prefix(device + 1)  # skip to the next device
            return sorted(found)

        return await self._read_in_thread(scan)

    async def verify(self) -> list[str]:
        """Every problem of the environment, all devices: records that do not decode, keys
        of unknown kinds, index entries missing or stray (see
        `lmdbstore.lmdb_store.verify`). One read transaction; writes nothing."""
        return await self._read_in_thread(verify.problems)

    async def resource_report(self) -> ResourceReport:
        """Bytes on disk, entries per domain (every key of the sub-database, index entries
        included), map size and use, reader slots in use (all processes)."""
        engine = self._engine_open()

        def report(_view: object) -> ResourceReport:
            env = engine.env
            info = env.info()
            stat = env.stat()
            with env.begin() as txn:
                entries = {name: txn.stat(engine.dbs[name])["entries"] for name in REPORT_DOMAINS}
            return ResourceReport(
                backend="lmdb",
                path=engine.path,
                bytes_on_disk=sum(
                    entry.stat().st_size for entry in os.scandir(engine.path) if entry.is_file()
                ),
                entries=entries,
                durability=engine.durability,
                map_size=info["map_size"],
                map_used=(info["last_pgno"] + 1) * stat["psize"],
                readers_in_use=info["num_readers"],
                max_readers=info["max_readers"],
            )

        return await self._read_in_thread(report)
