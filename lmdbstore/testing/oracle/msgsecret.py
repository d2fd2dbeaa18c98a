"""MsgSecretStore in memory: the reference model of the LMDB and SQLite backends."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from lmdbstore import validate
from lmdbstore.derived import merge_secret
from lmdbstore.testing.oracle.protocol import alias
from lmdbstore.testing.oracle.state import MemoryHandle
from lmdbstore.types import MsgSecretHit

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
        self._trim()
        return len(checked)

    async def get_msg_secret_with_ts(
        self, chat: str, sender: str, msg_id: str
    ) -> tuple[bytes, int] | None:
        parts = validate.message_key(chat, sender, msg_id)
        found = self._d.msg_secrets.get((parts[0].decode(), parts[1].decode(), parts[2].decode()))
        return None if found is None else (found[0], found[2])

    async def find_msg_secret(self, chat: str, sender: str, msg_id: str) -> MsgSecretHit | None:
        names = [p.decode() for p in validate.message_key(chat, sender, msg_id)]
        d = self._d
        for at in (names[0], alias(d, names[0])):
            for by in (names[1], alias(d, names[1])):
                found = None if at is None or by is None else d.msg_secrets.get((at, by, names[2]))
                if found is not None:
                    return MsgSecretHit(found[0], cast("str", at), cast("str", by), found[2])
        return None

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        until = validate.i64(cutoff, "cutoff")
        secrets = self._d.msg_secrets
        doomed = [k for k, (_, expires, _) in secrets.items() if expires != 0 and expires <= until]
        for k in doomed:
            del secrets[k]
        return len(doomed)
