"""ProtocolStore: sub-database ``protocol``, with secondary indexes.

Each index lives under its own tag in the same sub-database and is written in the same
transaction as its record: declared with its record kind (`lmdbstore.kinds`), kept in step
by `lmdbstore.domains.records`:

- sender-key distribution rows are kept twice, by group and by device JID, so that both
  "this group" and "this device in every group" are prefix scans;
- ``phone · updated_at · write seq · lid`` answers ``get_pn_mapping`` with one reverse seek
  (greatest ``updated_at``, ties to the mapping written last);
- ``time · key`` indexes of tc tokens, sent messages and pending inbound messages let expiry
  walk from the oldest entry and stop at the cutoff, so its cost grows with what it deletes.
  A tc token with an empty token is indexed at the minimum time: it always qualifies on the
  token side of the two-window rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from lmdbstore import clock, codec, keys, validate
from lmdbstore.derived import received_tc_token, tc_token_expired, touched_tc_token
from lmdbstore.domains.handle import DomainHandle, named_blob_read, point_read
from lmdbstore.errors import SerializationError
from lmdbstore.kinds import BY_NAME
from lmdbstore.types import LidPnMappingEntry, TcTokenEntry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lmdbstore.domains.records import Records
    from lmdbstore.kinds import Fields
    from lmdbstore.storage.view import ReadView, WriteView
    from lmdbstore.types import DeviceListRecord

_DB = "protocol"
_GROUP_METADATA = int(BY_NAME["group_metadata"].tag)  # for its hot read (`named_blob_read`)
_SKD = "sender_key_device"
_EMPTY_TOKEN_TIME = validate.I64_MIN


def _tc_fields(entry: TcTokenEntry) -> Fields:
    return entry.token, entry.token_timestamp, entry.sender_timestamp


_PN_SERVER, _LID_SERVER = "@s.whatsapp.net", "@lid"


def _pn_lid(view: ReadView, mappings: Records, phone: bytes) -> str | None:
    """The LID `get_pn_mapping` gives for ``phone``: the greatest updated_at, ties to the
    mapping written last (the last entry of the phone index)."""
    for (lid,) in mappings.via(view, "lid_by_phone", (phone,), reverse=True):
        return str(lid)
    return None


def alias(view: ReadView, mappings: Records, jid: str) -> str | None:
    """The other JID of ``jid``'s user, by its LID mappings (``mappings``): ``L@lid`` of
    ``U@s.whatsapp.net`` when the phone ``U`` maps to ``L``, ``P@s.whatsapp.net`` of
    ``L@lid`` when ``L`` maps to ``P``; ``None`` for any other JID or without a
    mapping."""
    if jid.endswith(_PN_SERVER) and jid != _PN_SERVER:
        lid = _pn_lid(view, mappings, jid.removesuffix(_PN_SERVER).encode())
        found = None if lid is None else lid + _LID_SERVER
    elif jid.endswith(_LID_SERVER) and jid != _LID_SERVER:
        fields = mappings.get(view, (jid.removesuffix(_LID_SERVER),))
        found = None if fields is None else str(fields[0]) + _PN_SERVER
    else:
        return None
    # An alias too long for a key string holds no record.
    return found if found is not None and len(found.encode()) <= validate.MAX_KEY_PART else None


class ProtocolDomain(DomainHandle):
    """The `ProtocolStore` methods of every store."""

    # -- sender-key distribution -----------------------------------------------------------

    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]:
        raw = validate.text(group, "group")
        records = self._records(_SKD)

        def read(view: ReadView) -> list[tuple[str, bool]]:
            return [(device, has_key) for (_, device), (has_key,) in records.scan(view, (raw,))]

        return await self._read_in_thread(read)

    async def set_sender_key_status(self, group: str, devices: Sequence[tuple[str, bool]]) -> None:
        rows = await self._batch(devices, lambda: validate.sender_key_devices(group, devices))
        raw_group, checked = rows
        records = self._records(_SKD)

        def op(view: WriteView) -> None:
            for jid, has_key in checked:
                records.put(view, (raw_group, jid), (has_key,))

        await self._write(op, len(checked))

    async def clear_sender_key_devices(self, group: str) -> None:
        raw = validate.text(group, "group")
        records = self._records(_SKD)

        def op(view: WriteView) -> None:
            for components in records.under(view, (raw,)):
                records.take(view, components)

        await self._write(op)

    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None:
        jids = await self._batch(
            device_jids, lambda: validate.each(device_jids, "device_jids", validate.text)
        )
        records = self._records(_SKD)

        def op(view: WriteView) -> None:
            for jid in jids:
                for components in records.via(view, "sender_key_device_by_jid", (jid,)):
                    records.take(view, components)

        await self._write(op)

    async def clear_all_sender_key_devices(self) -> None:
        await self._write(self._records(_SKD).clear)

    # -- LID <-> phone number --------------------------------------------------------------

    def _mapping(self, view: ReadView, lid: bytes) -> tuple[LidPnMappingEntry, int] | None:
        found = self._records("lid_mapping").get(view, (lid,))
        if found is None:
            return None
        phone, created, updated, source, seq = found
        return LidPnMappingEntry(lid.decode(), phone, created, updated, source), seq

    def _put_mapping(
        self, view: WriteView, entry: LidPnMappingEntry, seq: int | None = None
    ) -> None:
        """Upsert ``entry`` as the latest write (or, restoring an export, with its ``seq``)."""
        records = self._records("lid_mapping")
        lid = entry.lid.encode()
        old = records.get(view, (lid,))
        if old is not None:
            entry.created_at = old[1]  # the first sighting stays the creation
        seq_key = keys.write_seq(self._dev)
        seq_raw = view.get(_DB, seq_key)
        if seq_raw is not None and len(seq_raw) != 8:
            raise SerializationError(_DB, seq_key, "the write sequence is not 8 bytes")
        last = 0 if seq_raw is None else keys.read_i64(seq_raw, 0)[0]
        if seq is None and last == (1 << 63) - 1:
            raise SerializationError(_DB, seq_key, "the write sequence is exhausted")
        seq = last + 1 if seq is None else seq
        view.put(_DB, seq_key, keys.i64(max(last, seq)))
        fields = (entry.phone_number, entry.created_at, entry.updated_at)
        records.put(view, (lid,), (*fields, entry.learning_source, seq), old)

    async def get_lid_mapping(self, lid: str) -> LidPnMappingEntry | None:
        raw = validate.text(lid, "lid")
        found = await self._read(lambda view: self._mapping(view, raw))
        return None if found is None else found[0]

    async def get_pn_mapping(self, phone: str) -> LidPnMappingEntry | None:
        raw = validate.text(phone, "phone")
        records = self._records("lid_mapping")

        def read(view: ReadView) -> LidPnMappingEntry | None:
            lid = _pn_lid(view, records, raw)
            found = None if lid is None else self._mapping(view, lid.encode())
            return None if found is None else found[0]

        return await self._read(read)

    async def get_lids_for_pns(self, phones: Sequence[str]) -> dict[str, str]:
        wanted = await self._batch(phones, lambda: validate.each(phones, "phones", validate.text))
        records = self._records("lid_mapping")

        def read(view: ReadView) -> dict[str, str]:
            found = {}
            for phone in wanted:
                lid = _pn_lid(view, records, phone)
                if lid is not None:
                    found[phone.decode()] = lid
            return found

        return await self._read_batch(wanted, read)

    async def put_lid_mapping(self, entry: LidPnMappingEntry) -> None:
        checked = validate.lid_mapping(entry)
        await self._write(lambda view: self._put_mapping(view, checked), 1)

    async def put_lid_mappings(self, entries: Sequence[LidPnMappingEntry]) -> None:
        await self._write_each(entries, "entries", validate.lid_mapping, self._put_mapping)

    async def get_all_lid_mappings(self) -> list[LidPnMappingEntry]:
        records = self._records("lid_mapping")

        def read(view: ReadView) -> list[LidPnMappingEntry]:
            return [LidPnMappingEntry(lid, *fields[:4]) for (lid,), fields in records.scan(view)]

        return await self._read_in_thread(read)

    # -- base keys -------------------------------------------------------------------------

    def _base_key(self, address: object, message_id: object) -> bytes:
        parts = validate.key_strings(((address, "address"), (message_id, "message_id")))
        return self._records("base_key").key(parts)

    async def save_base_key(self, address: str, message_id: str, key: bytes) -> None:
        k = self._base_key(address, message_id)
        await self._put(_DB, k, codec.dump_blob(validate.blob(key, "key")))

    async def has_same_base_key(self, address: str, message_id: str, key: bytes) -> bool:
        k = self._base_key(address, message_id)
        wanted = validate.blob(key, "key")
        return await self._load_blob(_DB, k) == wanted

    async def delete_base_key(self, address: str, message_id: str) -> None:
        await self._delete(_DB, self._base_key(address, message_id))

    # -- device registry -------------------------------------------------------------------

    def _device_list_item(self, record: DeviceListRecord) -> tuple[bytes, bytes]:
        k = self._records("device_list").key((record.user,))
        return k, codec.dump_device_list(record)

    async def update_device_list(self, record: DeviceListRecord) -> None:
        await self._put(_DB, *self._device_list_item(validate.device_list(record)))

    async def update_device_lists(self, records: Sequence[DeviceListRecord]) -> None:
        checked = await self._batch(
            records, lambda: validate.each(records, "records", validate.device_list)
        )
        await self._put_many(
            _DB, await self._batch(checked, lambda: [self._device_list_item(r) for r in checked])
        )

    async def get_devices(self, user: str) -> DeviceListRecord | None:
        raw = validate.text(user, "user")
        k = self._records("device_list").key((raw,))
        return await self._load(_DB, k, codec.read_device_list(raw.decode()))

    async def delete_devices(self, user: str) -> None:
        k = self._records("device_list").key((validate.text(user, "user"),))
        await self._delete(_DB, k)

    # -- group metadata --------------------------------------------------------------------

    def _group_key(self, group: object) -> bytes:
        return self._records("group_metadata").key((validate.text(group, "group"),))

    get_group_metadata = point_read(
        named_blob_read("get_group_metadata", _DB, _GROUP_METADATA, "group")
    )

    async def put_group_metadata(self, group: str, blob: bytes) -> None:
        k = self._group_key(group)
        await self._put(_DB, k, codec.dump_blob(validate.blob(blob, "blob")))

    async def delete_group_metadata(self, group: str) -> None:
        await self._delete(_DB, self._group_key(group))

    # -- trusted-contact tokens ------------------------------------------------------------

    def _tc_get(self, view: ReadView, jid: bytes) -> TcTokenEntry | None:
        found = self._records("tc_token").get(view, (jid,))
        return None if found is None else TcTokenEntry(*found)

    def _tc_put(
        self, view: WriteView, jid: bytes, entry: TcTokenEntry, old: TcTokenEntry | None
    ) -> None:
        old_fields = None if old is None else _tc_fields(old)
        self._records("tc_token").put(view, (jid,), _tc_fields(entry), old_fields)

    async def get_tc_token(self, jid: str) -> TcTokenEntry | None:
        raw = validate.text(jid, "jid")
        return await self._read(lambda view: self._tc_get(view, raw))

    async def find_tc_token(self, jid: str) -> tuple[str, TcTokenEntry] | None:
        raw = validate.text(jid, "jid")
        mappings = self._records("lid_mapping")

        def read(view: ReadView) -> tuple[str, TcTokenEntry] | None:
            best = None
            other = alias(view, mappings, raw.decode())
            for name in (raw.decode(), other):
                entry = None if name is None else self._tc_get(view, name.encode())
                if entry is not None and (
                    best is None or entry.token_timestamp > best[1].token_timestamp
                ):
                    best = (cast("str", name), entry)
            return best

        return await self._read(read)

    async def put_tc_token(self, jid: str, entry: TcTokenEntry) -> None:
        raw = validate.text(jid, "jid")
        checked = validate.tc_token(entry)
        records = self._records("tc_token")
        await self._write(lambda view: records.put(view, (raw,), _tc_fields(checked)), 1)

    async def delete_tc_token(self, jid: str) -> None:
        raw = validate.text(jid, "jid")
        records = self._records("tc_token")
        await self._write(lambda view: records.take(view, (raw,)), 1)

    async def get_all_tc_token_jids(self) -> list[str]:
        records = self._records("tc_token")

        def read(view: ReadView) -> list[str]:
            return [jid for (jid,) in records.under(view)]

        return await self._read_in_thread(read)

    async def delete_expired_tc_tokens(self, cutoff: int, sender_cutoff: int | None = None) -> int:
        token_cutoff, sent_cutoff = validate.tc_cutoffs(cutoff, sender_cutoff)
        # Entries at the minimum time (empty tokens) qualify whatever the cutoff.
        below = max(token_cutoff, _EMPTY_TOKEN_TIME + 1)
        records = self._records("tc_token")

        def op(view: WriteView) -> int:
            deleted = 0
            for (jid,) in records.via(view, "tc_token_by_time", below=below):
                entry = self._tc_get(view, jid)
                if entry is not None and tc_token_expired(entry, token_cutoff, sent_cutoff):
                    records.take(view, (jid,))
                    deleted += 1
            return deleted

        return await self._write(op)

    async def store_received_tc_tokens(self, items: Sequence[tuple[str, bytes, int]]) -> int:
        rows = await self._batch(items, lambda: validate.received_tc_tokens(items))

        def op(view: WriteView) -> int:
            written = 0
            for jid, token, at in rows:
                old = self._tc_get(view, jid)
                entry = received_tc_token(old, token, at)
                if entry is not None:
                    self._tc_put(view, jid, entry, old)
                    written += 1
            return written

        return await self._write(op, len(rows))

    async def touch_tc_token_sender_timestamp(self, jid: str, ts: int) -> None:
        raw = validate.text(jid, "jid")
        at = validate.i64(ts, "ts")

        def op(view: WriteView) -> None:
            old = self._tc_get(view, raw)
            entry = touched_tc_token(old, at)
            if entry is not None:
                self._tc_put(view, raw, entry, old)

        await self._write(op, 1)

    async def store_received_tc_token(self, jid: str, token: bytes, ts: int) -> None:
        raw = validate.text(jid, "jid")
        value = validate.blob(token, "token")
        at = validate.i64(ts, "ts")

        def op(view: WriteView) -> None:
            old = self._tc_get(view, raw)
            entry = received_tc_token(old, value, at)
            if entry is not None:
                self._tc_put(view, raw, entry, old)

        await self._write(op, 1)

    # -- sent messages ---------------------------------------------------------------------

    async def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None:
        parts = validate.chat_message(chat, message_id)
        value = validate.blob(payload, "payload")
        at = clock.now()
        records = self._records("sent_message")

        def op(view: WriteView) -> None:
            records.put(view, parts, (value, at))
            self._capped(view, "sent_messages")

        await self._write(op, self._capped_records("sent_messages", 1))

    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None:
        parts = validate.chat_message(chat, message_id)
        records = self._records("sent_message")
        found = await self._write(lambda view: records.take(view, parts), 1)
        return None if found is None else found[0]

    async def peek_sent_message(self, chat: str, message_id: str) -> bytes | None:
        records = self._records("sent_message")
        k = records.key(validate.chat_message(chat, message_id))
        found = await self._load(_DB, k, records.decode)
        return None if found is None else found[0]

    async def delete_expired_sent_messages(self, cutoff: int) -> int:
        before = validate.i64(cutoff, "cutoff")
        records = self._records("sent_message")
        return await self._write(lambda view: records.expire(view, "sent_message_by_time", before))

    # -- pending inbound -------------------------------------------------------------------

    async def store_pending_inbound_batch(
        self, items: Sequence[tuple[str, str, str, bytes]]
    ) -> None:
        rows = await self._batch(items, lambda: validate.pending_messages(items))
        at = clock.now()
        records = self._records("pending_inbound")

        def op(view: WriteView) -> None:
            for parts, message in rows:
                records.put(view, parts, (message, at))

        await self._write(op, len(rows))

    async def get_pending_inbound(self, chat: str, sender: str, message_id: str) -> bytes | None:
        records = self._records("pending_inbound")
        k = records.key(validate.message_key(chat, sender, message_id))
        found = await self._load(_DB, k, records.decode)
        return None if found is None else found[0]

    async def delete_pending_inbound_batch(self, items: Sequence[tuple[str, str, str]]) -> None:
        wanted = await self._batch(items, lambda: validate.pending_keys(items))
        records = self._records("pending_inbound")

        def op(view: WriteView) -> None:
            for parts in wanted:
                records.take(view, parts)

        await self._write(op, len(wanted))

    async def delete_expired_pending_inbound(self, cutoff: int) -> int:
        before = validate.i64(cutoff, "cutoff")
        records = self._records("pending_inbound")
        return await self._write(
            lambda view: records.expire(view, "pending_inbound_by_time", before)
        )
