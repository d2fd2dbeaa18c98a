"""ProtocolStore in memory: the reference model of the LMDB and SQLite backends."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, TypeVar, cast

from lmdbstore import clock, validate
from lmdbstore.derived import received_tc_token, tc_token_expired, touched_tc_token
from lmdbstore.testing.oracle.state import MemoryHandle

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lmdbstore.testing.oracle.state import DeviceData
    from lmdbstore.types import DeviceListRecord, LidPnMappingEntry, TcTokenEntry

_K = TypeVar("_K")


def _text(value: object, what: str) -> str:
    return validate.text(value, what).decode()


def _base_key(address: object, message_id: object) -> tuple[str, ...]:
    return _decoded(validate.key_strings(((address, "address"), (message_id, "message_id"))))


def _sent_key(chat: object, message_id: object) -> tuple[str, ...]:
    return _decoded(validate.chat_message(chat, message_id))


def _decoded(parts: tuple[bytes, ...]) -> tuple[str, ...]:
    return tuple(p.decode() for p in parts)


def pn_mapping(d: DeviceData, phone: str) -> LidPnMappingEntry | None:
    """The mapping of ``phone`` with the greatest updated_at, ties to the last written."""
    candidates = [
        (entry.updated_at, seq, entry)
        for entry, seq in d.lid_mappings.values()
        if entry.phone_number == phone
    ]
    return max(candidates, key=lambda c: c[:2])[2] if candidates else None


def alias(d: DeviceData, jid: str) -> str | None:
    """The JID of the same user in the other namespace (``U@s.whatsapp.net`` and
    ``L@lid``), by the LID mappings of ``d``, if one maps and fits a key string."""
    if jid.endswith("@s.whatsapp.net") and len(jid) > len("@s.whatsapp.net"):
        entry = pn_mapping(d, jid.removesuffix("@s.whatsapp.net"))
        found = None if entry is None else entry.lid + "@lid"
    elif jid.endswith("@lid") and len(jid) > len("@lid"):
        mapping = d.lid_mappings.get(jid.removesuffix("@lid"))
        found = None if mapping is None else mapping[0].phone_number + "@s.whatsapp.net"
    else:
        return None
    return found if found is not None and len(found.encode()) <= validate.MAX_KEY_PART else None


class MemoryProtocolStore(MemoryHandle):
    """The `ProtocolStore` methods of `OracleStore`."""

    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]:
        rows = self._d.sender_key_devices.get(_text(group, "group"), {})
        return sorted(rows.items(), key=lambda row: row[0].encode())

    async def set_sender_key_status(self, group: str, devices: Sequence[tuple[str, bool]]) -> None:
        raw_group, checked = validate.sender_key_devices(group, devices)
        rows = self._d.sender_key_devices.setdefault(raw_group.decode(), {})
        rows.update((jid.decode(), has_key) for jid, has_key in checked)

    async def clear_sender_key_devices(self, group: str) -> None:
        self._d.sender_key_devices.pop(_text(group, "group"), None)

    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None:
        jids = validate.each(device_jids, "device_jids", _text)
        for rows in self._d.sender_key_devices.values():
            for jid in jids:
                rows.pop(jid, None)

    async def clear_all_sender_key_devices(self) -> None:
        self._d.sender_key_devices.clear()

    async def get_lid_mapping(self, lid: str) -> LidPnMappingEntry | None:
        found = self._d.lid_mappings.get(_text(lid, "lid"))
        return None if found is None else copy.copy(found[0])

    async def get_pn_mapping(self, phone: str) -> LidPnMappingEntry | None:
        return copy.copy(pn_mapping(self._d, _text(phone, "phone")))

    async def get_lids_for_pns(self, phones: Sequence[str]) -> dict[str, str]:
        found = {}
        for phone in validate.each(phones, "phones", _text):
            entry = pn_mapping(self._d, phone)
            if entry is not None:
                found[phone] = entry.lid
        return found

    def _put_mapping(self, entry: LidPnMappingEntry) -> None:
        d = self._d
        old = d.lid_mappings.get(entry.lid)
        if old is not None:
            entry.created_at = old[0].created_at
        d.mapping_seq += 1
        d.lid_mappings[entry.lid] = (entry, d.mapping_seq)

    async def put_lid_mapping(self, entry: LidPnMappingEntry) -> None:
        self._put_mapping(validate.lid_mapping(entry))

    async def put_lid_mappings(self, entries: Sequence[LidPnMappingEntry]) -> None:
        for entry in validate.each(entries, "entries", validate.lid_mapping):
            self._put_mapping(entry)

    async def get_all_lid_mappings(self) -> list[LidPnMappingEntry]:
        mappings = self._d.lid_mappings
        return [copy.copy(mappings[lid][0]) for lid in sorted(mappings, key=str.encode)]

    async def save_base_key(self, address: str, message_id: str, key: bytes) -> None:
        k = _base_key(address, message_id)
        self._d.base_keys[k] = validate.blob(key, "key")

    async def has_same_base_key(self, address: str, message_id: str, key: bytes) -> bool:
        k = _base_key(address, message_id)
        return self._d.base_keys.get(k) == validate.blob(key, "key")

    async def delete_base_key(self, address: str, message_id: str) -> None:
        self._d.base_keys.pop(_base_key(address, message_id), None)

    async def update_device_list(self, record: DeviceListRecord) -> None:
        checked = validate.device_list(record)
        self._d.device_lists[checked.user] = checked

    async def update_device_lists(self, records: Sequence[DeviceListRecord]) -> None:
        checked = validate.each(records, "records", validate.device_list)
        self._d.device_lists.update((r.user, r) for r in checked)

    async def get_devices(self, user: str) -> DeviceListRecord | None:
        return copy.deepcopy(self._d.device_lists.get(_text(user, "user")))

    async def delete_devices(self, user: str) -> None:
        self._d.device_lists.pop(_text(user, "user"), None)

    async def get_group_metadata(self, group: str) -> bytes | None:
        return self._d.group_metadata.get(_text(group, "group"))

    async def put_group_metadata(self, group: str, blob: bytes) -> None:
        name = _text(group, "group")
        self._d.group_metadata[name] = validate.blob(blob, "blob")

    async def delete_group_metadata(self, group: str) -> None:
        self._d.group_metadata.pop(_text(group, "group"), None)

    async def get_tc_token(self, jid: str) -> TcTokenEntry | None:
        return copy.copy(self._d.tc_tokens.get(_text(jid, "jid")))

    async def find_tc_token(self, jid: str) -> tuple[str, TcTokenEntry] | None:
        name = _text(jid, "jid")
        best: tuple[str, TcTokenEntry] | None = None
        for candidate in (name, alias(self._d, name)):
            entry = None if candidate is None else self._d.tc_tokens.get(candidate)
            if entry is not None and (
                best is None or entry.token_timestamp > best[1].token_timestamp
            ):
                best = (cast("str", candidate), copy.copy(entry))
        return best

    async def put_tc_token(self, jid: str, entry: TcTokenEntry) -> None:
        name = _text(jid, "jid")
        self._d.tc_tokens[name] = validate.tc_token(entry)

    async def delete_tc_token(self, jid: str) -> None:
        self._d.tc_tokens.pop(_text(jid, "jid"), None)

    async def get_all_tc_token_jids(self) -> list[str]:
        return sorted(self._d.tc_tokens, key=str.encode)

    async def delete_expired_tc_tokens(self, cutoff: int, sender_cutoff: int | None = None) -> int:
        token_cutoff, sent_cutoff = validate.tc_cutoffs(cutoff, sender_cutoff)
        tokens = self._d.tc_tokens
        doomed = [
            jid for jid, e in tokens.items() if tc_token_expired(e, token_cutoff, sent_cutoff)
        ]
        for jid in doomed:
            del tokens[jid]
        return len(doomed)

    async def touch_tc_token_sender_timestamp(self, jid: str, ts: int) -> None:
        name = _text(jid, "jid")
        at = validate.i64(ts, "ts")
        entry = touched_tc_token(self._d.tc_tokens.get(name), at)
        if entry is not None:
            self._d.tc_tokens[name] = entry

    async def store_received_tc_token(self, jid: str, token: bytes, ts: int) -> None:
        name = _text(jid, "jid")
        value = validate.blob(token, "token")
        at = validate.i64(ts, "ts")
        entry = received_tc_token(self._d.tc_tokens.get(name), value, at)
        if entry is not None:
            self._d.tc_tokens[name] = entry

    async def store_received_tc_tokens(self, items: Sequence[tuple[str, bytes, int]]) -> int:
        written = 0
        for raw, value, at in validate.received_tc_tokens(items):
            name = raw.decode()
            entry = received_tc_token(self._d.tc_tokens.get(name), value, at)
            if entry is not None:
                self._d.tc_tokens[name] = entry
                written += 1
        return written

    async def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None:
        k = _sent_key(chat, message_id)
        self._d.sent_messages[k] = (validate.blob(payload, "payload"), clock.now())
        self._trim()

    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None:
        found = self._d.sent_messages.pop(_sent_key(chat, message_id), None)
        return None if found is None else found[0]

    async def peek_sent_message(self, chat: str, message_id: str) -> bytes | None:
        found = self._d.sent_messages.get(_sent_key(chat, message_id))
        return None if found is None else found[0]

    async def delete_expired_sent_messages(self, cutoff: int) -> int:
        return _expire(self._d.sent_messages, validate.i64(cutoff, "cutoff"))

    async def store_pending_inbound_batch(
        self, items: Sequence[tuple[str, str, str, bytes]]
    ) -> None:
        rows = [(_decoded(parts), message) for parts, message in validate.pending_messages(items)]
        at = clock.now()
        self._d.pending_inbound.update((k, (message, at)) for k, message in rows)

    async def get_pending_inbound(self, chat: str, sender: str, message_id: str) -> bytes | None:
        found = self._d.pending_inbound.get(
            _decoded(validate.message_key(chat, sender, message_id))
        )
        return None if found is None else found[0]

    async def delete_pending_inbound_batch(self, items: Sequence[tuple[str, str, str]]) -> None:
        for k in [_decoded(parts) for parts in validate.pending_keys(items)]:
            self._d.pending_inbound.pop(k, None)

    async def delete_expired_pending_inbound(self, cutoff: int) -> int:
        return _expire(self._d.pending_inbound, validate.i64(cutoff, "cutoff"))


def _expire(table: dict[_K, tuple[bytes, int]], cutoff: int) -> int:
    """Delete the rows stored before ``cutoff``."""
    doomed = [k for k, (_, at) in table.items() if at < cutoff]
    for k in doomed:
        del table[k]
    return len(doomed)
