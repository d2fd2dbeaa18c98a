"""SignalStore in memory: the reference model of the LMDB and SQLite backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import addresses, validate
from lmdbstore.testing.oracle.state import MemoryHandle

if TYPE_CHECKING:
    from collections.abc import Sequence


def _text(value: object, what: str) -> str:
    return validate.text(value, what).decode()


class MemorySignalStore(MemoryHandle):
    """The `SignalStore` methods of `OracleStore`."""

    async def put_identity(self, address: str, key: bytes) -> None:
        name = _text(address, "address")
        self._d.identities[name] = validate.identity_key(key, "key")

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        checked = validate.pairs(items, "items", _text, validate.identity_key)
        self._d.identities.update(checked)

    async def load_identity(self, address: str) -> bytes | None:
        return self._d.identities.get(_text(address, "address"))

    async def delete_identity(self, address: str) -> None:
        self._d.identities.pop(_text(address, "address"), None)

    async def get_session(self, address: str) -> bytes | None:
        return self._d.sessions.get(_text(address, "address"))

    async def get_sessions_batch(self, addresses: Sequence[str]) -> dict[str, bytes]:
        names = validate.each(addresses, "addresses", _text)
        sessions = self._d.sessions
        return {name: sessions[name] for name in names if name in sessions}

    async def put_session(self, address: str, record: bytes) -> None:
        name = _text(address, "address")
        self._d.sessions[name] = validate.blob(record, "record")

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        self._d.sessions.update(validate.pairs(items, "items", _text, validate.blob))

    async def delete_session(self, address: str) -> None:
        self._d.sessions.pop(_text(address, "address"), None)

    async def has_session(self, address: str) -> bool:
        return _text(address, "address") in self._d.sessions

    async def has_signal_state_for_user(self, user: str) -> bool:
        name = addresses.bare_user(user, "user").decode()
        d = self._d
        return any(
            addresses.belongs_to(address, name)
            for table in (d.identities, d.sessions)
            for address in table
        )

    def _of_user(self, table: dict[str, bytes], user: object) -> list[str]:
        name = addresses.bare_user(user, "user").decode()
        return sorted((a for a in table if addresses.belongs_to(a, name)), key=str.encode)

    async def get_session_addresses(self, user: str) -> list[str]:
        return self._of_user(self._d.sessions, user)

    async def delete_all_sessions(self, user: str) -> int:
        doomed = self._of_user(self._d.sessions, user)
        for address in doomed:
            del self._d.sessions[address]
        return len(doomed)

    async def delete_all_identities(self, user: str) -> int:
        doomed = self._of_user(self._d.identities, user)
        for address in doomed:
            del self._d.identities[address]
        return len(doomed)

    async def is_trusted_identity(self, address: str, key: bytes) -> bool:
        name = _text(address, "address")
        stored = self._d.identities.get(name)
        return stored is None or stored == validate.identity_key(key, "key")

    async def store_prekey(self, prekey_id: int, record: bytes, uploaded: bool = False) -> None:
        i = validate.u32(prekey_id, "prekey_id")
        value = (validate.blob(record, "record"), validate.flag(uploaded, "uploaded"))
        self._d.prekeys[i] = value

    async def store_prekeys_batch(
        self, items: Sequence[tuple[int, bytes]], uploaded: bool = False
    ) -> None:
        checked = validate.pairs(items, "items", validate.u32, validate.blob)
        flag = validate.flag(uploaded, "uploaded")
        self._d.prekeys.update((i, (record, flag)) for i, record in checked)

    async def load_prekey(self, prekey_id: int) -> bytes | None:
        found = self._d.prekeys.get(validate.u32(prekey_id, "prekey_id"))
        return None if found is None else found[0]

    async def load_prekeys_batch(self, prekey_ids: Sequence[int]) -> list[tuple[int, bytes]]:
        ids = validate.each(prekey_ids, "prekey_ids", validate.u32)
        prekeys = self._d.prekeys
        return [(i, prekeys[i][0]) for i in ids if i in prekeys]

    async def mark_prekeys_uploaded(self, prekey_ids: Sequence[int]) -> None:
        ids = validate.each(prekey_ids, "prekey_ids", validate.u32)
        prekeys = self._d.prekeys
        for i in ids:
            if i in prekeys:
                prekeys[i] = (prekeys[i][0], True)

    async def remove_prekey(self, prekey_id: int) -> None:
        self._d.prekeys.pop(validate.u32(prekey_id, "prekey_id"), None)

    async def get_max_prekey_id(self) -> int:
        return max(self._d.prekeys, default=0)

    async def store_signed_prekey(self, signed_prekey_id: int, record: bytes) -> None:
        i = validate.u32(signed_prekey_id, "signed_prekey_id")
        self._d.signed_prekeys[i] = validate.blob(record, "record")

    async def load_signed_prekey(self, signed_prekey_id: int) -> bytes | None:
        return self._d.signed_prekeys.get(validate.u32(signed_prekey_id, "signed_prekey_id"))

    async def load_all_signed_prekeys(self) -> list[tuple[int, bytes]]:
        return sorted(self._d.signed_prekeys.items())

    async def remove_signed_prekey(self, signed_prekey_id: int) -> None:
        self._d.signed_prekeys.pop(validate.u32(signed_prekey_id, "signed_prekey_id"), None)

    async def put_sender_key(self, name: str, record: bytes) -> None:
        checked = _text(name, "name")
        self._d.sender_keys[checked] = validate.blob(record, "record")

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        self._d.sender_keys.update(validate.pairs(items, "items", _text, validate.blob))

    async def get_sender_key(self, name: str) -> bytes | None:
        return self._d.sender_keys.get(_text(name, "name"))

    async def delete_sender_key(self, name: str) -> None:
        self._d.sender_keys.pop(_text(name, "name"), None)

    async def migrate_pn_to_lid(self, pn_user: str, lid_user: str) -> int:
        pn = addresses.bare_user(pn_user, "pn_user").decode()
        lid = addresses.bare_user(lid_user, "lid_user").decode()
        d = self._d
        plan = []  # (table, old, new): computed whole first, so a bad name changes nothing
        for table in (d.sessions, d.identities):
            for old in sorted(table):
                new = addresses.pn_to_lid_address(old, pn, lid)
                if new is not None:
                    addresses.migrated_name(new, "migrated address")
                    plan.append((table, old, new))
        for old in sorted(d.sender_keys):
            new = addresses.pn_to_lid_sender_key_name(old, pn, lid)
            if new is not None:
                addresses.migrated_name(new, "migrated sender-key name")
                plan.append((d.sender_keys, old, new))
        for table, old, new in plan:
            value = table.pop(old)
            table.setdefault(new, value)  # an existing LID record is newer: keep it
        return len(plan)
