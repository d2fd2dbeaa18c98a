"""Reading every record of a store, streaming, as `lmdbstore.transfer.records`.

One walk of the byte view for every storage (`lmdbstore.storage.view`), as synchronous
generators over one read transaction (LMDB) or one deferred transaction on a read-only
connection of their own (SQLite): a consistent view, and memory that does not grow with
the store. For the command line, which owns its thread; an event loop would be blocked.
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
import sys
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from lmdbstore import codec, keys
from lmdbstore.errors import DatabaseError, SerializationError
from lmdbstore.keys import LAST_DEVICE_KEY
from lmdbstore.kinds import ALL, BY_TAG
from lmdbstore.lmdb_store import LmdbStore
from lmdbstore.sqlite_store import SqliteStore
from lmdbstore.storage.ddl import LAST_DEVICE_NAME
from lmdbstore.storage.sql import TABLES as SQL_TABLES
from lmdbstore.storage.sql import SqlStorage

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from lmdbstore.kinds import Kind
    from lmdbstore.storage.sql import Connection
    from lmdbstore.storage.view import ReadView
    from lmdbstore.transfer.records import Record


Reader: TypeAlias = "Callable[[str, bytes, list[Any], bytes], Record]"
"""The fields of one record from its sub-database, key, key components (parsed by its
`lmdbstore.kinds.Kind`, strings decoded) and value."""


def _version(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    state = codec.load(db, key, raw, codec.read_hash_state)
    return {"name": parts[0], "version": state.version} | {
        "hash": state.hash,
        "index_value_map": state.index_value_map,
        "mac_mismatch_fatal": state.mac_mismatch_fatal,
    }


def _device_list(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    found = codec.load(db, key, raw, codec.read_device_list(parts[0]))
    devices = [[d.device_id, d.key_index, d.is_hosted] for d in found.devices]
    return {"user": parts[0], "devices": devices} | {
        "timestamp": found.timestamp,
        "phash": found.phash,
        "raw_id": found.raw_id,
    }


def _device(db: str, key: bytes, _parts: list[Any], raw: bytes) -> Record:
    return {"record": codec.load(db, key, raw, codec.read_device)}


STRUCTURED: dict[str, Reader] = {
    "app_state_version": _version,
    "device_list": _device_list,
    "device": _device,
}
"""The kinds whose export fields are a structure of their stored value, not its fields."""


def _fields_reader(kind: Kind) -> Reader:
    """The reader of a kind whose export fields are its key components and value fields."""
    names = kind.export_names

    def read(_db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
        return dict(zip(names, (*parts, *kind.load_fields(key, raw)), strict=True))

    return read


RECORD_READERS: dict[tuple[str, int], tuple[str, Reader]] = {
    (kind.db, kind.tag): (kind.name, STRUCTURED.get(kind.name) or _fields_reader(kind))
    for kind in ALL
    if not kind.is_index and kind.exported
}
"""The export kind of each record kind of the byte layout (its name), and how it reads
(its fields), for every storage; index entries and the write sequence of LID mappings have
none (they are rebuilt), and kinds that are not exported none (`Kind.exported`)."""


WALK_ORDER = (
    "device",
    "signal",
    "appsync",
    "protocol",
    "msgsecret",
    "contact",
    "chat",
    "eventbuf",
    "cache",
)


def _walk(view: ReadView, device: int | None) -> Iterator[Record]:
    if device is None:
        counter = view.get("meta", LAST_DEVICE_KEY)
        if counter is not None:
            value = keys.load_device_counter(counter)
            yield {"kind": "device_counter", "device": 0, "value": value}
    for db in WALK_ORDER:
        # In stored order (`ReadView.walk`): an encrypted store's are not in key order.
        items = view.walk(db, b"" if device is None else keys.device_prefix(device))
        for key, raw in items:
            if len(key) < 5:
                raise SerializationError(db, key, "too short for a device and a record kind")
            found = RECORD_READERS.get((db, key[4]))
            if found is not None:
                kind, reader = found
                parts = BY_TAG[db, key[4]].parse_key(key)
                record = {"kind": kind, **reader(db, key, parts, raw)}
                record["device"] = keys.read_u32(key, 0)[0]
                yield record


RELEASE_EVERY = 50_000
"""Records read between two releases of the map pages already read (see _release_pages)."""


def _release_pages(data_file: str) -> None:
    """Tell the kernel this process no longer needs the pages of its read-only LMDB map of
    ``data_file`` (Linux: ``madvise(MADV_DONTNEED)`` on each mapping of the file). A walk of
    the whole store would otherwise keep the whole file resident in this process; the data
    stays in the page cache, and a page read again is simply mapped again."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        with open("/proc/self/maps", encoding="utf-8") as maps:
            ranges = [
                [int(bound, 16) for bound in line.split()[0].split("-")]
                for line in maps
                if line.rstrip("\n").endswith(data_file)
            ]
        for start, end in ranges:
            libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED)
    except OSError:
        return  # an optimisation only


_MADV_DONTNEED = 4


def records(store: Any, device: int | None = None) -> Generator[Record, None, None]:
    """Every record of ``store`` (an LmdbStore, SqliteStore or PostgresStore; all devices,
    or only ``device``), in one consistent view."""
    if not isinstance(store, LmdbStore | SqliteStore):  # a PostgresStore
        with store._db().snapshot() as conn:
            yield from _walk(cast("SqlStorage", store._storage_open()).view(conn), device)
        return
    if isinstance(store, LmdbStore):
        data_file = os.path.join(os.path.realpath(store.path), "data.mdb")
        with store._lmdb().snapshot() as view:
            for number, record in enumerate(_walk(view, device), start=1):
                yield record
                if number % RELEASE_EVERY == 0:
                    _release_pages(data_file)
        return
    path = store._db().path
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read {path!r}: {exc}") from None
    failure = None
    try:
        conn.execute("BEGIN")
        yield from _walk(cast("SqlStorage", store._storage_open()).view(conn), device)
    except sqlite3.Error as exc:
        failure = f"cannot read {path!r}: {exc}"
    finally:
        conn.close()
    if failure is not None:
        # Raised outside the except block, as `database.retrying` does: there the sqlite3
        # error would stay attached, its frames keeping the walk's cursor, whose unfinished
        # statement keeps the closed connection's read snapshot open.
        raise DatabaseError(failure)


def count(store: Any) -> dict[str, int]:
    """How many records of each export kind the store holds (all devices); walks keys
    only. The total is what `records` yields for the whole store."""
    counts: dict[str, int] = {}
    if isinstance(store, LmdbStore):
        data_file = os.path.join(os.path.realpath(store.path), "data.mdb")
        with store._lmdb().snapshot() as view:
            if view.get("meta", LAST_DEVICE_KEY) is not None:
                counts["device_counter"] = 1
            seen = 0
            for db in WALK_ORDER:
                for key, _ in view.walk(db, b""):
                    found = RECORD_READERS.get((db, key[4])) if len(key) > 4 else None
                    if found is not None:
                        counts[found[0]] = counts.get(found[0], 0) + 1
                    seen += 1
                    if seen % RELEASE_EVERY == 0:
                        _release_pages(data_file)
        return counts

    def tally(conn: Connection) -> dict[str, int]:
        # An encrypted store's items, by the plain sub-database and tag of their keys.
        for db, tag, rows in conn.execute(
            "SELECT db, substr(k, 5, 1), count(*) FROM sealed WHERE length(k) > 4 GROUP BY 1, 2"
        ):
            found = RECORD_READERS.get((db, tag[0]))
            if found is not None:
                counts[found[0]] = counts.get(found[0], 0) + rows
        for (db, tag), table in SQL_TABLES.items():
            if table.index or (db, tag) not in RECORD_READERS:
                continue
            rows = conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
            if rows:
                counts[RECORD_READERS[db, tag][0]] = rows
        if conn.execute("SELECT 1 FROM meta WHERE name = ?", (LAST_DEVICE_NAME,)).fetchone():
            counts["device_counter"] = 1
        return counts

    tallied: dict[str, int] = store._db().read_sync(tally)
    return tallied
