"""Conformance tests of the stores whatsmeow keeps and version 1 lacked (DESIGN.md
section 1b): chat settings."""

from __future__ import annotations

from typing import Any

import pytest

from lmdbstore.errors import ValidationError
from lmdbstore.types import MUTED_FOREVER, ChatSettings

CHAT = "120363@g.us"
OTHER = "5511@s.whatsapp.net"


async def peer_state(store: Any) -> tuple[object, ...]:
    """What a rejected call below could have changed, read through the public API."""
    return (
        await store.get_chat_settings(CHAT),
        await store.get_chat_settings(OTHER),
    )


async def fill_peer_kinds(store: Any) -> None:
    """At least one record of every kind of this section (verify, export, migration)."""
    await store.put_muted_until(CHAT, MUTED_FOREVER)
    await store.put_archived(OTHER, True)


BAD_CALLS: list[tuple[str, tuple[object, ...]]] = [
    ("put_muted_until", (CHAT, -2)),
    ("put_muted_until", (CHAT, "1")),
    ("put_muted_until", (CHAT, 2**63)),
    ("put_muted_until", ("", 5)),
    ("put_pinned", (CHAT, 1)),
    ("put_pinned", (None, True)),
    ("put_archived", (CHAT, "yes")),
    ("put_archived", ("x" * 256, True)),
    ("get_chat_settings", ("",)),
    ("get_chat_settings", (b"chat",)),
]


class PeerConformance:
    """The stores of DESIGN.md section 1b. Needs a ``store`` fixture."""

    pytestmark = pytest.mark.anyio

    async def test_chat_settings_each_write_sets_one_field(self, store: Any) -> None:
        assert await store.get_chat_settings(CHAT) == ChatSettings()
        await store.put_pinned(CHAT, True)
        assert await store.get_chat_settings(CHAT) == ChatSettings(True, 0, True, False)
        await store.put_muted_until(CHAT, 1_700_000_000)
        await store.put_archived(CHAT, True)
        assert await store.get_chat_settings(CHAT) == ChatSettings(True, 1_700_000_000, True, True)
        await store.put_muted_until(CHAT, MUTED_FOREVER)
        await store.put_pinned(CHAT, False)
        assert await store.get_chat_settings(CHAT) == ChatSettings(True, -1, False, True)
        await store.put_muted_until(CHAT, 0)  # unmuted: the record stays
        assert await store.get_chat_settings(CHAT) == ChatSettings(True, 0, False, True)
        assert await store.get_chat_settings(OTHER) == ChatSettings()

    async def test_chat_settings_of_devices_are_isolated(self, store: Any) -> None:
        async with store.for_device(2) as other:
            await other.put_pinned(CHAT, True)
            assert await store.get_chat_settings(CHAT) == ChatSettings()
            assert (await other.get_chat_settings(CHAT)).pinned

    @pytest.mark.parametrize(("method", "args"), BAD_CALLS, ids=lambda v: str(v)[:40])
    async def test_peer_bad_input_is_refused_and_writes_nothing(
        self, store: Any, method: str, args: tuple[object, ...]
    ) -> None:
        await fill_peer_kinds(store)
        before = await peer_state(store)
        with pytest.raises(ValidationError):
            await getattr(store, method)(*args)
        assert await peer_state(store) == before
