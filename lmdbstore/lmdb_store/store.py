"""LmdbStore: the default backend, one LMDB environment per path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, cast

import anyio

from lmdbstore import engine, validate
from lmdbstore.derived import DerivedMethods
from lmdbstore.errors import ValidationError
from lmdbstore.lmdb_store.appsync import LmdbAppSyncStore
from lmdbstore.lmdb_store.device import LmdbDeviceStore
from lmdbstore.lmdb_store.msgsecret import LmdbMsgSecretStore
from lmdbstore.lmdb_store.protocol import LmdbProtocolStore
from lmdbstore.lmdb_store.signal import LmdbSignalStore
from lmdbstore.lmdb_store.transaction import TransactionEngine
from lmdbstore.protocols import Backend, with_docs_of

if TYPE_CHECKING:
    import os


@with_docs_of(Backend)
class LmdbStore(
    LmdbSignalStore,
    LmdbAppSyncStore,
    LmdbProtocolStore,
    LmdbMsgSecretStore,
    LmdbDeviceStore,
    DerivedMethods,
):
    """The store on LMDB. Open with `open`; close with `close` or ``async with``.

    Every handle of one path in a process shares one environment and one writer thread;
    `for_device` gives a handle bound to another device of the same database.
    """

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        device_id: int = 1,
        durability: engine.Durability = "normal",
        map_size: int | None = None,
        max_size: int | None = None,
    ) -> Self:
        """Open (creating if needed) the store in directory ``path`` for ``device_id``.

        ``durability``: ``"full"`` (fsync every commit), ``"normal"`` (default: a power loss
        may undo the last commit, never corrupts), ``"process"`` (survives a process crash;
        flushed to disk every second). ``map_size`` is the initial map (default 64 MiB, or
        ``max_size`` when smaller); it doubles by itself when full, up to ``max_size`` (no
        bound when ``None``).
        """
        directory = validate.store_path(path, "lmdb://", "directory")
        validate.u32(device_id, "device_id")
        if durability not in ("full", "normal", "process"):
            raise ValidationError(f"durability must be full, normal or process: {durability!r}")
        if map_size is None:
            map_size = engine.DEFAULT_MAP_SIZE
            if max_size is not None:
                map_size = min(map_size, validate.u64(max_size, "max_size"))
        size = validate.u64(map_size, "map_size")
        if size < 1 << 16:
            raise ValidationError(f"map_size must be at least 65536 bytes, not {size}")
        if max_size is not None and validate.u64(max_size, "max_size") < size:
            raise ValidationError(f"max_size {max_size} is smaller than map_size {size}")
        shared = await anyio.to_thread.run_sync(
            engine.acquire, directory, durability, size, max_size
        )
        return cls(shared, device_id)

    def for_device(self, device_id: int) -> Self:
        """A handle on the same database bound to ``device_id``; close it like the store.
        The environment closes with its last handle."""
        validate.u32(device_id, "device_id")
        shared = self._engine_open()
        engine.add_reference(shared)
        return type(self)(shared, device_id)

    @property
    def path(self) -> str:
        """The directory of the environment."""
        return self._engine.path

    @property
    def format_version(self) -> int:
        """The on-disk format of the environment (an open store always has this library's:
        another one is refused at open)."""
        return engine.FORMAT_VERSION

    async def close(self) -> None:
        """Close this handle (idempotent). Queued writes finish first. On a transaction
        handle: discard the transaction."""
        if self._closed:
            return
        self._closed = True
        self._engine.open_devices[self._device_id] -= 1
        if not isinstance(self._engine, TransactionEngine):
            await anyio.to_thread.run_sync(engine.release, self._engine)

    def _start_transaction(self) -> Self:
        buffered = TransactionEngine(self._engine_open())
        return type(self)(cast("engine.Engine", buffered), self._device_id)

    async def _commit_transaction(self) -> None:
        await cast("TransactionEngine", self._engine).commit()
