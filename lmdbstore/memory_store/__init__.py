"""The in-memory backend."""

from lmdbstore.memory_store.store import MemoryStore

__all__ = ["MemoryStore"]
