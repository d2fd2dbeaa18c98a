"""The byte view of an encrypted SQL store: its items in the ``sealed`` table.

An encrypted store's keys are hashes and its values sealed (`lmdbstore.storage.sealed`),
so the tables of its record kinds, whose columns are the names and fields themselves, stay
empty: `SealedRows` keeps every item in the byte layout, as LMDB would, in one table keyed
by sub-database and key (``sealed``, `lmdbstore.storage.ddl`). What is not sealed keeps
its own table through `lmdbstore.storage.sql.SqlView`: ``meta`` (the device counter) and
the tallies, which a scan across kinds merges in key order. The LID write sequence, which
a plain store derives from its mappings' column, is an item of its own here.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from lmdbstore.keys import TALLY
from lmdbstore.kinds import TABLES_OF, is_tally
from lmdbstore.storage.sealed import ENCRYPTION_KEY, cipher_for
from lmdbstore.storage.view import PrefixScans

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from lmdbstore.encryption import EncryptionKey
    from lmdbstore.storage.sealed import Cipher
    from lmdbstore.storage.sql import Connection, SqlView


def sql_cipher(
    conn: Connection, where: str, key: EncryptionKey | None, *, writable: bool
) -> Cipher | None:
    """The cipher of an SQL store (`lmdbstore.storage.sealed.cipher_for`), inside the
    transaction of its open: its encryption record is the ``meta`` row of its ``sealed``
    table; a new store opened with a key gets one (``writable``; a read-only open of a
    plain store with a key is refused). SQLite and PostgreSQL alike."""
    row = conn.execute(
        "SELECT v FROM sealed WHERE db = 'meta' AND k = ?", (ENCRYPTION_KEY,)
    ).fetchone()
    record = None if row is None else bytes(row[0])

    def holds_records() -> bool:
        tables = [*TABLES_OF.values(), ("sealed",)]
        return any(
            conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None
            for names in tables
            for table in names
        )

    cipher = cipher_for(where, record, key, holds_records if writable else None)
    if cipher is not None and record is None:
        conn.execute("INSERT INTO sealed VALUES ('meta', ?, ?)", (ENCRYPTION_KEY, cipher.record))
    return cipher


def _own_table(db: str, key: bytes) -> bool:
    """Whether ``key`` of ``db`` keeps its own table (`SqlView`) rather than ``sealed``."""
    return db == "meta" or is_tally(db, key)


def _without_tallies(start: bytes, stop: bytes | None) -> bool:
    """Whether no tally key (``device · TALLY · tag``) can fall in ``[start, stop)``: the
    range stays within one device's kinds below the tallies' tag."""
    if len(start) < 5 or stop is None or len(stop) < 5 or stop[:4] != start[:4]:
        return False
    first_tally = start[:4] + bytes((TALLY,))
    return stop[:5] < first_tally or stop == first_tally


class SealedRows(PrefixScans):
    """A `lmdbstore.storage.view.WriteView` of one transaction of an encrypted SQL store
    (see the module docstring), under `lmdbstore.storage.sealed.SealedWriteView`."""

    __slots__ = ("_conn", "_plain", "_table", "_writable")

    def __init__(
        self, conn: Connection, plain: SqlView, *, writable: bool = False, table: str = "sealed"
    ) -> None:
        self._conn = conn
        self._plain = plain
        self._writable = writable
        self._table = table  # another: a conversion's staging table (lmdbstore rekey)

    def get(self, db: str, key: bytes) -> bytes | None:
        if _own_table(db, key):
            return self._plain.get(db, key)
        row = self._conn.execute(f"SELECT v FROM {self._table} WHERE db = ? AND k = ?", (db, key))
        found = row.fetchone()
        return None if found is None else bytes(found[0])

    def put(self, db: str, key: bytes, value: bytes) -> None:
        self.put_many(db, [(key, value)])

    def put_many(self, db: str, items: Iterable[tuple[bytes, bytes]]) -> None:
        rows = []
        for key, value in items:
            if _own_table(db, key):
                self._plain.put(db, key, value)
            else:
                rows.append((db, key, value))
        if rows:
            # Standard SQL: SQLite (3.24 on) and PostgreSQL alike.
            self._conn.executemany(
                f"INSERT INTO {self._table} VALUES (?, ?, ?)"
                " ON CONFLICT (db, k) DO UPDATE SET v = excluded.v",
                rows,
            )

    def tally(self, db: str, key: bytes, delta: int) -> None:
        self._plain.tally(db, key, delta)

    def delete(self, db: str, key: bytes) -> bool:
        if _own_table(db, key):
            return self._plain.delete(db, key)
        deleted = self._conn.execute(f"DELETE FROM {self._table} WHERE db = ? AND k = ?", (db, key))
        return deleted.rowcount > 0

    def pop(self, db: str, key: bytes) -> bytes | None:
        if _own_table(db, key):
            return self._plain.pop(db, key)
        found = self._conn.execute(
            f"DELETE FROM {self._table} WHERE db = ? AND k = ? RETURNING v", (db, key)
        ).fetchone()
        return None if found is None else bytes(found[0])

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        if db == "meta":
            return self._plain.scan(db, start, stop, reverse=reverse)
        order = "DESC" if reverse else "ASC"
        bound = "" if stop is None else " AND k < ?"
        params = (db, start) if stop is None else (db, start, stop)
        cursor = self._conn.execute(
            f"SELECT k, v FROM {self._table} WHERE db = ? AND k >= ?{bound} ORDER BY k {order}",
            params,
        )
        rows: Iterator[tuple[bytes, bytes]] = ((bytes(k), bytes(v)) for k, v in cursor)
        if self._writable:  # the caller may write while it walks: read whole first
            rows = iter(list(rows))
        if _without_tallies(start, stop):
            return rows
        own = self._plain.scan(db, start, stop, reverse=reverse)
        return heapq.merge(rows, own, key=lambda item: item[0], reverse=reverse)
