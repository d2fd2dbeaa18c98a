"""The SQLite schema of SqliteStore, and its forward migrations: generated from the record
kinds' declarations (`lmdbstore.storage.ddl`), in SQLite's types.

Tables are ``STRICT`` (SQLite refuses a value of the wrong type, so a row always reads back
with the declared types) and, where the key is composite, ``WITHOUT ROWID`` (the row lives
in the primary-key b-tree: one lookup per point read). Values that are structures rather
than scalars (a device list, a hash state's index-value map, the device record) are CBOR,
in the same form the LMDB backend stores.

``schema_version`` holds one row. `MIGRATIONS` ``[n]`` takes a database from version
``n`` to ``n + 1``; opening runs the missing steps in one transaction. A version above
``len(MIGRATIONS)`` was written by a newer lmdbstore and is refused (MigrationError).
"""

from __future__ import annotations

from lmdbstore.storage import ddl

VERSION_TABLE = ddl.version_table(ddl.SQLITE)
"""The table of the one row that says which version the schema is at."""

MIGRATIONS: list[tuple[str, ...]] = ddl.migrations(ddl.SQLITE)
"""``MIGRATIONS[n]``: the statements that take the schema from version ``n`` to ``n + 1``."""
