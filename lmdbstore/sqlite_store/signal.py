"""SignalStore on SQLite: tables ``identities``, ``sessions``, ``prekeys``,
``signed_prekeys`` and ``sender_keys``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import addresses, validate
from lmdbstore.sqlite_store.handle import SqliteHandle, select_in, text

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

# (table, value column) of the records named by an address, which PN -> LID migration moves.
_ADDRESSED = (("sessions", "record"), ("identities", "identity_key"))


def _user_ranges(user: str) -> list[tuple[str, str]]:
    """[low, high) ranges of the addresses ``user@...`` and ``user:...``; the separator is
    ASCII, so the next character bounds the range under SQLite's byte-wise TEXT order."""
    return [(user + sep, user + chr(ord(sep) + 1)) for sep in ("@", ":")]


class SqliteSignalStore(SqliteHandle):
    """The `SignalStore` methods of `SqliteStore`."""

    # -- identities ------------------------------------------------------------------------

    async def put_identity(self, address: str, key: bytes) -> None:
        row = (text(address, "address"), validate.identity_key(key, "key"))
        await self._execute("REPLACE INTO identities VALUES (?, ?, ?)", *row)

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = validate.pairs(
            items, "items", validate.text, lambda v, w: validate.blob(v, w, length=32)
        )
        rows = [(name.decode(), key) for name, key in checked]
        await self._execute_many("REPLACE INTO identities VALUES (?, ?, ?)", rows)

    async def load_identity(self, address: str) -> bytes | None:
        row = await self._one(
            "SELECT identity_key FROM identities WHERE device_id = ? AND address = ?",
            text(address, "address"),
        )
        return None if row is None else row[0]

    async def delete_identity(self, address: str) -> None:
        await self._execute(
            "DELETE FROM identities WHERE device_id = ? AND address = ?", text(address, "address")
        )

    # -- sessions --------------------------------------------------------------------------

    async def get_session(self, address: str) -> bytes | None:
        row = await self._one(
            "SELECT record FROM sessions WHERE device_id = ? AND address = ?",
            text(address, "address"),
        )
        return None if row is None else row[0]

    async def get_sessions_batch(self, addresses: Sequence[str]) -> dict[str, bytes]:
        names = [n.decode() for n in validate.each(addresses, "addresses", validate.text)]
        device = self._device_id

        def read(conn: sqlite3.Connection) -> dict[str, bytes]:
            sql = "SELECT address, record FROM sessions WHERE device_id = ? AND address IN"
            return dict(select_in(conn, sql, (device,), names))

        return await self._read(read)

    async def put_session(self, address: str, record: bytes) -> None:
        row = (text(address, "address"), validate.blob(record, "record"))
        await self._execute("REPLACE INTO sessions VALUES (?, ?, ?)", *row)

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = validate.pairs(items, "items", validate.text, validate.blob)
        rows = [(name.decode(), record) for name, record in checked]
        await self._execute_many("REPLACE INTO sessions VALUES (?, ?, ?)", rows)

    async def delete_session(self, address: str) -> None:
        await self._execute(
            "DELETE FROM sessions WHERE device_id = ? AND address = ?", text(address, "address")
        )

    async def has_session(self, address: str) -> bool:
        row = await self._one(
            "SELECT 1 FROM sessions WHERE device_id = ? AND address = ?",
            text(address, "address"),
        )
        return row is not None

    async def has_signal_state_for_user(self, user: str) -> bool:
        ranges = _user_ranges(addresses.bare_user(user, "user").decode())
        device = self._device_id

        def read(conn: sqlite3.Connection) -> bool:
            return any(
                conn.execute(
                    f"SELECT 1 FROM {table} WHERE device_id = ? AND address >= ? "
                    "AND address < ? LIMIT 1",
                    (device, low, high),
                ).fetchone()
                for table, _ in _ADDRESSED
                for low, high in ranges
            )

        return await self._read(read)

    # -- pre-keys --------------------------------------------------------------------------

    async def store_prekey(self, prekey_id: int, record: bytes, uploaded: bool = False) -> None:
        row = (
            validate.u32(prekey_id, "prekey_id"),
            validate.blob(record, "record"),
            validate.flag(uploaded, "uploaded"),
        )
        await self._execute("REPLACE INTO prekeys VALUES (?, ?, ?, ?)", *row)

    async def store_prekeys_batch(
        self, items: Sequence[tuple[int, bytes]], uploaded: bool = False
    ) -> None:
        checked = validate.pairs(items, "items", validate.u32, validate.blob)
        flag = validate.flag(uploaded, "uploaded")
        rows = [(i, record, flag) for i, record in checked]
        await self._execute_many("REPLACE INTO prekeys VALUES (?, ?, ?, ?)", rows)

    async def load_prekey(self, prekey_id: int) -> bytes | None:
        row = await self._one(
            "SELECT record FROM prekeys WHERE device_id = ? AND prekey_id = ?",
            validate.u32(prekey_id, "prekey_id"),
        )
        return None if row is None else row[0]

    async def load_prekeys_batch(self, prekey_ids: Sequence[int]) -> list[tuple[int, bytes]]:
        ids = validate.each(prekey_ids, "prekey_ids", validate.u32)
        device = self._device_id

        def read(conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
            sql = "SELECT prekey_id, record FROM prekeys WHERE device_id = ? AND prekey_id IN"
            found = dict(select_in(conn, sql, (device,), ids))
            return [(i, found[i]) for i in ids if i in found]

        return await self._read(read)

    async def mark_prekeys_uploaded(self, prekey_ids: Sequence[int]) -> None:
        # An UPDATE never resurrects a key removed meanwhile.
        ids = validate.each(prekey_ids, "prekey_ids", validate.u32)
        await self._execute_many(
            "UPDATE prekeys SET uploaded = 1 WHERE device_id = ? AND prekey_id = ?",
            [(i,) for i in ids],
        )

    async def remove_prekey(self, prekey_id: int) -> None:
        await self._execute(
            "DELETE FROM prekeys WHERE device_id = ? AND prekey_id = ?",
            validate.u32(prekey_id, "prekey_id"),
        )

    async def get_max_prekey_id(self) -> int:
        row = await self._one("SELECT max(prekey_id) FROM prekeys WHERE device_id = ?")
        return row[0] or 0

    # -- signed pre-keys -------------------------------------------------------------------

    async def store_signed_prekey(self, signed_prekey_id: int, record: bytes) -> None:
        row = (
            validate.u32(signed_prekey_id, "signed_prekey_id"),
            validate.blob(record, "record"),
        )
        await self._execute("REPLACE INTO signed_prekeys VALUES (?, ?, ?)", *row)

    async def load_signed_prekey(self, signed_prekey_id: int) -> bytes | None:
        row = await self._one(
            "SELECT record FROM signed_prekeys WHERE device_id = ? AND signed_prekey_id = ?",
            validate.u32(signed_prekey_id, "signed_prekey_id"),
        )
        return None if row is None else row[0]

    async def load_all_signed_prekeys(self) -> list[tuple[int, bytes]]:
        rows = await self._all(
            "SELECT signed_prekey_id, record FROM signed_prekeys WHERE device_id = ? "
            "ORDER BY signed_prekey_id"
        )
        return [(i, record) for i, record in rows]

    async def remove_signed_prekey(self, signed_prekey_id: int) -> None:
        await self._execute(
            "DELETE FROM signed_prekeys WHERE device_id = ? AND signed_prekey_id = ?",
            validate.u32(signed_prekey_id, "signed_prekey_id"),
        )

    # -- sender keys -----------------------------------------------------------------------

    async def put_sender_key(self, name: str, record: bytes) -> None:
        row = (text(name, "name"), validate.blob(record, "record"))
        await self._execute("REPLACE INTO sender_keys VALUES (?, ?, ?)", *row)

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = validate.pairs(items, "items", validate.text, validate.blob)
        rows = [(name.decode(), record) for name, record in checked]
        await self._execute_many("REPLACE INTO sender_keys VALUES (?, ?, ?)", rows)

    async def get_sender_key(self, name: str) -> bytes | None:
        row = await self._one(
            "SELECT record FROM sender_keys WHERE device_id = ? AND name = ?", text(name, "name")
        )
        return None if row is None else row[0]

    async def delete_sender_key(self, name: str) -> None:
        await self._execute(
            "DELETE FROM sender_keys WHERE device_id = ? AND name = ?", text(name, "name")
        )

    # -- PN -> LID -------------------------------------------------------------------------

    async def migrate_pn_to_lid(self, pn_user: str, lid_user: str) -> int:
        pn = addresses.bare_user(pn_user, "pn_user").decode()
        lid = addresses.bare_user(lid_user, "lid_user").decode()
        device = self._device_id

        def moves(conn: sqlite3.Connection) -> list[tuple[str, str, str, str, bytes]]:
            """(table, key column, old name, new name, value) of every PN record."""
            found = []
            for table, column in _ADDRESSED:
                for low, high in _user_ranges(pn):
                    for old, value in conn.execute(
                        f"SELECT address, {column} FROM {table} WHERE device_id = ? "
                        "AND address >= ? AND address < ?",
                        (device, low, high),
                    ):
                        new = addresses.pn_to_lid_address(old, pn, lid)
                        if new is not None:
                            addresses.migrated_name(new, "migrated address")
                            found.append((table, "address", old, new, value))
            # Sender keys are named by group first: the user is inside, so all are read.
            for old, value in conn.execute(
                "SELECT name, record FROM sender_keys WHERE device_id = ?", (device,)
            ):
                new = addresses.pn_to_lid_sender_key_name(old, pn, lid)
                if new is not None:
                    addresses.migrated_name(new, "migrated sender-key name")
                    found.append(("sender_keys", "name", old, new, value))
            return found

        def op(conn: sqlite3.Connection) -> int:
            found = moves(conn)
            for table, key, old, new, value in found:
                # An existing LID record is newer: INSERT OR IGNORE keeps it.
                conn.execute(
                    f"INSERT OR IGNORE INTO {table} VALUES (?, ?, ?)", (device, new, value)
                )
                conn.execute(
                    f"DELETE FROM {table} WHERE device_id = ? AND {key} = ?", (device, old)
                )
            return len(found)

        return await self._write(op)
