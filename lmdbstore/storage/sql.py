"""The relational storages' view: the tables of a SQL database behind the byte view.

The domain layer speaks in the keys and values LMDB stores (`lmdbstore.keys`,
`lmdbstore.codec`); this view maps each record kind to its table, a row per record with
``device_id`` first and a typed column per key component and field (`TABLES`, from the
declarations of `lmdbstore.kinds`). So the database stays what a careful SQL user would
build, and the database does what it does best:

- a secondary index of the byte layout (``*_BY_*`` tags) is never written; its entries are
  read from the record table through a real SQL index (`Table.index`);
- ``delete_indexed`` (expiry) is one ``DELETE … WHERE time < ?``, a take one
  ``DELETE … RETURNING``;
- ``put_many`` is one ``executemany`` per table, and ``put_records`` (the batches of
  sessions, identities, sender keys and pre-keys) writes its rows as they are, without
  the byte form in between.

SQLite (`lmdbstore.storage.sqlite`) and PostgreSQL (`lmdbstore.storage.postgres`) share
it: the statements are standard SQL with ``?`` parameters but for the few a `Dialect`
gives (the upserts).
"""

from __future__ import annotations

import contextlib
import functools
import struct
from itertools import groupby, takewhile
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import anyio
import cbor2

from lmdbstore import codec, keys
from lmdbstore.errors import DatabaseError, SerializationError, StoreError
from lmdbstore.keys import (
    FORMAT_KEY,
    FORMAT_VERSION,
    LAST_DEVICE_KEY,
    prefix_end,
)
from lmdbstore.kinds import ALL, BY_NAME, Kind, is_tally
from lmdbstore.storage import ddl
from lmdbstore.storage.sealed import SealedWriteView
from lmdbstore.storage.sealed_rows import SealedRows
from lmdbstore.storage.view import PrefixScans

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from lmdbstore.devices import Devices
    from lmdbstore.storage.gate import WriteGate
    from lmdbstore.storage.sealed import Cipher
    from lmdbstore.storage.view import ReadView, WriteView


R = TypeVar("R")
Row = tuple[Any, ...]


class Cursor(Protocol):
    """What the view reads of a statement's cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the view needs of a connection: `sqlite3.Connection`'s ``execute`` and
    ``executemany``, with ``?`` parameters."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


_U32 = struct.Struct(">I")


class Table:
    """How one kind of `lmdbstore.kinds` lives in SQL: its ``name`` (an index kind's is its
    record's table), ``key``: (SQL expression, component type) per key component (a
    column of the kind's name unless ``exprs`` says otherwise), ``values``: the value
    columns, the kind's fields; ``where``: the rows an index covers. An index kind is read
    from the table of its record through a real SQL index; its entries are never written."""

    __slots__ = ("index", "key", "kind", "name", "record_key", "values", "where")

    def __init__(
        self, kind: Kind, name: str, exprs: dict[str, str] | None = None, where: str = ""
    ) -> None:
        self.kind = kind
        self.name = name
        # Column names are quoted: one of them (``user``) is a reserved word of PostgreSQL's.
        self.key = tuple(
            ((exprs or {}).get(column, ddl.quoted(column)), type_) for column, type_ in kind.key
        )
        self.values = tuple(ddl.quoted(name) for name in kind.value_names)
        self.index = kind.is_index
        self.where = where
        # The primary key after device_id of the rows (of the record kind, for an index).
        self.record_key = BY_NAME[kind.index_of].key if kind.index_of else kind.key

    def to_row(self, raw: bytes) -> Row:
        """The value columns of the stored bytes ``raw``."""
        return cast("Callable[[bytes], Row]", self.kind.fields)(raw)

    def from_row(self, row: Row) -> bytes:
        """The stored bytes of the value columns ``row``."""
        return cast("Callable[..., bytes]", self.kind.dump)(*row)


TABLES: dict[tuple[str, int], Table] = {
    (kind.db, kind.tag): Table(kind, record.table, **ddl.INDEX_SQL.get(kind.name, {}))
    for kind in ALL
    if (record := BY_NAME[kind.index_of or kind.name]).table
}
"""Every kind with a table (`lmdbstore.kinds.Kind.table`: all but the cache's)."""

_S, _U, _I = "s", "u32", "i64"
_TAGS: dict[str, list[int]] = {}
for _db, _tag in sorted(TABLES):
    _TAGS.setdefault(_db, []).append(_tag)
_RECORD_TABLES = {db: sorted({t.name for (d, _), t in TABLES.items() if d == db}) for db in _TAGS}


class _Prefix:
    """A key (or a key prefix) parsed into its device, kind and components."""

    __slots__ = ("complete", "device", "partial", "table", "tag", "values")

    def __init__(self, db: str, raw: bytes) -> None:
        self.device: int = _U32.unpack_from(raw, 0)[0]
        self.tag = raw[4]
        found = TABLES.get((db, self.tag))
        if found is None:
            raise KeyError((db, self.tag))
        self.table = found
        # ``partial``: a string component without its terminator.
        self.values, self.partial = found.kind.parse_prefix(raw)
        self.complete = self.partial is None and len(self.values) == len(found.key)

    @classmethod
    def of(cls, table: Table, raw: bytes, values: list[Any]) -> _Prefix:
        """The whole key ``raw`` of ``table``, already parsed into ``values``."""
        key = cls.__new__(cls)
        key.device = _U32.unpack_from(raw, 0)[0]
        key.tag = raw[4]
        key.table = table
        key.values = values
        key.partial = None
        key.complete = True
        return key


class Dialect:
    """The statements whose SQL differs between the databases: the upserts. Every other
    statement of `SqlView` is standard SQL, with ``?`` parameters (a connection of a
    database that takes another style translates them, `lmdbstore.storage.postgres`)."""

    __slots__ = ("meta", "name", "tally")

    def __init__(self, name: str, *, meta: str, tally: str) -> None:
        self.name = name
        self.meta = meta
        """Set the ``meta`` row named by the first parameter to the second."""
        self.tally = tally
        """Add the last parameter to a tally, never below 0 (device, db, tag, delta, delta)."""

    def upsert(self, table: Table) -> str:
        """The statement that writes one record of ``table``, replacing any."""
        columns = ["device_id", *(expr for expr, _ in table.key), *table.values]
        marks = ", ".join("?" * len(columns))
        if self.name == "sqlite":
            return f"REPLACE INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
        keys_ = ", ".join(["device_id", *(expr for expr, _ in table.key)])
        update = ", ".join(f"{column} = EXCLUDED.{column}" for column in table.values)
        change = f"DO UPDATE SET {update}" if update else "DO NOTHING"
        return (
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
            f" ON CONFLICT ({keys_}) {change}"
        )


SQLITE = Dialect(
    "sqlite",
    meta="REPLACE INTO meta VALUES (?, ?)",
    tally="INSERT INTO tallies VALUES (?, ?, ?, max(0, ?))"
    " ON CONFLICT DO UPDATE SET count = max(0, count + ?)",
)

POSTGRES = Dialect(
    "postgres",
    meta="INSERT INTO meta VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
    tally="INSERT INTO tallies VALUES (?, ?, ?, GREATEST(0, ?))"
    " ON CONFLICT (device_id, db, tag) DO UPDATE SET count = GREATEST(0, tallies.count + ?)",
)


class SqlView(PrefixScans):
    """A `lmdbstore.storage.view.WriteView` of one transaction of a SQL database (see the
    module docstring). A writable view reads a scan whole before yielding it, so that the caller
    may write while it walks; a read-only one walks its cursor."""

    __slots__ = ("_conn", "_dialect", "_writable")

    def __init__(self, conn: Connection, dialect: Dialect, *, writable: bool = False) -> None:
        self._conn = conn
        self._dialect = dialect
        self._writable = writable

    # -- point access ----------------------------------------------------------------------

    def _where(self, key: _Prefix) -> tuple[str, list[Any]]:
        return _where_sql(key.table, len(key.values)), [key.device, *key.values]

    def get(self, db: str, key: bytes) -> bytes | None:
        return read_key(self._conn, db, key)

    def put(self, db: str, key: bytes, value: bytes) -> None:
        self.put_many(db, [(key, value)])

    def put_many(self, db: str, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Set every key: one ``executemany`` per table."""
        rows: list[tuple[Table, Row]] = []
        for key, value in items:
            if db == "meta":
                self._put_meta(key, value)
                continue
            if keys.is_write_seq(db, key):
                continue  # derived from the mappings themselves (max(seq))
            parsed = _exact(db, key)
            if parsed is None:
                raise DatabaseError(f"the database keeps no {db} record at {key.hex()}")
            if parsed.table.index:
                continue  # a real SQL index keeps it
            rows.append(
                (parsed.table, (parsed.device, *parsed.values, *parsed.table.to_row(value)))
            )
        for table, group in groupby(rows, key=lambda pair: pair[0]):
            self._conn.executemany(_upsert_sql(self._dialect, table), [row for _, row in group])

    def put_records(self, kind: Kind, device: int, rows: Sequence[Sequence[Any]]) -> None:
        """One ``executemany`` of the rows as they are (strings given as UTF-8 bytes are
        decoded for their TEXT columns)."""
        table = TABLES[kind.db, kind.tag]
        texts = [i for i, (_, type_) in enumerate(kind.key) if type_ == _S]
        if texts:
            rows = [
                [v.decode() if i in texts and isinstance(v, bytes) else v for i, v in enumerate(r)]
                for r in rows
            ]
        self._conn.executemany(_upsert_sql(self._dialect, table), [(device, *row) for row in rows])

    def tally(self, db: str, key: bytes, delta: int) -> None:
        """One upsert of the ``tallies`` row (a count never goes below 0)."""
        if not is_tally(db, key):
            raise DatabaseError(f"the database keeps no {db} tally at {key.hex()}")
        self._conn.execute(self._dialect.tally, (key_device(key), db, key[5], delta, delta))

    def _put_meta(self, key: bytes, value: bytes) -> None:
        if key != LAST_DEVICE_KEY:
            raise DatabaseError(f"the database keeps no meta record {key!r}")
        self._conn.execute(self._dialect.meta, (ddl.LAST_DEVICE_NAME, keys.read_u32(value, 0)[0]))

    def delete(self, db: str, key: bytes) -> bool:
        if is_tally(db, key):
            sql = "DELETE FROM tallies WHERE device_id = ? AND db = ? AND tag = ? AND count > 0"
            return self._conn.execute(sql, (key_device(key), db, key[5])).rowcount > 0
        parsed = _exact(db, key)
        if parsed is None or parsed.table.index:
            return parsed is not None  # an index entry goes with its record
        where, params = self._where(parsed)
        return (
            self._conn.execute(f"DELETE FROM {parsed.table.name} WHERE {where}", params).rowcount
            > 0
        )

    def pop(self, db: str, key: bytes) -> bytes | None:
        """One ``DELETE … RETURNING`` for a record."""
        parsed = _exact(db, key)
        if parsed is None or parsed.table.index:
            value = self.get(db, key)
            if value is not None:
                self.delete(db, key)
            return value
        table = parsed.table
        where, params = self._where(parsed)
        found = self._conn.execute(
            f"DELETE FROM {table.name} WHERE {where} RETURNING {', '.join(table.values)}", params
        ).fetchone()
        return None if found is None else _record(table, found)

    # -- scans -----------------------------------------------------------------------------

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        if db not in _TAGS:
            return iter(())
        found: Iterator[tuple[bytes, bytes]]
        if (
            len(start) >= 5
            and start[4] in _TAGS[db]
            and stop is not None
            and stop <= (start[:4] + bytes((start[4] + 1,)))
        ):
            found = self._scan_kind(db, start, stop, reverse)
        else:
            walk = self._scan_devices(db, start)
            found = walk if stop is None else takewhile(lambda i: i[0] < stop, walk)
            if reverse:
                found = iter(list(found)[::-1])
        # A writer may change the rows it walks: it gets them read in full first.
        return iter(list(found)) if self._writable else found

    def _scan_kind(
        self, db: str, start: bytes, stop: bytes, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        """The items of one kind with ``start <= key < stop``: the components ``start`` fixes
        become equalities (a leading string prefix, a range), and a first component of
        ``stop`` past them an upper bound, so the database walks only what is asked. When the
        range does not keep those components fixed (``start`` a whole key, or a key and a
        NUL: the least key after it, as a transaction's scan continues), the ones it keeps
        are equalities and the rest a row-value bound."""
        after = False
        try:
            low = _Prefix(db, start)
        except (ValueError, struct.error, UnicodeDecodeError):
            low = _Prefix(db, start[:5])
            if start.endswith(b"\x00"):
                with contextlib.suppress(ValueError, struct.error, UnicodeDecodeError):
                    whole = _Prefix(db, start[:-1])
                    if whole.complete:
                        low, after = whole, True
        table = low.table
        kept = _kept(low, stop)
        if kept < len(low.values):
            return self._scan_from(low, kept, after, start, stop, reverse)
        where, params = self._where(low)
        at = len(low.values)
        if low.partial is not None and stop == prefix_end(start) and at < len(table.key):
            expr = table.key[at][0]
            where += f" AND {expr} >= ? AND {expr} < ?"
            params += [low.partial, _successor(low.partial)]
        elif low.partial is None and at < len(table.key):
            bound = _stop_value(db, stop, low)
            if bound is not None:
                value, strict = bound
                where += f" AND {table.key[at][0]} {'<' if strict else '<='} ?"
                params.append(value)
        rows = self._rows(low.device, low.tag, table, where, params, reverse)
        return (item for item in rows if start <= item[0] < stop)

    def _scan_from(
        self, low: _Prefix, kept: int, after: bool, start: bytes, stop: bytes, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        """`_scan_kind` of a range that keeps only ``kept`` of ``low``'s components: those
        are equalities, the others a row-value lower bound (strict when ``after``), and the
        components of ``stop`` past the kept ones an upper bound."""
        table = low.table
        where = _where_sql(table, kept)
        params: list[Any] = [low.device, *low.values[:kept]]
        bounds = [(low.values[kept:], ">" if after else ">=")]
        with contextlib.suppress(KeyError, ValueError, struct.error, UnicodeDecodeError):
            high = _Prefix(low.table.kind.db, stop)
            same = (high.device, high.tag) == (low.device, low.tag)
            if same and high.values[:kept] == low.values[:kept] and len(high.values) > kept:
                bounds.append((high.values[kept:], "<="))
        for values, operator in bounds:
            columns = ", ".join(expr for expr, _ in table.key[kept : kept + len(values)])
            where += f" AND ({columns}) {operator} ({', '.join('?' * len(values))})"
            params += values
        rows = self._rows(low.device, low.tag, table, where, params, reverse)
        return (item for item in rows if start <= item[0] < stop)

    def _rows(
        self, device: int, tag: int, table: Table, where: str, params: list[Any], reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        exprs = [expr for expr, _ in table.key]
        columns = ", ".join([*exprs, *table.values]) or "1"
        direction = " DESC" if reverse else ""
        order = ", ".join(e + direction for e in exprs) or "device_id"
        rows = self._conn.execute(
            f"SELECT {columns} FROM {table.name} WHERE {where} ORDER BY {order}", params
        )
        head = _U32.pack(device) + bytes((tag,)) if 0 <= device <= 0xFFFFFFFF else b""
        width = len(exprs)
        for row in rows:
            try:
                if not head:
                    raise ValueError("a device id outside u32")
                if any(isinstance(v, str) and "\x00" in v for v in row[:width]):
                    raise ValueError("a NUL in a string")
                key = head + table.kind.components(row[:width])
            except (ValueError, struct.error) as exc:  # a hostile file, below the library
                raise SerializationError(
                    table.kind.db,
                    head,
                    f"a {table.name} row of device {device} whose key {row[:width]!r:.80}"
                    f" does not fit the byte layout ({exc})",
                ) from None
            yield key, b"" if table.index else _record(table, row[width:])

    def _scan_devices(self, db: str, start: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every item at or after ``start`` across devices and kinds, in key order (for the
        walks over a whole database: verify, device allocation; a transaction's walk goes
        on from where its last chunk ended). The kind of ``start`` is walked from
        ``start``, through `_scan_kind`; the kinds before it are skipped."""
        device: int | None = _U32.unpack(start[:4].ljust(4, b"\x00"))[0]
        while device is not None:
            for tag in _TAGS[db]:
                if device <= 0xFFFFFFFF:  # else a hostile row, past start: _rows reports it
                    head = _U32.pack(device) + bytes((tag,))
                    end = _U32.pack(device) + bytes((tag + 1,))
                    if end <= start:
                        continue  # a kind wholly before start
                    if start > head:  # start is inside this kind
                        yield from self._scan_kind(db, start, end, False)
                        continue
                table = TABLES[db, tag]
                where = "device_id = ?" + (f" AND {table.where}" if table.where else "")
                yield from self._rows(device, tag, table, where, [device], False)
            device = self.first_device(db, device + 1)

    def first_device(self, db: str, at: int) -> int | None:
        """The least device id from ``at`` on that holds a record in ``db``: one index seek
        per table (``device_id`` leads every primary key)."""
        if db not in _RECORD_TABLES or at > 0xFFFFFFFF:
            return None
        union = " UNION ALL ".join(
            f"SELECT min(device_id) FROM {name} WHERE device_id >= ?" for name in _RECORD_TABLES[db]
        )
        found = [r[0] for r in self._conn.execute(union, [at] * len(_RECORD_TABLES[db]))]
        return min((d for d in found if d is not None), default=None)

    def last(self, db: str, key_prefix: bytes) -> tuple[bytes, bytes] | None:
        return next(self.scan(db, key_prefix, prefix_end(key_prefix), reverse=True), None)

    def delete_indexed(
        self,
        db: str,
        index_start: bytes,
        stop: bytes | None,
        record_start: bytes,
        skip: int,
        limit: int | None = None,
    ) -> int:
        """Expiry: one ``DELETE`` of the records whose index time is below ``stop``'s (the
        first ``limit`` in the index's order, if given)."""
        table = TABLES.get((db, index_start[4])) if len(index_start) == 5 else None
        if table is None or not table.index or table.key[0][1] != _I:
            return super().delete_indexed(db, index_start, stop, record_start, skip, limit)
        where, params = "device_id = ?", [key_device(index_start)]
        if table.where:
            where += f" AND {table.where}"
        if stop is not None and stop != prefix_end(index_start):
            where += f" AND {table.key[0][0]} < ?"
            params.append(keys.read_i64(stop, len(index_start))[0])
        if limit is not None:
            # The first rows in the index's order (a size cap's eviction), by their keys.
            record = ", ".join(["device_id", *(ddl.quoted(n) for n, _ in table.record_key)])
            order = ", ".join(expr for expr, _ in table.key)
            where = (
                f"({record}) IN (SELECT {record} FROM {table.name} WHERE {where}"
                f" ORDER BY {order} LIMIT ?)"
            )
            params.append(limit)
        return self._conn.execute(f"DELETE FROM {table.name} WHERE {where}", params).rowcount


def _exact(db: str, raw: bytes) -> _Prefix | None:
    """``raw`` parsed, when it is the whole key of a record kind (else ``None``)."""
    if len(raw) < 5:
        return None
    table = TABLES.get((db, raw[4]))
    if table is not None:
        fast = _fast_parser(table)
        if fast is not None:
            values = fast(raw)
            return None if values is None else _Prefix.of(table, raw, values)
    try:
        key = _Prefix(db, raw)
    except (KeyError, ValueError, struct.error, UnicodeDecodeError):
        return None
    return key if key.complete else None


def read_key(conn: Connection, db: str, key: bytes) -> bytes | None:
    """The value at ``key`` in the byte layout, read from its table by one statement."""
    if db == "meta":
        return _read_meta(conn, key)
    if keys.is_write_seq(db, key):
        row = conn.execute(
            "SELECT max(seq) FROM lid_mappings WHERE device_id = ?", (key_device(key),)
        ).fetchone()
        return None if row[0] is None else keys.i64(row[0])
    if is_tally(db, key):
        row = conn.execute(
            "SELECT count FROM tallies WHERE device_id = ? AND db = ? AND tag = ?",
            (key_device(key), db, key[5]),
        ).fetchone()
        if row is None or not row[0]:
            return None
        if not 0 < row[0] <= 0x7FFFFFFFFFFFFFFF:
            raise SerializationError(db, key, f"the tally {row[0]} is negative")
        return keys.u64(row[0])
    parsed = _exact(db, key)
    if parsed is None:
        return None
    table = parsed.table
    found = conn.execute(_select_sql(table), [parsed.device, *parsed.values]).fetchone()
    if found is None:
        return None
    return b"" if table.index else _record(table, found)


def _read_meta(conn: Connection, key: bytes) -> bytes | None:
    if key == FORMAT_KEY:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        current = row is not None and row[0] == FORMAT_VERSION
        return cbor2.dumps(FORMAT_VERSION if current else None)
    if key == LAST_DEVICE_KEY:
        row = conn.execute(
            "SELECT value FROM meta WHERE name = ?", (ddl.LAST_DEVICE_NAME,)
        ).fetchone()
        if row is None:
            return None
        if not 0 <= row[0] <= 0xFFFFFFFF:
            raise SerializationError("meta", key, f"the device counter {row[0]} is not a u32")
        return keys.u32(row[0])
    return None


@functools.cache
def _where_sql(table: Table, fixed: int) -> str:
    """The condition on ``device_id`` and the first ``fixed`` key components of ``table``
    (and on the rows an index covers)."""
    clauses = ["device_id = ?"] + [f"{expr} = ?" for expr, _ in table.key[:fixed]]
    if table.where:
        clauses.append(table.where)
    return " AND ".join(clauses)


@functools.cache
def _upsert_sql(dialect: Dialect, table: Table) -> str:
    return dialect.upsert(table)


@functools.cache
def _select_sql(table: Table) -> str:
    """The point read of one record (or index entry) of ``table``."""
    columns = ", ".join(table.values) or "1"
    return f"SELECT {columns} FROM {table.name} WHERE {_where_sql(table, len(table.key))}"


@functools.cache
def _fast_parser(table: Table) -> Callable[[bytes], list[Any] | None] | None:
    """A parser of the whole keys of ``table`` for the shapes batches write most (u32 ids
    only, or one name), or ``None``: `_Prefix` parses the others."""
    kinds = [kind for _, kind in table.key]
    if kinds and all(kind == _U for kind in kinds):
        layout = struct.Struct(">" + "I" * len(kinds))
        size = 5 + layout.size

        def numbers(raw: bytes) -> list[Any] | None:
            return list(layout.unpack_from(raw, 5)) if len(raw) == size else None

        return numbers
    if kinds == [_S]:

        def name(raw: bytes) -> list[Any] | None:
            if raw.find(b"\x00", 5) != len(raw) - 1:
                return None
            try:
                return [raw[5:-1].decode()]
            except UnicodeDecodeError:
                return None

        return name
    return None


def key_device(key: bytes) -> int:
    """The device a key belongs to."""
    device: int = _U32.unpack_from(key, 0)[0]
    return device


def _record(table: Table, row: Row) -> bytes:
    """The record of a row; a row that is not one (a hostile file: a column of the wrong
    type) gives a value that reads and ``verify`` refuse with the reason."""
    try:
        return table.from_row(row)
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError, cbor2.CBORError) as exc:
        return codec.unreadable(f"{type(exc).__name__}: {exc}")
    except StoreError as exc:
        return codec.unreadable(str(exc))


def _successor(prefix: str) -> str:
    """The least string above every string starting with ``prefix`` (in UTF-8 order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _kept(low: _Prefix, stop: bytes) -> int:
    """How many of ``low``'s components every key from ``low`` up to ``stop`` has too."""
    kind = low.table.kind
    head = _U32.pack(low.device) + bytes((low.tag,))
    kept = len(low.values)
    while kept:
        end = prefix_end(head + kind.components(low.values[:kept]))
        if end is None or stop <= end:
            break
        kept -= 1
    return kept


def _stop_value(db: str, stop: bytes, low: _Prefix) -> tuple[Any, bool] | None:
    """The component of ``stop`` right after the ones ``low`` fixes, when ``stop`` shares
    them: the upper bound of a range scan, strict when ``stop`` ends with it (else a key
    with that component may still come before ``stop``); ``None``: no such bound."""
    try:
        high = _Prefix(db, stop)
    except (KeyError, ValueError, struct.error, UnicodeDecodeError):
        return None
    at = len(low.values)
    same = (high.device, high.tag, high.values[:at]) == (low.device, low.tag, low.values)
    if not same or len(high.values) <= at:
        return None
    return high.values[at], len(high.values) == at + 1 and high.partial is None


def key_range_problems(conn: Connection) -> list[str]:
    """Rows whose key columns the byte layout cannot hold: a device id or a u32 id out of
    range (scans never meet a negative device id, so verify asks the database)."""
    found = []
    for table in {t.name: t for t in TABLES.values() if not t.index}.values():
        ranged = ["device_id"] + [expr for expr, kind in table.key if kind == _U]
        where = " OR ".join(f"{column} NOT BETWEEN 0 AND 4294967295" for column in ranged)
        count = conn.execute(f"SELECT count(*) FROM {table.name} WHERE {where}").fetchone()[0]
        if count:
            found.append(f"{table.name}: {count} rows with a device or id outside u32")
    return found


class Database(Protocol):
    """What `SqlStorage` needs of a database's engine (`lmdbstore.sqlite_store.database`,
    `lmdbstore.postgres_store.database`): its handles' bookkeeping and its transactions,
    each given a connection."""

    devices: Devices
    gate: WriteGate
    cipher: Cipher | None
    """The keys of an encrypted store (`lmdbstore.storage.sealed`); ``None``: plain."""

    def check_open(self) -> None: ...

    def query_sync(self, fn: Callable[[Connection], R]) -> R: ...

    def read_sync(self, fn: Callable[[Connection], R]) -> R: ...

    async def write(self, fn: Callable[[Connection], R]) -> R: ...

    def write_blocking(self, fn: Callable[[Connection], R]) -> R: ...


class SqlStorage:
    """A `lmdbstore.storage.Storage` on a SQL `Database`, through `SqlView` in the
    subclass's `dialect`. Reads run on worker threads (``inline_reads`` is false): a point
    read is one statement, on one snapshot by itself; any other read one read transaction;
    a write one write transaction of the engine's."""

    inline_reads = False
    dialect: Dialect

    def __init__(self, database: Database) -> None:
        self.database = database
        self.devices = database.devices

    @property
    def gate(self) -> WriteGate:
        return self.database.gate

    @property
    def scans_resume(self) -> bool:
        return self.database.cipher is None

    def view(self, conn: Connection, *, writable: bool = False) -> Any:
        """The view of one transaction on ``conn``: of an encrypted store, through its
        ``sealed`` table (`lmdbstore.storage.sealed_rows`)."""
        view = SqlView(conn, self.dialect, writable=writable)
        cipher = self.database.cipher
        if cipher is None:
            return view
        return SealedWriteView(SealedRows(conn, view, writable=writable), cipher)

    def get(self, db: str, key: bytes) -> bytes | None:
        """A point read on this thread (a worker thread: reads never run on the loop): one
        statement, so no transaction around it (and, of a plain store, no view)."""
        self.database.check_open()
        if self.database.cipher is not None:
            found: bytes | None = self.database.query_sync(
                lambda conn: self.view(conn).get(db, key)
            )
            return found
        return self.database.query_sync(lambda conn: read_key(conn, db, key))

    def read(self, fn: Callable[[ReadView], R]) -> R:
        """``fn`` in one read transaction, on this thread."""
        self.database.check_open()
        return self.database.read_sync(lambda conn: fn(self.view(conn)))

    def read_long(self, fn: Callable[[ReadView], R]) -> R:
        return self.read(fn)

    async def read_in_thread(self, fn: Callable[[ReadView], R]) -> R:
        return await anyio.to_thread.run_sync(self.read, fn)

    def _writing(self, op: Callable[[WriteView], R]) -> Callable[[Connection], R]:
        return lambda conn: op(self.view(conn, writable=True))

    async def write(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        """``op`` in one write transaction of the engine (``records`` does not matter:
        these storages always commit on a worker thread)."""
        gate = self.gate  # see lmdbstore.storage.gate: run_transaction's last attempt
        if not gate.try_enter():
            await gate.enter()
        try:
            return await self.database.write(self._writing(op))
        finally:
            gate.leave()

    def write_blocking(self, op: Callable[[WriteView], R], records: int | None = None) -> R:
        write = self._writing(op)
        database = self.database
        return self.gate.passing(lambda: database.write_blocking(write))
