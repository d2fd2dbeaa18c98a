"""Writing export records into a store: through the public API where it keeps every field
(batched), and directly for what it stamps itself (the times of sent and pending messages,
the write sequence of LID mappings, the latest-sync-key pointer, the device counter, cache
entries), so that an import reproduces the exported store exactly. Indexes are rebuilt as
the records are written. Meant for an empty store (the command refuses others).
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import TYPE_CHECKING, Any

from lmdbstore import codec, keys, validate
from lmdbstore.cache.base import entry as cache_entry
from lmdbstore.keys import LAST_DEVICE_KEY
from lmdbstore.lmdb_store import LmdbStore
from lmdbstore.types import (
    AppStateMutationMAC,
    AppStateSyncKey,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMappingEntry,
    MsgSecretEntry,
    TcTokenEntry,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from lmdbstore.sqlite_store import SqliteStore
    from lmdbstore.storage.view import WriteView
    from lmdbstore.transfer.records import Record

BATCH = 1000
"""Records per write (bounds memory and the length of one commit)."""


def _lid(r: Record) -> LidPnMappingEntry:
    entry = LidPnMappingEntry(
        r["lid"], r["phone_number"], r["created_at"], r["updated_at"], r["learning_source"]
    )
    return validate.lid_mapping(entry)


def _message_key(r: Record, names: tuple[str, ...]) -> tuple[bytes, ...]:
    return validate.key_strings([(r[n], n) for n in names], index_bytes=8)


Row = tuple[tuple[Any, ...], tuple[Any, ...]]

AS_STORED: dict[str, Callable[[Record], Row]] = {
    "sent_message": lambda r: (
        _message_key(r, ("chat", "message_id")),
        (validate.blob(r["payload"], "payload"), validate.i64(r["created_at"], "created_at")),
    ),
    "pending_inbound": lambda r: (
        _message_key(r, ("chat", "sender", "message_id")),
        (validate.blob(r["message"], "message"), validate.i64(r["inserted_at"], "inserted_at")),
    ),
    "cache_entry": lambda r: (
        cache_entry(r["ns"], r["key"]),
        (
            validate.blob(r["value"], "value"),
            validate.optional(r["expires_ms"], "expires_ms", validate.i64),
        ),
    ),
    "chat_settings": lambda r: (
        (validate.text(r["chat"], "chat"),),
        (
            validate.muted_until(r["muted_until"], "muted_until"),
            validate.flag(r["pinned"], "pinned"),
            validate.flag(r["archived"], "archived"),
        ),
    ),
    "contact": lambda r: (
        (validate.text(r["jid"], "jid"),),
        tuple(
            validate.name(r[n], n)
            for n in ("first_name", "full_name", "push_name", "business_name", "redacted_phone")
        ),
    ),
    "buffered_event": lambda r: (
        (validate.event_hash(r["hash"]),),
        (
            validate.optional(r["plaintext"], "plaintext", validate.blob),
            validate.i64(r["server_ts"], "server_ts"),
            validate.i64(r["insert_ts"], "insert_ts"),
        ),
    ),
    "outgoing_event": lambda r: (
        _message_key(r, ("chat", "message_id")),
        (
            validate.name(r["format"], "format"),
            validate.blob(r["plaintext"], "plaintext"),
            validate.i64(r["timestamp"], "timestamp"),
        ),
    ),
}
"""The kinds written as stored, times included (the public methods stamp the current
time, or have no call that sets the whole record): each record's key components and
fields, checked as the public methods check them, for `Records.put`."""

SPECIAL = {"lid_mapping", "latest_sync_key", "device_counter", *AS_STORED}


async def _special(store: LmdbStore | SqliteStore, kind: str, recs: list[Record]) -> int:
    """Records written with what the public methods cannot set (a mapping's sequence, a
    message's time, the device counter, the kinds of `AS_STORED`): through the domain
    layer's own operations, on every storage."""
    if kind == "cache_entry" and not isinstance(store, LmdbStore):
        return 0  # SqliteStore keeps no cache: cache entries are left behind

    def write(view: WriteView, r: Record) -> None:
        if kind == "lid_mapping":
            store._put_mapping(view, _lid(r), validate.i64(r["seq"], "seq"))
        elif kind == "latest_sync_key":
            key_id = validate.key_bytes(r["key_id"], "key_id")
            latest = store._records("latest_sync_key").key(())
            view.put("appsync", latest, codec.dump_key_id(key_id))
        elif kind == "device_counter":
            old = view.get("meta", LAST_DEVICE_KEY)
            counter = validate.u32(r["value"], "value")
            if old is None or keys.read_u32(old, 0)[0] < counter:
                view.put("meta", LAST_DEVICE_KEY, keys.u32(counter))
        else:
            store._records(kind).put(view, *AS_STORED[kind](r))

    def op(view: WriteView) -> int:
        for r in recs:
            write(view, r)
        return len(recs)

    return await store._write(op)


def _by(recs: list[Record], field: str) -> Iterable[tuple[Any, list[Record]]]:
    for value, group in itertools.groupby(recs, key=lambda r: r[field]):
        yield value, list(group)


async def _public(handle: Any, kind: str, recs: list[Record]) -> None:
    """Write ``recs`` of one kind through the public API (batched where it can be)."""
    if kind == "identity":
        await handle.put_identities_batch([(r["address"], r["key"]) for r in recs])
    elif kind == "session":
        await handle.put_sessions_batch([(r["address"], r["record"]) for r in recs])
    elif kind == "prekey":
        for uploaded, group in _by(recs, "uploaded"):
            await handle.store_prekeys_batch([(r["id"], r["record"]) for r in group], uploaded)
    elif kind == "sender_key":
        await handle.put_sender_keys_batch([(r["name"], r["record"]) for r in recs])
    elif kind == "mutation_mac":
        by_collection = itertools.groupby(recs, lambda r: (r["name"], r["version"]))
        for (name, version), same in by_collection:
            macs = [AppStateMutationMAC(r["index_mac"], r["value_mac"]) for r in same]
            await handle.put_mutation_macs(name, version, macs)
    elif kind == "sender_key_device":
        for group_jid, group in _by(recs, "group"):
            await handle.set_sender_key_status(
                group_jid, [(r["device_jid"], r["has_key"]) for r in group]
            )
    elif kind == "device_list":
        await handle.update_device_lists(
            [
                DeviceListRecord(
                    r["user"],
                    [DeviceInfo(*d) for d in r["devices"]],
                    r["timestamp"],
                    r["phash"],
                    r["raw_id"],
                )
                for r in recs
            ]
        )
    elif kind == "msg_secret":
        await handle.put_msg_secrets(
            [
                MsgSecretEntry(
                    r["chat"],
                    r["sender"],
                    r["msg_id"],
                    r["secret"],
                    r["expires_at"],
                    r["message_ts"],
                )
                for r in recs
            ]
        )
    else:
        for r in recs:
            await ONE_BY_ONE[kind](handle, r)


ONE_BY_ONE: dict[str, Callable[[Any, Record], Any]] = {
    "signed_prekey": lambda h, r: h.store_signed_prekey(r["id"], r["record"]),
    "sync_key": lambda h, r: h.set_sync_key(
        r["key_id"], AppStateSyncKey(r["key_data"], r["fingerprint"], r["timestamp"])
    ),
    "app_state_version": lambda h, r: h.set_version(
        r["name"],
        HashState(r["version"], r["hash"], r["index_value_map"], r["mac_mismatch_fatal"]),
    ),
    "base_key": lambda h, r: h.save_base_key(r["address"], r["message_id"], r["key"]),
    "group_metadata": lambda h, r: h.put_group_metadata(r["group"], r["metadata"]),
    "tc_token": lambda h, r: h.put_tc_token(
        r["jid"], TcTokenEntry(r["token"], r["token_timestamp"], r["sender_timestamp"])
    ),
    "device": lambda h, r: h.save(r["record"]),
}


DROPPED_BECAUSE = {"cache_entry": "a SQLite store keeps no cache"}
"""Why a record kind may be left out of a store: the kinds a backend does not keep."""


async def restore(
    store: LmdbStore | SqliteStore,
    records: Iterable[Record],
    progress: Callable[[int], None] | None = None,
) -> tuple[int, Counter[str]]:
    """Write every record into ``store`` (all devices; handles opened as needed). Returns
    the number of records written and, per kind, those left out (cache entries are not
    written into a SqliteStore: see `DROPPED_BECAUSE`)."""
    handles: dict[int, Any] = {}
    written = 0
    dropped: Counter[str] = Counter()
    try:
        runs = itertools.groupby(records, key=lambda r: (r["device"], r["kind"]))
        for (device, kind), run in runs:
            while batch := list(itertools.islice(run, BATCH)):
                if device not in handles:
                    handles[device] = store.for_device(validate.u32(device, "device"))
                handle = handles[device]
                if kind in SPECIAL:
                    done = await _special(handle, kind, batch)
                    written += done
                    if done < len(batch):
                        dropped[kind] += len(batch) - done
                else:
                    await _public(handle, kind, batch)
                    written += len(batch)
                if progress is not None:
                    progress(len(batch))
    finally:
        for handle in handles.values():
            await handle.close()
    return written, dropped
