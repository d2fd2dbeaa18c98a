"""The LMDB backend."""

from lmdbstore.lmdb_store.store import LmdbStore

__all__ = ["LmdbStore"]
