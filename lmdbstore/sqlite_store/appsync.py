"""AppSyncStore on SQLite: tables ``sync_keys``, ``latest_sync_key``,
``app_state_versions`` and ``mutation_macs``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import codec, validate
from lmdbstore.sqlite_store.handle import SqliteHandle, select_in, text
from lmdbstore.types import AppStateSyncKey, HashState

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from lmdbstore.types import AppStateMutationMAC


class SqliteAppSyncStore(SqliteHandle):
    """The `AppSyncStore` methods of `SqliteStore`."""

    async def get_sync_key(self, key_id: bytes) -> AppStateSyncKey | None:
        row = await self._one(
            "SELECT key_data, fingerprint, timestamp FROM sync_keys "
            "WHERE device_id = ? AND key_id = ?",
            validate.key_bytes(key_id, "key_id"),
        )
        return None if row is None else AppStateSyncKey(*row)

    async def set_sync_key(self, key_id: bytes, key: AppStateSyncKey) -> None:
        raw_id = validate.key_bytes(key_id, "key_id")
        checked = validate.sync_key(key)
        device = self._device_id

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "REPLACE INTO sync_keys VALUES (?, ?, ?, ?, ?)",
                (device, raw_id, checked.key_data, checked.fingerprint, checked.timestamp),
            )
            conn.execute("REPLACE INTO latest_sync_key VALUES (?, ?)", (device, raw_id))

        await self._write(op)

    async def get_latest_sync_key_id(self) -> bytes | None:
        row = await self._one("SELECT key_id FROM latest_sync_key WHERE device_id = ?")
        return None if row is None else row[0]

    async def get_version(self, name: str) -> HashState:
        checked = text(name, "name")
        row = await self._one(
            "SELECT version, hash, value_map, mac_mismatch_fatal FROM app_state_versions "
            "WHERE device_id = ? AND name = ?",
            checked,
        )
        if row is None:
            return HashState()
        version, state_hash, raw_map, fatal = row
        key = f"app_state_versions/{self._device_id}/{checked}".encode()
        value_map = codec.load("appsync", key, raw_map, codec.read_value_map)
        return HashState(version, state_hash, value_map, bool(fatal))

    async def set_version(self, name: str, state: HashState) -> None:
        checked = validate.hash_state(state)
        await self._execute(
            "REPLACE INTO app_state_versions VALUES (?, ?, ?, ?, ?, ?)",
            text(name, "name"),
            checked.version,
            checked.hash,
            codec.dumps(checked.index_value_map),
            checked.mac_mismatch_fatal,
        )

    async def put_mutation_macs(
        self, name: str, version: int, mutations: Sequence[AppStateMutationMAC]
    ) -> None:
        raw = validate.text(name, "name")
        number = validate.u64(version, "version")
        rows = [
            (raw.decode(), index_mac, value_mac, number)
            for index_mac, value_mac in validate.mutations(raw, mutations)
        ]
        await self._execute_many("REPLACE INTO mutation_macs VALUES (?, ?, ?, ?, ?)", rows)

    async def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None:
        raw = validate.text(name, "name")
        (mac,) = validate.index_macs(raw, [index_mac])
        row = await self._one(
            "SELECT value_mac FROM mutation_macs WHERE device_id = ? AND name = ? "
            "AND index_mac = ?",
            raw.decode(),
            mac,
        )
        return None if row is None else row[0]

    async def get_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> dict[bytes, bytes]:
        raw = validate.text(name, "name")
        macs = validate.index_macs(raw, index_macs)
        params = (self._device_id, raw.decode())

        def read(conn: sqlite3.Connection) -> dict[bytes, bytes]:
            sql = (
                "SELECT index_mac, value_mac FROM mutation_macs WHERE device_id = ? "
                "AND name = ? AND index_mac IN"
            )
            return dict(select_in(conn, sql, params, macs))

        return await self._read(read)

    async def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None:
        raw = validate.text(name, "name")
        rows = [(raw.decode(), mac) for mac in validate.index_macs(raw, index_macs)]
        await self._execute_many(
            "DELETE FROM mutation_macs WHERE device_id = ? AND name = ? AND index_mac = ?", rows
        )

    async def clear_mutation_macs(self, name: str) -> None:
        await self._execute(
            "DELETE FROM mutation_macs WHERE device_id = ? AND name = ?", text(name, "name")
        )
