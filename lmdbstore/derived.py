"""What every backend derives the same way from its own primitives: the single-item forms
of batch methods, and ``async with`` from ``close``. Written once so that no backend can
drift from the others."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from lmdbstore.errors import StoreClosedError
from lmdbstore.types import MsgSecretEntry, TcTokenEntry

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Sequence
    from types import TracebackType


class DeviceHandle:
    """What a handle of every backend is: bound to one device, open until closed. Counts
    itself in ``open_devices`` of the state its handles share, so that ``create()`` never
    hands out the id of an open handle."""

    def __init__(self, open_devices: Counter[int], device_id: int) -> None:
        self._device_id = device_id
        self._closed = False
        open_devices[device_id] += 1

    @property
    def device_id(self) -> int:
        """The device whose records this handle reads and writes."""
        return self._device_id

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("this store handle is closed")


def merge_secret(old: tuple[bytes, int, int] | None, new: MsgSecretEntry) -> tuple[bytes, int, int]:
    """The stored (secret, expires_at, message_ts) after writing ``new`` over ``old``: the
    new secret, the later expiry (0 = never, which wins), the greater message time."""
    if old is None:
        return new.secret, new.expires_at, new.message_ts
    _, old_expiry, old_ts = old
    expiry = 0 if 0 in (old_expiry, new.expires_at) else max(old_expiry, new.expires_at)
    return new.secret, expiry, max(old_ts, new.message_ts)


def tc_token_expired(entry: TcTokenEntry, cutoff: int, sender_cutoff: int) -> bool:
    """Whether ``delete_expired_tc_tokens`` deletes ``entry``: the token is empty or older
    than ``cutoff``, and no sender time is at or after ``sender_cutoff``."""
    token_old = not entry.token or entry.token_timestamp < cutoff
    return token_old and (entry.sender_timestamp is None or entry.sender_timestamp < sender_cutoff)


def touched_tc_token(old: TcTokenEntry | None, at: int) -> TcTokenEntry | None:
    """The entry after ``touch_tc_token_sender_timestamp(jid, at)``, or ``None`` when it
    stays as it is: the sender time only advances; no row gets an empty placeholder."""
    if old is None:
        return TcTokenEntry(b"", at, at)
    if old.sender_timestamp is None or at > old.sender_timestamp:
        return TcTokenEntry(old.token, old.token_timestamp, at)
    return None


def received_tc_token(old: TcTokenEntry | None, token: bytes, at: int) -> TcTokenEntry | None:
    """The entry after ``store_received_tc_token(jid, token, at)``, or ``None`` when the
    stored token is kept (it is newer and not empty); the sender time is kept."""
    if old is None:
        return TcTokenEntry(token, at)
    if not old.token or at >= old.token_timestamp:
        return TcTokenEntry(token, at, old.sender_timestamp)
    return None


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
