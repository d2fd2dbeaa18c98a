"""The SQL schema of the relational backends, generated from the record kinds' declarations.

Each record kind (`lmdbstore.kinds`) gets a table: a column per key component and field, of
the SQL type of its declared type, ``NOT NULL`` unless the field may be ``None``,
``device_id`` first in the primary key (one database, many accounts, no row shared), and the
SQL index of each of its index kinds. So a new record kind gets its table without a line of
SQL: it declares the format that added it (``since``), and the migration to that version
creates the table. SQLite (`lmdbstore.sqlite_store.schema`) and PostgreSQL
(`lmdbstore.postgres_store.schema`) differ only in the types and table options of `Types`.

The schema's versions are the formats of `lmdbstore.keys.FORMAT_VERSION`: version 2 added
the tables of contacts, chat settings and the event buffer, version 3 the tallies, version 5
the ``sealed`` table of an encrypted store (`lmdbstore.storage.sealed_rows`), empty in a
plain one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmdbstore.errors import MigrationError, StoreConnectionError
from lmdbstore.keys import FORMAT_VERSION
from lmdbstore.kinds import ALL, BY_NAME, INDEXES_OF, Kind

if TYPE_CHECKING:
    from lmdbstore.storage.sql import Connection


@dataclass(frozen=True)
class Types:
    """How one database spells the schema: the SQL type of each component and field type,
    its integer and text types, and the options of a table keyed by more than
    ``device_id`` and of one keyed by it alone."""

    types: dict[str, str]
    integer: str
    text: str
    keyed: str
    single: str
    quote: bool
    """Whether column names are quoted (PostgreSQL reserves one of ours, ``user``)."""

    def column(self, name: str) -> str:
        return quoted(name) if self.quote else name

    def table(self, name: str, columns: list[str], *, composite: bool = True) -> str:
        options = self.keyed if composite else self.single
        return f"CREATE TABLE {name} ({', '.join(columns)}) {options}".rstrip()


SQLITE = Types(
    types={
        **{"s": "TEXT", "u32": "INTEGER", "i64": "INTEGER", "b": "BLOB"},  # key components
        **{"bytes": "BLOB", "int": "INTEGER", "str": "TEXT", "bool": "INTEGER"},  # fields
    },
    integer="INTEGER",
    text="TEXT",
    # STRICT: SQLite refuses a value of the wrong type, so a row reads back with the declared
    # types. WITHOUT ROWID: the row lives in the primary-key b-tree (one lookup per read).
    keyed="STRICT, WITHOUT ROWID",
    single="STRICT",
    quote=False,
)

POSTGRES = Types(
    types={
        # Key strings compare byte for byte (UTF-8 order, the byte layout's), whatever the
        # database's collation.
        **{"s": 'TEXT COLLATE "C"', "u32": "BIGINT", "i64": "BIGINT", "b": "BYTEA"},
        **{"bytes": "BYTEA", "int": "BIGINT", "str": "TEXT", "bool": "BOOLEAN"},
    },
    integer="BIGINT",
    text="TEXT",
    keyed="",
    single="",
    quote=True,
)

_MIN_TIME = "-9223372036854775808"

INDEX_SQL: dict[str, dict[str, Any]] = {
    # Expiry's token side: an empty token always qualifies, so it sits at the minimum time.
    "tc_token_by_time": {
        "exprs": {
            "token_time": f"(CASE WHEN length(token) = 0 THEN {_MIN_TIME} ELSE token_timestamp END)"
        }
    },
    "msg_secret_by_expiry": {"where": "expires_at != 0"},
}
"""Where an index kind's SQL index is not plain columns: ``exprs``, the SQL expression of a
component; ``where``, the rows it covers (`lmdbstore.storage.sql.Table`)."""


def quoted(name: str) -> str:
    """A column name as a quoted identifier (names are declared, never data)."""
    return f'"{name}"'


def _index(record: Kind, index: Kind, types: Types) -> str:
    """The SQL index that serves ``index``'s scans: ``device_id``, then the index's leading
    components up to the trailing ones that only repeat the record's key (the primary key
    follows in every entry of the index); at least one."""
    own = {name for name, _ in record.key}
    names = [name for name, _ in index.key]
    while len(names) > 1 and names[-1] in own:
        names.pop()
    sql = INDEX_SQL.get(index.name, {})
    exprs = sql.get("exprs", {})
    columns = ", ".join(["device_id", *(exprs.get(n) or types.column(n) for n in names)])
    name = record.table + index.name[index.name.index("_by_") :]
    where = f" WHERE {sql['where']}" if "where" in sql else ""
    return f"CREATE INDEX {name} ON {record.table} ({columns}){where}"


def create_table(kind: Kind, types: Types) -> tuple[str, ...]:
    """The statements that create the table of the record kind ``kind`` and the SQL index
    of each of its index kinds (see the module docstring)."""
    integer = types.integer
    columns = [f"device_id {integer} NOT NULL" if kind.key else f"device_id {integer} PRIMARY KEY"]
    named = types.column
    columns += [f"{named(name)} {types.types[type_]} NOT NULL" for name, type_ in kind.key]
    for name, type_ in kind.values:
        null = "" if type_.endswith("?") else " NOT NULL"
        columns.append(f"{named(name)} {types.types[type_.rstrip('?')]}{null}")
    if kind.key:
        primary = ", ".join(named(name) for name, _ in kind.key)
        columns.append(f"PRIMARY KEY (device_id, {primary})")
    table = types.table(kind.table, columns, composite=bool(kind.key))
    return (table, *(_index(kind, index, types) for index in INDEXES_OF[kind.name]))


def _created_in(version: int, types: Types) -> tuple[str, ...]:
    """The tables (and their indexes) of the record kinds that format ``version`` added
    (`lmdbstore.kinds.Kind.since`)."""
    return tuple(
        statement
        for kind in ALL
        if kind.table and kind.since == version
        for statement in create_table(kind, types)
    )


def _changes(version: int, types: Types) -> tuple[str, ...]:
    """What a version changes besides creating the tables of its new kinds."""
    integer, text = types.integer, types.text
    if version == 1:
        return (
            types.table("meta", [f"name {text} PRIMARY KEY", f"value {integer} NOT NULL"]),
            # The next write sequence of LID mappings is max(seq) + 1.
            "CREATE INDEX lid_mappings_by_seq ON lid_mappings (device_id, seq)",
        )
    if version == 3:
        # Each device's tally of its sent messages and of its expiring message secrets
        # (``db`` and ``tag``: the counted index, `lmdbstore.keys.TALLY`), counted from the
        # rows once, then kept by every write: what a size cap reads.
        sent, secrets = BY_NAME["sent_message_by_time"].tag, BY_NAME["msg_secret_by_expiry"].tag
        columns = ["device_id", "db", "tag", "count"]
        typed = [f"{c} {text if c == 'db' else integer} NOT NULL" for c in columns]
        return (
            types.table("tallies", [*typed, "PRIMARY KEY (device_id, db, tag)"]),
            f"""INSERT INTO tallies SELECT device_id, 'protocol', {sent}, count(*)
                FROM sent_messages GROUP BY device_id""",
            f"""INSERT INTO tallies SELECT device_id, 'msgsecret', {secrets}, count(*)
                FROM msg_secrets WHERE expires_at != 0 GROUP BY device_id""",
        )
    if version == 5:
        # An encrypted store keeps its items here, in the byte layout, sealed (the tables of
        # its record kinds stay empty), and its encryption record under db 'meta'.
        blob = types.types["b"]
        columns = [f"db {text} NOT NULL", f"k {blob} NOT NULL", f"v {blob} NOT NULL"]
        return (types.table("sealed", [*columns, "PRIMARY KEY (db, k)"]),)
    return ()


def migrations(types: Types) -> list[tuple[str, ...]]:
    """``migrations(types)[n]``: the statements that take a database from version ``n`` to
    ``n + 1`` (version 0: empty)."""
    return [
        (*_created_in(version, types), *_changes(version, types))
        for version in range(1, FORMAT_VERSION + 1)
    ]


LAST_DEVICE_NAME = "last_device_id"
"""The ``meta`` row of the last device id ``create()`` handed out."""


def version_table(types: Types) -> str:
    """The table of the one row that says which version the schema is at."""
    return types.table("schema_version", [f"version {types.integer} NOT NULL"], composite=False)


def stored_version(conn: Connection, tables: set[str], known: int) -> int | None:
    """The schema version the database says it is at (``tables``: its tables), or ``None``
    for an empty one; `StoreConnectionError` for another program's tables,
    `MigrationError` for a version that is no version or above ``known``."""
    if "schema_version" not in tables:
        if tables:
            shown = ", ".join(sorted(tables)[:3]) + (
                f" and {len(tables) - 3} more" * (len(tables) > 3)
            )
            raise StoreConnectionError(
                f"not an lmdbstore store: it holds tables ({shown}) but no lmdbstore schema"
                " version (another program's database?)"
            )
        return None
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    version = row[0] if row is not None else None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MigrationError(f"unknown schema version {version!r}")
    if version > known:
        raise MigrationError(
            f"schema version {version} is newer than this lmdbstore "
            f"(knows up to {known}): upgrade lmdbstore"
        )
    return version


def migrate(
    conn: Connection, tables: set[str], steps: list[tuple[str, ...]], version_sql: str
) -> None:
    """Create the schema (``version_sql``: its version table), or run the missing steps of
    ``steps`` (`migrations`), inside the caller's transaction."""
    version = stored_version(conn, tables, len(steps))
    if version is None:
        conn.execute(version_sql)
        conn.execute("INSERT INTO schema_version VALUES (0)")
        version = 0
    for step in steps[version:]:
        for statement in step:
            conn.execute(statement)
    conn.execute("UPDATE schema_version SET version = ?", (len(steps),))
