"""The in-memory reference backend."""

from lmdbstore.memory_store.store import MemoryStore

__all__ = ["MemoryStore"]
