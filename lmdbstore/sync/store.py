"""The store classes of the blocking API (see `lmdbstore.sync`)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, cast

from lmdbstore.domains.handle import NO_LIMITS
from lmdbstore.errors import StoreClosedError, ValidationError
from lmdbstore.opener import check_options, open_with, postgres_store
from lmdbstore.protocols import Backend, with_docs_of
from lmdbstore.sync.driver import (
    BlockingDriver,
    BlockingLmdbStore,
    BlockingMemoryStore,
    BlockingSqliteStore,
    drive,
)
from lmdbstore.sync.methods import SyncMethods

if TYPE_CHECKING:
    import os
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from types import TracebackType

    from lmdbstore.types import Limits

R = TypeVar("R")
S = TypeVar("S", bound="SyncStore")


@with_docs_of(Backend)
class SyncStore(SyncMethods):
    """A store of the blocking API: every method of the async store, as a plain call that
    returns when the async one would (a write after its commit), with the same arguments,
    results and errors. Safe to call from many threads at once; never from an event loop's
    thread (a call blocks it, and may wait for a task of that loop)."""

    _driving: ClassVar[type[BlockingDriver]]
    """The async store class that this class drives, with a `BlockingDriver` mixed in."""

    @classmethod
    def _of(cls, inner: Backend) -> Self:
        store = object.__new__(cls)
        store._inner = inner
        return store

    @classmethod
    def _open(cls, path: str | os.PathLike[str], options: dict[str, Any]) -> Self:
        opener = cast("Any", cls._driving).open
        check_options(opener, options)
        return cls._of(drive(opener(path, **options)))

    @property
    def device_id(self) -> int:
        """The device whose records this handle reads and writes."""
        return self._inner.device_id

    @property
    def closed(self) -> bool:
        """Whether this handle is closed."""
        return self._inner.closed

    @property
    def path(self) -> str:
        """The store's directory (LMDB) or database file (SQLite); MemoryStore has none and
        raises ``NotImplementedError``."""
        return cast("str", cast("Any", self._inner).path)

    @property
    def encrypted(self) -> bool:
        """Whether the store is encrypted at rest (``encryption=``; a MemoryStore never
        is)."""
        return bool(getattr(self._inner, "encrypted", False))

    def copy_to(self, target: str) -> None:
        """Copy the whole database, hot and consistent, to the new path ``target`` (see
        ``LmdbStore.copy_to`` and ``SqliteStore.copy_to``)."""
        drive(cast("Any", self._inner).copy_to(target))

    def for_device(self, device_id: int) -> Self:
        """A handle on the same database bound to ``device_id``; close it like the store."""
        return self._of(self._inner.for_device(device_id))

    def transaction(self) -> AbstractContextManager[Self]:
        """``with store.transaction() as tx:``: ``tx`` has every method of the store; its
        reads see its own writes; leaving the block commits every write at once or, on a
        conflict, raises `TransactionConflictError` and writes nothing; an exception inside
        discards them all. Nothing is locked while the block runs. On a transaction's
        handle, that transaction itself (see ``Backend.transaction``)."""
        if cast("Any", self._inner)._is_transaction:
            if self.closed:
                raise StoreClosedError("this store handle is closed")
            return contextlib.nullcontext(self)
        return SyncTransaction(self)

    def run_transaction(self, fn: Callable[[Self], R], retries: int = 3) -> R:
        """``fn(tx)`` in a `transaction`, run again after a conflict (a short random
        pause first), at most ``retries`` more times; the last attempt holds every other
        write of this process (see ``Backend.run_transaction``).

        Raises:
            TransactionConflictError: the last attempt conflicted too.
            ValidationError: ``retries`` is not an int >= 0, or ``fn`` is not callable.
        """
        if not callable(fn):
            raise ValidationError(f"fn must be a function of the transaction, not {fn!r}")

        async def attempt(tx: Backend) -> R:
            return fn(self if tx is self._inner else self._of(tx))

        return drive(self._inner.run_transaction(attempt, retries))

    def __enter__(self) -> Self:
        """``with store:`` closes the store when the block ends."""
        if self.closed:
            raise StoreClosedError("this store handle is closed")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SyncTransaction(Generic[S]):
    """What `SyncStore.transaction` returns: the async API's transaction, entered and left
    by plain calls."""

    def __init__(self, store: S) -> None:
        self._store = store
        self._block = store._inner.transaction()

    def __enter__(self) -> S:
        return self._store._of(drive(self._block.__aenter__()))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        drive(self._block.__aexit__(exc_type, exc, tb))


class SyncLmdbStore(SyncStore):
    """`LmdbStore`, blocking. Open with `open`; close with `close` or ``with``."""

    _driving = BlockingLmdbStore

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Any) -> Self:
        """Open (creating if needed) the store in directory ``path``, with the options and
        errors of ``LmdbStore.open``. A path open in this process through the async API
        shares its environment (the same options), and its writer thread."""
        return cls._open(path, options)


class SyncSqliteStore(SyncStore):
    """`SqliteStore`, blocking: reads on the caller's thread (a pooled reader connection),
    writes one at a time on the writer connection. Open with `open`."""

    _driving = BlockingSqliteStore

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Any) -> Self:
        """Open (creating if needed) the SQLite file ``path``, with the options and errors
        of ``SqliteStore.open``."""
        return cls._open(path, options)


class SyncMemoryStore(SyncStore):
    """`MemoryStore`, blocking; ``SyncMemoryStore()`` is ready to use."""

    _driving = BlockingMemoryStore

    def __init__(self, *, device_id: int = 1, limits: Limits = NO_LIMITS) -> None:
        self._inner = BlockingMemoryStore(device_id=device_id, limits=limits)


_BY_DRIVEN: dict[type, type[SyncStore]] = {
    store._driving: store for store in (SyncLmdbStore, SyncSqliteStore, SyncMemoryStore)
}


def postgres_classes() -> tuple[type[Any], type[SyncStore]]:
    """``BlockingPostgresStore`` and `SyncPostgresStore`, imported when first asked for
    (psycopg is an optional dependency: without it, the `StoreConnectionError` that says
    to install it)."""
    postgres_store()
    from lmdbstore.sync.postgres import BlockingPostgresStore, SyncPostgresStore

    _BY_DRIVEN[BlockingPostgresStore] = SyncPostgresStore
    return BlockingPostgresStore, SyncPostgresStore


def open(url: str | os.PathLike[str], **options: Any) -> SyncStore:
    """Open the store that ``url`` names, blocking: the schemes, options and errors of
    ``lmdbstore.open`` (``lmdb://``, ``sqlite://``, ``postgresql://``, ``memory://``, a
    plain path for LMDB)."""
    classes = (BlockingLmdbStore, BlockingSqliteStore, BlockingMemoryStore)
    inner = drive(open_with(classes, url, options, lambda: postgres_classes()[0]))
    return _BY_DRIVEN[type(inner)]._of(inner)
