"""ProtocolStore on SQLite: one table per record kind, with the indexes of
`lmdbstore.sqlite_store.schema` behind every query that is not a key lookup."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import clock, codec, validate
from lmdbstore.derived import received_tc_token, touched_tc_token
from lmdbstore.sqlite_store.handle import SqliteHandle, text
from lmdbstore.types import LidPnMappingEntry, TcTokenEntry

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from lmdbstore.types import DeviceListRecord

_EMPTY_TOKEN_TIME = validate.I64_MIN
# The expression of index tc_tokens_by_time, repeated verbatim so that SQLite uses the index.
_TC_INDEX_TIME = f"CASE WHEN length(token) = 0 THEN {_EMPTY_TOKEN_TIME} ELSE token_timestamp END"

_MAPPING_COLUMNS = "lid, phone_number, created_at, updated_at, learning_source"


class SqliteProtocolStore(SqliteHandle):
    """The `ProtocolStore` methods of `SqliteStore`."""

    # -- sender-key distribution -----------------------------------------------------------

    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]:
        rows = await self._all(
            "SELECT device_jid, has_key FROM sender_key_devices "
            "WHERE device_id = ? AND group_jid = ? ORDER BY device_jid",
            text(group, "group"),
        )
        return [(jid, bool(has_key)) for jid, has_key in rows]

    async def set_sender_key_status(self, group: str, devices: Sequence[tuple[str, bool]]) -> None:
        raw_group, checked = validate.sender_key_devices(group, devices)
        rows = [(raw_group.decode(), jid.decode(), has_key) for jid, has_key in checked]
        await self._execute_many("REPLACE INTO sender_key_devices VALUES (?, ?, ?, ?)", rows)

    async def clear_sender_key_devices(self, group: str) -> None:
        await self._execute(
            "DELETE FROM sender_key_devices WHERE device_id = ? AND group_jid = ?",
            text(group, "group"),
        )

    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None:
        jids = validate.each(device_jids, "device_jids", validate.text)
        await self._execute_many(
            "DELETE FROM sender_key_devices WHERE device_id = ? AND device_jid = ?",
            [(jid.decode(),) for jid in jids],
        )

    async def clear_all_sender_key_devices(self) -> None:
        await self._execute("DELETE FROM sender_key_devices WHERE device_id = ?")

    # -- LID <-> phone number --------------------------------------------------------------

    def _put_mapping(self, conn: sqlite3.Connection, entry: LidPnMappingEntry) -> None:
        device = self._device_id
        old = conn.execute(
            "SELECT created_at FROM lid_mappings WHERE device_id = ? AND lid = ?",
            (device, entry.lid),
        ).fetchone()
        if old is not None:
            entry.created_at = old[0]  # the first sighting stays the creation
        # Ties on updated_at go to the mapping written last: a per-device write sequence.
        (last,) = conn.execute(
            "SELECT max(seq) FROM lid_mappings WHERE device_id = ?", (device,)
        ).fetchone()
        conn.execute(
            "REPLACE INTO lid_mappings VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                device,
                entry.lid,
                entry.phone_number,
                entry.created_at,
                entry.updated_at,
                entry.learning_source,
                (last or 0) + 1,
            ),
        )

    async def get_lid_mapping(self, lid: str) -> LidPnMappingEntry | None:
        row = await self._one(
            f"SELECT {_MAPPING_COLUMNS} FROM lid_mappings WHERE device_id = ? AND lid = ?",
            text(lid, "lid"),
        )
        return None if row is None else LidPnMappingEntry(*row)

    async def get_pn_mapping(self, phone: str) -> LidPnMappingEntry | None:
        row = await self._one(
            f"SELECT {_MAPPING_COLUMNS} FROM lid_mappings WHERE device_id = ? "
            "AND phone_number = ? ORDER BY updated_at DESC, seq DESC LIMIT 1",
            text(phone, "phone"),
        )
        return None if row is None else LidPnMappingEntry(*row)

    async def put_lid_mapping(self, entry: LidPnMappingEntry) -> None:
        checked = validate.lid_mapping(entry)
        await self._write(lambda conn: self._put_mapping(conn, checked))

    async def put_lid_mappings(self, entries: Sequence[LidPnMappingEntry]) -> None:
        checked = validate.each(entries, "entries", validate.lid_mapping)

        def op(conn: sqlite3.Connection) -> None:
            for entry in checked:
                self._put_mapping(conn, entry)

        await self._write(op)

    async def get_all_lid_mappings(self) -> list[LidPnMappingEntry]:
        rows = await self._all(
            f"SELECT {_MAPPING_COLUMNS} FROM lid_mappings WHERE device_id = ? ORDER BY lid"
        )
        return [LidPnMappingEntry(*row) for row in rows]

    # -- base keys -------------------------------------------------------------------------

    @staticmethod
    def _base_key(address: object, message_id: object) -> tuple[str, str]:
        parts = validate.key_strings(((address, "address"), (message_id, "message_id")))
        return parts[0].decode(), parts[1].decode()

    async def save_base_key(self, address: str, message_id: str, key: bytes) -> None:
        row = (*self._base_key(address, message_id), validate.blob(key, "key"))
        await self._execute("REPLACE INTO base_keys VALUES (?, ?, ?, ?)", *row)

    async def has_same_base_key(self, address: str, message_id: str, key: bytes) -> bool:
        where = self._base_key(address, message_id)
        wanted = validate.blob(key, "key")
        row = await self._one(
            "SELECT base_key FROM base_keys WHERE device_id = ? AND address = ? AND message_id = ?",
            *where,
        )
        return row is not None and row[0] == wanted

    async def delete_base_key(self, address: str, message_id: str) -> None:
        await self._execute(
            "DELETE FROM base_keys WHERE device_id = ? AND address = ? AND message_id = ?",
            *self._base_key(address, message_id),
        )

    # -- device registry -------------------------------------------------------------------

    async def update_device_list(self, record: DeviceListRecord) -> None:
        await self.update_device_lists([record])

    async def update_device_lists(self, records: Sequence[DeviceListRecord]) -> None:
        checked = validate.each(records, "records", validate.device_list)
        rows = [(r.user, codec.dump_device_list(r)) for r in checked]
        await self._execute_many("REPLACE INTO device_lists VALUES (?, ?, ?)", rows)

    async def get_devices(self, user: str) -> DeviceListRecord | None:
        checked = text(user, "user")
        row = await self._one(
            "SELECT record FROM device_lists WHERE device_id = ? AND user = ?", checked
        )
        if row is None:
            return None
        key = f"device_lists/{self._device_id}/{checked}".encode()
        return codec.load("protocol", key, row[0], codec.read_device_list(checked))

    async def delete_devices(self, user: str) -> None:
        await self._execute(
            "DELETE FROM device_lists WHERE device_id = ? AND user = ?", text(user, "user")
        )

    # -- group metadata --------------------------------------------------------------------

    async def get_group_metadata(self, group: str) -> bytes | None:
        row = await self._one(
            "SELECT metadata FROM group_metadata WHERE device_id = ? AND group_jid = ?",
            text(group, "group"),
        )
        return None if row is None else row[0]

    async def put_group_metadata(self, group: str, blob: bytes) -> None:
        row = (text(group, "group"), validate.blob(blob, "blob"))
        await self._execute("REPLACE INTO group_metadata VALUES (?, ?, ?)", *row)

    async def delete_group_metadata(self, group: str) -> None:
        await self._execute(
            "DELETE FROM group_metadata WHERE device_id = ? AND group_jid = ?",
            text(group, "group"),
        )

    # -- trusted-contact tokens ------------------------------------------------------------

    def _tc_get(self, conn: sqlite3.Connection, jid: str) -> TcTokenEntry | None:
        row = conn.execute(
            "SELECT token, token_timestamp, sender_timestamp FROM tc_tokens "
            "WHERE device_id = ? AND jid = ?",
            (self._device_id, jid),
        ).fetchone()
        return None if row is None else TcTokenEntry(*row)

    def _tc_put(self, conn: sqlite3.Connection, jid: str, entry: TcTokenEntry) -> None:
        conn.execute(
            "REPLACE INTO tc_tokens VALUES (?, ?, ?, ?, ?)",
            (self._device_id, jid, entry.token, entry.token_timestamp, entry.sender_timestamp),
        )

    async def get_tc_token(self, jid: str) -> TcTokenEntry | None:
        checked = text(jid, "jid")
        return await self._read(lambda conn: self._tc_get(conn, checked))

    async def put_tc_token(self, jid: str, entry: TcTokenEntry) -> None:
        checked_jid = text(jid, "jid")
        checked = validate.tc_token(entry)
        await self._write(lambda conn: self._tc_put(conn, checked_jid, checked))

    async def delete_tc_token(self, jid: str) -> None:
        await self._execute(
            "DELETE FROM tc_tokens WHERE device_id = ? AND jid = ?", text(jid, "jid")
        )

    async def get_all_tc_token_jids(self) -> list[str]:
        rows = await self._all("SELECT jid FROM tc_tokens WHERE device_id = ? ORDER BY jid")
        return [jid for (jid,) in rows]

    async def delete_expired_tc_tokens(self, cutoff: int, sender_cutoff: int | None = None) -> int:
        token_cutoff, sent_cutoff = validate.tc_cutoffs(cutoff, sender_cutoff)
        # The indexed range bounds the walk; the exact rule is checked on each row it finds.
        return await self._execute(
            f"DELETE FROM tc_tokens WHERE device_id = ? AND {_TC_INDEX_TIME} < ? "
            "AND (length(token) = 0 OR token_timestamp < ?) "
            "AND (sender_timestamp IS NULL OR sender_timestamp < ?)",
            max(token_cutoff, _EMPTY_TOKEN_TIME + 1),
            token_cutoff,
            sent_cutoff,
        )

    async def touch_tc_token_sender_timestamp(self, jid: str, ts: int) -> None:
        checked = text(jid, "jid")
        at = validate.i64(ts, "ts")

        def op(conn: sqlite3.Connection) -> None:
            entry = touched_tc_token(self._tc_get(conn, checked), at)
            if entry is not None:
                self._tc_put(conn, checked, entry)

        await self._write(op)

    async def store_received_tc_token(self, jid: str, token: bytes, ts: int) -> None:
        checked = text(jid, "jid")
        value = validate.blob(token, "token")
        at = validate.i64(ts, "ts")

        def op(conn: sqlite3.Connection) -> None:
            entry = received_tc_token(self._tc_get(conn, checked), value, at)
            if entry is not None:
                self._tc_put(conn, checked, entry)

        await self._write(op)

    # -- sent messages ---------------------------------------------------------------------

    @staticmethod
    def _sent_key(chat: object, message_id: object) -> tuple[str, str]:
        parts = validate.key_strings(((chat, "chat"), (message_id, "message_id")), index_bytes=8)
        return parts[0].decode(), parts[1].decode()

    async def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None:
        row = (*self._sent_key(chat, message_id), validate.blob(payload, "payload"), clock.now())
        await self._execute("REPLACE INTO sent_messages VALUES (?, ?, ?, ?, ?)", *row)

    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None:
        where = (self._device_id, *self._sent_key(chat, message_id))

        def op(conn: sqlite3.Connection) -> bytes | None:
            # One statement inside the immediate transaction: of concurrent takers, one wins.
            row = conn.execute(
                "DELETE FROM sent_messages WHERE device_id = ? AND chat = ? "
                "AND message_id = ? RETURNING payload",
                where,
            ).fetchone()
            return None if row is None else bytes(row[0])

        return await self._write(op)

    async def delete_expired_sent_messages(self, cutoff: int) -> int:
        return await self._execute(
            "DELETE FROM sent_messages WHERE device_id = ? AND created_at < ?",
            validate.i64(cutoff, "cutoff"),
        )

    # -- pending inbound -------------------------------------------------------------------

    async def store_pending_inbound_batch(
        self, items: Sequence[tuple[str, str, str, bytes]]
    ) -> None:
        at = clock.now()
        rows = [
            (*(p.decode() for p in parts), message, at)
            for parts, message in validate.pending_messages(items)
        ]
        await self._execute_many("REPLACE INTO pending_inbound VALUES (?, ?, ?, ?, ?, ?)", rows)

    async def get_pending_inbound(self, chat: str, sender: str, message_id: str) -> bytes | None:
        parts = validate.message_key(chat, sender, message_id)
        row = await self._one(
            "SELECT message FROM pending_inbound WHERE device_id = ? AND chat = ? "
            "AND sender = ? AND message_id = ?",
            *(p.decode() for p in parts),
        )
        return None if row is None else row[0]

    async def delete_pending_inbound_batch(self, items: Sequence[tuple[str, str, str]]) -> None:
        rows = [tuple(p.decode() for p in parts) for parts in validate.pending_keys(items)]
        await self._execute_many(
            "DELETE FROM pending_inbound WHERE device_id = ? AND chat = ? AND sender = ? "
            "AND message_id = ?",
            rows,
        )

    async def delete_expired_pending_inbound(self, cutoff: int) -> int:
        return await self._execute(
            "DELETE FROM pending_inbound WHERE device_id = ? AND inserted_at < ?",
            validate.i64(cutoff, "cutoff"),
        )
