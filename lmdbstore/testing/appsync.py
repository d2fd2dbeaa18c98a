"""Conformance tests of `AppSyncStore`."""

from __future__ import annotations

from typing import Any

import pytest

from lmdbstore.errors import ValidationError
from lmdbstore.types import AppStateMutationMAC, AppStateSyncKey, HashState

K1 = AppStateSyncKey(key_data=b"\x01" * 32, fingerprint=b"fp1", timestamp=1_700_000_000)
K2 = AppStateSyncKey(key_data=b"\x02" * 32, fingerprint=b"", timestamp=-1)
STATE = HashState(
    version=7,
    hash=bytes(range(128)),
    index_value_map={"aW5kZXg=": b"\x09" * 32, "": b""},
    mac_mismatch_fatal=True,
)
MAC_A = AppStateMutationMAC(index_mac=b"\x00ia" * 8, value_mac=b"va" * 16)
MAC_B = AppStateMutationMAC(index_mac=b"ib" * 16, value_mac=b"vb" * 16)

_PROBE_IDS = (b"k1", b"k2", b"\x00")
_PROBE_NAMES = ("regular", "critical_block", "x" * 255)


async def appsync_state(store: Any) -> tuple[object, ...]:
    """Everything a rejected call could have changed, read through the public API."""
    return (
        [await store.get_sync_key(i) for i in _PROBE_IDS],
        await store.get_latest_sync_key_id(),
        [await store.get_version(n) for n in _PROBE_NAMES],
        [
            await store.get_mutation_macs(n, [MAC_A.index_mac, MAC_B.index_mac])
            for n in _PROBE_NAMES
        ],
    )


def _wrong(value: object) -> Any:
    """A value of the wrong type, past the type checker: what the store must refuse."""
    return value


BAD_CALLS: list[tuple[str, tuple[object, ...]]] = [
    ("get_sync_key", (b"",)),
    ("get_sync_key", ("k1",)),
    ("get_sync_key", (b"x" * 256,)),
    ("set_sync_key", (b"k2", "not a key")),
    ("set_sync_key", (b"", K1)),
    (
        "set_sync_key",
        (b"k2", AppStateSyncKey(key_data=_wrong("str"), fingerprint=b"", timestamp=0)),
    ),
    ("set_sync_key", (b"k2", AppStateSyncKey(key_data=b"", fingerprint=b"", timestamp=2**63))),
    ("get_version", ("",)),
    ("get_version", (b"regular",)),
    ("set_version", ("regular", HashState(hash=bytes(127)))),
    ("set_version", ("regular", HashState(version=-1))),
    ("set_version", ("regular", HashState(index_value_map=_wrong({1: b"x"})))),
    ("set_version", ("regular", HashState(index_value_map=_wrong({"a": "x"})))),
    ("set_version", ("regular", HashState(mac_mismatch_fatal=_wrong(1)))),
    ("set_version", ("regular", {"version": 1})),
    ("set_version", ("a\x00b", HashState())),
    ("put_mutation_macs", ("regular", 1, [MAC_A, AppStateMutationMAC(b"", b"v")])),
    ("put_mutation_macs", ("regular", 1, [MAC_A, AppStateMutationMAC(b"i", _wrong(None))])),
    ("put_mutation_macs", ("regular", -1, [MAC_A])),
    ("put_mutation_macs", ("regular", 1, [MAC_A, (b"i", b"v")])),
    ("put_mutation_macs", ("x" * 255, 1, [MAC_A, AppStateMutationMAC(b"i" * 255, b"v")])),
    ("put_mutation_macs", ("", 1, [MAC_A])),
    ("get_mutation_mac", ("regular", b"")),
    ("get_mutation_mac", ("x" * 255, b"i" * 255)),
    ("get_mutation_macs", ("regular", [MAC_A.index_mac, "str"])),
    ("get_mutation_macs", ("regular", MAC_A.index_mac)),
    ("delete_mutation_macs", ("regular", [MAC_A.index_mac, b""])),
    ("delete_mutation_macs", ("", [MAC_A.index_mac])),
    ("clear_mutation_macs", ("",)),
    ("clear_mutation_macs", (None,)),
    ("delete_version", ("",)),
    ("delete_version", (b"regular",)),
]


class AppSyncConformance:
    """AppSyncStore semantics (DESIGN.md section 1). Needs a ``store`` fixture."""

    pytestmark = pytest.mark.anyio

    async def test_sync_keys(self, store: Any) -> None:
        assert await store.get_sync_key(b"k1") is None
        assert await store.get_latest_sync_key_id() is None
        await store.set_sync_key(b"k1", K1)
        await store.set_sync_key(b"k2", K2)
        assert await store.get_sync_key(b"k1") == K1
        assert await store.get_sync_key(b"k2") == K2
        assert await store.get_latest_sync_key_id() == b"k2"
        await store.set_sync_key(b"k1", K1)
        assert await store.get_latest_sync_key_id() == b"k1"

    async def test_binary_sync_key_ids(self, store: Any) -> None:
        await store.set_sync_key(b"\x00\xff\x00", K1)
        assert await store.get_sync_key(b"\x00\xff\x00") == K1
        assert await store.get_sync_key(b"\x00\xff") is None
        assert await store.get_latest_sync_key_id() == b"\x00\xff\x00"

    async def test_unknown_collection_has_default_state(self, store: Any) -> None:
        state = await store.get_version("regular_high")
        assert state == HashState()
        assert state.version == 0
        assert state.hash == bytes(128)
        assert state.index_value_map == {}
        assert state.mac_mismatch_fatal is False

    async def test_versions_round_trip(self, store: Any) -> None:
        await store.set_version("regular", STATE)
        assert await store.get_version("regular") == STATE
        assert await store.get_version("regular_low") == HashState()
        later = HashState(version=8, hash=bytes(128))
        await store.set_version("regular", later)
        assert await store.get_version("regular") == later

    async def test_returned_state_is_a_copy(self, store: Any) -> None:
        await store.set_version("regular", STATE)
        got = await store.get_version("regular")
        got.index_value_map["new"] = b"x"
        assert await store.get_version("regular") == STATE

    async def test_mutation_macs(self, store: Any) -> None:
        assert await store.get_mutation_mac("regular", MAC_A.index_mac) is None
        await store.put_mutation_macs("regular", 3, [MAC_A, MAC_B])
        await store.put_mutation_macs("critical_block", 1, [MAC_A])
        assert await store.get_mutation_mac("regular", MAC_A.index_mac) == MAC_A.value_mac
        got = await store.get_mutation_macs("regular", [MAC_B.index_mac, b"absent"])
        assert got == {MAC_B.index_mac: MAC_B.value_mac}
        await store.delete_mutation_macs("regular", [MAC_A.index_mac, b"absent"])
        assert await store.get_mutation_mac("regular", MAC_A.index_mac) is None
        assert await store.get_mutation_mac("regular", MAC_B.index_mac) == MAC_B.value_mac
        assert await store.get_mutation_mac("critical_block", MAC_A.index_mac) == MAC_A.value_mac

    async def test_mutation_mac_overwrite(self, store: Any) -> None:
        await store.put_mutation_macs("regular", 1, [MAC_A])
        newer = AppStateMutationMAC(MAC_A.index_mac, b"new")
        await store.put_mutation_macs("regular", 2, [newer, MAC_B])
        assert await store.get_mutation_mac("regular", MAC_A.index_mac) == b"new"

    async def test_clear_mutation_macs_only_that_collection(self, store: Any) -> None:
        await store.put_mutation_macs("regular", 1, [MAC_A, MAC_B])
        await store.put_mutation_macs("regular_low", 1, [MAC_A])
        await store.put_mutation_macs("regula", 1, [MAC_B])
        await store.clear_mutation_macs("regular")
        assert await store.get_mutation_macs("regular", [MAC_A.index_mac, MAC_B.index_mac]) == {}
        assert await store.get_mutation_mac("regular_low", MAC_A.index_mac) == MAC_A.value_mac
        assert await store.get_mutation_mac("regula", MAC_B.index_mac) == MAC_B.value_mac
        await store.clear_mutation_macs("never-written")

    async def test_all_sync_keys_newest_first_ties_by_id(self, store: Any) -> None:
        assert await store.get_all_sync_keys() == []
        await store.set_sync_key(b"k2", K1)
        await store.set_sync_key(b"k3", K2)
        await store.set_sync_key(b"k1", K1)
        await store.set_sync_key(b"\x00", AppStateSyncKey(b"d", b"f", 1_700_000_001))
        found = await store.get_all_sync_keys()
        assert [key_id for key_id, _ in found] == [b"\x00", b"k1", b"k2", b"k3"]
        assert found[1][1] == K1 and found[3][1] == K2
        assert await store.get_latest_sync_key_id() == b"\x00"  # the last set, as before

    async def test_delete_version_drops_the_collection_and_only_it(self, store: Any) -> None:
        await store.set_version("regular", STATE)
        await store.put_mutation_macs("regular", 7, [MAC_A, MAC_B])
        await store.set_version("critical_block", STATE)
        await store.put_mutation_macs("critical_block", 7, [MAC_A])
        await store.delete_version("regular")
        assert await store.get_version("regular") == HashState()
        assert await store.get_mutation_macs("regular", [MAC_A.index_mac, MAC_B.index_mac]) == {}
        assert await store.get_version("critical_block") == STATE
        assert await store.get_mutation_mac("critical_block", MAC_A.index_mac) == MAC_A.value_mac
        await store.delete_version("regular")  # unknown: no-op
        await store.put_mutation_macs("macs_only", 1, [MAC_B])  # MACs without a version
        await store.delete_version("macs_only")
        assert await store.get_mutation_mac("macs_only", MAC_B.index_mac) is None

    async def test_appsync_devices_are_isolated(self, store: Any) -> None:
        other = store.for_device(2)
        try:
            await store.set_sync_key(b"k1", K1)
            await store.set_version("regular", STATE)
            await store.put_mutation_macs("regular", 1, [MAC_A])
            assert await other.get_sync_key(b"k1") is None
            assert await other.get_latest_sync_key_id() is None
            assert await other.get_version("regular") == HashState()
            assert await other.get_mutation_mac("regular", MAC_A.index_mac) is None
            await other.clear_mutation_macs("regular")
            assert await store.get_mutation_mac("regular", MAC_A.index_mac) == MAC_A.value_mac
        finally:
            await other.close()

    @pytest.mark.parametrize(("method", "args"), BAD_CALLS, ids=lambda v: str(v)[:40])
    async def test_appsync_bad_input_is_refused_and_writes_nothing(
        self, store: Any, method: str, args: tuple[object, ...]
    ) -> None:
        await store.set_sync_key(b"k1", K1)
        await store.set_version("regular", STATE)
        await store.put_mutation_macs("regular", 1, [MAC_B])
        before = await appsync_state(store)
        with pytest.raises(ValidationError):
            await getattr(store, method)(*args)
        assert await appsync_state(store) == before
