"""SignalStore: sub-database ``signal``.

Keys (after ``device · tag``): identity, session and sender key by their name as a string
component; pre-keys and signed pre-keys by u32 id, so key order is numeric order and the
greatest id is the last key. Point reads run inline; writes go through the group-commit
writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import addresses, codec, validate
from lmdbstore.domains.handle import DomainHandle, named_blob_read, point_read
from lmdbstore.kinds import BY_NAME

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lmdbstore.kinds import Kind
    from lmdbstore.storage.view import ReadView, WriteView

_DB = "signal"
# The tags of the named records, for the hottest reads (`named_blob_read`).
_IDENTITY, _SESSION, _SENDER_KEY = (
    int(BY_NAME[name].tag) for name in ("identity", "session", "sender_key")
)


class SignalDomain(DomainHandle):
    """The `SignalStore` methods of every store."""

    def _numbered(self, kind: str, number: object, what: str) -> bytes:
        return self._records(kind).key((validate.u32(number, what),))

    async def _put_named_blobs(
        self, kind: Kind, items: Sequence[tuple[str, bytes]], *, length: int | None = None
    ) -> None:
        """A batch of (name, value) records of ``kind``."""
        rows = await self._batch(
            items,
            lambda: validate.pairs(
                items, "items", validate.text, lambda v, w: validate.blob(v, w, length=length)
            ),
        )
        await self._put_records(kind, rows)

    # -- identities ------------------------------------------------------------------------

    async def put_identity(self, address: str, key: bytes) -> None:
        k = self._named_key(_IDENTITY, address, "address")
        await self._put(_DB, k, codec.dump_blob(validate.identity_key(key, "key")))

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        await self._put_named_blobs(BY_NAME["identity"], items, length=32)

    load_identity = point_read(named_blob_read("load_identity", _DB, _IDENTITY, "address"))

    async def delete_identity(self, address: str) -> None:
        await self._delete(_DB, self._named_key(_IDENTITY, address, "address"))

    # -- sessions --------------------------------------------------------------------------

    get_session = point_read(named_blob_read("get_session", _DB, _SESSION, "address"))

    async def get_sessions_batch(self, addresses: Sequence[str]) -> dict[str, bytes]:
        def keyed() -> list[tuple[bytes, bytes]]:
            names = validate.each(addresses, "addresses", validate.text)
            sessions = self._records("session")
            return [(name, sessions.key((name,))) for name in names]

        wanted = await self._batch(addresses, keyed)

        def read(view: ReadView) -> dict[str, bytes]:
            found = {}
            for name, k in wanted:
                raw = view.get(_DB, k)
                if raw is not None:
                    found[name.decode()] = codec.load_blob(_DB, k, raw)
            return found

        return await self._read_batch(wanted, read)

    async def put_session(self, address: str, record: bytes) -> None:
        k = self._named_key(_SESSION, address, "address")
        await self._put(_DB, k, codec.dump_blob(validate.blob(record, "record")))

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        await self._put_named_blobs(BY_NAME["session"], items)

    async def delete_session(self, address: str) -> None:
        await self._delete(_DB, self._named_key(_SESSION, address, "address"))

    async def has_session(self, address: str) -> bool:
        k = self._named_key(_SESSION, address, "address")
        return await self._read(lambda view: view.get(_DB, k) is not None)

    def _user_starts(self, user: object, *kinds: str) -> list[bytes]:
        """The key prefixes of the records of ``kinds`` of the bare ``user``: ``user:``
        (every device) and ``user@`` (device 0), in key order."""
        raw = addresses.bare_user(user, "user")
        return [self._records(kind).key(()) + raw + sep for kind in kinds for sep in (b":", b"@")]

    async def has_signal_state_for_user(self, user: str) -> bool:
        starts = self._user_starts(user, "identity", "session")

        def read(view: ReadView) -> bool:
            return any(next(view.scan_prefix(_DB, p), None) is not None for p in starts)

        return await self._read(read)

    async def get_session_addresses(self, user: str) -> list[str]:
        starts = self._user_starts(user, "session")
        session = BY_NAME["session"]

        def read(view: ReadView) -> list[str]:
            # One user's devices: a handful of keys, read where reads run.
            return [session.parse_key(k)[0] for p in starts for k, _ in view.scan_prefix(_DB, p)]

        return await self._read(read)

    async def _delete_of_user(self, user: object, kind: str) -> int:
        starts = self._user_starts(user, kind)

        def op(view: WriteView) -> int:
            doomed = [k for p in starts for k, _ in view.scan_prefix(_DB, p)]
            for k in doomed:
                view.delete(_DB, k)
            return len(doomed)

        return await self._write(op)

    async def delete_all_sessions(self, user: str) -> int:
        return await self._delete_of_user(user, "session")

    async def delete_all_identities(self, user: str) -> int:
        return await self._delete_of_user(user, "identity")

    async def is_trusted_identity(self, address: str, key: bytes) -> bool:
        k = self._named_key(_IDENTITY, address, "address")
        wanted = validate.identity_key(key, "key")
        stored = await self._load_blob(_DB, k)
        return stored is None or stored == wanted

    # -- pre-keys --------------------------------------------------------------------------

    async def store_prekey(self, prekey_id: int, record: bytes, uploaded: bool = False) -> None:
        k = self._numbered("prekey", prekey_id, "prekey_id")
        value = codec.dump_prekey(
            validate.blob(record, "record"), validate.flag(uploaded, "uploaded")
        )
        await self._put(_DB, k, value)

    async def store_prekeys_batch(
        self, items: Sequence[tuple[int, bytes]], uploaded: bool = False
    ) -> None:
        def rows() -> list[tuple[int, bytes, bool]]:
            checked = validate.pairs(items, "items", validate.u32, validate.blob)
            flag = validate.flag(uploaded, "uploaded")
            return [(i, record, flag) for i, record in checked]

        await self._put_records(BY_NAME["prekey"], await self._batch(items, rows))

    async def load_prekey(self, prekey_id: int) -> bytes | None:
        k = self._numbered("prekey", prekey_id, "prekey_id")
        raw = await self._get(_DB, k)
        return None if raw is None else codec.load_prekey(_DB, k, raw)[0]

    async def load_prekeys_batch(self, prekey_ids: Sequence[int]) -> list[tuple[int, bytes]]:
        ids = await self._batch(
            prekey_ids, lambda: validate.each(prekey_ids, "prekey_ids", validate.u32)
        )

        prekeys = self._records("prekey")

        def read(view: ReadView) -> list[tuple[int, bytes]]:
            found = []
            for i in ids:
                k = prekeys.key((i,))
                raw = view.get(_DB, k)
                if raw is not None:
                    found.append((i, codec.load_prekey(_DB, k, raw)[0]))
            return found

        return await self._read_batch(ids, read)

    async def mark_prekeys_uploaded(self, prekey_ids: Sequence[int]) -> None:
        prekeys = self._records("prekey")
        wanted = await self._batch(
            prekey_ids,
            lambda: [
                prekeys.key((i,)) for i in validate.each(prekey_ids, "prekey_ids", validate.u32)
            ],
        )

        def op(view: WriteView) -> None:
            for k in wanted:
                raw = view.get(_DB, k)
                if raw is None:
                    continue  # removed meanwhile: never resurrect it
                record, uploaded = codec.load_prekey(_DB, k, raw)
                if not uploaded:
                    view.put(_DB, k, codec.dump_prekey(record, True))

        await self._write(op, len(wanted))

    async def remove_prekey(self, prekey_id: int) -> None:
        await self._delete(_DB, self._numbered("prekey", prekey_id, "prekey_id"))

    async def get_max_prekey_id(self) -> int:
        start = self._records("prekey").key(())
        last = await self._read(lambda view: view.last(_DB, start))
        return 0 if last is None else int(BY_NAME["prekey"].parse_key(last[0])[0])

    # -- signed pre-keys -------------------------------------------------------------------

    async def store_signed_prekey(self, signed_prekey_id: int, record: bytes) -> None:
        k = self._numbered("signed_prekey", signed_prekey_id, "signed_prekey_id")
        await self._put(_DB, k, codec.dump_blob(validate.blob(record, "record")))

    async def load_signed_prekey(self, signed_prekey_id: int) -> bytes | None:
        k = self._numbered("signed_prekey", signed_prekey_id, "signed_prekey_id")
        return await self._load_blob(_DB, k)

    async def load_all_signed_prekeys(self) -> list[tuple[int, bytes]]:
        start = self._records("signed_prekey").key(())

        def read(view: ReadView) -> list[tuple[int, bytes]]:
            return [
                (BY_NAME["signed_prekey"].parse_key(k)[0], codec.load_blob(_DB, k, raw))
                for k, raw in view.scan_prefix(_DB, start)
            ]

        # A device keeps a handful of signed pre-keys: an inline read is cheaper than a hop.
        return await self._read(read)

    async def remove_signed_prekey(self, signed_prekey_id: int) -> None:
        k = self._numbered("signed_prekey", signed_prekey_id, "signed_prekey_id")
        await self._delete(_DB, k)

    # -- sender keys -----------------------------------------------------------------------

    async def put_sender_key(self, name: str, record: bytes) -> None:
        k = self._named_key(_SENDER_KEY, name, "name")
        await self._put(_DB, k, codec.dump_blob(validate.blob(record, "record")))

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        await self._put_named_blobs(BY_NAME["sender_key"], items)

    get_sender_key = point_read(named_blob_read("get_sender_key", _DB, _SENDER_KEY, "name"))

    async def delete_sender_key(self, name: str) -> None:
        await self._delete(_DB, self._named_key(_SENDER_KEY, name, "name"))

    # -- PN -> LID -------------------------------------------------------------------------

    async def migrate_pn_to_lid(self, pn_user: str, lid_user: str) -> int:
        pn = addresses.bare_user(pn_user, "pn_user").decode()
        lid = addresses.bare_user(lid_user, "lid_user").decode()
        named = [self._records(kind) for kind in ("session", "identity")]
        sender_keys = self._records("sender_key")

        def moves(view: WriteView) -> list[tuple[bytes, bytes, bytes]]:
            """(old key, new key, value) of every PN record, read before anything changes."""
            found = []
            for records in named:
                for sep in (b"@", b":"):
                    for k, value in view.scan_prefix(_DB, records.key(()) + pn.encode() + sep):
                        name = records.kind.parse_key(k)[0]
                        new = addresses.pn_to_lid_address(name, pn, lid)
                        if new is not None:
                            raw = addresses.migrated_name(new, "migrated address")
                            found.append((k, records.key((raw,)), value))
            # Sender keys are named by group first: the user is inside, so all are read.
            for k, value in view.scan_prefix(_DB, sender_keys.key(())):
                name = sender_keys.kind.parse_key(k)[0]
                new = addresses.pn_to_lid_sender_key_name(name, pn, lid)
                if new is not None:
                    raw = addresses.migrated_name(new, "migrated sender-key name")
                    found.append((k, sender_keys.key((raw,)), value))
            return found

        def op(view: WriteView) -> int:
            found = moves(view)
            for old, new, value in found:
                if view.get(_DB, new) is None:  # an existing LID record is newer: keep it
                    view.put(_DB, new, value)
                view.delete(_DB, old)
            return len(found)

        return await self._write(op)
