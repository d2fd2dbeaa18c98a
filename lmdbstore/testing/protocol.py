"""Conformance tests of ProtocolStore, MsgSecretStore and DeviceStore."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from lmdbstore import clock
from lmdbstore.errors import ValidationError
from lmdbstore.testing.peers import fill_peer_kinds
from lmdbstore.types import (
    Device,
    DeviceInfo,
    DeviceListRecord,
    LidPnMappingEntry,
    MsgSecretEntry,
    MsgSecretHit,
    NoiseCert,
    ServerCertChain,
    TcTokenEntry,
)

G = "120363@g.us"
SECRET = bytes(range(32))
CERT = NoiseCert(bytes(range(32)), 1_700_000_000, 1_800_000_000)
CERTS = ServerCertChain(CERT, NoiseCert(bytes(range(1, 33)), 1_750_000_000, 1_760_000_000))
SECRET2 = bytes(range(1, 33))
LONG = "x" * 256


def lid_entry(lid: str, phone: str, created: int, updated: int) -> LidPnMappingEntry:
    return LidPnMappingEntry(lid, phone, created, updated, "usync")


def _wrong(value: object) -> Any:
    return value


async def protocol_state(store: Any) -> tuple[object, ...]:
    """What a rejected call below could have changed, read through the public API."""
    return (
        await store.get_sender_key_devices(G),
        await store.get_all_lid_mappings(),
        await store.get_pn_mapping("5511"),
        await store.has_same_base_key("a@lid", "m1", b"k"),
        await store.get_devices("5511"),
        await store.get_group_metadata(G),
        await store.get_tc_token("a@lid"),
        await store.get_all_tc_token_jids(),
        await store.get_pending_inbound(G, "a@lid", "m1"),
        await store.get_msg_secret_with_ts(G, "a@lid", "m1"),
        await store.load(),
    )


async def fill_every_kind(store: Any) -> None:
    """At least one record of every kind, indexes included (for verify, export, migration)."""
    from lmdbstore.types import AppStateMutationMAC, AppStateSyncKey, HashState

    await store.put_identity("5511@s.whatsapp.net", SECRET)
    await store.put_session("5511:7@s.whatsapp.net.0", b"session")
    await store.store_prekeys_batch([(1, b"p1"), (2, b"p2")], uploaded=True)
    await store.store_signed_prekey(3, b"signed")
    await store.put_sender_key(f"{G}:5511@s.whatsapp.net", b"sender key")
    await store.set_sync_key(b"key-1", AppStateSyncKey(b"data", b"fp", 5))
    await store.set_version("regular", HashState(version=3, index_value_map={"i": b"v"}))
    await store.put_mutation_macs("regular", 3, [AppStateMutationMAC(b"im", b"vm")])
    await store.set_sender_key_status(G, [("a@lid", True), ("b@lid", False)])
    await store.put_lid_mapping(lid_entry("9@lid", "5511", 1, 2))
    await store.save_base_key("a@lid", "m1", b"base")
    await store.update_device_list(DeviceListRecord("5511", [DeviceInfo(0), DeviceInfo(7, 2)], 9))
    await store.put_group_metadata(G, b"meta")
    await store.put_tc_token("a@lid", TcTokenEntry(b"token", 5, 6))
    await store.touch_tc_token_sender_timestamp("b@lid", 7)  # empty token
    await store.store_sent_message(G, "m1", b"payload")
    await store.store_pending_inbound(G, "a@lid", "m2", b"pending")
    await store.put_msg_secret(G, "a@lid", "m1", SECRET, expires_at=50, message_ts=4)
    await store.put_msg_secret(G, "a@lid", "m2", SECRET2)  # never expires: not indexed
    await store.save(Device(push_name="filled", registration_id=42, server_cert_chain=CERTS))
    await fill_peer_kinds(store)


BAD_CALLS: list[tuple[str, tuple[object, ...]]] = [
    ("get_sender_key_devices", ("",)),
    ("set_sender_key_status", (G, [("b@lid", True), ("c@lid", "yes")])),
    ("set_sender_key_status", (G, [("b@lid", True), ("", False)])),
    ("set_sender_key_status", ("x" * 255, [("y" * 255, True)])),
    ("clear_sender_key_devices", (None,)),
    ("delete_sender_key_device_rows", (["a@lid", ""],)),
    ("delete_sender_key_device_rows", ("a@lid",)),
    ("get_lid_mapping", ("",)),
    ("get_pn_mapping", (NotImplemented,)),
    ("put_lid_mapping", (lid_entry("", "5511", 1, 1),)),
    ("put_lid_mapping", (lid_entry("9@lid", "5511", 1, _wrong("1")),)),
    ("put_lid_mapping", (("9@lid", "5511"),)),
    ("put_lid_mappings", ([lid_entry("9@lid", "77", 1, 1), lid_entry("8@lid", "\x00", 1, 1)],)),
    ("save_base_key", ("a@lid", "m1", "k")),
    ("save_base_key", ("a@lid", "", b"k")),
    ("has_same_base_key", ("", "m1", b"k")),
    ("delete_base_key", ("a@lid", None)),
    ("update_device_list", (DeviceListRecord("5511", [DeviceInfo(-1)], 1),)),
    ("update_device_list", (DeviceListRecord("5511", [DeviceInfo(1, is_hosted=_wrong(1))], 1),)),
    ("update_device_list", (DeviceListRecord("", [], 1),)),
    (
        "update_device_lists",
        ([DeviceListRecord("77", [], 1), DeviceListRecord("5511", _wrong("no"), 1)],),
    ),
    ("get_devices", ("",)),
    ("delete_devices", (LONG,)),
    ("get_group_metadata", ("",)),
    ("put_group_metadata", (G, None)),
    ("delete_group_metadata", ("\x00",)),
    ("get_tc_token", ("",)),
    ("put_tc_token", ("a@lid", TcTokenEntry(b"t", _wrong(None)))),
    ("put_tc_token", ("a@lid", TcTokenEntry(b"t", 1, _wrong("2")))),
    ("put_tc_token", ("", TcTokenEntry(b"t", 1))),
    ("delete_tc_token", ("",)),
    ("delete_expired_tc_tokens", ("10",)),
    ("delete_expired_tc_tokens", (10, 2**63)),
    ("touch_tc_token_sender_timestamp", ("a@lid", None)),
    ("touch_tc_token_sender_timestamp", ("", 5)),
    ("store_received_tc_token", ("a@lid", "tok", 5)),
    ("store_received_tc_token", ("a@lid", b"tok", 5.5)),
    ("store_received_tc_tokens", ([("a@lid", b"t", 1), ("a@lid", b"t")],)),
    ("store_received_tc_tokens", ([("a@lid", b"t", 1), ("", b"t", 1)],)),
    ("store_received_tc_tokens", ([("a@lid", "t", 1)],)),
    ("store_received_tc_tokens", ("a@lid",)),
    ("find_tc_token", ("",)),
    ("find_tc_token", (None,)),
    ("get_lids_for_pns", ("5511",)),
    ("get_lids_for_pns", (["5511", ""],)),
    ("peek_sent_message", (G, "")),
    ("store_sent_message", (G, "", b"p")),
    ("store_sent_message", (G, "m1", None)),
    ("take_sent_message", (G, "")),
    ("delete_expired_sent_messages", (None,)),
    ("store_pending_inbound", (G, "a@lid", "m1", "text")),
    ("store_pending_inbound", ("x" * 200, "y" * 200, "z" * 200, b"m")),
    ("store_pending_inbound_batch", ([(G, "a@lid", "m2", b"m"), (G, "a@lid", "m1")],)),
    ("store_pending_inbound_batch", ([(G, "a@lid", "m2", b"m"), (G, "", "m1", b"x")],)),
    ("get_pending_inbound", (G, "a@lid", "")),
    ("delete_pending_inbound", (G, None, "m1")),
    ("delete_pending_inbound_batch", ([(G, "a@lid", "m1"), (G, "a@lid")],)),
    ("delete_expired_pending_inbound", (1.5,)),
    ("put_msg_secret", (G, "a@lid", "m1", SECRET[:31])),
    ("put_msg_secret", (G, "a@lid", "m1", SECRET, "0")),
    ("put_msg_secret", (G, "a@lid", "", SECRET)),
    ("put_msg_secrets", ([MsgSecretEntry(G, "a@lid", "m9", SECRET), (G, "a@lid", "m1")],)),
    (
        "put_msg_secrets",
        ([MsgSecretEntry(G, "a@lid", "m9", SECRET), MsgSecretEntry(G, "a@lid", "m1", b"")],),
    ),
    ("get_msg_secret", (G, "", "m1")),
    ("get_msg_secret_with_ts", ("", "a@lid", "m1")),
    ("find_msg_secret", (G, "", "m1")),
    ("find_msg_secret", ("x" * 200, "y" * 200, "z" * 200)),
    ("delete_expired_msg_secrets", ("now",)),
    ("save", (Device(noise_key=bytes(63)),)),
    ("save", (Device(app_version=_wrong((1, 2))),)),
    ("save", (Device(registration_id=-1),)),
    ("save", (Device(push_name=_wrong(None)),)),
    ("save", ({"pn": "5511"},)),
    ("save", (Device(server_cert_chain=_wrong((NoiseCert(SECRET, 1, 2),) * 2)),)),
    ("save", (Device(server_cert_chain=ServerCertChain(NoiseCert(SECRET[:31], 1, 2), CERT)),)),
    ("save", (Device(server_cert_chain=ServerCertChain(CERT, NoiseCert(SECRET, 1, _wrong("2")))),)),
    ("acquire_device_lease", (0,)),
    ("acquire_device_lease", ("30",)),
    ("acquire_device_lease", (float("nan"),)),
    ("snapshot_db", ("...",)),
    ("snapshot_db", ("",)),
    ("snapshot_db", ("x" * 101,)),
    ("snapshot_db", ("ok", "not bytes")),
    ("snapshot_db", (None,)),
]


class ProtocolConformance:
    """ProtocolStore semantics (DESIGN.md section 1). Needs a ``store`` fixture."""

    pytestmark = pytest.mark.anyio

    async def test_sender_key_devices(self, store: Any) -> None:
        assert await store.get_sender_key_devices(G) == []
        await store.set_sender_key_status(G, [("b@lid", False), ("a@lid", True)])
        await store.set_sender_key_status(G, [("b@lid", True)])
        await store.set_sender_key_status("other@g.us", [("a@lid", False), ("c@lid", True)])
        assert await store.get_sender_key_devices(G) == [("a@lid", True), ("b@lid", True)]
        await store.delete_sender_key_device_rows(["a@lid"])
        assert await store.get_sender_key_devices(G) == [("b@lid", True)]
        assert await store.get_sender_key_devices("other@g.us") == [("c@lid", True)]
        await store.clear_sender_key_devices(G)
        assert await store.get_sender_key_devices(G) == []
        assert await store.get_sender_key_devices("other@g.us") == [("c@lid", True)]
        await store.set_sender_key_status(G, [("b@lid", False)])
        await store.clear_all_sender_key_devices()
        assert await store.get_sender_key_devices(G) == []
        assert await store.get_sender_key_devices("other@g.us") == []

    async def test_lid_mapping_keeps_created_at(self, store: Any) -> None:
        assert await store.get_lid_mapping("9@lid") is None
        await store.put_lid_mapping(lid_entry("9@lid", "5511", 100, 100))
        await store.put_lid_mapping(lid_entry("9@lid", "5511", 500, 600))
        got = await store.get_lid_mapping("9@lid")
        assert (got.created_at, got.updated_at) == (100, 600)
        assert await store.get_pn_mapping("5511") == got

    async def test_remapped_lid_leaves_its_old_phone(self, store: Any) -> None:
        await store.put_lid_mapping(lid_entry("9@lid", "5511", 1, 1))
        await store.put_lid_mapping(lid_entry("9@lid", "7722", 2, 2))
        assert await store.get_pn_mapping("5511") is None
        assert (await store.get_pn_mapping("7722")).lid == "9@lid"

    async def test_pn_mapping_greatest_updated_at_then_last_written(self, store: Any) -> None:
        await store.put_lid_mappings(
            [lid_entry("1@lid", "5511", 1, 50), lid_entry("2@lid", "5511", 1, 90)]
        )
        await store.put_lid_mapping(lid_entry("3@lid", "5511", 1, 70))
        assert (await store.get_pn_mapping("5511")).lid == "2@lid"
        await store.put_lid_mapping(lid_entry("1@lid", "5511", 1, 90))  # a tie: written last
        assert (await store.get_pn_mapping("5511")).lid == "1@lid"
        await store.put_lid_mapping(lid_entry("3@lid", "5511", 1, 90))
        assert (await store.get_pn_mapping("5511")).lid == "3@lid"
        assert [m.lid for m in await store.get_all_lid_mappings()] == ["1@lid", "2@lid", "3@lid"]
        assert await store.get_pn_mapping("551") is None

    async def test_base_keys(self, store: Any) -> None:
        assert not await store.has_same_base_key("a@lid", "m1", b"k")
        await store.save_base_key("a@lid", "m1", b"k")
        assert await store.has_same_base_key("a@lid", "m1", b"k")
        assert not await store.has_same_base_key("a@lid", "m1", b"other")
        assert not await store.has_same_base_key("a@lid", "m2", b"k")
        await store.delete_base_key("a@lid", "m1")
        assert not await store.has_same_base_key("a@lid", "m1", b"k")

    async def test_device_lists(self, store: Any) -> None:
        record = DeviceListRecord("5511", [DeviceInfo(0), DeviceInfo(7, 3, True)], 99, "ph", 5)
        await store.update_device_list(record)
        assert await store.get_devices("5511") == record
        await store.update_device_list(DeviceListRecord("5511", [], 100))
        assert await store.get_devices("5511") == DeviceListRecord("5511", [], 100)
        await store.update_device_lists([record, DeviceListRecord("77", [DeviceInfo(1)], 1)])
        assert await store.get_devices("5511") == record
        assert (await store.get_devices("77")).devices == [DeviceInfo(1)]
        await store.delete_devices("5511")
        assert await store.get_devices("5511") is None

    async def test_group_metadata(self, store: Any) -> None:
        assert await store.get_group_metadata(G) is None
        await store.put_group_metadata(G, b"meta")
        assert await store.get_group_metadata(G) == b"meta"
        await store.delete_group_metadata(G)
        assert await store.get_group_metadata(G) is None

    async def test_tc_tokens(self, store: Any) -> None:
        await store.put_tc_token("b@lid", TcTokenEntry(b"t", 10))
        await store.put_tc_token("a@lid", TcTokenEntry(b"t", 20, 25))
        assert await store.get_tc_token("a@lid") == TcTokenEntry(b"t", 20, 25)
        assert await store.get_all_tc_token_jids() == ["a@lid", "b@lid"]
        await store.delete_tc_token("b@lid")
        assert await store.get_tc_token("b@lid") is None

    async def test_tc_token_two_window_expiry(self, store: Any) -> None:
        await store.put_tc_token("old@lid", TcTokenEntry(b"t", 5))
        await store.put_tc_token("old-sent-recently@lid", TcTokenEntry(b"t", 5, 150))
        await store.put_tc_token("old-sent-long-ago@lid", TcTokenEntry(b"t", 5, 50))
        await store.put_tc_token("fresh@lid", TcTokenEntry(b"t", 200))
        await store.put_tc_token("empty@lid", TcTokenEntry(b"", 300))
        await store.put_tc_token("empty-sent@lid", TcTokenEntry(b"", 300, 120))
        assert await store.delete_expired_tc_tokens(100) == 3
        assert await store.get_all_tc_token_jids() == [
            "empty-sent@lid",
            "fresh@lid",
            "old-sent-recently@lid",
        ]
        assert await store.delete_expired_tc_tokens(100, sender_cutoff=130) == 1
        assert await store.get_all_tc_token_jids() == ["fresh@lid", "old-sent-recently@lid"]
        assert await store.delete_expired_tc_tokens(100, sender_cutoff=1000) == 1
        assert await store.get_all_tc_token_jids() == ["fresh@lid"]

    async def test_touch_sender_timestamp_only_advances(self, store: Any) -> None:
        await store.touch_tc_token_sender_timestamp("a@lid", 50)
        assert await store.get_tc_token("a@lid") == TcTokenEntry(b"", 50, 50)
        await store.touch_tc_token_sender_timestamp("a@lid", 40)
        assert (await store.get_tc_token("a@lid")).sender_timestamp == 50
        await store.put_tc_token("b@lid", TcTokenEntry(b"t", 10))
        await store.touch_tc_token_sender_timestamp("b@lid", 60)
        assert await store.get_tc_token("b@lid") == TcTokenEntry(b"t", 10, 60)

    async def test_tc_token_expiry_boundaries(self, store: Any) -> None:
        # A token at the cutoff is kept, one below goes; a sender time at the sender
        # cutoff keeps its row, one below does not; an empty token qualifies at any time.
        await store.put_tc_token("at-cutoff@lid", TcTokenEntry(b"t", 100))
        await store.put_tc_token("below@lid", TcTokenEntry(b"t", 99))
        await store.put_tc_token("sent-at@lid", TcTokenEntry(b"t", 99, 130))
        await store.put_tc_token("sent-below@lid", TcTokenEntry(b"t", 99, 129))
        await store.put_tc_token("empty-new@lid", TcTokenEntry(b"", 2**63 - 1))
        assert await store.delete_expired_tc_tokens(100, sender_cutoff=130) == 3
        assert await store.get_all_tc_token_jids() == ["at-cutoff@lid", "sent-at@lid"]
        assert await store.delete_expired_tc_tokens(-(2**63)) == 0
        assert await store.delete_expired_tc_tokens(2**63 - 1, sender_cutoff=131) == 2

    async def test_store_received_tc_token(self, store: Any) -> None:
        await store.store_received_tc_token("a@lid", b"t1", 100)
        assert await store.get_tc_token("a@lid") == TcTokenEntry(b"t1", 100)
        await store.store_received_tc_token("a@lid", b"older", 90)
        assert (await store.get_tc_token("a@lid")).token == b"t1"
        await store.touch_tc_token_sender_timestamp("a@lid", 120)
        await store.store_received_tc_token("a@lid", b"t2", 100)
        assert await store.get_tc_token("a@lid") == TcTokenEntry(b"t2", 100, 120)
        await store.touch_tc_token_sender_timestamp("b@lid", 500)  # empty placeholder
        await store.store_received_tc_token("b@lid", b"t3", 1)
        assert await store.get_tc_token("b@lid") == TcTokenEntry(b"t3", 1, 500)

    async def test_store_received_tc_tokens_applies_the_rule_per_row_in_order(
        self, store: Any
    ) -> None:
        rows = [("a@lid", b"t1", 100), ("a@lid", b"older", 90), ("b@lid", b"t2", 5)]
        assert await store.store_received_tc_tokens([*rows, ("a@lid", b"t3", 100)]) == 3
        assert await store.get_tc_token("a@lid") == TcTokenEntry(b"t3", 100)
        assert await store.get_tc_token("b@lid") == TcTokenEntry(b"t2", 5)
        assert await store.store_received_tc_tokens([]) == 0

    async def test_lids_for_pns_in_one_call(self, store: Any) -> None:
        await store.put_lid_mappings(
            [lid_entry("9", "5511", 1, 2), lid_entry("8", "5511", 1, 3), lid_entry("7", "44", 1, 1)]
        )
        found = await store.get_lids_for_pns(["5511", "44", "0000", "5511"])
        assert found == {"5511": "8", "44": "7"}
        assert await store.get_lids_for_pns([]) == {}

    async def test_find_tc_token_takes_the_newest_of_jid_and_alias(self, store: Any) -> None:
        pn, lid = "5511@s.whatsapp.net", "8888@lid"
        assert await store.find_tc_token(pn) is None
        await store.put_tc_token(pn, TcTokenEntry(b"pn", 10))
        assert await store.find_tc_token(lid) is None  # no mapping: no alias
        await store.put_lid_mapping(lid_entry("8888", "5511", 1, 1))
        assert await store.find_tc_token(lid) == (pn, TcTokenEntry(b"pn", 10))
        await store.put_tc_token(lid, TcTokenEntry(b"lid", 10))
        assert await store.find_tc_token(lid) == (lid, TcTokenEntry(b"lid", 10))  # tie: own
        assert await store.find_tc_token(pn) == (pn, TcTokenEntry(b"pn", 10))
        await store.put_tc_token(lid, TcTokenEntry(b"lid", 11))
        assert await store.find_tc_token(pn) == (lid, TcTokenEntry(b"lid", 11))
        assert await store.get_tc_token(pn) == TcTokenEntry(b"pn", 10)  # stays exact
        await store.put_tc_token("5511@g.us", TcTokenEntry(b"g", 1))
        assert await store.find_tc_token("5511@g.us") == ("5511@g.us", TcTokenEntry(b"g", 1))

    async def test_find_msg_secret_tries_the_aliases_in_order(self, store: Any) -> None:
        pn, lid = "5511@s.whatsapp.net", "8888@lid"
        await store.put_lid_mapping(lid_entry("8888", "5511", 1, 1))
        await store.put_msg_secret(G, lid, "m1", SECRET, message_ts=4)
        assert await store.find_msg_secret(G, pn, "m1") == MsgSecretHit(SECRET, G, lid, 4)
        assert await store.get_msg_secret(G, pn, "m1") is None  # stays exact
        await store.put_msg_secret(lid, pn, "m2", SECRET2)
        assert await store.find_msg_secret(pn, lid, "m2") == MsgSecretHit(SECRET2, lid, pn, 0)
        await store.put_msg_secret(G, pn, "m1", SECRET2, message_ts=5)
        assert await store.find_msg_secret(G, pn, "m1") == MsgSecretHit(SECRET2, G, pn, 5)
        assert await store.find_msg_secret(G, pn, "m9") is None
        assert await store.find_msg_secret(G, "4477@s.whatsapp.net", "m1") is None

    async def test_sent_messages(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(clock, "now", lambda: 1000)
        await store.store_sent_message(G, "m1", b"p1")
        await store.store_sent_message(G, "m2", b"p2")
        monkeypatch.setattr(clock, "now", lambda: 2000)
        await store.store_sent_message(G, "m3", b"p3")
        await store.store_sent_message(G, "m1", b"p1b")  # upsert: created_at is now 2000
        assert await store.peek_sent_message(G, "m2") == b"p2"
        assert await store.peek_sent_message(G, "m2") == b"p2"  # nothing consumed
        assert await store.take_sent_message(G, "m2") == b"p2"
        assert await store.take_sent_message(G, "m2") is None
        assert await store.peek_sent_message(G, "m2") is None
        await store.store_sent_message(G, "m4", b"p4")
        monkeypatch.setattr(clock, "now", lambda: 1000)
        await store.store_sent_message(G, "m5", b"p5")
        assert await store.delete_expired_sent_messages(1000) == 0
        assert await store.delete_expired_sent_messages(1001) == 1
        assert await store.take_sent_message(G, "m5") is None
        assert await store.delete_expired_sent_messages(2001) == 3
        assert await store.take_sent_message(G, "m1") is None

    async def test_take_sent_message_has_one_winner(self, store: Any) -> None:
        await store.store_sent_message(G, "m1", b"payload")
        results: list[bytes | None] = []

        async def take() -> None:
            results.append(await store.take_sent_message(G, "m1"))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(take)
        assert sorted(results, key=lambda r: r is None) == [b"payload"] + [None] * 49

    async def test_pending_inbound(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(clock, "now", lambda: 100)
        await store.store_pending_inbound(G, "a@lid", "m1", b"one")
        await store.store_pending_inbound_batch(
            [(G, "a@lid", "m2", b"two"), (G, "b@lid", "m1", b"three"), (G, "a@lid", "m2", b"2")]
        )
        assert await store.get_pending_inbound(G, "a@lid", "m2") == b"2"
        assert await store.get_pending_inbound(G, "b@lid", "m1") == b"three"
        await store.delete_pending_inbound(G, "a@lid", "m1")
        assert await store.get_pending_inbound(G, "a@lid", "m1") is None
        monkeypatch.setattr(clock, "now", lambda: 200)
        await store.store_pending_inbound(G, "c@lid", "m1", b"later")
        await store.delete_pending_inbound_batch([(G, "b@lid", "m1"), (G, "zz@lid", "m9")])
        assert await store.delete_expired_pending_inbound(150) == 1
        assert await store.get_pending_inbound(G, "a@lid", "m2") is None
        assert await store.get_pending_inbound(G, "c@lid", "m1") == b"later"

    async def test_msg_secret_conflict_rules(self, store: Any) -> None:
        assert await store.get_msg_secret(G, "a@lid", "m1") is None
        await store.put_msg_secret(G, "a@lid", "m1", SECRET, expires_at=100, message_ts=5)
        assert await store.get_msg_secret_with_ts(G, "a@lid", "m1") == (SECRET, 5)
        written = await store.put_msg_secrets(
            [MsgSecretEntry(G, "a@lid", "m1", SECRET2, expires_at=50, message_ts=3)]
        )
        assert written == 1
        assert await store.get_msg_secret_with_ts(G, "a@lid", "m1") == (SECRET2, 5)
        assert await store.delete_expired_msg_secrets(99) == 0  # the later expiry (100) kept
        await store.put_msg_secret(G, "a@lid", "m1", SECRET, expires_at=0, message_ts=9)
        assert await store.delete_expired_msg_secrets(10**9) == 0  # 0 = never, and it wins
        await store.put_msg_secret(G, "a@lid", "m1", SECRET, expires_at=30)
        assert await store.get_msg_secret_with_ts(G, "a@lid", "m1") == (SECRET, 9)
        assert await store.delete_expired_msg_secrets(10**9) == 0

    async def test_msg_secret_expiry(self, store: Any) -> None:
        await store.put_msg_secrets(
            [
                MsgSecretEntry(G, "a@lid", "m1", SECRET, expires_at=10),
                MsgSecretEntry(G, "a@lid", "m2", SECRET, expires_at=20),
                MsgSecretEntry(G, "a@lid", "m3", SECRET),
            ]
        )
        assert await store.delete_expired_msg_secrets(9) == 0
        assert await store.delete_expired_msg_secrets(10) == 1
        assert await store.get_msg_secret(G, "a@lid", "m1") is None
        assert await store.delete_expired_msg_secrets(2**63 - 1) == 1
        assert await store.get_msg_secret(G, "a@lid", "m3") == SECRET

    async def test_device_record(self, store: Any) -> None:
        assert not await store.exists()
        assert await store.load() is None
        device = Device(
            pn="5511@s.whatsapp.net",
            lid="9@lid",
            registration_id=1234,
            noise_key=bytes(range(64)),
            adv_secret_key=bytes(range(32)),
            account=b"acct",
            push_name="Bot",
            app_version=(2, 3000, 1),
            edge_routing_info=b"eri",
            props_hash="h",
            login_counter=3,
            last_signed_pre_key_rotation_ms=123,
            read_receipts_disabled=True,
            server_cert_chain=CERTS,
        )
        await store.save(device)
        assert await store.exists()
        assert await store.load() == device
        device.server_cert_chain = None
        await store.save(device)
        assert (await store.load()).server_cert_chain is None

    async def test_create_allocates_unused_ids(self, store: Any) -> None:
        first = await store.create()
        second = await store.create()
        assert first != second
        assert store.device_id not in (first, second)
        handle = store.for_device(first)
        try:
            assert await handle.load() == Device()
        finally:
            await handle.close()
        other = store.for_device(second + 1)
        try:
            await other.put_session("a@lid", b"s")  # records make an id taken
            assert await store.create() not in (first, second, second + 1)
        finally:
            await other.close()

    async def test_device_ids_are_the_devices_with_records(self, store: Any) -> None:
        assert await store.device_ids() == []
        await store.put_session("a@lid", b"s")
        other = store.for_device(7)
        try:
            await other.put_msg_secret(G, "a@lid", "m1", SECRET)
            assert await store.device_ids() == [1, 7]
            await other.delete_expired_msg_secrets(0)
            assert await other.device_ids() == [1, 7]  # a secret that never expires stays
        finally:
            await other.close()

    async def test_verify_finds_nothing_in_a_sound_store(self, store: Any) -> None:
        await fill_every_kind(store)
        other = store.for_device(2)
        try:
            await fill_every_kind(other)
        finally:
            await other.close()
        assert await store.verify() == []

    async def test_protocol_devices_are_isolated(self, store: Any) -> None:
        other = store.for_device(2)
        try:
            await store.put_lid_mapping(lid_entry("9@lid", "5511", 1, 1))
            await store.put_tc_token("a@lid", TcTokenEntry(b"t", 1))
            await store.store_sent_message(G, "m1", b"p")
            await store.put_msg_secret(G, "a@lid", "m1", SECRET, expires_at=5)
            await store.save(Device(push_name="one"))
            assert await other.get_pn_mapping("5511") is None
            assert await other.get_all_tc_token_jids() == []
            assert await other.take_sent_message(G, "m1") is None
            assert await other.delete_expired_msg_secrets(10) == 0
            assert await other.delete_expired_tc_tokens(10) == 0
            assert await other.load() is None
            assert await store.get_msg_secret(G, "a@lid", "m1") == SECRET
        finally:
            await other.close()

    @pytest.mark.parametrize(("method", "args"), BAD_CALLS, ids=lambda v: str(v)[:40])
    async def test_protocol_bad_input_is_refused_and_writes_nothing(
        self, store: Any, method: str, args: tuple[object, ...]
    ) -> None:
        await store.set_sender_key_status(G, [("b@lid", True)])
        await store.put_lid_mapping(lid_entry("9@lid", "5511", 1, 1))
        await store.save_base_key("a@lid", "m1", b"k")
        await store.update_device_list(DeviceListRecord("5511", [DeviceInfo(1)], 1))
        await store.put_group_metadata(G, b"meta")
        await store.put_tc_token("a@lid", TcTokenEntry(b"t", 1))
        await store.store_pending_inbound(G, "a@lid", "m1", b"m")
        await store.put_msg_secret(G, "a@lid", "m1", SECRET, 5, 6)
        await store.save(Device(push_name="me"))
        before = await protocol_state(store)
        with pytest.raises(ValidationError):
            await getattr(store, method)(*args)
        assert await protocol_state(store) == before
