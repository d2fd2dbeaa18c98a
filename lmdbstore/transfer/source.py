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
from typing import TYPE_CHECKING, Any, TypeAlias

from lmdbstore import codec, keys
from lmdbstore.errors import DatabaseError, SerializationError
from lmdbstore.keys import (
    LAST_DEVICE_KEY,
    AppSyncTag,
    CacheTag,
    DeviceTag,
    MsgSecretTag,
    ProtocolTag,
    SignalTag,
)
from lmdbstore.kinds import BY_TAG
from lmdbstore.lmdb_store import LmdbStore
from lmdbstore.sqlite_store.schema import LAST_DEVICE_NAME
from lmdbstore.storage.sqlite import TABLES as SQLITE_TABLES
from lmdbstore.storage.sqlite import SqliteView

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from lmdbstore.sqlite_store import SqliteStore
    from lmdbstore.storage.view import ReadView
    from lmdbstore.transfer.records import Record


Reader: TypeAlias = "Callable[[str, bytes, list[Any], bytes], Record]"
"""The fields of one record from its sub-database, key, key components (parsed by its
`lmdbstore.kinds.Kind`, strings decoded) and value."""


def _load(db: str, key: bytes, raw: bytes, decoder: Callable[[dict[str, object]], Any]) -> Any:
    return codec.load(db, key, raw, decoder)


def _mutation(fields: dict[str, object]) -> tuple[bytes, int]:
    return codec.field_bytes(fields, "v"), codec.field_int(fields, "n", bounds=codec.U64)


def _named_blob(name_field: str, value_field: str) -> Reader:
    def read(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
        return {name_field: parts[0], value_field: codec.load_blob(db, key, raw)}

    return read


def _prekey(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    record, uploaded = _load(db, key, raw, codec.read_prekey)
    return {"id": parts[0], "record": record, "uploaded": uploaded}


def _signed_prekey(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    return {"id": parts[0], "record": codec.load_blob(db, key, raw)}


def _sync_key(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    sync = _load(db, key, raw, codec.read_sync_key)
    return {"key_id": parts[0], "key_data": sync.key_data} | {
        "fingerprint": sync.fingerprint,
        "timestamp": sync.timestamp,
    }


def _latest_sync_key(db: str, key: bytes, _parts: list[Any], raw: bytes) -> Record:
    return {"key_id": _load(db, key, raw, codec.read_key_id)}


def _version(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    state = _load(db, key, raw, codec.read_hash_state)
    return {"name": parts[0], "version": state.version} | {
        "hash": state.hash,
        "index_value_map": state.index_value_map,
        "mac_mismatch_fatal": state.mac_mismatch_fatal,
    }


def _mutation_mac(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    value_mac, version = _load(db, key, raw, _mutation)
    return {"name": parts[0], "index_mac": parts[1]} | {
        "value_mac": value_mac,
        "version": version,
    }


def _sender_key_device(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    has_key = _load(db, key, raw, codec.read_flag)
    return {"group": parts[0], "device_jid": parts[1], "has_key": has_key}


def _lid_mapping(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    entry, seq = _load(db, key, raw, codec.read_lid_mapping(parts[0]))
    return {"lid": parts[0], "phone_number": entry.phone_number} | {
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
        "learning_source": entry.learning_source,
        "seq": seq,
    }


def _base_key(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    value = codec.load_blob(db, key, raw)
    return {"address": parts[0], "message_id": parts[1], "key": value}


def _device_list_fields(user: str, found: Any) -> Record:
    devices = [[d.device_id, d.key_index, d.is_hosted] for d in found.devices]
    return {"user": user, "devices": devices} | {
        "timestamp": found.timestamp,
        "phash": found.phash,
        "raw_id": found.raw_id,
    }


def _device_list(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    return _device_list_fields(parts[0], _load(db, key, raw, codec.read_device_list(parts[0])))


def _tc_token(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    tc = _load(db, key, raw, codec.read_tc_token)
    return {"jid": parts[0], "token": tc.token} | {
        "token_timestamp": tc.token_timestamp,
        "sender_timestamp": tc.sender_timestamp,
    }


def _sent_message(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    payload, at = _load(db, key, raw, codec.read_timed)
    return {"chat": parts[0], "message_id": parts[1]} | {
        "payload": payload,
        "created_at": at,
    }


def _pending_inbound(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    message, at = _load(db, key, raw, codec.read_timed)
    return {"chat": parts[0], "sender": parts[1]} | {
        "message_id": parts[2],
        "message": message,
        "inserted_at": at,
    }


def _msg_secret(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    secret, expires_at, message_ts = _load(db, key, raw, codec.read_msg_secret)
    return {"chat": parts[0], "sender": parts[1], "msg_id": parts[2]} | {
        "secret": secret,
        "expires_at": expires_at,
        "message_ts": message_ts,
    }


def _device(db: str, key: bytes, _parts: list[Any], raw: bytes) -> Record:
    return {"record": _load(db, key, raw, codec.read_device)}


def _cache_entry(db: str, key: bytes, parts: list[Any], raw: bytes) -> Record:
    value, expires = _load(db, key, raw, codec.read_cache_entry)
    return {"ns": parts[0], "key": parts[1]} | {
        "value": value,
        "expires_ms": expires,
    }


RECORD_READERS: dict[tuple[str, int], tuple[str, Reader]] = {
    ("signal", SignalTag.IDENTITY): ("identity", _named_blob("address", "key")),
    ("signal", SignalTag.SESSION): ("session", _named_blob("address", "record")),
    ("signal", SignalTag.PREKEY): ("prekey", _prekey),
    ("signal", SignalTag.SIGNED_PREKEY): ("signed_prekey", _signed_prekey),
    ("signal", SignalTag.SENDER_KEY): ("sender_key", _named_blob("name", "record")),
    ("appsync", AppSyncTag.SYNC_KEY): ("sync_key", _sync_key),
    ("appsync", AppSyncTag.LATEST_SYNC_KEY): ("latest_sync_key", _latest_sync_key),
    ("appsync", AppSyncTag.VERSION): ("app_state_version", _version),
    ("appsync", AppSyncTag.MUTATION_MAC): ("mutation_mac", _mutation_mac),
    ("protocol", ProtocolTag.SENDER_KEY_DEVICE): ("sender_key_device", _sender_key_device),
    ("protocol", ProtocolTag.LID_MAPPING): ("lid_mapping", _lid_mapping),
    ("protocol", ProtocolTag.BASE_KEY): ("base_key", _base_key),
    ("protocol", ProtocolTag.DEVICE_LIST): ("device_list", _device_list),
    ("protocol", ProtocolTag.GROUP_METADATA): (
        "group_metadata",
        _named_blob("group", "metadata"),
    ),
    ("protocol", ProtocolTag.TC_TOKEN): ("tc_token", _tc_token),
    ("protocol", ProtocolTag.SENT_MESSAGE): ("sent_message", _sent_message),
    ("protocol", ProtocolTag.PENDING_INBOUND): ("pending_inbound", _pending_inbound),
    ("msgsecret", MsgSecretTag.SECRET): ("msg_secret", _msg_secret),
    ("device", DeviceTag.DEVICE): ("device", _device),
    ("cache", CacheTag.ENTRY): ("cache_entry", _cache_entry),
}
"""The export kind of each record kind of the byte layout, and how it reads (its fields),
for every storage; index entries and the write sequence of LID mappings have none (they
are rebuilt)."""


WALK_ORDER = ("device", "signal", "appsync", "protocol", "msgsecret", "cache")


def _walk(view: ReadView, device: int | None) -> Iterator[Record]:
    if device is None:
        counter = view.get("meta", LAST_DEVICE_KEY)
        if counter is not None:
            value = keys.load_device_counter(counter)
            yield {"kind": "device_counter", "device": 0, "value": value}
    for db in WALK_ORDER:
        if device is None:
            items = view.scan(db, b"", None)
        else:
            items = view.scan_prefix(db, keys.device_prefix(device))
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


def records(
    store: LmdbStore | SqliteStore, device: int | None = None
) -> Generator[Record, None, None]:
    """Every record of ``store`` (all devices, or only ``device``), in one consistent view."""
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
    try:
        conn.execute("BEGIN")
        yield from _walk(SqliteView(conn), device)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read {path!r}: {exc}") from None
    finally:
        conn.close()


def count(store: LmdbStore | SqliteStore) -> dict[str, int]:
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
                for key, _ in view.scan(db, b"", None):
                    found = RECORD_READERS.get((db, key[4])) if len(key) > 4 else None
                    if found is not None:
                        counts[found[0]] = counts.get(found[0], 0) + 1
                    seen += 1
                    if seen % RELEASE_EVERY == 0:
                        _release_pages(data_file)
        return counts

    def tally(conn: sqlite3.Connection) -> dict[str, int]:
        for (db, tag), table in SQLITE_TABLES.items():
            if table.index or (db, tag) not in RECORD_READERS:
                continue
            rows = conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
            if rows:
                counts[RECORD_READERS[db, tag][0]] = rows
        if conn.execute("SELECT 1 FROM meta WHERE name = ?", (LAST_DEVICE_NAME,)).fetchone():
            counts["device_counter"] = 1
        return counts

    return store._db().read_sync(tally)
