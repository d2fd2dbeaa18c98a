"""The state every LMDB domain mixin shares: the engine, the device, and the plumbing from
async methods to inline reads and queued writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from lmdbstore import codec, keys
from lmdbstore.derived import DeviceHandle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from lmdbstore.engine import Engine, ReadView, WriteView

R = TypeVar("R")


class LmdbHandle(DeviceHandle):
    """A view of one device's records in a shared :class:`~lmdbstore.engine.Engine`."""

    def __init__(self, engine: Engine, device_id: int) -> None:
        super().__init__(engine.open_devices, device_id)
        self._engine = engine
        self._dev = keys.device_prefix(device_id)

    def _engine_open(self) -> Engine:
        self._check_open()
        return self._engine

    def _key(self, tag: int, *parts: bytes) -> bytes:
        return keys.make(self._dev, tag, *parts)

    def _read(self, fn: Callable[[ReadView], R]) -> R:
        return self._engine_open().read(fn)

    async def _read_in_thread(self, fn: Callable[[ReadView], R]) -> R:
        return await self._engine_open().read_in_thread(fn)

    async def _write(self, op: Callable[[WriteView], R]) -> R:
        return await self._engine_open().write(op)

    def _load(self, db: str, key: bytes, decoder: Callable[[dict[str, object]], R]) -> R | None:
        """The decoded record at ``key``, or ``None``."""
        raw = self._engine_open().get(db, key)
        return None if raw is None else codec.load(db, key, raw, decoder)

    async def _put(self, db: str, key: bytes, value: bytes) -> None:
        await self._write(lambda view: view.put(db, key, value))

    async def _put_many(self, db: str, items: Iterable[tuple[bytes, bytes]]) -> None:
        pairs = list(items)

        def op(view: WriteView) -> None:
            for key, value in pairs:
                view.put(db, key, value)

        await self._write(op)

    async def _delete(self, db: str, *keys_: bytes) -> None:
        def op(view: WriteView) -> None:
            for key in keys_:
                view.delete(db, key)

        await self._write(op)
