"""Conformance tests of `SignalStore`."""

from __future__ import annotations

from typing import Any

import pytest

from lmdbstore.errors import ValidationError

A = "5511@s.whatsapp.net"
B = "5511:7@s.whatsapp.net.0"
C = "4477@s.whatsapp.net"
KEY = bytes(range(32))
KEY2 = bytes(range(1, 33))

# Every name a rejected call below could have touched: what `signal_state` reads back.
_PROBE_ADDRESSES = (A, B, C, "ok@s.whatsapp.net", "8888@lid", "8888:7@lid.0")
_PROBE_PREKEYS = (1, 2, 3, 7)
_PROBE_SENDER_KEYS = ("g@g.us:" + A, "g@g.us:8888@lid", "ok")

LONG = "x" * 256
NUL = "a\x00b"
SURROGATE = "\udcff"


async def signal_state(store: Any) -> tuple[object, ...]:
    """Everything a rejected call could have changed, read through the public API."""
    return (
        [await store.load_identity(a) for a in _PROBE_ADDRESSES],
        await store.get_sessions_batch(list(_PROBE_ADDRESSES)),
        await store.load_prekeys_batch(list(_PROBE_PREKEYS)),
        await store.get_max_prekey_id(),
        await store.load_all_signed_prekeys(),
        [await store.get_sender_key(n) for n in _PROBE_SENDER_KEYS],
    )


# (method, args): every one must raise ValidationError and change nothing.
BAD_CALLS: list[tuple[str, tuple[object, ...]]] = [
    ("put_identity", (A, KEY[:31])),
    ("put_identity", (A, KEY + b"\x00")),
    ("put_identity", (A, "not bytes")),
    ("put_identity", ("", KEY)),
    ("put_identity", (NUL, KEY)),
    ("put_identity", (LONG, KEY)),
    ("put_identity", (SURROGATE, KEY)),
    ("put_identity", (7, KEY)),
    ("put_identities_batch", ([("ok@s.whatsapp.net", KEY), (A, KEY[:31])],)),
    ("put_identities_batch", ([("ok@s.whatsapp.net", KEY), ("", KEY)],)),
    ("put_identities_batch", ("not a list",)),
    ("put_identities_batch", ([("ok@s.whatsapp.net", KEY, 3)],)),
    ("load_identity", ("",)),
    ("load_identity", (None,)),
    ("delete_identity", (NUL,)),
    ("get_session", (LONG,)),
    ("get_sessions_batch", ([A, ""],)),
    ("get_sessions_batch", (A,)),
    ("put_session", (A, None)),
    ("put_session", ("", b"s")),
    ("put_sessions_batch", ([("ok@s.whatsapp.net", b"s"), (NUL, b"s")],)),
    ("put_sessions_batch", ([("ok@s.whatsapp.net", b"s"), (A, "str")],)),
    ("delete_session", (b"bytes",)),
    ("has_session", ("",)),
    ("has_signal_state_for_user", ("",)),
    ("has_signal_state_for_user", ("5511@s.whatsapp.net",)),
    ("get_session_addresses", ("5511@s.whatsapp.net",)),
    ("get_session_addresses", (None,)),
    ("delete_all_sessions", ("5511:7",)),
    ("delete_all_sessions", ("",)),
    ("delete_all_identities", (NUL,)),
    ("delete_all_identities", (b"5511",)),
    ("is_trusted_identity", (A, KEY[:31])),
    ("is_trusted_identity", (A, "key")),
    ("is_trusted_identity", ("", KEY)),
    ("store_prekey", (-1, b"p")),
    ("store_prekey", (2**32, b"p")),
    ("store_prekey", (True, b"p")),
    ("store_prekey", ("1", b"p")),
    ("store_prekey", (1, None)),
    ("store_prekey", (1, b"p", "yes")),
    ("store_prekeys_batch", ([(1, b"p"), (2**32, b"p")],)),
    ("store_prekeys_batch", ([(1, b"p"), (2, None)],)),
    ("store_prekeys_batch", ([(1, b"p")], 1)),
    ("load_prekey", (-5,)),
    ("load_prekeys_batch", ([1, -1],)),
    ("mark_prekeys_uploaded", ([1, 2**40],)),
    ("remove_prekey", (1.0,)),
    ("store_signed_prekey", (2**32, b"s")),
    ("store_signed_prekey", (1, 5)),
    ("load_signed_prekey", (None,)),
    ("remove_signed_prekey", (-1,)),
    ("put_sender_key", ("", b"k")),
    ("put_sender_key", ("ok", bytearray(b"k") and None)),
    ("put_sender_keys_batch", ([("ok", b"k"), (LONG, b"k")],)),
    ("get_sender_key", (NUL,)),
    ("delete_sender_key", ("",)),
    ("migrate_pn_to_lid", ("5511@s.whatsapp.net", "8888")),
    ("migrate_pn_to_lid", ("5511", "8888:1")),
    ("migrate_pn_to_lid", ("", "8888")),
    ("migrate_pn_to_lid", ("5511", "8" * 250)),
]


class SignalConformance:
    """SignalStore semantics (DESIGN.md section 1). Needs a ``store`` fixture."""

    pytestmark = pytest.mark.anyio

    async def test_identity_round_trip(self, store: Any) -> None:
        assert await store.load_identity(A) is None
        await store.put_identity(A, KEY)
        assert await store.load_identity(A) == KEY
        await store.put_identity(A, KEY2)
        assert await store.load_identity(A) == KEY2
        await store.delete_identity(A)
        assert await store.load_identity(A) is None
        await store.delete_identity(A)  # absent: no error

    async def test_identity_accepts_bytearray_and_memoryview(self, store: Any) -> None:
        await store.put_identity(A, bytearray(KEY))
        await store.put_identity(B, memoryview(KEY2))
        assert await store.load_identity(A) == KEY
        assert await store.load_identity(B) == KEY2

    async def test_identities_batch_last_value_wins(self, store: Any) -> None:
        await store.put_identities_batch([(A, KEY), (B, KEY), (A, KEY2)])
        assert await store.load_identity(A) == KEY2
        assert await store.load_identity(B) == KEY
        await store.put_identities_batch([])

    async def test_session_round_trip(self, store: Any) -> None:
        assert await store.get_session(A) is None
        assert not await store.has_session(A)
        await store.put_session(A, b"session-1")
        assert await store.get_session(A) == b"session-1"
        assert await store.has_session(A)
        await store.put_session(A, b"")
        assert await store.get_session(A) == b""
        assert await store.has_session(A)
        await store.delete_session(A)
        assert await store.get_session(A) is None
        assert not await store.has_session(A)

    async def test_sessions_batch(self, store: Any) -> None:
        await store.put_sessions_batch([(A, b"a1"), (B, b"b"), (A, b"a2")])
        assert await store.get_sessions_batch([A, B, C]) == {A: b"a2", B: b"b"}
        assert await store.get_sessions_batch([]) == {}

    async def test_unicode_addresses(self, store: Any) -> None:
        name = "ñandú:3@s.whatsapp.net"
        await store.put_session(name, b"u")
        assert await store.get_session(name) == b"u"
        assert await store.get_sessions_batch([name]) == {name: b"u"}

    async def test_signal_state_for_user(self, store: Any) -> None:
        assert not await store.has_signal_state_for_user("5511")
        await store.put_identity("55112@s.whatsapp.net", KEY)
        await store.put_session("55112:3@s.whatsapp.net", b"s")
        assert not await store.has_signal_state_for_user("5511")
        assert await store.has_signal_state_for_user("55112")
        await store.put_session(B, b"s")
        assert await store.has_signal_state_for_user("5511")
        await store.delete_session(B)
        await store.put_identity(A, KEY)
        assert await store.has_signal_state_for_user("5511")
        assert not await store.has_signal_state_for_user("551")

    async def test_session_addresses_and_deleting_all_of_a_user(self, store: Any) -> None:
        of_user = ["5511:7@s.whatsapp.net.0", "5511:9@lid", "5511@s.whatsapp.net", "5511@x"]
        others = ["55112@s.whatsapp.net", "551@s.whatsapp.net", "5511_1:2@lid", "%@lid"]
        await store.put_sessions_batch([(a, a.encode()) for a in of_user + others])
        await store.put_identities_batch([(a, KEY) for a in of_user[:2] + others])
        await store.put_sender_key(f"g@g.us:{of_user[0]}", b"sk")
        assert await store.get_session_addresses("5511") == of_user
        assert await store.get_session_addresses("%") == ["%@lid"]  # no wildcard
        assert await store.get_session_addresses("4477") == []
        assert await store.delete_all_sessions("5511") == 4
        assert await store.get_session_addresses("5511") == []
        assert sorted(await store.get_sessions_batch(others)) == sorted(others)
        assert await store.delete_all_sessions("5511") == 0
        assert await store.delete_all_identities("5511") == 2
        assert not await store.has_signal_state_for_user("5511")
        assert await store.load_identity(others[0]) == KEY
        assert await store.get_sender_key(f"g@g.us:{of_user[0]}") == b"sk"  # untouched

    async def test_is_trusted_identity_trusts_on_first_use_without_writing(
        self, store: Any
    ) -> None:
        assert await store.is_trusted_identity(A, KEY)
        assert await store.load_identity(A) is None  # nothing written
        await store.put_identity(A, KEY)
        assert await store.is_trusted_identity(A, KEY)
        assert not await store.is_trusted_identity(A, KEY2)
        assert await store.is_trusted_identity(A, bytearray(KEY))

    async def test_prekeys(self, store: Any) -> None:
        assert await store.load_prekey(1) is None
        await store.store_prekey(1, b"p1")
        await store.store_prekey(2, b"p2", uploaded=True)
        assert await store.load_prekey(1) == b"p1"
        assert await store.load_prekey(2) == b"p2"
        await store.remove_prekey(1)
        assert await store.load_prekey(1) is None
        await store.remove_prekey(1)

    async def test_prekeys_batch_in_request_order(self, store: Any) -> None:
        await store.store_prekeys_batch([(i, f"p{i}".encode()) for i in range(1, 11)])
        got = await store.load_prekeys_batch([7, 99, 3, 10, 1])
        assert got == [(7, b"p7"), (3, b"p3"), (10, b"p10"), (1, b"p1")]
        assert await store.load_prekeys_batch([]) == []

    async def test_mark_uploaded_never_resurrects(self, store: Any) -> None:
        await store.store_prekeys_batch([(1, b"a"), (2, b"b")])
        await store.remove_prekey(2)
        await store.mark_prekeys_uploaded([1, 2, 3])
        assert await store.load_prekey(1) == b"a"
        assert await store.load_prekey(2) is None
        assert await store.load_prekey(3) is None
        assert await store.load_prekeys_batch([1, 2, 3]) == [(1, b"a")]

    async def test_max_prekey_id_is_numeric(self, store: Any) -> None:
        assert await store.get_max_prekey_id() == 0
        await store.store_prekeys_batch([(9, b"x"), (10, b"x"), (2, b"x")])
        assert await store.get_max_prekey_id() == 10
        await store.store_prekey(256, b"x")
        assert await store.get_max_prekey_id() == 256
        await store.store_prekey(2**32 - 1, b"x")
        assert await store.get_max_prekey_id() == 2**32 - 1
        await store.store_prekey(0, b"x")
        for i in (2**32 - 1, 256, 10, 9, 2):
            await store.remove_prekey(i)
        assert await store.get_max_prekey_id() == 0

    async def test_signed_prekeys_ascending(self, store: Any) -> None:
        assert await store.load_all_signed_prekeys() == []
        for i in (256, 2, 10):
            await store.store_signed_prekey(i, f"s{i}".encode())
        assert await store.load_signed_prekey(10) == b"s10"
        assert await store.load_signed_prekey(11) is None
        assert await store.load_all_signed_prekeys() == [(2, b"s2"), (10, b"s10"), (256, b"s256")]
        await store.remove_signed_prekey(10)
        assert await store.load_all_signed_prekeys() == [(2, b"s2"), (256, b"s256")]

    async def test_signed_prekeys_and_prekeys_are_separate(self, store: Any) -> None:
        await store.store_signed_prekey(5, b"signed")
        assert await store.load_prekey(5) is None
        assert await store.get_max_prekey_id() == 0

    async def test_sender_keys(self, store: Any) -> None:
        name = "120363@g.us:" + B
        assert await store.get_sender_key(name) is None
        await store.put_sender_key(name, b"sk")
        assert await store.get_sender_key(name) == b"sk"
        await store.put_sender_keys_batch([(name, b"1"), ("g2@g.us:" + A, b"2"), (name, b"3")])
        assert await store.get_sender_key(name) == b"3"
        assert await store.get_sender_key("g2@g.us:" + A) == b"2"
        await store.delete_sender_key(name)
        assert await store.get_sender_key(name) is None

    async def test_migrate_pn_to_lid(self, store: Any) -> None:
        await store.put_session(A, b"s0")
        await store.put_session(B, b"s7")
        await store.put_identity(A, KEY)
        await store.put_sender_key("120363@g.us:" + B, b"sk")
        await store.put_session("55112@s.whatsapp.net", b"other")
        await store.put_session("5511@g.us", b"not-a-pn-address")
        moved = await store.migrate_pn_to_lid("5511", "8888")
        assert moved == 4
        assert await store.get_session("8888@lid") == b"s0"
        assert await store.get_session("8888:7@lid.0") == b"s7"
        assert await store.load_identity("8888@lid") == KEY
        assert await store.get_sender_key("120363@g.us:8888:7@lid.0") == b"sk"
        assert await store.get_session(A) is None
        assert await store.get_session(B) is None
        assert await store.load_identity(A) is None
        assert await store.get_sender_key("120363@g.us:" + B) is None
        assert await store.get_session("55112@s.whatsapp.net") == b"other"
        assert await store.get_session("5511@g.us") == b"not-a-pn-address"
        assert await store.migrate_pn_to_lid("5511", "8888") == 0

    async def test_migrate_keeps_existing_lid_record(self, store: Any) -> None:
        await store.put_session("8888@lid", b"newer")
        await store.put_session(A, b"older")
        await store.put_identity("8888@lid", KEY2)
        await store.put_identity(A, KEY)
        assert await store.migrate_pn_to_lid("5511", "8888") == 2
        assert await store.get_session("8888@lid") == b"newer"
        assert await store.load_identity("8888@lid") == KEY2
        assert await store.get_session(A) is None
        assert not await store.has_signal_state_for_user("5511")

    async def test_signal_devices_are_isolated(self, store: Any) -> None:
        other = store.for_device(2)
        try:
            await store.put_session(A, b"one")
            await other.put_session(A, b"two")
            await store.store_prekey(5, b"p")
            await store.store_signed_prekey(1, b"s")
            assert await store.get_session(A) == b"one"
            assert await other.get_session(A) == b"two"
            assert await other.get_max_prekey_id() == 0
            assert await other.load_all_signed_prekeys() == []
            assert await other.migrate_pn_to_lid("5511", "8888") == 1
            assert await store.get_session(A) == b"one"
        finally:
            await other.close()

    @pytest.mark.parametrize(("method", "args"), BAD_CALLS, ids=lambda v: str(v)[:40])
    async def test_signal_bad_input_is_refused_and_writes_nothing(
        self, store: Any, method: str, args: tuple[object, ...]
    ) -> None:
        await store.put_identity(A, KEY)
        await store.put_session(A, b"session")
        await store.store_prekeys_batch([(1, b"p1"), (3, b"p3")])
        await store.store_signed_prekey(4, b"s4")
        await store.put_sender_key("g@g.us:" + A, b"sk")
        before = await signal_state(store)
        with pytest.raises(ValidationError):
            await getattr(store, method)(*args)
        assert await signal_state(store) == before
