"""ContactStore in memory: the reference model of the LMDB and SQLite backends."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from lmdbstore import validate
from lmdbstore.testing.oracle.state import MemoryHandle
from lmdbstore.types import ContactInfo

if TYPE_CHECKING:
    from collections.abc import Sequence


class MemoryContactStore(MemoryHandle):
    """The `ContactStore` methods of `OracleStore`."""

    def _set_contact(self, jid: str, **change: Any) -> None:
        contacts = self._d.contacts
        contacts[jid] = dataclasses.replace(contacts.get(jid, ContactInfo()), found=True, **change)

    def _swap(self, jid: object, field: str, name: object) -> tuple[bool, str]:
        key = validate.text(jid, "jid").decode()
        value = validate.name(name, "name")
        previous: str = getattr(self._d.contacts.get(key, ContactInfo()), field)
        if previous != value:
            self._set_contact(key, **{field: value})
        return previous != value, previous

    async def put_push_name(self, jid: str, name: str) -> tuple[bool, str]:
        return self._swap(jid, "push_name", name)

    async def put_business_name(self, jid: str, name: str) -> tuple[bool, str]:
        return self._swap(jid, "business_name", name)

    async def put_contact_name(self, jid: str, *, first_name: str, full_name: str) -> None:
        key = validate.text(jid, "jid").decode()
        first = validate.name(first_name, "first_name")
        self._set_contact(key, first_name=first, full_name=validate.name(full_name, "full_name"))

    async def put_all_contact_names(self, items: Sequence[tuple[str, str, str]]) -> None:
        for jid, first, full in validate.contact_names(items):
            self._set_contact(jid.decode(), first_name=first, full_name=full)

    async def put_redacted_phones(self, items: Sequence[tuple[str, str]]) -> None:
        for jid, phone in validate.pairs(items, "items", validate.text, validate.name):
            self._set_contact(jid.decode(), redacted_phone=phone)

    async def get_contact(self, jid: str) -> ContactInfo:
        found = self._d.contacts.get(validate.text(jid, "jid").decode())
        return ContactInfo() if found is None else dataclasses.replace(found)

    async def get_all_contacts(self) -> dict[str, ContactInfo]:
        return {jid: dataclasses.replace(info) for jid, info in self._d.contacts.items()}
