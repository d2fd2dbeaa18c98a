"""The state every SQLite domain mixin shares: the database, the device, and helpers that
run statements on the reader pool or the writer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from lmdbstore import validate
from lmdbstore.derived import DeviceHandle

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterable, Sequence

    from lmdbstore.sqlite_store.database import Database

R = TypeVar("R")

IN_CHUNK = 500
"""Values bound per ``IN (...)`` list: far below SQLite's variable limit."""


def text(value: object, what: str) -> str:
    """A key string checked like every backend checks it, as str for a TEXT column."""
    return validate.text(value, what).decode()


def select_in(
    conn: sqlite3.Connection, sql: str, params: Sequence[object], values: Sequence[object]
) -> list[Any]:
    """Rows of ``sql`` (which ends in ``IN``) for every value, in chunks of IN_CHUNK."""
    rows: list[Any] = []
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows.extend(conn.execute(f"{sql} ({marks})", (*params, *chunk)))
    return rows


class SqliteHandle(DeviceHandle):
    """A view of one device's rows in a shared `Database`."""

    def __init__(self, database: Database, device_id: int) -> None:
        super().__init__(database.open_devices, device_id)
        self._database = database

    def _db(self) -> Database:
        self._check_open()
        return self._database

    async def _read(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        return await self._db().read(fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        return await self._db().write(fn)

    async def _one(self, sql: str, *params: object) -> Any:
        """The first row of a query for this device (``device_id`` is the first parameter),
        or ``None``."""
        device = self._device_id
        return await self._read(lambda conn: conn.execute(sql, (device, *params)).fetchone())

    async def _all(self, sql: str, *params: object) -> list[Any]:
        """Every row of a query for this device (``device_id`` is the first parameter)."""
        device = self._device_id
        return await self._read(lambda conn: conn.execute(sql, (device, *params)).fetchall())

    async def _execute(self, sql: str, *params: object) -> int:
        """Run one write statement for this device; the number of rows it changed."""
        device = self._device_id
        return await self._write(lambda conn: conn.execute(sql, (device, *params)).rowcount)

    async def _execute_many(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Run one write statement per row (each prefixed with ``device_id``), in one
        transaction."""
        device = self._device_id
        bound = [(device, *row) for row in rows]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(sql, bound)

        await self._write(run)
