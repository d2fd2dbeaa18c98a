"""MsgSecretStore: sub-database ``msgsecret``.

Secrets are keyed ``chat · sender · msg_id``; those that expire (``expires_at != 0``) are also
indexed by ``expires_at · chat · sender · msg_id``, so expiry walks only what it deletes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from lmdbstore import validate
from lmdbstore.derived import merge_secret
from lmdbstore.domains.handle import DomainHandle
from lmdbstore.domains.protocol import alias
from lmdbstore.types import MsgSecretHit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lmdbstore.storage.view import ReadView, WriteView
    from lmdbstore.types import MsgSecretEntry

_DB = "msgsecret"


class MsgSecretDomain(DomainHandle):
    """The `MsgSecretStore` methods of every store."""

    def _write_secret(self, view: WriteView, entry: MsgSecretEntry) -> None:
        records = self._records("msg_secret")
        components = [p.encode() for p in (entry.chat, entry.sender, entry.msg_id)]
        old = cast("tuple[bytes, int, int] | None", records.get(view, components))
        records.put(view, components, merge_secret(old, entry), old)

    async def put_msg_secrets(self, entries: Sequence[MsgSecretEntry]) -> int:
        return await self._write_each(
            entries, "entries", validate.msg_secret, self._write_secret, cap="msg_secrets"
        )

    async def get_msg_secret_with_ts(
        self, chat: str, sender: str, msg_id: str
    ) -> tuple[bytes, int] | None:
        records = self._records("msg_secret")
        k = records.key(validate.message_key(chat, sender, msg_id))
        found = await self._load(_DB, k, records.decode)
        return None if found is None else (found[0], found[2])

    async def find_msg_secret(self, chat: str, sender: str, msg_id: str) -> MsgSecretHit | None:
        raw_chat, raw_sender, raw_id = validate.message_key(chat, sender, msg_id)
        records = self._records("msg_secret")
        mappings = self._records("lid_mapping")

        def read(view: ReadView) -> MsgSecretHit | None:
            chats = [raw_chat.decode(), alias(view, mappings, raw_chat.decode())]
            senders = [raw_sender.decode(), alias(view, mappings, raw_sender.decode())]
            for at in chats:
                for by in senders:
                    if at is None or by is None:
                        continue
                    # An alias may not fit a key where the name asked for does: no record.
                    if len(records.key((at, by, raw_id))) + 8 > validate.MAX_KEY:
                        continue
                    found = records.get(view, (at, by, raw_id))
                    if found is not None:
                        return MsgSecretHit(found[0], at, by, found[2])
            return None

        return await self._read(read)

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        until = validate.i64(cutoff, "cutoff")
        # expires_at <= cutoff: below the next time (or every entry).
        below = None if until == validate.I64_MAX else until + 1
        records = self._records("msg_secret")
        return await self._write(lambda view: records.expire(view, "msg_secret_by_expiry", below))
