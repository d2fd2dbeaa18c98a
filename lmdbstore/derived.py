"""What every backend derives the same way from its own primitives: the single-item forms
of batch methods, and ``async with`` from ``close``. Written once so that no backend can
drift from the others."""

from __future__ import annotations

import contextlib
import random
from typing import TYPE_CHECKING, Generic, Self, TypeVar

import anyio

from lmdbstore import clock, files, validate
from lmdbstore.errors import (
    DatabaseError,
    DeviceDeletedError,
    StoreClosedError,
    TransactionConflictError,
    ValidationError,
)
from lmdbstore.types import MsgSecretEntry, TcTokenEntry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from contextlib import AbstractAsyncContextManager, AbstractContextManager
    from types import TracebackType

    from lmdbstore.devices import Devices

S = TypeVar("S", bound="DerivedMethods")
R = TypeVar("R")


class DeviceHandle:
    """What a handle of every backend is: bound to one device, open until closed, and
    refusing every call once its device was deleted. Counts itself in the `Devices` its
    database's handles share (`lmdbstore.devices`)."""

    _is_transaction = False
    """Whether this handle is a transaction's (set on the handle `Transaction` yields)."""

    def __init__(self, devices: Devices, device_id: int) -> None:
        self._device_id = device_id
        self._closed = False
        self._devices = devices
        self._life = devices.bind(device_id)

    def _release_device(self) -> None:
        """At close: this handle no longer counts."""
        self._devices.release(self._device_id)

    @property
    def device_id(self) -> int:
        """The device whose records this handle reads and writes."""
        return self._device_id

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("this store handle is closed")
        if self._life.deleted:
            raise DeviceDeletedError(f"device {self._device_id} was deleted")


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


def _write_new_file(path: str, content: bytes) -> None:
    try:
        files.create_file(path, content)
    except OSError as exc:
        raise DatabaseError(f"cannot write {path!r}: {exc}") from None


class Transaction(Generic[S]):
    """``async with store.transaction() as tx``: ``tx`` has every method of the store; its
    reads see its own writes; leaving the block commits everything atomically, and an
    exception inside discards everything. A commit whose reads were changed meanwhile by
    another writer raises `TransactionConflictError` and writes
    nothing. Each backend buffers the writes and applies them in one backend transaction
    at the end (see its ``transaction`` module), so nothing is locked while the block
    awaits. ``tx`` is closed after the block."""

    def __init__(self, store: S) -> None:
        self._store = store
        self._handle: S | None = None

    async def __aenter__(self) -> S:
        self._handle = self._store._start_transaction()
        self._handle._is_transaction = True
        return self._handle

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with handle._shielded(exc_type is None):
                await handle._end_transaction(commit=exc_type is None)


class DerivedMethods:
    """Mixed into every store class after its domain mixins."""

    _closed: bool
    _is_transaction: bool

    def _start_transaction(self) -> Self:
        """A handle whose reads and writes belong to a new transaction."""
        raise NotImplementedError

    async def _commit_transaction(self) -> None:
        """On a transaction handle: check for conflicts and apply the writes atomically."""
        raise NotImplementedError

    def _exclusive(self) -> AbstractAsyncContextManager[object]:
        """A block in which no other write of this process commits (the storage's write
        gate), for `run_transaction`'s last attempt."""
        raise NotImplementedError

    @staticmethod
    async def _off_loop(fn: Callable[..., R], *args: object) -> R:
        """``fn(*args)`` where blocking work runs (`lmdbstore.domains.handle`)."""
        raise NotImplementedError

    # The calls by which the async API waits; the blocking API (lmdbstore.sync) replaces
    # them with their blocking forms.

    @staticmethod
    async def _pause(seconds: float) -> None:
        await anyio.sleep(seconds)

    @staticmethod
    def _shielded(shield: bool) -> AbstractContextManager[object]:
        """A block that cancellation does not interrupt when ``shield``."""
        return anyio.CancelScope(shield=shield)

    async def _end_transaction(self, commit: bool) -> None:
        """On a transaction handle: commit (or discard) and close it."""
        try:
            if commit and not self._closed:
                await self._commit_transaction()
        finally:
            await self.close()

    @property
    def path(self) -> str:
        """The store's directory (LMDB) or database file (SQLite). MemoryStore has none
        and raises ``NotImplementedError``."""
        raise NotImplementedError

    async def copy_to(self, target: str) -> None:
        """Copy the whole database, hot and consistent, to the new path ``target`` (what
        `snapshot_db` and ``lmdbstore snapshot`` use). MemoryStore raises
        ``NotImplementedError``."""
        raise NotImplementedError

    async def snapshot_db(self, name: str, extra_content: bytes | None = None) -> None:
        """Copy the whole database, hot and consistent, to ``<path>.snapshot-<unix
        seconds>-<name>`` (see `copy_to`), which the same backend opens;
        ``extra_content`` goes to that path plus ``.extra``. A snapshot of the same name in
        the same second is a DatabaseError, never an overwrite."""
        safe = validate.snapshot_name(name)
        extra = validate.optional(extra_content, "extra_content", validate.blob)
        if self._closed:
            raise StoreClosedError("this store handle is closed")
        target = f"{self.path}.snapshot-{clock.now()}-{safe}"
        await self.copy_to(target)
        if extra is not None:
            await self._off_loop(_write_new_file, f"{target}.extra", extra)

    def transaction(self) -> AbstractAsyncContextManager[Self]:
        """A new transaction on this store's device (see `Transaction`); on a
        transaction's handle, that transaction itself (nested blocks join the outermost,
        which alone commits)."""
        if self._closed:
            raise StoreClosedError("this store handle is closed")
        if self._is_transaction:
            return contextlib.nullcontext(self)
        return Transaction(self)

    async def run_transaction(self, fn: Callable[[Self], Awaitable[R]], retries: int = 3) -> R:
        """``await fn(tx)`` in a transaction, run again (after a short random pause that
        grows with each attempt) when its commit conflicts, at most ``retries`` more times;
        the last conflict is raised. The last retry runs exclusively: no other write of this
        process commits meanwhile (`lmdbstore.storage.gate`), so it conflicts only with
        another process's writes; ``fn`` must then not wait for another task's write."""
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValidationError(f"retries must be an int >= 0, not {retries!r}")
        if not callable(fn):
            raise ValidationError(f"fn must be an async function of the transaction, not {fn!r}")
        if self._is_transaction:
            if self._closed:
                raise StoreClosedError("this store handle is closed")
            return await fn(self)  # joins this transaction: its outermost block retries
        attempt = 0
        while True:
            try:
                if attempt and attempt == retries:
                    async with self._exclusive(), self.transaction() as tx:
                        return await fn(tx)
                async with self.transaction() as tx:
                    return await fn(tx)
            except TransactionConflictError:
                if attempt >= retries:
                    raise
            attempt += 1
            await self._pause(random.uniform(0, 0.0005 * 2 ** min(attempt, 8)))

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
        """Store one message secret, with the conflict rules of `put_msg_secrets`."""
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
