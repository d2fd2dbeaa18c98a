"""The PostgreSQL backend: `PostgresStore`, for fleets of bots on many hosts sharing one
database."""

from lmdbstore.postgres_store.store import PostgresStore

__all__ = ["PostgresStore"]
