"""MsgSecretStore in memory: the reference model of the LMDB and SQLite backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import validate
from lmdbstore.derived import merge_secret
from lmdbstore.testing.oracle.state import MemoryHandle

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lmdbstore.types import MsgSecretEntry


class MemoryMsgSecretStore(MemoryHandle):
    """The `MsgSecretStore` methods of `OracleStore`."""

    async def put_msg_secrets(self, entries: Sequence[MsgSecretEntry]) -> int:
        checked = validate.each(entries, "entries", validate.msg_secret)
        secrets = self._d.msg_secrets
        for entry in checked:
            k = (entry.chat, entry.sender, entry.msg_id)
            secrets[k] = merge_secret(secrets.get(k), entry)
        return len(checked)

    async def get_msg_secret_with_ts(
        self, chat: str, sender: str, msg_id: str
    ) -> tuple[bytes, int] | None:
        parts = validate.message_key(chat, sender, msg_id)
        found = self._d.msg_secrets.get((parts[0].decode(), parts[1].decode(), parts[2].decode()))
        return None if found is None else (found[0], found[2])

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        until = validate.i64(cutoff, "cutoff")
        secrets = self._d.msg_secrets
        doomed = [k for k, (_, expires, _) in secrets.items() if expires != 0 and expires <= until]
        for k in doomed:
            del secrets[k]
        return len(doomed)
