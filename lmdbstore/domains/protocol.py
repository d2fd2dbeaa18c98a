"""ProtocolStore: sub-database ``protocol``, with secondary indexes.

Each index lives under its own tag in the same sub-database and is written in the same
transaction as its record (see `ProtocolTag`):

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

from typing import TYPE_CHECKING

from lmdbstore import clock, codec, keys, validate
from lmdbstore.derived import received_tc_token, tc_token_expired, touched_tc_token
from lmdbstore.domains.handle import DomainHandle
from lmdbstore.errors import SerializationError
from lmdbstore.keys import ProtocolTag
from lmdbstore.kinds import BY_NAME, BY_TAG

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lmdbstore.storage.view import ReadView, WriteView
    from lmdbstore.types import DeviceListRecord, LidPnMappingEntry, TcTokenEntry

_DB = "protocol"
_SKD = BY_NAME["sender_key_device"]
_LID = BY_NAME["lid_mapping"]
_TC = BY_NAME["tc_token"]
_EMPTY_TOKEN_TIME = validate.I64_MIN


def _tc_index_time(entry: TcTokenEntry) -> int:
    return entry.token_timestamp if entry.token else _EMPTY_TOKEN_TIME


class _TimedTable:
    """Records stored with a time and indexed by ``time · key`` (sent messages and pending
    inbound messages): put, pop and expiry keep record and index in step."""

    def __init__(self, dev: bytes, tag: int, index_tag: int) -> None:
        self.tag = tag
        self.start = keys.prefix(dev, tag)
        self.index_start = keys.prefix(dev, index_tag)

    def key(self, parts: Sequence[bytes]) -> bytes:
        return self.start + b"".join(keys.s(p) for p in parts)

    def _index_key(self, key: bytes, at: int) -> bytes:
        return self.index_start + keys.i64(at) + key[len(self.start) :]

    def entries(self, key: bytes, value: bytes, at: int) -> list[tuple[bytes, bytes]]:
        """The record at ``key`` and its index entry, for a key that holds none yet."""
        return [(key, codec.dump_timed(value, at)), (self._index_key(key, at), b"")]

    def put(self, view: WriteView, key: bytes, value: bytes, at: int) -> None:
        self.pop(view, key)
        view.put_many(_DB, self.entries(key, value, at))

    def pop(self, view: WriteView, key: bytes) -> bytes | None:
        raw = view.pop(_DB, key)
        if raw is None:
            return None
        value, at = codec.load(_DB, key, raw, codec.read_timed)
        view.delete(_DB, self._index_key(key, at))
        return value

    def expire(self, view: WriteView, cutoff: int) -> int:
        """Delete the records stored before ``cutoff``; walks only those."""
        stop = self.index_start + keys.i64(cutoff)
        return view.delete_indexed(_DB, self.index_start, stop, self.start, 8)


class ProtocolDomain(DomainHandle):
    """The `ProtocolStore` methods of every store."""

    def _pkey(self, tag: ProtocolTag, *parts: bytes) -> bytes:
        return self._key(tag, *(keys.s(p) for p in parts))

    # -- sender-key distribution -----------------------------------------------------------

    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]:
        start = self._pkey(ProtocolTag.SENDER_KEY_DEVICE, validate.text(group, "group"))

        def read(view: ReadView) -> list[tuple[str, bool]]:
            return [
                (_SKD.parse_key(k)[1], codec.load(_DB, k, raw, codec.read_flag))
                for k, raw in view.scan_prefix(_DB, start)
            ]

        return await self._read_in_thread(read)

    async def set_sender_key_status(self, group: str, devices: Sequence[tuple[str, bool]]) -> None:
        def encode() -> list[tuple[bytes, bytes, bytes]]:
            raw_group, checked = validate.sender_key_devices(group, devices)
            return [
                (
                    self._pkey(ProtocolTag.SENDER_KEY_DEVICE, raw_group, jid),
                    self._pkey(ProtocolTag.SENDER_KEY_DEVICE_BY_JID, jid, raw_group),
                    codec.dump_flag(has_key),
                )
                for jid, has_key in checked
            ]

        rows = await self._batch(devices, encode)

        def op(view: WriteView) -> None:
            for row, index, value in rows:
                view.put(_DB, row, value)
                view.put(_DB, index, b"")

        await self._write(op, len(rows))

    def _drop_skd(self, view: WriteView, by: ProtocolTag, start: bytes) -> None:
        """Delete the rows under ``start`` of one orientation and their twins."""
        twin = (
            ProtocolTag.SENDER_KEY_DEVICE_BY_JID
            if by == ProtocolTag.SENDER_KEY_DEVICE
            else ProtocolTag.SENDER_KEY_DEVICE
        )
        for k, _ in view.scan_prefix(_DB, start):
            first, second = BY_TAG[_DB, by].parse_key(k)
            view.delete(_DB, k)
            view.delete(_DB, self._pkey(twin, second.encode(), first.encode()))

    async def clear_sender_key_devices(self, group: str) -> None:
        start = self._pkey(ProtocolTag.SENDER_KEY_DEVICE, validate.text(group, "group"))
        await self._write(lambda view: self._drop_skd(view, ProtocolTag.SENDER_KEY_DEVICE, start))

    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None:
        by_jid = ProtocolTag.SENDER_KEY_DEVICE_BY_JID
        starts = await self._batch(
            device_jids,
            lambda: [
                self._pkey(by_jid, jid)
                for jid in validate.each(device_jids, "device_jids", validate.text)
            ],
        )

        def op(view: WriteView) -> None:
            for start in starts:
                self._drop_skd(view, by_jid, start)

        await self._write(op)

    async def clear_all_sender_key_devices(self) -> None:
        tags = (ProtocolTag.SENDER_KEY_DEVICE, ProtocolTag.SENDER_KEY_DEVICE_BY_JID)

        def op(view: WriteView) -> None:
            for tag in tags:
                for k, _ in view.scan_prefix(_DB, keys.prefix(self._dev, tag)):
                    view.delete(_DB, k)

        await self._write(op)

    # -- LID <-> phone number --------------------------------------------------------------

    def _mapping(self, view: ReadView, lid: bytes) -> tuple[LidPnMappingEntry, int] | None:
        k = self._pkey(ProtocolTag.LID_MAPPING, lid)
        raw = view.get(_DB, k)
        return (
            None if raw is None else codec.load(_DB, k, raw, codec.read_lid_mapping(lid.decode()))
        )

    def _phone_index(self, entry: LidPnMappingEntry, seq: int) -> bytes:
        return self._key(
            ProtocolTag.LID_BY_PHONE,
            keys.s(entry.phone_number.encode()),
            keys.i64(entry.updated_at),
            keys.i64(seq),
            keys.s(entry.lid.encode()),
        )

    def _put_mapping(
        self, view: WriteView, entry: LidPnMappingEntry, seq: int | None = None
    ) -> None:
        """Upsert ``entry`` as the latest write (or, restoring an export, with its ``seq``)."""
        old = self._mapping(view, entry.lid.encode())
        if old is not None:
            entry.created_at = old[0].created_at  # the first sighting stays the creation
            view.delete(_DB, self._phone_index(*old))
        seq_key = self._key(ProtocolTag.WRITE_SEQ)
        seq_raw = view.get(_DB, seq_key)
        if seq_raw is not None and len(seq_raw) != 8:
            raise SerializationError(_DB, seq_key, "the write sequence is not 8 bytes")
        last = 0 if seq_raw is None else keys.read_i64(seq_raw, 0)[0]
        if seq is None and last == (1 << 63) - 1:
            raise SerializationError(_DB, seq_key, "the write sequence is exhausted")
        seq = last + 1 if seq is None else seq
        view.put(_DB, seq_key, keys.i64(max(last, seq)))
        view.put(
            _DB,
            self._pkey(ProtocolTag.LID_MAPPING, entry.lid.encode()),
            codec.dump_lid_mapping(entry, seq),
        )
        view.put(_DB, self._phone_index(entry, seq), b"")

    async def get_lid_mapping(self, lid: str) -> LidPnMappingEntry | None:
        raw = validate.text(lid, "lid")
        found = await self._read(lambda view: self._mapping(view, raw))
        return None if found is None else found[0]

    async def get_pn_mapping(self, phone: str) -> LidPnMappingEntry | None:
        start = self._pkey(ProtocolTag.LID_BY_PHONE, validate.text(phone, "phone"))

        def read(view: ReadView) -> LidPnMappingEntry | None:
            last = view.last(_DB, start)
            if last is None:
                return None
            lid = BY_NAME["lid_by_phone"].parse_key(last[0])[3]
            found = self._mapping(view, lid.encode())
            return None if found is None else found[0]

        return await self._read(read)

    async def put_lid_mapping(self, entry: LidPnMappingEntry) -> None:
        checked = validate.lid_mapping(entry)
        await self._write(lambda view: self._put_mapping(view, checked), 1)

    async def put_lid_mappings(self, entries: Sequence[LidPnMappingEntry]) -> None:
        await self._write_each(entries, "entries", validate.lid_mapping, self._put_mapping)

    async def get_all_lid_mappings(self) -> list[LidPnMappingEntry]:
        start = keys.prefix(self._dev, ProtocolTag.LID_MAPPING)

        def read(view: ReadView) -> list[LidPnMappingEntry]:
            return [
                codec.load(_DB, k, raw, codec.read_lid_mapping(_LID.parse_key(k)[0]))[0]
                for k, raw in view.scan_prefix(_DB, start)
            ]

        return await self._read_in_thread(read)

    # -- base keys -------------------------------------------------------------------------

    def _base_key(self, address: object, message_id: object) -> bytes:
        parts = validate.key_strings(((address, "address"), (message_id, "message_id")))
        return self._pkey(ProtocolTag.BASE_KEY, *parts)

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
        k = self._pkey(ProtocolTag.DEVICE_LIST, record.user.encode())
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
        k = self._pkey(ProtocolTag.DEVICE_LIST, raw)
        return await self._load(_DB, k, codec.read_device_list(raw.decode()))

    async def delete_devices(self, user: str) -> None:
        await self._delete(_DB, self._pkey(ProtocolTag.DEVICE_LIST, validate.text(user, "user")))

    # -- group metadata --------------------------------------------------------------------

    def _group_key(self, group: object) -> bytes:
        return self._pkey(ProtocolTag.GROUP_METADATA, validate.text(group, "group"))

    async def get_group_metadata(self, group: str) -> bytes | None:
        if self._inline:
            return self._named_blob(_DB, ProtocolTag.GROUP_METADATA, group, "group")
        return await self._off_loop(
            self._named_blob, _DB, ProtocolTag.GROUP_METADATA, group, "group"
        )

    async def put_group_metadata(self, group: str, blob: bytes) -> None:
        k = self._group_key(group)
        await self._put(_DB, k, codec.dump_blob(validate.blob(blob, "blob")))

    async def delete_group_metadata(self, group: str) -> None:
        await self._delete(_DB, self._group_key(group))

    # -- trusted-contact tokens ------------------------------------------------------------

    def _tc_key(self, jid: bytes) -> bytes:
        return self._pkey(ProtocolTag.TC_TOKEN, jid)

    def _tc_index(self, jid: bytes, entry: TcTokenEntry) -> bytes:
        return self._key(ProtocolTag.TC_TOKEN_BY_TIME, keys.i64(_tc_index_time(entry)), keys.s(jid))

    def _tc_get(self, view: ReadView, jid: bytes) -> TcTokenEntry | None:
        k = self._tc_key(jid)
        raw = view.get(_DB, k)
        return None if raw is None else codec.load(_DB, k, raw, codec.read_tc_token)

    def _tc_put(self, view: WriteView, jid: bytes, entry: TcTokenEntry) -> None:
        self._tc_delete(view, jid)
        view.put(_DB, self._tc_key(jid), codec.dump_tc_token(entry))
        view.put(_DB, self._tc_index(jid, entry), b"")

    def _tc_delete(self, view: WriteView, jid: bytes) -> bool:
        old = self._tc_get(view, jid)
        if old is None:
            return False
        view.delete(_DB, self._tc_key(jid))
        view.delete(_DB, self._tc_index(jid, old))
        return True

    async def get_tc_token(self, jid: str) -> TcTokenEntry | None:
        raw = validate.text(jid, "jid")
        return await self._read(lambda view: self._tc_get(view, raw))

    async def put_tc_token(self, jid: str, entry: TcTokenEntry) -> None:
        raw = validate.text(jid, "jid")
        checked = validate.tc_token(entry)
        await self._write(lambda view: self._tc_put(view, raw, checked), 1)

    async def delete_tc_token(self, jid: str) -> None:
        raw = validate.text(jid, "jid")
        await self._write(lambda view: self._tc_delete(view, raw), 1)

    async def get_all_tc_token_jids(self) -> list[str]:
        start = keys.prefix(self._dev, ProtocolTag.TC_TOKEN)

        def read(view: ReadView) -> list[str]:
            return [_TC.parse_key(k)[0] for k, _ in view.scan_prefix(_DB, start)]

        return await self._read_in_thread(read)

    async def delete_expired_tc_tokens(self, cutoff: int, sender_cutoff: int | None = None) -> int:
        token_cutoff, sent_cutoff = validate.tc_cutoffs(cutoff, sender_cutoff)
        start = keys.prefix(self._dev, ProtocolTag.TC_TOKEN_BY_TIME)
        # Entries at the minimum time (empty tokens) qualify whatever the cutoff.
        stop = start + keys.i64(max(token_cutoff, _EMPTY_TOKEN_TIME + 1))

        def op(view: WriteView) -> int:
            deleted = 0
            for k, _ in view.scan(_DB, start, stop):
                jid = BY_NAME["tc_token_by_time"].parse_key(k)[1].encode()
                entry = self._tc_get(view, jid)
                if entry is None:
                    continue
                if tc_token_expired(entry, token_cutoff, sent_cutoff):
                    deleted += self._tc_delete(view, jid)
            return deleted

        return await self._write(op)

    async def touch_tc_token_sender_timestamp(self, jid: str, ts: int) -> None:
        raw = validate.text(jid, "jid")
        at = validate.i64(ts, "ts")

        def op(view: WriteView) -> None:
            entry = touched_tc_token(self._tc_get(view, raw), at)
            if entry is not None:
                self._tc_put(view, raw, entry)

        await self._write(op, 1)

    async def store_received_tc_token(self, jid: str, token: bytes, ts: int) -> None:
        raw = validate.text(jid, "jid")
        value = validate.blob(token, "token")
        at = validate.i64(ts, "ts")

        def op(view: WriteView) -> None:
            entry = received_tc_token(self._tc_get(view, raw), value, at)
            if entry is not None:
                self._tc_put(view, raw, entry)

        await self._write(op, 1)

    # -- sent messages ---------------------------------------------------------------------

    def _sent(self) -> _TimedTable:
        return _TimedTable(self._dev, ProtocolTag.SENT_MESSAGE, ProtocolTag.SENT_MESSAGE_BY_TIME)

    def _sent_key(self, chat: object, message_id: object) -> bytes:
        parts = validate.key_strings(((chat, "chat"), (message_id, "message_id")), index_bytes=8)
        return self._sent().key(parts)

    async def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None:
        k = self._sent_key(chat, message_id)
        value = validate.blob(payload, "payload")
        at = clock.now()
        await self._write(lambda view: self._sent().put(view, k, value, at), 1)

    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None:
        k = self._sent_key(chat, message_id)
        return await self._write(lambda view: self._sent().pop(view, k), 1)

    async def delete_expired_sent_messages(self, cutoff: int) -> int:
        before = validate.i64(cutoff, "cutoff")
        return await self._write(lambda view: self._sent().expire(view, before))

    # -- pending inbound -------------------------------------------------------------------

    def _pending(self) -> _TimedTable:
        return _TimedTable(
            self._dev, ProtocolTag.PENDING_INBOUND, ProtocolTag.PENDING_INBOUND_BY_TIME
        )

    async def store_pending_inbound_batch(
        self, items: Sequence[tuple[str, str, str, bytes]]
    ) -> None:
        table = self._pending()
        rows = await self._batch(
            items,
            lambda: [
                (table.key(parts), message) for parts, message in validate.pending_messages(items)
            ],
        )
        at = clock.now()

        def op(view: WriteView) -> None:
            for k, message in rows:
                table.put(view, k, message, at)

        await self._write(op, len(rows))

    async def get_pending_inbound(self, chat: str, sender: str, message_id: str) -> bytes | None:
        k = self._pending().key(validate.message_key(chat, sender, message_id))
        found = await self._load(_DB, k, codec.read_timed)
        return None if found is None else found[0]

    async def delete_pending_inbound_batch(self, items: Sequence[tuple[str, str, str]]) -> None:
        table = self._pending()
        wanted = await self._batch(
            items, lambda: [table.key(parts) for parts in validate.pending_keys(items)]
        )

        def op(view: WriteView) -> None:
            for k in wanted:
                table.pop(view, k)

        await self._write(op, len(wanted))

    async def delete_expired_pending_inbound(self, cutoff: int) -> int:
        before = validate.i64(cutoff, "cutoff")
        return await self._write(lambda view: self._pending().expire(view, before))
