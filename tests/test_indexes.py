"""An index never disagrees with its records: random put/remap/expire sequences, checked
against a full derivation of every index after each step, on LmdbStore and MemoryStore, and
against the oracle."""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmdbstore import (
    LidPnMappingEntry,
    LmdbStore,
    MemoryStore,
    MsgSecretEntry,
    TcTokenEntry,
    clock,
)
from lmdbstore.domains.indexes import index_problems
from lmdbstore.storage import lmdb as lmdb_storage
from lmdbstore.testing.oracle import OracleStore

if TYPE_CHECKING:
    from collections.abc import Iterator

names = st.sampled_from(["a@lid", "b@lid", "c@lid"])
phones = st.sampled_from(["5511", "7722"])
times = st.integers(0, 50)

operations = st.one_of(
    st.tuples(st.just("set_sender_key_status"), names, st.lists(st.tuples(names, st.booleans()))),
    st.tuples(st.just("clear_sender_key_devices"), names),
    st.tuples(st.just("delete_sender_key_device_rows"), st.lists(names, max_size=2)),
    st.tuples(st.just("clear_all_sender_key_devices")),
    st.tuples(
        st.just("put_lid_mapping"),
        st.builds(LidPnMappingEntry, names, phones, times, times, st.just("s")),
    ),
    st.tuples(
        st.just("put_lid_mappings"),
        st.lists(st.builds(LidPnMappingEntry, names, phones, times, times, st.just("s"))),
    ),
    st.tuples(
        st.just("put_tc_token"),
        names,
        st.builds(TcTokenEntry, st.sampled_from([b"", b"t"]), times, st.none() | times),
    ),
    st.tuples(st.just("delete_tc_token"), names),
    st.tuples(st.just("touch_tc_token_sender_timestamp"), names, times),
    st.tuples(st.just("store_received_tc_token"), names, st.sampled_from([b"", b"u"]), times),
    st.tuples(st.just("delete_expired_tc_tokens"), times, st.none() | times),
    st.tuples(st.just("store_sent_message"), names, names, st.binary(max_size=3), times),
    st.tuples(st.just("take_sent_message"), names, names),
    st.tuples(st.just("delete_expired_sent_messages"), times),
    st.tuples(st.just("store_pending_inbound"), names, names, names, st.binary(max_size=3), times),
    st.tuples(st.just("delete_pending_inbound"), names, names, names),
    st.tuples(st.just("delete_expired_pending_inbound"), times),
    st.tuples(
        st.just("put_msg_secrets"),
        st.lists(
            st.builds(MsgSecretEntry, names, names, names, st.just(bytes(32)), times, times),
            max_size=3,
        ),
    ),
    st.tuples(st.just("delete_expired_msg_secrets"), times),
)

READS = [
    ("get_sender_key_devices", "a@lid"),
    ("get_sender_key_devices", "b@lid"),
    ("get_all_lid_mappings",),
    ("get_pn_mapping", "5511"),
    ("get_pn_mapping", "7722"),
    ("get_all_tc_token_jids",),
    ("get_tc_token", "a@lid"),
    ("get_pending_inbound", "a@lid", "a@lid", "a@lid"),
    ("get_msg_secret_with_ts", "a@lid", "b@lid", "c@lid"),
]

TIMED = {"store_sent_message", "store_pending_inbound"}


async def apply(store, step):
    name, *args = step
    if name in TIMED:  # the last argument is the time the store should see as "now"
        *args, at = args
        clock.now = lambda: at
    return await getattr(store, name)(*args)


@pytest.fixture(scope="module", autouse=True)
def chunks_of_two() -> Iterator[None]:
    """LMDB's expiry deletes a chunk of entries at a time: two here, so that the few
    entries a step expires span chunks."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lmdb_storage, "EXPIRY_CHUNK", 2)
        yield


@settings(max_examples=60)
@given(st.lists(operations, max_size=25))
def test_indexes_agree_with_records_after_every_step(steps):
    real_now = clock.now

    async def run() -> None:
        with tempfile.TemporaryDirectory() as directory:
            async with await LmdbStore.open(directory) as store:
                model = OracleStore()
                stores = (store, MemoryStore())
                for step in steps:
                    expected = await apply(model, step)
                    for checked in stores:
                        assert await apply(checked, step) == expected, step
                        assert index_problems(checked) == []
                    for read in READS:
                        name, *args = read
                        expected = await getattr(model, name)(*args)
                        for checked in stores:
                            ours = await getattr(checked, name)(*args)
                            assert ours == expected, (step, read)

    try:
        anyio.run(run)
    finally:
        clock.now = real_now
