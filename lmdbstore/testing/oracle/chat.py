"""ChatSettingsStore in memory: the reference model of the LMDB and SQLite backends."""

from __future__ import annotations

import dataclasses
from typing import Any

from lmdbstore import validate
from lmdbstore.testing.oracle.state import MemoryHandle
from lmdbstore.types import ChatSettings


class MemoryChatSettingsStore(MemoryHandle):
    """The `ChatSettingsStore` methods of `OracleStore`."""

    def _set(self, chat: object, **change: Any) -> None:
        name = validate.text(chat, "chat").decode()
        settings = self._d.chat_settings
        settings[name] = dataclasses.replace(settings.get(name, ChatSettings()), **change)

    async def put_muted_until(self, chat: str, until: int) -> None:
        self._set(chat, found=True, muted_until=validate.muted_until(until, "until"))

    async def put_pinned(self, chat: str, pinned: bool) -> None:
        self._set(chat, found=True, pinned=validate.flag(pinned, "pinned"))

    async def put_archived(self, chat: str, archived: bool) -> None:
        self._set(chat, found=True, archived=validate.flag(archived, "archived"))

    async def get_chat_settings(self, chat: str) -> ChatSettings:
        found = self._d.chat_settings.get(validate.text(chat, "chat").decode())
        return ChatSettings() if found is None else dataclasses.replace(found)
