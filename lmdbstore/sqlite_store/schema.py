"""The SQLite schema of SqliteStore, and its forward migrations.

A table per record kind, ``device_id`` first in every primary key (one database, many
accounts, no row shared). Tables are ``STRICT`` (SQLite refuses a value of the wrong type, so
a row always reads back with the declared types) and, where the key is composite,
``WITHOUT ROWID`` (the row lives in the primary-key b-tree: one lookup per point read).
Indexes exist for the queries that are not primary-key lookups: the phone lookup of LID
mappings, each expiry column, and sender-key rows by device JID.

Values that are structures rather than scalars (a device list, a hash state's index-value
map, the device record) are CBOR, in the same form the LMDB backend stores.

Each table is generated from its record kind's declaration (`create_table`,
`lmdbstore.kinds`): a column per key component and field, of the SQL type of its declared
type, ``NOT NULL`` unless the field may be ``None``; the SQL index of each index kind. So a
new record kind gets its table without a line of SQL here: it declares the format that
added it (``since``), and the migration to that version creates the table.

``schema_version`` holds one row. `MIGRATIONS` ``[n]`` takes a database from version
``n`` to ``n + 1``; opening runs the missing steps in one transaction. A version above
``len(MIGRATIONS)`` was written by a newer lmdbstore and is refused (MigrationError).
"""

from __future__ import annotations

from typing import Any

from lmdbstore.keys import FORMAT_VERSION
from lmdbstore.kinds import ALL, BY_NAME, INDEXES_OF, Kind

_KEYED = "STRICT, WITHOUT ROWID"

_SQL_TYPES = {
    **{"s": "TEXT", "u32": "INTEGER", "i64": "INTEGER", "b": "BLOB"},  # key components
    **{"bytes": "BLOB", "int": "INTEGER", "str": "TEXT", "bool": "INTEGER"},  # value fields
}

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


def _index(record: Kind, index: Kind) -> str:
    """The SQL index that serves ``index``'s scans: ``device_id``, then the index's leading
    components up to the trailing ones that only repeat the record's key (the primary key
    follows in every entry of an index of a ``WITHOUT ROWID`` table); at least one."""
    own = {name for name, _ in record.key}
    names = [name for name, _ in index.key]
    while len(names) > 1 and names[-1] in own:
        names.pop()
    sql = INDEX_SQL.get(index.name, {})
    columns = ", ".join(["device_id", *(sql.get("exprs", {}).get(n, n) for n in names)])
    name = record.table + index.name[index.name.index("_by_") :]
    where = f" WHERE {sql['where']}" if "where" in sql else ""
    return f"CREATE INDEX {name} ON {record.table} ({columns}){where}"


def create_table(kind: Kind) -> tuple[str, ...]:
    """The statements that create the table of the record kind ``kind`` (a column per key
    component and field, typed by their declarations, ``device_id`` first in the primary
    key) and the SQL index of each of its index kinds."""
    columns = ["device_id INTEGER NOT NULL" if kind.key else "device_id INTEGER PRIMARY KEY"]
    columns += [f"{name} {_SQL_TYPES[type_]} NOT NULL" for name, type_ in kind.key]
    for name, type_ in kind.values:
        null = "" if type_.endswith("?") else " NOT NULL"
        columns.append(f"{name} {_SQL_TYPES[type_.rstrip('?')]}{null}")
    if kind.key:
        columns.append(f"PRIMARY KEY (device_id, {', '.join(name for name, _ in kind.key)})")
    table = f"CREATE TABLE {kind.table} ({', '.join(columns)}) {_KEYED if kind.key else 'STRICT'}"
    return (table, *(_index(kind, index) for index in INDEXES_OF[kind.name]))


def created_in(version: int) -> tuple[str, ...]:
    """The tables (and their indexes) of the record kinds that format ``version`` added
    (`lmdbstore.kinds.Kind.since`)."""
    return tuple(
        statement
        for kind in ALL
        if kind.table and kind.since == version
        for statement in create_table(kind)
    )


VERSION_1: tuple[str, ...] = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) " + _KEYED,
    *created_in(1),
    # The next write sequence of LID mappings is max(seq) + 1.
    "CREATE INDEX lid_mappings_by_seq ON lid_mappings (device_id, seq)",
)

_SENT, _SECRETS = BY_NAME["sent_message_by_time"].tag, BY_NAME["msg_secret_by_expiry"].tag

CHANGES: dict[int, tuple[str, ...]] = {
    # Each device's tally of its sent messages and of its expiring message secrets
    # (``db`` and ``tag``: the counted index, `lmdbstore.keys.TALLY`), counted from the rows
    # once, then kept by every write: what a size cap reads.
    3: (
        """CREATE TABLE tallies (device_id INTEGER NOT NULL, db TEXT NOT NULL,
            tag INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (device_id, db, tag)) """
        + _KEYED,
        f"""INSERT INTO tallies SELECT device_id, 'protocol', {_SENT}, count(*)
            FROM sent_messages GROUP BY device_id""",
        f"""INSERT INTO tallies SELECT device_id, 'msgsecret', {_SECRETS}, count(*)
            FROM msg_secrets WHERE expires_at != 0 GROUP BY device_id""",
    ),
}
"""What a version changes besides creating the tables of its new kinds."""

VERSION_TABLE = "CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT"
"""The table of the one row that says which version the schema is at."""

MIGRATIONS: list[tuple[str, ...]] = [
    VERSION_1,
    *(
        (*created_in(version), *CHANGES.get(version, ()))
        for version in range(2, FORMAT_VERSION + 1)
    ),
]
"""``MIGRATIONS[n]``: the statements that take the schema from version ``n`` to ``n + 1``.
The schema's versions are the formats of `lmdbstore.keys.FORMAT_VERSION`: version 2 added
the tables of contacts, chat settings and the event buffer, version 3 the tallies."""

LAST_DEVICE_NAME = "last_device_id"
"""The ``meta`` row of the last device id ``create()`` handed out."""
