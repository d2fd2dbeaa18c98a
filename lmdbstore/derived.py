"""What every backend derives the same way from its own primitives: the single-item forms
of batch methods, and ``async with`` from ``close``. Written once so that no backend can
drift from the others."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from lmdbstore.errors import StoreClosedError
from lmdbstore.types import MsgSecretEntry

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType


def merge_secret(old: tuple[bytes, int, int] | None, new: MsgSecretEntry) -> tuple[bytes, int, int]:
    """The stored (secret, expires_at, message_ts) after writing ``new`` over ``old``: the
    new secret, the later expiry (0 = never, which wins), the greater message time."""
    if old is None:
        return new.secret, new.expires_at, new.message_ts
    _, old_expiry, old_ts = old
    expiry = 0 if 0 in (old_expiry, new.expires_at) else max(old_expiry, new.expires_at)
    return new.secret, expiry, max(old_ts, new.message_ts)


class DerivedMethods:
    """Mixed into every store class after its domain mixins."""

    _closed: bool

    async def close(self) -> None:
        raise NotImplementedError

    async def put_msg_secrets(self, entries: Sequence[MsgSecretEntry]) -> int:
        raise NotImplementedError

    async def get_msg_secret_with_ts(
        self, chat: str, sender: str, msg_id: str
    ) -> tuple[bytes, int] | None:
        raise NotImplementedError

    async def store_pending_inbound_batch(
        self, items: Sequence[tuple[str, str, str, bytes]]
    ) -> None:
        raise NotImplementedError

    async def delete_pending_inbound_batch(self, items: Sequence[tuple[str, str, str]]) -> None:
        raise NotImplementedError

    async def put_msg_secret(
        self,
        chat: str,
        sender: str,
        msg_id: str,
        secret: bytes,
        expires_at: int = 0,
        message_ts: int = 0,
    ) -> None:
        """Store one message secret, with the conflict rules of :meth:`put_msg_secrets`."""
        entry = MsgSecretEntry(chat, sender, msg_id, secret, expires_at, message_ts)
        await self.put_msg_secrets([entry])

    async def get_msg_secret(self, chat: str, sender: str, msg_id: str) -> bytes | None:
        """The secret of a message, or ``None``."""
        found = await self.get_msg_secret_with_ts(chat, sender, msg_id)
        return None if found is None else found[0]

    async def store_pending_inbound(
        self, chat: str, sender: str, message_id: str, message: bytes
    ) -> None:
        """Buffer one inbound message."""
        await self.store_pending_inbound_batch([(chat, sender, message_id, message)])

    async def delete_pending_inbound(self, chat: str, sender: str, message_id: str) -> None:
        """Drop one buffered inbound message (no error when absent)."""
        await self.delete_pending_inbound_batch([(chat, sender, message_id)])

    @property
    def closed(self) -> bool:
        """Whether this handle is closed."""
        return self._closed

    async def __aenter__(self) -> Self:
        if self._closed:
            raise StoreClosedError("this store handle is closed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
