"""ChatSettingsStore: sub-database ``chat``, one record per chat (``chat_settings``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import validate
from lmdbstore.domains.handle import DomainHandle
from lmdbstore.types import ChatSettings

if TYPE_CHECKING:
    from lmdbstore.storage.view import WriteView

_DEFAULTS = (0, False, False)
"""muted_until, pinned, archived of a chat with no record."""


class ChatSettingsDomain(DomainHandle):
    """The `ChatSettingsStore` methods of every store."""

    async def _set_field(self, chat: object, field: int, value: object) -> None:
        """Set one field of the chat's record (0 muted_until, 1 pinned, 2 archived),
        creating it with the defaults."""
        raw = validate.text(chat, "chat")
        records = self._records("chat_settings")

        def op(view: WriteView) -> None:
            old = records.get(view, (raw,))
            new = list(_DEFAULTS if old is None else old)
            new[field] = value
            records.put(view, (raw,), tuple(new), old)

        await self._write(op, 1)

    async def put_muted_until(self, chat: str, until: int) -> None:
        await self._set_field(chat, 0, validate.muted_until(until, "until"))

    async def put_pinned(self, chat: str, pinned: bool) -> None:
        await self._set_field(chat, 1, validate.flag(pinned, "pinned"))

    async def put_archived(self, chat: str, archived: bool) -> None:
        await self._set_field(chat, 2, validate.flag(archived, "archived"))

    async def get_chat_settings(self, chat: str) -> ChatSettings:
        raw = validate.text(chat, "chat")
        records = self._records("chat_settings")
        found = await self._read(lambda view: records.get(view, (raw,)))
        return ChatSettings() if found is None else ChatSettings(True, *found)
