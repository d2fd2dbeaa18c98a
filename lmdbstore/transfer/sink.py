"""Writing export records into a store: through the public API where it keeps every field
(batched), and as stored, through the domain layer's `Records` of each kind's declaration,
for every other kind (what the public methods stamp themselves: the times of sent and
pending messages, the latest-sync-key pointer, cache entries; what they cannot set whole),
with the write sequence of LID mappings and the device counter; so that an import
reproduces the exported store exactly. Indexes are rebuilt as the records are written.
Meant for an empty store (the command refuses others). A new record kind is imported as
stored with no line here.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import TYPE_CHECKING, Any, cast

from lmdbstore import keys, validate
from lmdbstore.keys import LAST_DEVICE_KEY
from lmdbstore.kinds import BY_NAME
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
    from collections.abc import Awaitable, Callable, Iterable

    from lmdbstore.kinds import Kind
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


async def _as_stored(store: LmdbStore | SqliteStore, kind: str, recs: list[Record]) -> int:
    """Records written with what the public methods cannot set, through the domain
    layer's own operations on every storage: a mapping's sequence, the device counter,
    and each kind outside `THROUGH_THE_API` as stored, times included (the public methods
    stamp the current time, or have no call that sets the whole record), its components
    and fields checked by their declarations (`lmdbstore.kinds.Kind.checked`). How many
    were written: none of a kind the store keeps no table of (SQLite keeps no cache)."""
    declared = BY_NAME.get(kind)
    if declared is not None and not declared.table and not isinstance(store, LmdbStore):
        return 0

    def write(view: WriteView, r: Record) -> None:
        if kind == "lid_mapping":
            store._put_mapping(view, _lid(r), validate.i64(r["seq"], "seq"))
        elif kind == "device_counter":
            old = view.get("meta", LAST_DEVICE_KEY)
            counter = validate.u32(r["value"], "value")
            if old is None or keys.read_u32(old, 0)[0] < counter:
                view.put("meta", LAST_DEVICE_KEY, keys.u32(counter))
        else:
            store._records(kind).put(view, *cast("Kind", declared).checked(r))

    def op(view: WriteView) -> int:
        for r in recs:
            write(view, r)
        return len(recs)

    return await store._write(op)


def _by(recs: list[Record], field: str) -> Iterable[tuple[Any, list[Record]]]:
    for value, group in itertools.groupby(recs, key=lambda r: r[field]):
        yield value, list(group)


async def _prekeys(handle: Any, recs: list[Record]) -> None:
    for uploaded, group in _by(recs, "uploaded"):
        await handle.store_prekeys_batch([(r["id"], r["record"]) for r in group], uploaded)


async def _mutation_macs(handle: Any, recs: list[Record]) -> None:
    for (name, version), same in itertools.groupby(recs, lambda r: (r["name"], r["version"])):
        macs = [AppStateMutationMAC(r["index_mac"], r["value_mac"]) for r in same]
        await handle.put_mutation_macs(name, version, macs)


async def _sender_key_devices(handle: Any, recs: list[Record]) -> None:
    for group_jid, group in _by(recs, "group"):
        await handle.set_sender_key_status(
            group_jid, [(r["device_jid"], r["has_key"]) for r in group]
        )


BATCHED: dict[str, Callable[[Any, list[Record]], Awaitable[Any]]] = {
    "identity": lambda h, recs: h.put_identities_batch([(r["address"], r["key"]) for r in recs]),
    "session": lambda h, recs: h.put_sessions_batch([(r["address"], r["record"]) for r in recs]),
    "prekey": _prekeys,
    "sender_key": lambda h, recs: h.put_sender_keys_batch([(r["name"], r["record"]) for r in recs]),
    "mutation_mac": _mutation_macs,
    "sender_key_device": _sender_key_devices,
    "device_list": lambda h, recs: h.update_device_lists(
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
    ),
    "msg_secret": lambda h, recs: h.put_msg_secrets(
        [
            MsgSecretEntry(
                r["chat"], r["sender"], r["msg_id"], r["secret"], r["expires_at"], r["message_ts"]
            )
            for r in recs
        ]
    ),
}
"""The kinds written through a batch method of the public API."""

ONE_BY_ONE: dict[str, Callable[[Any, Record], Awaitable[Any]]] = {
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
"""The kinds written one record at a time through the public API."""

THROUGH_THE_API = BATCHED.keys() | ONE_BY_ONE.keys()
"""The kinds written through the public API, which keeps every field of them. Every other
record kind is written as stored (`_as_stored`)."""


async def _public(handle: Any, kind: str, recs: list[Record]) -> None:
    """Write ``recs`` of one kind through the public API (batched where it can be)."""
    if kind in BATCHED:
        await BATCHED[kind](handle, recs)
    else:
        for r in recs:
            await ONE_BY_ONE[kind](handle, r)


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
                if kind not in THROUGH_THE_API:
                    done = await _as_stored(handle, kind, batch)
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
