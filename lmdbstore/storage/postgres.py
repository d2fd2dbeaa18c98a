"""The PostgreSQL storage: the tables of `lmdbstore.storage.ddl` (PostgreSQL's types) in the
store's schema, behind the byte view (`lmdbstore.storage.sql`), on `PgDatabase`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore.keys import FORMAT_VERSION
from lmdbstore.postgres_store.database import EXTRA_TABLE
from lmdbstore.storage.sql import POSTGRES, SqlStorage, key_range_problems

if TYPE_CHECKING:
    from lmdbstore.postgres_store.database import PgDatabase, QmarkConnection


class PostgresStorage(SqlStorage):
    """A `lmdbstore.storage.Storage` on a `PgDatabase` (see the module docstring)."""

    dialect = POSTGRES

    def __init__(self, database: PgDatabase) -> None:
        super().__init__(database)
        self.database: PgDatabase = database

    @property
    def path(self) -> str:
        return self.database.path

    def own_problems(self) -> list[str]:
        """Drift from the schema lmdbstore creates (a table, column, type, nullability,
        collation or index added, dropped or changed), rows whose key columns the byte
        layout cannot hold, and the schema version (blocking)."""
        self.database.check_open()
        want = self.database.expected_shape()
        return self.database.read_sync(lambda conn: self._problems(conn, want))

    def _problems(self, conn: QmarkConnection, want: dict[tuple[str, str], str]) -> list[str]:
        have = self.database.shape(conn)
        have.pop(("table", EXTRA_TABLE), None)  # a snapshot's extra content
        found = [f"schema: unexpected {kind} {name!r}" for kind, name in sorted(have.keys() - want)]
        found += [f"schema: missing {kind} {name!r}" for kind, name in sorted(want.keys() - have)]
        found += [
            f"schema: {kind} {name!r} is not as lmdbstore creates it"
            for (kind, name), shape in sorted(have.items())
            if (kind, name) in want and want[kind, name] != shape
        ]
        if any(" table " in problem for problem in found):
            return found  # the checks below read the tables
        found += key_range_problems(conn)
        version = conn.execute("SELECT version FROM schema_version").fetchone()
        if version is None or version[0] != FORMAT_VERSION:
            found.append(f"schema version is {version!r}, not {FORMAT_VERSION}")
        return found
