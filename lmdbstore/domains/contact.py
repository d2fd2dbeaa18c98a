"""ContactStore: sub-database ``contact``, one record per contact JID (``contact``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import validate
from lmdbstore.domains.handle import DomainHandle
from lmdbstore.types import ContactInfo

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from lmdbstore.storage.view import ReadView, WriteView

_NONE = ("", "", "", "", "")
"""The fields of a contact with no record: first, full, push, business name, phone."""
_FIRST, _FULL, _PUSH, _BUSINESS, _PHONE = range(5)


class ContactDomain(DomainHandle):
    """The `ContactStore` methods of every store."""

    def _set_fields(self, view: WriteView, jid: bytes, changes: dict[int, str]) -> None:
        """Set some fields of the contact's record, creating it with empty names."""
        records = self._records("contact")
        old = records.get(view, (jid,))
        fields = list(_NONE if old is None else old)
        for field, value in changes.items():
            fields[field] = value
        records.put(view, (jid,), tuple(fields), old)

    async def _compare_and_set(self, jid: object, field: int, name: object) -> tuple[bool, str]:
        raw = validate.text(jid, "jid")
        value = validate.name(name, "name")
        records = self._records("contact")

        def op(view: WriteView) -> tuple[bool, str]:
            old = records.get(view, (raw,))
            previous = str((_NONE if old is None else old)[field])
            if previous != value:
                self._set_fields(view, raw, {field: value})
            return previous != value, previous

        return await self._write(op, 1)

    async def put_push_name(self, jid: str, name: str) -> tuple[bool, str]:
        return await self._compare_and_set(jid, _PUSH, name)

    async def put_business_name(self, jid: str, name: str) -> tuple[bool, str]:
        return await self._compare_and_set(jid, _BUSINESS, name)

    async def _set_each(self, rows: Iterable[tuple[bytes, dict[int, str]]], count: int) -> None:
        def op(view: WriteView) -> None:
            for jid, changes in rows:
                self._set_fields(view, jid, changes)

        await self._write(op, count)

    async def put_contact_name(self, jid: str, *, first_name: str, full_name: str) -> None:
        raw = validate.text(jid, "jid")
        changes = {
            _FIRST: validate.name(first_name, "first_name"),
            _FULL: validate.name(full_name, "full_name"),
        }
        await self._set_each([(raw, changes)], 1)

    async def put_all_contact_names(self, items: Sequence[tuple[str, str, str]]) -> None:
        rows = await self._batch(items, lambda: validate.contact_names(items))
        await self._set_each(
            [(jid, {_FIRST: first, _FULL: full}) for jid, first, full in rows], len(rows)
        )

    async def put_redacted_phones(self, items: Sequence[tuple[str, str]]) -> None:
        rows = await self._batch(
            items, lambda: validate.pairs(items, "items", validate.text, validate.name)
        )
        await self._set_each([(jid, {_PHONE: phone}) for jid, phone in rows], len(rows))

    async def get_contact(self, jid: str) -> ContactInfo:
        raw = validate.text(jid, "jid")
        records = self._records("contact")
        found = await self._read(lambda view: records.get(view, (raw,)))
        return ContactInfo() if found is None else ContactInfo(True, *found)

    async def get_all_contacts(self) -> dict[str, ContactInfo]:
        records = self._records("contact")

        def read(view: ReadView) -> dict[str, ContactInfo]:
            return {jid: ContactInfo(True, *fields) for (jid,), fields in records.scan(view)}

        return await self._read_in_thread(read)
