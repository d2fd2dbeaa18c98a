"""Transactions on SQLite: optimistic, logged, replayed in one transaction at commit.

A transaction handle is a `SqliteStore` whose database is a
`TransactionDatabase`. Every domain method runs unchanged on it; each read or write
it makes (a function of a connection) is appended to a log with the result it gave. A
transaction's read or write runs in a trial: an immediate transaction on the writer
connection that replays the logged writes, runs the new step and rolls back, so the step
sees the transaction's own writes and nothing is written (and no SQLite lock is held while
user code awaits). A read before any write needs no trial and uses a reader connection.

The commit replays the whole log, reads included, in one immediate transaction and checks
that every step gives the result it gave before; if one differs, another writer changed
what the transaction read, and the commit raises `TransactionConflictError` and
rolls back. Otherwise it commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from lmdbstore.errors import TransactionConflictError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

    from lmdbstore.sqlite_store.database import Database

R = TypeVar("R")
Step = tuple[bool, "Callable[[sqlite3.Connection], object]", object]


class TransactionDatabase:
    """The database of a transaction handle: reads and writes are logged (see the module
    docstring); everything else is the real database's."""

    def __init__(self, database: Database) -> None:
        self.real = database
        self.log: list[Step] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def _writes(self) -> list[Callable[[sqlite3.Connection], object]]:
        return [fn for is_write, fn, _ in self.log if is_write]

    async def _step(self, is_write: bool, fn: Callable[[sqlite3.Connection], R]) -> R:
        earlier = self._writes()
        if not earlier and not is_write:
            result = await self.real.read(fn)
        else:

            def trial(conn: sqlite3.Connection) -> R:
                for write in earlier:
                    write(conn)
                return fn(conn)

            result = await self.real.trial(trial)
        self.log.append((is_write, cast("Callable[[sqlite3.Connection], object]", fn), result))
        return result

    async def read(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        return await self._step(False, fn)

    async def write(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        return await self._step(True, fn)

    async def commit(self) -> None:
        """Replay and check every step in one transaction, then commit."""
        log = self.log

        def replay(conn: sqlite3.Connection) -> None:
            for _, fn, result in log:
                if fn(conn) != result:
                    raise TransactionConflictError(
                        "a record this transaction read changed before it committed"
                    )

        if self._writes():
            await self.real.write(replay)
        elif log:
            await self.real.read(replay)
