"""DeviceStore on SQLite: the device record (table ``devices``), device allocation,
snapshots (``VACUUM INTO``) and the resource report."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lmdbstore import codec, validate
from lmdbstore.errors import DatabaseError, SerializationError
from lmdbstore.sqlite_store import schema
from lmdbstore.sqlite_store.handle import SqliteHandle
from lmdbstore.sqlite_store.schema import DOMAIN_TABLES
from lmdbstore.types import REPORT_DOMAINS, Device, ResourceReport

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

LAST_DEVICE_KEY = "last_device_id"
_WAL_SUFFIXES = ("", "-wal", "-shm")


class SqliteDeviceStore(SqliteHandle):
    """The `DeviceStore` methods of `SqliteStore`."""

    async def save(self, device: Device) -> None:
        await self._execute(
            "REPLACE INTO devices VALUES (?, ?)", codec.dump_device(validate.device(device))
        )

    async def load(self) -> Device | None:
        row = await self._one("SELECT record FROM devices WHERE device_id = ?")
        if row is None:
            return None
        key = f"devices/{self._device_id}".encode()
        return codec.load("device", key, row[0], codec.read_device)

    async def exists(self) -> bool:
        return await self._one("SELECT 1 FROM devices WHERE device_id = ?") is not None

    async def create(self) -> int:
        """Allocate a device id that no record and no open handle of this database uses,
        persist a default `Device` for it and return the id."""
        database = self._db()
        busy = [d for d, n in database.open_devices.items() if n > 0]
        tables = [t for names in DOMAIN_TABLES.values() for t in names]
        # max(device_id) is the first column of every primary key: one index seek per table.
        highest = " UNION ALL ".join(f"SELECT max(device_id) FROM {t}" for t in tables)

        def op(conn: sqlite3.Connection) -> int:
            used = [row[0] for row in conn.execute(highest) if row[0] is not None]
            counter = conn.execute(
                "SELECT value FROM meta WHERE name = ?", (LAST_DEVICE_KEY,)
            ).fetchone()
            if counter is not None:
                used.append(counter[0])
            candidate = validate.u32(max([*used, *busy], default=0) + 1, "allocated device id")
            conn.execute("REPLACE INTO meta VALUES (?, ?)", (LAST_DEVICE_KEY, candidate))
            conn.execute(
                "INSERT INTO devices VALUES (?, ?)", (candidate, codec.dump_device(Device()))
            )
            return candidate

        return await self._write(op)

    async def copy_to(self, target: str) -> None:
        """Copy the database (every device), hot and consistent, into the new file
        ``target`` with ``VACUUM INTO`` (from a read transaction, so writers go on)."""
        target = validate.store_path(target, "sqlite://", "file")

        def copy(conn: sqlite3.Connection) -> None:
            if any(os.path.exists(target + suffix) for suffix in _WAL_SUFFIXES):
                raise DatabaseError(f"{target!r} already exists")
            conn.execute("VACUUM INTO ?", (target,))

        await self._db().on_own_connection(copy)

    async def device_ids(self) -> list[int]:
        """The devices that hold records in this database, ascending."""
        tables = [t for names in DOMAIN_TABLES.values() for t in names]
        union = " UNION ".join(f"SELECT DISTINCT device_id FROM {t}" for t in tables)
        rows = await self._db().read(lambda conn: conn.execute(union + " ORDER BY 1").fetchall())
        return [device for (device,) in rows]

    async def verify(self) -> list[str]:
        """SQLite's ``integrity_check`` and ``foreign_key_check``, the schema version, and
        every structured (CBOR) value decoded; each problem one line. Reads only."""
        return await self._db().read(_problems)

    async def resource_report(self) -> ResourceReport:
        """Bytes on disk (database, WAL and shared memory), rows per domain (all devices;
        ``cache`` is always 0: SQLite keeps no cache), reader connections; pages and rows
        per table in ``details``."""
        database = self._db()

        def report(conn: sqlite3.Connection) -> ResourceReport:
            details = {
                name: int(conn.execute(f"PRAGMA {name}").fetchone()[0])
                for name in ("page_size", "page_count", "freelist_count")
            }
            entries = dict.fromkeys(REPORT_DOMAINS, 0)
            for domain, names in DOMAIN_TABLES.items():
                for table in names:
                    rows = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                    details[f"rows.{table}"] = rows
                    entries[domain] += rows
            return ResourceReport(
                backend="sqlite",
                path=database.path,
                bytes_on_disk=sum(
                    os.path.getsize(database.path + s)
                    for s in _WAL_SUFFIXES
                    if os.path.exists(database.path + s)
                ),
                entries=entries,
                durability=database.synchronous,
                readers_in_use=database.readers,
                details=details,
            )

        return await database.read(report)


# (domain, table, key columns, CBOR column, decoder): what SQLite cannot check by type.
_CBOR_COLUMNS: tuple[tuple[str, str, str, str, Callable[[dict[str, object]], object]], ...] = (
    ("device", "devices", "device_id", "record", codec.read_device),
    ("protocol", "device_lists", "device_id, user", "record", codec.read_device_list("")),
    ("appsync", "app_state_versions", "device_id, name", "value_map", codec.read_value_map),
)


def _problems(conn: sqlite3.Connection) -> list[str]:
    found = [
        f"integrity: {row[0]}" for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"
    ]
    found += [f"foreign key: {row}" for row in conn.execute("PRAGMA foreign_key_check")]
    version = conn.execute("SELECT version FROM schema_version").fetchone()
    if version is None or version[0] != len(schema.MIGRATIONS):
        found.append(f"schema version is {version!r}, not {len(schema.MIGRATIONS)}")
    for domain, table, key_columns, column, decoder in _CBOR_COLUMNS:
        for *key, raw in conn.execute(f"SELECT {key_columns}, {column} FROM {table}"):
            name = f"{table}/{'/'.join(str(part) for part in key)}".encode()
            try:
                codec.load(domain, name, raw, decoder)
            except SerializationError as exc:
                found.append(str(exc))
    return found
