"""The SQLite storage: the tables of `lmdbstore.sqlite_store.schema` behind the byte view
(`lmdbstore.storage.sql`).

Reads run on worker threads (``inline_reads`` is false): a careful async SQLite user hops to
a thread per call, and so does this baseline. Writes go one at a time through the writer
connection (`Database`).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, TypeVar

from lmdbstore.sqlite_store import schema
from lmdbstore.storage.sql import SQLITE, SqlStorage, key_range_problems

if TYPE_CHECKING:
    from lmdbstore.sqlite_store.database import Database

R = TypeVar("R")


class SqliteStorage(SqlStorage):
    """A `lmdbstore.storage.Storage` on a SQLite `Database` (see the module docstring)."""

    dialect = SQLITE

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.database: Database = database

    @property
    def path(self) -> str:
        return self.database.path

    def own_problems(self) -> list[str]:
        """Drift from the schema lmdbstore creates, SQLite's ``integrity_check`` and
        ``foreign_key_check``, and the schema version (blocking)."""
        self.database.check_open()
        return self.database.read_sync(_integrity_problems)


def _expected_schema() -> dict[tuple[str, str], str | None]:
    """Every table, index and trigger this version creates, with its SQL."""
    model = sqlite3.connect(":memory:")
    try:
        model.execute(schema.VERSION_TABLE)
        for step in schema.MIGRATIONS:
            for statement in step:
                model.execute(statement)
        return _schema_of(model)
    finally:
        model.close()


def _schema_of(conn: sqlite3.Connection) -> dict[tuple[str, str], str | None]:
    """Each object's SQL, its spacing normalised: a database created by a version whose
    schema was written by hand (its statements spread over lines) holds the same tables
    as one whose statements `lmdbstore.sqlite_store.schema` generates."""
    return {(kind, name): _spacing(sql) for kind, name, sql in conn.execute(_SCHEMA)}


def _spacing(sql: str | None) -> str | None:
    if sql is None:
        return None
    return " ".join(sql.split()).replace("( ", "(").replace(" )", ")")


_SCHEMA = "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_stat%'"


def _schema_problems(conn: sqlite3.Connection) -> list[str]:
    """Drift from the schema lmdbstore creates: a table, index, view or trigger added,
    dropped or changed (a table recreated without STRICT; a trigger that deletes rows)."""
    want, have = _expected_schema(), _schema_of(conn)
    found = [f"schema: unexpected {kind} {name!r}" for kind, name in sorted(have.keys() - want)]
    found += [f"schema: missing {kind} {name!r}" for kind, name in sorted(want.keys() - have)]
    found += [
        f"schema: {kind} {name!r} is not as lmdbstore creates it"
        for (kind, name), sql in sorted(have.items())
        if (kind, name) in want and want[kind, name] != sql
    ]
    return found


def _integrity_problems(conn: sqlite3.Connection) -> list[str]:
    found = (
        _schema_problems(conn)
        + key_range_problems(conn)
        + [
            f"integrity: {row[0]}"
            for row in conn.execute("PRAGMA integrity_check")
            if row[0] != "ok"
        ]
    )
    found += [f"foreign key: {row}" for row in conn.execute("PRAGMA foreign_key_check")]
    version = conn.execute("SELECT version FROM schema_version").fetchone()
    if version is None or version[0] != len(schema.MIGRATIONS):
        found.append(f"schema version is {version!r}, not {len(schema.MIGRATIONS)}")
    return found
