"""The blocking API: every store method as a plain call, for synchronous code.

Signal protocol libraries (python-axolotl's store interfaces, ports of libsignal) and GUI
threads call their store synchronously. ``lmdbstore.sync`` gives them the async API's
stores, methods, data types, errors and transactions with no event loop::

    from lmdbstore import sync

    with sync.open("lmdb:///var/lib/bot/state") as store:
        store.put_session("5511@s.whatsapp.net", b"...")
        with store.transaction() as tx:
            tx.remove_prekey(7)

Each call runs the async API's own domain method (`lmdbstore.sync.driver`), so both APIs
behave the same, and one store may be open through both in one process at once. Calls
are safe from many threads: reads run on the caller's thread; writes commit on it when
nobody else is writing, and writes of several threads meeting at once group-commit on
LmdbStore's writer thread. Do not call it from an event loop's thread.
"""

from lmdbstore.sync.store import (
    SyncLmdbStore,
    SyncMemoryStore,
    SyncSqliteStore,
    SyncStore,
    SyncTransaction,
    open,
)

__all__ = [
    "SyncLmdbStore",
    "SyncMemoryStore",
    "SyncPostgresStore",
    "SyncSqliteStore",
    "SyncStore",
    "SyncTransaction",
    "open",
]


def __getattr__(name: str) -> object:
    # SyncPostgresStore imports psycopg, an optional dependency: only when asked for.
    if name == "SyncPostgresStore":
        from lmdbstore.sync.store import postgres_classes

        return postgres_classes()[1]
    raise AttributeError(f"module 'lmdbstore.sync' has no attribute {name!r}")
