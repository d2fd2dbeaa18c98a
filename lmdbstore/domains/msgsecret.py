"""MsgSecretStore: sub-database ``msgsecret``.

Secrets are keyed ``chat · sender · msg_id``; those that expire (``expires_at != 0``) are also
indexed by ``expires_at · chat · sender · msg_id``, so expiry walks only what it deletes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import codec, keys, validate
from lmdbstore.derived import merge_secret
from lmdbstore.domains.handle import DomainHandle
from lmdbstore.keys import MsgSecretTag

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lmdbstore.storage.view import WriteView
    from lmdbstore.types import MsgSecretEntry

_DB = "msgsecret"


class MsgSecretDomain(DomainHandle):
    """The `MsgSecretStore` methods of every store."""

    def _secret_key(self, parts: Sequence[bytes]) -> bytes:
        return self._key(MsgSecretTag.SECRET, *(keys.s(p) for p in parts))

    def _expiry_key(self, key: bytes, expires_at: int) -> bytes:
        head = len(keys.prefix(self._dev, MsgSecretTag.SECRET))
        return self._key(MsgSecretTag.SECRET_BY_EXPIRY, keys.i64(expires_at), key[head:])

    def _write_secret(self, view: WriteView, entry: MsgSecretEntry) -> None:
        k = self._secret_key([p.encode() for p in (entry.chat, entry.sender, entry.msg_id)])
        raw = view.get(_DB, k)
        old = None if raw is None else codec.load(_DB, k, raw, codec.read_msg_secret)
        if old is not None and old[1]:
            view.delete(_DB, self._expiry_key(k, old[1]))
        secret, expires_at, message_ts = merge_secret(old, entry)
        view.put(_DB, k, codec.dump_msg_secret(secret, expires_at, message_ts))
        if expires_at:
            view.put(_DB, self._expiry_key(k, expires_at), b"")

    async def put_msg_secrets(self, entries: Sequence[MsgSecretEntry]) -> int:
        return await self._write_each(entries, "entries", validate.msg_secret, self._write_secret)

    async def get_msg_secret_with_ts(
        self, chat: str, sender: str, msg_id: str
    ) -> tuple[bytes, int] | None:
        k = self._secret_key(validate.message_key(chat, sender, msg_id))
        found = await self._load(_DB, k, codec.read_msg_secret)
        return None if found is None else (found[0], found[2])

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        until = validate.i64(cutoff, "cutoff")
        start = keys.prefix(self._dev, MsgSecretTag.SECRET_BY_EXPIRY)
        # expires_at <= cutoff: stop just past the cutoff (or at the end of the index).
        stop = keys.prefix_end(start) if until == validate.I64_MAX else start + keys.i64(until + 1)
        secret_start = keys.prefix(self._dev, MsgSecretTag.SECRET)
        return await self._write(
            lambda view: view.delete_indexed(_DB, start, stop, secret_start, 8)
        )
