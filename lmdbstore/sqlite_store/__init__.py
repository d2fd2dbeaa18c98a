"""The SQLite backend: `SqliteStore`."""

from lmdbstore.sqlite_store.store import SqliteStore

__all__ = ["SqliteStore"]
