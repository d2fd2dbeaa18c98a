"""Conformance tests of the stores whatsmeow keeps and version 1 lacked (DESIGN.md
section 1b): contacts, chat settings, the event buffer."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from lmdbstore import clock
from lmdbstore.errors import DeviceDeletedError, TransactionConflictError, ValidationError
from lmdbstore.types import MUTED_FOREVER, BufferedEvent, ChatSettings, ContactInfo

CHAT = "120363@g.us"
OTHER = "5511@s.whatsapp.net"
FILLED_RECORDS = 29
"""How many records `fill_every_kind` writes into one device (indexes not counted)."""
HASH = bytes(range(32))
HASH2 = bytes(range(1, 33))


async def peer_state(store: Any) -> tuple[object, ...]:
    """What a rejected call below could have changed, read through the public API."""
    return (
        await store.get_chat_settings(CHAT),
        await store.get_chat_settings(OTHER),
        await store.get_all_contacts(),
        await store.get_buffered_event(HASH),
        await store.get_buffered_event(HASH2),
        await store.get_outgoing_event(CHAT, "m1"),
    )


async def fill_peer_kinds(store: Any) -> None:
    """At least one record of every kind of this section (verify, export, migration)."""
    await store.put_muted_until(CHAT, MUTED_FOREVER)
    await store.put_archived(OTHER, True)
    await store.put_push_name(OTHER, "Ana")
    await store.put_contact_name("4477@s.whatsapp.net", first_name="Bo", full_name="Bo B")
    await store.put_buffered_event(HASH, b"plaintext", 1_700_000_000)
    await store.add_outgoing_event(CHAT, "m1", "wa", b"outgoing")


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
    ("put_push_name", (OTHER, None)),
    ("put_push_name", ("", "Ana")),
    ("put_push_name", (OTHER, "x" * 4097)),
    ("put_business_name", (OTHER, "\udcff")),
    ("put_push_name", (OTHER, "A\x00B")),
    ("put_all_contact_names", ([(OTHER, "A", "B"), ("", "C", "D")],)),
    ("put_all_contact_names", ([(OTHER, "A", "B"), (OTHER, "C")],)),
    ("put_all_contact_names", ((OTHER, "A", "B"),)),
    ("put_redacted_phones", ([(OTHER, "+55••"), (OTHER, 55)],)),
    ("put_redacted_phones", ("+55",)),
    ("get_contact", ("",)),
    ("get_buffered_event", (HASH[:31],)),
    ("get_buffered_event", ("hash",)),
    ("put_buffered_event", (HASH2, "text", 1)),
    ("put_buffered_event", (HASH2, b"p", "1")),
    ("put_buffered_event", (HASH2 + b"!", b"p", 1)),
    ("clear_buffered_event_plaintext", (None,)),
    ("delete_old_buffered_hashes", ("now",)),
    ("delete_old_buffered_hashes", (2**63,)),
    ("add_outgoing_event", (CHAT, "", "wa", b"p")),
    ("add_outgoing_event", (CHAT, "m2", None, b"p")),
    ("add_outgoing_event", (CHAT, "m2", "wa", "p")),
    ("get_outgoing_event", (CHAT, "m1", "")),
    ("get_outgoing_event", ("", "m1")),
    ("delete_old_outgoing_events", (1.5,)),
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

    async def test_contacts(self, store: Any) -> None:
        assert await store.get_contact(OTHER) == ContactInfo()
        assert await store.put_push_name(OTHER, "") == (False, "")  # nothing to change
        assert await store.get_all_contacts() == {}
        assert await store.put_push_name(OTHER, "Ana") == (True, "")
        assert await store.put_push_name(OTHER, "Ana") == (False, "Ana")
        assert await store.put_push_name(OTHER, "Ana M") == (True, "Ana")
        assert await store.put_business_name(OTHER, "Ana Ltd") == (True, "")
        await store.put_contact_name(OTHER, first_name="Ana", full_name="Ana Maria")
        await store.put_redacted_phones([(OTHER, "+55 11 ••••-1234")])
        assert await store.get_contact(OTHER) == ContactInfo(
            True, "Ana", "Ana Maria", "Ana M", "Ana Ltd", "+55 11 ••••-1234"
        )
        await store.put_all_contact_names(
            [("a@s.whatsapp.net", "A", "A A"), (OTHER, "X", "Y"), ("a@s.whatsapp.net", "B", "")]
        )
        await store.put_redacted_phones([("b@s.whatsapp.net", "+1"), ("b@s.whatsapp.net", "+2")])
        everyone = await store.get_all_contacts()
        assert everyone == {
            OTHER: ContactInfo(True, "X", "Y", "Ana M", "Ana Ltd", "+55 11 ••••-1234"),
            "a@s.whatsapp.net": ContactInfo(True, "B", ""),
            "b@s.whatsapp.net": ContactInfo(True, redacted_phone="+2"),
        }

    async def test_concurrent_identical_push_names_change_once(self, store: Any) -> None:
        results = []

        async def put() -> None:
            results.append(await store.put_push_name(OTHER, "Ana"))

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(put)
        assert sorted(results) == [(False, "Ana")] * 7 + [(True, "")]

    async def test_buffered_events(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(clock, "now", lambda: 1_000)
        assert await store.get_buffered_event(HASH) is None
        assert await store.put_buffered_event(HASH, b"plain", 900)
        assert await store.get_buffered_event(HASH) == BufferedEvent(b"plain", 900, 1_000)
        assert not await store.put_buffered_event(HASH, b"other", 901)  # kept
        await store.clear_buffered_event_plaintext(HASH)
        assert await store.get_buffered_event(HASH) == BufferedEvent(None, 900, 1_000)
        assert not await store.put_buffered_event(HASH, b"plain", 900)  # never revived
        await store.clear_buffered_event_plaintext(HASH2)  # absent: nothing
        assert await store.get_buffered_event(HASH2) is None
        monkeypatch.setattr(clock, "now", lambda: 2_000)
        assert await store.put_buffered_event(HASH2, None, 1)
        assert await store.delete_old_buffered_hashes(1_000) == 0
        assert await store.delete_old_buffered_hashes(1_001) == 1
        assert await store.get_buffered_event(HASH) is None
        monkeypatch.setattr(clock, "now", lambda: 2_000 + 14 * 86_400)
        assert await store.delete_old_buffered_hashes() == 0  # default: 14 days back
        monkeypatch.setattr(clock, "now", lambda: 2_001 + 14 * 86_400)
        assert await store.delete_old_buffered_hashes() == 1

    async def test_one_of_two_concurrent_decrypts_of_a_ciphertext_commits(self, store: Any) -> None:
        entered = anyio.Event()
        outcomes: list[str] = []

        async def decrypt(plaintext: bytes) -> None:
            try:
                async with store.transaction() as tx:
                    assert await tx.get_buffered_event(HASH) is None
                    assert await tx.put_buffered_event(HASH, plaintext, 5)
                    await tx.put_session(OTHER, plaintext)
                    if not entered.is_set():
                        entered.set()
                        await anyio.sleep(0.05)
                    else:
                        await anyio.sleep(0)
                outcomes.append("committed")
            except TransactionConflictError:
                outcomes.append("conflict")

        async with anyio.create_task_group() as tg:
            tg.start_soon(decrypt, b"first")
            await entered.wait()
            tg.start_soon(decrypt, b"second")
        assert sorted(outcomes) == ["committed", "conflict"]
        found = await store.get_buffered_event(HASH)
        assert found is not None and await store.get_session(OTHER) == found.plaintext

    async def test_outgoing_events(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(clock, "now", lambda: 1_000)
        await store.add_outgoing_event(CHAT, "m1", "wa", b"one")
        await store.add_outgoing_event(OTHER, "m2", "fb", b"two")
        assert await store.get_outgoing_event(CHAT, "m1") == ("wa", b"one")
        assert await store.get_outgoing_event(CHAT, "m1") == ("wa", b"one")  # not consumed
        assert await store.get_outgoing_event("8888@lid", "m2") is None
        assert await store.get_outgoing_event("8888@lid", "m2", OTHER) == ("fb", b"two")
        monkeypatch.setattr(clock, "now", lambda: 2_000)
        await store.add_outgoing_event(CHAT, "m1", "wa", b"again")  # upsert, time now
        assert await store.delete_old_outgoing_events(1_001) == 1
        assert await store.get_outgoing_event(OTHER, "m2") is None
        assert await store.get_outgoing_event(CHAT, "m1") == ("wa", b"again")
        monkeypatch.setattr(clock, "now", lambda: 2_001 + 7 * 86_400)
        assert await store.delete_old_outgoing_events() == 1  # default: 7 days back

    async def test_put_contact_name_refuses_bad_names_and_writes_nothing(self, store: Any) -> None:
        await fill_peer_kinds(store)
        before = await peer_state(store)
        for first, full in ((None, "x"), ("x", b"y"), ("x" * 4097, "")):
            with pytest.raises(ValidationError):
                await store.put_contact_name(OTHER, first_name=first, full_name=full)
        with pytest.raises(ValidationError):
            await store.put_contact_name("", first_name="a", full_name="b")
        assert await peer_state(store) == before

    async def test_delete_device_deletes_every_record_and_ends_every_handle(
        self, store: Any
    ) -> None:
        from lmdbstore.testing.protocol import fill_every_kind

        await fill_every_kind(store)
        twin = store.for_device(store.device_id)
        block = twin.transaction()
        tx = await block.__aenter__()
        await tx.put_session("late@lid", b"written by a transaction open meanwhile")
        async with store.for_device(2) as other:
            await other.put_session(OTHER, b"another device")
            assert await store.delete_device() == FILLED_RECORDS
            for handle in (store, twin, tx):
                with pytest.raises(DeviceDeletedError):
                    await handle.get_session(OTHER)
                with pytest.raises(DeviceDeletedError):
                    await handle.load()
            with pytest.raises(DeviceDeletedError):
                await store.put_session(OTHER, b"refused")
            with pytest.raises(DeviceDeletedError):
                await block.__aexit__(None, None, None)  # the transaction writes nothing
            assert await twin.delete_device() == 0
            assert await store.delete_device() == 0
            assert await other.device_ids() == [2]
            async with other.for_device(store.device_id) as fresh:  # a new, empty life
                assert await fresh.get_session("late@lid") is None
                assert await fresh.load() is None
                assert await fresh.get_all_contacts() == {}
                assert await fresh.get_lid_mapping("9@lid") is None
                assert await fresh.verify() == []
                await fresh.put_session(OTHER, b"again")
                assert await fresh.get_session(OTHER) == b"again"
            assert await other.get_session(OTHER) == b"another device"
        await twin.close()

    async def test_delete_device_is_refused_in_a_transaction(self, store: Any) -> None:
        await fill_peer_kinds(store)
        before = await peer_state(store)
        async with store.transaction() as tx:
            with pytest.raises(ValidationError):
                await tx.delete_device()
        assert await peer_state(store) == before

    @pytest.mark.parametrize(("method", "args"), BAD_CALLS, ids=lambda v: str(v)[:40])
    async def test_peer_bad_input_is_refused_and_writes_nothing(
        self, store: Any, method: str, args: tuple[object, ...]
    ) -> None:
        await fill_peer_kinds(store)
        before = await peer_state(store)
        with pytest.raises(ValidationError):
            await getattr(store, method)(*args)
        assert await peer_state(store) == before
