"""MsgSecretStore on SQLite: table ``msg_secrets``, with a partial index on the secrets that
expire (``expires_at != 0``), which is all that expiry walks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import validate
from lmdbstore.derived import merge_secret
from lmdbstore.sqlite_store.handle import SqliteHandle

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from lmdbstore.types import MsgSecretEntry

_WHERE = "device_id = ? AND chat = ? AND sender = ? AND msg_id = ?"


class SqliteMsgSecretStore(SqliteHandle):
    """The `MsgSecretStore` methods of `SqliteStore`."""

    async def put_msg_secrets(self, entries: Sequence[MsgSecretEntry]) -> int:
        checked = validate.each(entries, "entries", validate.msg_secret)
        device = self._device_id

        def op(conn: sqlite3.Connection) -> int:
            for entry in checked:
                where = (device, entry.chat, entry.sender, entry.msg_id)
                old = conn.execute(
                    f"SELECT secret, expires_at, message_ts FROM msg_secrets WHERE {_WHERE}", where
                ).fetchone()
                merged = merge_secret(None if old is None else (old[0], old[1], old[2]), entry)
                conn.execute(
                    "REPLACE INTO msg_secrets VALUES (?, ?, ?, ?, ?, ?, ?)", (*where, *merged)
                )
            return len(checked)

        return await self._write(op)

    async def get_msg_secret_with_ts(
        self, chat: str, sender: str, msg_id: str
    ) -> tuple[bytes, int] | None:
        parts = validate.message_key(chat, sender, msg_id)
        row = await self._one(
            f"SELECT secret, message_ts FROM msg_secrets WHERE {_WHERE}",
            *(p.decode() for p in parts),
        )
        return None if row is None else (row[0], row[1])

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        return await self._execute(
            "DELETE FROM msg_secrets WHERE device_id = ? AND expires_at != 0 AND expires_at <= ?",
            validate.i64(cutoff, "cutoff"),
        )
