"""The storages under the domain layer.

A storage keeps ordered byte keys and values in named sub-databases and runs operations on
them: `Storage` says what the domain layer (`lmdbstore.domains`) needs from one, and
`lmdbstore.storage.view` what an operation reads and writes through. The domain layer
builds every key and value (`lmdbstore.keys`, `lmdbstore.codec`), so one domain method
serves every storage:

- `lmdbstore.storage.lmdb`: an LMDB environment (inline reads, group commit, checkpoints);
- `lmdbstore.storage.memory`: ordered maps in this process (MemoryStore);
- `lmdbstore.storage.sql`: the view of the SQL storages (a table per record kind);
- `lmdbstore.storage.sqlite`: the tables of a SQLite database (SqliteStore);
- `lmdbstore.storage.transaction`: a transaction over either, exact on its read set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from lmdbstore.devices import Devices
    from lmdbstore.storage.gate import WriteGate
    from lmdbstore.storage.view import ReadView, WriteView

R = TypeVar("R")

INLINE_RECORDS = 32
"""Most records a write may touch to run on the caller's thread where a storage allows it
(a point write or a small batch takes microseconds); anything larger, or unbounded
(expiry, scans, imports), goes to a worker thread so that the event loop never waits for
it."""


class Storage(Protocol):
    """What the domain layer runs its operations on (one per database, shared by every
    handle of it)."""

    devices: Devices
    """The open handles and current life of each device (`lmdbstore.devices`)."""

    @property
    def gate(self) -> WriteGate:
        """Passed by every `write`; held by `run_transaction`'s last attempt
        (`lmdbstore.storage.gate`)."""
        ...

    inline_reads: bool
    """Whether `get` and `read` may run on the event loop's thread (microseconds, never
    a wait). When false, the domain layer calls them from worker threads only."""

    @property
    def scans_resume(self) -> bool:
        """Whether a scan resumed past a key costs what it reads from there: false for an
        encrypted store (`lmdbstore.storage.sealed`), whose scan of a kind sorts all of
        it, so that a transaction reads such a scan in one go rather than in chunks."""
        ...

    def get(self, db: str, key: bytes) -> bytes | None:
        """The value at ``key``, read on the caller's thread; ``None`` when absent."""
        ...

    def read(self, fn: Callable[[ReadView], R]) -> R:
        """``fn`` of a consistent view, on the caller's thread (a short read)."""
        ...

    def read_long(self, fn: Callable[[ReadView], R]) -> R:
        """``fn`` of a consistent view, on the caller's thread: a scan whose length the
        caller does not bound (a worker thread's, or a blocking caller's)."""
        ...

    async def read_in_thread(self, fn: Callable[[ReadView], R]) -> R:
        """`read_long`, off the event loop where the storage has threads."""
        ...

    async def write(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        """``op`` applied atomically and durably (at the storage's level); returns what it
        returned after its commit. ``records``: at most how many records it touches
        (``None``: unbounded), which lets a storage commit small writes inline. An ``op``
        that raises changes nothing."""
        ...

    def write_blocking(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        """`write` for a caller that blocks its thread until the commit (`lmdbstore.sync`):
        the same outcome, with no event loop involved."""
        ...

    def own_problems(self) -> list[str]:
        """What ``verify`` adds for this storage (its own integrity checks); blocking."""
        ...
