"""Model-based test: random sequences of every public method — batches, expiry, take,
transactions committed and rolled back, close and reopen — run against LmdbStore,
SqliteStore, PostgresStore and MemoryStore, and against the blocking API
(`lmdbstore.sync`) on LMDB and SQLite, each result checked against the independent
oracle (`lmdbstore.testing.oracle`) as the model.

200 examples per backend in the default profile; ``HYPOTHESIS_PROFILE=long`` runs 5,000.
Names are drawn from small pools so that calls collide; a few argument values are invalid
on purpose, and then both stores must refuse them alike.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.from_thread
import psycopg
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from lmdbstore import (
    AppStateMutationMAC,
    AppStateSyncKey,
    Device,
    DeviceInfo,
    DeviceListRecord,
    EncryptionKey,
    HashState,
    LidPnMappingEntry,
    Limits,
    LmdbStore,
    MemoryStore,
    MsgSecretEntry,
    SqliteStore,
    StoreError,
    TcTokenEntry,
    clock,
    sync,
)
from lmdbstore.postgres_store import PostgresStore
from lmdbstore.testing.oracle import OracleStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

EXAMPLES = 5000 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 200
EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", EXAMPLES))  # a quicker look while developing
CAPS = Limits(sent_messages=3, msg_secrets=3)
"""Caps small enough for the machine's few names to go over them (both sides keep them)."""

addresses = st.sampled_from(
    ["a@lid", "b@lid", "5511@s.whatsapp.net", "5511:7@s.whatsapp.net.0", "55112@s.whatsapp.net"]
) | st.just("")  # invalid now and then
users = st.sampled_from(["5511", "55112", "a", "8888"])
# "5511@s.whatsapp.net" and "1@lid" are aliases of each other whenever lid "1" maps to 5511.
jids = st.sampled_from(["a@lid", "b@lid", "1@lid", "5511@s.whatsapp.net"])
groups = st.sampled_from(["g1@g.us", "g2@g.us"])
names = st.sampled_from(
    ["g1@g.us:5511@s.whatsapp.net", "g1@g.us:a@lid", "g2@g.us:5511:7@s.whatsapp.net"]
)
blobs = st.binary(max_size=12)
ids = st.integers(0, 6) | st.just(-1)
times = st.integers(0, 30)
collections = st.sampled_from(["regular", "critical_block"])
macs = st.sampled_from([b"m1", b"m2", b"m3"])
key32 = st.sampled_from([bytes(32), bytes(range(32))])
messages = st.tuples(groups, jids, st.sampled_from(["m1", "m2", "m3"]))

entries = st.builds(
    LidPnMappingEntry,
    lid=st.sampled_from(["1", "2", "3"]),
    phone_number=st.sampled_from(["5511", "5512"]),
    created_at=times,
    updated_at=times,
    learning_source=st.sampled_from(["usync", "peer"]),
)
device_lists = st.builds(
    DeviceListRecord,
    user=st.sampled_from(["5511", "5512"]),
    devices=st.lists(st.builds(DeviceInfo, st.integers(0, 3)), max_size=3),
    timestamp=times,
)
tc_entries = st.builds(TcTokenEntry, blobs, times, st.none() | times)
secrets = st.builds(
    MsgSecretEntry,
    st.just("g1@g.us"),
    jids,
    st.sampled_from(["m1", "m2"]),
    st.sampled_from([bytes(32), bytes(range(32))]),
    st.sampled_from([0, 5, 10, 20]),
    times,
)
contact_names = st.sampled_from(["", "Ana", "Bo"])
hashes = st.sampled_from([bytes(32), bytes(range(32))])
message_ids = st.sampled_from(["m1", "m2"])
states = st.builds(HashState, st.integers(0, 9), st.just(bytes(128)), st.just({"i": b"v"}))

# (method, strategy of its argument tuple): every public method but snapshot_db and
# resource_report, whose forms differ by backend and are tested on their own.
CALLS: list[tuple[str, st.SearchStrategy[tuple[Any, ...]]]] = [
    ("put_identity", st.tuples(addresses, key32)),
    ("put_identities_batch", st.tuples(st.lists(st.tuples(addresses, key32), max_size=3))),
    ("load_identity", st.tuples(addresses)),
    ("delete_identity", st.tuples(addresses)),
    ("get_session", st.tuples(addresses)),
    ("get_sessions_batch", st.tuples(st.lists(addresses, max_size=3))),
    ("put_session", st.tuples(addresses, blobs)),
    ("put_sessions_batch", st.tuples(st.lists(st.tuples(addresses, blobs), max_size=3))),
    ("delete_session", st.tuples(addresses)),
    ("has_session", st.tuples(addresses)),
    ("has_signal_state_for_user", st.tuples(users)),
    ("get_session_addresses", st.tuples(users)),
    ("delete_all_sessions", st.tuples(users)),
    ("delete_all_identities", st.tuples(users)),
    ("is_trusted_identity", st.tuples(addresses, key32)),
    ("store_prekey", st.tuples(ids, blobs, st.booleans())),
    ("store_prekeys_batch", st.tuples(st.lists(st.tuples(ids, blobs), max_size=3), st.booleans())),
    ("load_prekey", st.tuples(ids)),
    ("load_prekeys_batch", st.tuples(st.lists(ids, max_size=3))),
    ("mark_prekeys_uploaded", st.tuples(st.lists(ids, max_size=3))),
    ("remove_prekey", st.tuples(ids)),
    ("get_max_prekey_id", st.just(())),
    ("store_signed_prekey", st.tuples(ids, blobs)),
    ("load_signed_prekey", st.tuples(ids)),
    ("load_all_signed_prekeys", st.just(())),
    ("remove_signed_prekey", st.tuples(ids)),
    ("put_sender_key", st.tuples(names, blobs)),
    ("put_sender_keys_batch", st.tuples(st.lists(st.tuples(names, blobs), max_size=2))),
    ("get_sender_key", st.tuples(names)),
    ("delete_sender_key", st.tuples(names)),
    ("migrate_pn_to_lid", st.tuples(users, users)),
    ("get_sync_key", st.tuples(macs)),
    ("set_sync_key", st.tuples(macs, st.builds(AppStateSyncKey, blobs, blobs, times))),
    ("get_latest_sync_key_id", st.just(())),
    ("get_all_sync_keys", st.just(())),
    ("delete_version", st.tuples(collections)),
    ("get_version", st.tuples(collections)),
    ("set_version", st.tuples(collections, states)),
    (
        "put_mutation_macs",
        st.tuples(
            collections,
            times,
            st.lists(st.builds(AppStateMutationMAC, macs, blobs), max_size=3),
        ),
    ),
    ("get_mutation_mac", st.tuples(collections, macs)),
    ("get_mutation_macs", st.tuples(collections, st.lists(macs, max_size=3))),
    ("delete_mutation_macs", st.tuples(collections, st.lists(macs, max_size=2))),
    ("clear_mutation_macs", st.tuples(collections)),
    ("get_sender_key_devices", st.tuples(groups)),
    (
        "set_sender_key_status",
        st.tuples(groups, st.lists(st.tuples(jids, st.booleans()), max_size=3)),
    ),
    ("clear_sender_key_devices", st.tuples(groups)),
    ("delete_sender_key_device_rows", st.tuples(st.lists(jids, max_size=2))),
    ("clear_all_sender_key_devices", st.just(())),
    ("get_lid_mapping", st.tuples(st.sampled_from(["1", "2"]))),
    ("get_pn_mapping", st.tuples(st.sampled_from(["5511", "5512"]))),
    ("put_lid_mapping", st.tuples(entries)),
    ("put_lid_mappings", st.tuples(st.lists(entries, max_size=3))),
    ("get_lids_for_pns", st.tuples(st.lists(st.sampled_from(["5511", "5512", "77"]), max_size=3))),
    ("get_all_lid_mappings", st.just(())),
    ("save_base_key", st.tuples(jids, st.sampled_from(["m1", "m2"]), blobs)),
    ("has_same_base_key", st.tuples(jids, st.sampled_from(["m1", "m2"]), blobs)),
    ("delete_base_key", st.tuples(jids, st.sampled_from(["m1", "m2"]))),
    ("update_device_list", st.tuples(device_lists)),
    ("update_device_lists", st.tuples(st.lists(device_lists, max_size=2))),
    ("get_devices", st.tuples(st.sampled_from(["5511", "5512"]))),
    ("delete_devices", st.tuples(st.sampled_from(["5511", "5512"]))),
    ("get_group_metadata", st.tuples(groups)),
    ("put_group_metadata", st.tuples(groups, blobs)),
    ("delete_group_metadata", st.tuples(groups)),
    ("get_tc_token", st.tuples(jids)),
    ("put_tc_token", st.tuples(jids, tc_entries)),
    ("delete_tc_token", st.tuples(jids)),
    ("get_all_tc_token_jids", st.just(())),
    ("delete_expired_tc_tokens", st.tuples(times, st.none() | times)),
    ("touch_tc_token_sender_timestamp", st.tuples(jids, times)),
    ("store_received_tc_token", st.tuples(jids, blobs, times)),
    ("store_received_tc_tokens", st.tuples(st.lists(st.tuples(jids, blobs, times), max_size=3))),
    ("find_tc_token", st.tuples(jids)),
    ("store_sent_message", st.tuples(groups, st.sampled_from(["m1", "m2"]), blobs)),
    ("take_sent_message", st.tuples(groups, st.sampled_from(["m1", "m2"]))),
    ("peek_sent_message", st.tuples(groups, st.sampled_from(["m1", "m2"]))),
    ("delete_expired_sent_messages", st.tuples(times)),
    ("store_pending_inbound", messages.map(lambda m: (*m, b"msg"))),
    (
        "store_pending_inbound_batch",
        st.tuples(st.lists(messages.map(lambda m: (*m, b"x")), max_size=3)),
    ),
    ("get_pending_inbound", messages),
    ("delete_pending_inbound", messages),
    ("delete_pending_inbound_batch", st.tuples(st.lists(messages, max_size=2))),
    ("delete_expired_pending_inbound", st.tuples(times)),
    (
        "put_msg_secret",
        secrets.map(lambda e: (e.chat, e.sender, e.msg_id, e.secret, e.expires_at, e.message_ts)),
    ),
    ("put_msg_secrets", st.tuples(st.lists(secrets, max_size=3))),
    ("get_msg_secret", st.tuples(st.just("g1@g.us"), jids, st.sampled_from(["m1", "m2"]))),
    ("get_msg_secret_with_ts", st.tuples(st.just("g1@g.us"), jids, st.sampled_from(["m1", "m2"]))),
    ("find_msg_secret", st.tuples(st.just("g1@g.us"), jids, st.sampled_from(["m1", "m2"]))),
    ("delete_expired_msg_secrets", st.tuples(times)),
    ("put_push_name", st.tuples(jids, contact_names)),
    ("put_business_name", st.tuples(jids, contact_names)),
    ("put_contact_name", st.tuples(jids, contact_names, contact_names)),
    (
        "put_all_contact_names",
        st.tuples(st.lists(st.tuples(jids, contact_names, contact_names), max_size=3)),
    ),
    ("put_redacted_phones", st.tuples(st.lists(st.tuples(jids, contact_names), max_size=3))),
    ("get_contact", st.tuples(jids)),
    ("get_all_contacts", st.just(())),
    ("get_buffered_event", st.tuples(hashes)),
    ("put_buffered_event", st.tuples(hashes, st.none() | blobs, times)),
    ("clear_buffered_event_plaintext", st.tuples(hashes)),
    ("delete_old_buffered_hashes", st.tuples(st.none() | times)),
    ("add_outgoing_event", st.tuples(groups, message_ids, st.sampled_from(["wa", "fb"]), blobs)),
    ("get_outgoing_event", st.tuples(groups, message_ids, st.none() | groups)),
    ("delete_old_outgoing_events", st.tuples(st.none() | times)),
    ("put_muted_until", st.tuples(groups, st.sampled_from([-1, 0, 5]))),
    ("put_pinned", st.tuples(groups, st.booleans())),
    ("put_archived", st.tuples(groups, st.booleans())),
    ("get_chat_settings", st.tuples(groups)),
    (
        "save",
        st.tuples(st.builds(Device, push_name=st.sampled_from(["a", "b"]), login_counter=times)),
    ),
    ("load", st.just(())),
    ("exists", st.just(())),
    ("create", st.just(())),
    ("device_ids", st.just(())),
    ("verify", st.just(())),
]


def test_the_machine_calls_every_method() -> None:
    """Every method of the contract is called by the rules (but the two whose forms differ
    by backend, and those that end or open handles)."""
    from lmdbstore.protocols import Backend, vars_of

    coroutines = {name for name, f in vars_of(Backend).items() if inspect.iscoroutinefunction(f)}
    left_out = {
        "snapshot_db",
        "resource_report",
        "run_transaction",
        "close",
        "__aenter__",
        "__aexit__",
        "delete_device",  # a rule of its own, which then opens new handles
        "acquire_device_lease",  # threads and time: its own suite (LeaseConformance)
    }
    assert coroutines - left_out == {method for method, _ in CALLS}


calls = st.one_of(*[st.tuples(st.just(method), args) for method, args in CALLS])


class Rollback(Exception):
    """Raised at the end of a transaction that the test rolls back."""


KEYWORDS = {"put_contact_name": ("first_name", "full_name")}
"""The methods whose last arguments are keyword-only, and their names."""


async def outcome(store: Any, method: str, args: tuple[Any, ...]) -> tuple[str, object]:
    """What a call gave: ("ok", result) or ("error", error class name)."""
    names = KEYWORDS.get(method, ())
    positional, named = args[: len(args) - len(names)], args[len(args) - len(names) :]
    try:
        return "ok", await getattr(store, method)(
            *positional, **dict(zip(names, named, strict=True))
        )
    except StoreError as exc:
        return "error", type(exc).__name__


async def in_transaction(
    store: Any, ops: list[tuple[str, tuple[Any, ...]]], commit: bool
) -> list[tuple[str, object]]:
    results = []
    try:
        async with store.transaction() as tx:
            for method, args in ops:
                results.append(await outcome(tx, method, args))
            if not commit:
                raise Rollback
    except Rollback:
        pass
    return results


class StoreMachine(RuleBasedStateMachine):
    opener: ClassVar[Any]
    file_name: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self.portal = self._portal_cm.__enter__()
        self.directory = tempfile.mkdtemp(prefix="lmdbstore-model-")
        self.path = os.path.join(self.directory, self.file_name)
        self.now = 1_000
        self._clock = clock.now
        clock.now = lambda: self.now
        self.model = OracleStore(limits=CAPS)
        self.real = self.open()

    def open(self) -> Any:
        return self.portal.call(functools.partial(self.opener.open, self.path, limits=CAPS))

    def teardown(self) -> None:
        self.portal.call(self.real.close)
        self._portal_cm.__exit__(None, None, None)
        clock.now = self._clock
        shutil.rmtree(self.directory, ignore_errors=True)

    def both(self, run: Any, *args: Any) -> None:
        expected = self.portal.call(run, self.model, *args)
        got = self.portal.call(run, self.real, *args)
        assert got == expected, f"{args}: {got!r} != model {expected!r}"

    @rule(call=calls)
    def call(self, call: tuple[str, tuple[Any, ...]]) -> None:
        self.both(outcome, *call)

    @rule(ops=st.lists(calls, max_size=5), commit=st.booleans())
    def transaction(self, ops: list[tuple[str, tuple[Any, ...]]], commit: bool) -> None:
        self.both(in_transaction, ops, commit)

    @rule(seconds=st.integers(1, 10))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds

    @precondition(lambda self: True)
    @rule()
    def close_and_reopen(self) -> None:
        self.portal.call(self.real.close)
        self.real = self.open()

    @rule()
    def delete_the_device(self) -> None:
        """Both delete the device (and count alike); both handles then refuse; a new
        handle on each goes on with the device's new, empty life."""
        self.both(outcome, "delete_device", ())
        self.both(outcome, "get_session", ("a@lid",))
        old_model, self.model = self.model, OracleStore(limits=CAPS, _data=self.model._data)
        self.portal.call(old_model.close)
        self.close_and_reopen()


class LmdbMachine(StoreMachine):
    opener = LmdbStore
    file_name = "store.lmdb"


class _EncryptedOpener:
    """Opens an encrypted store of ``store_class`` (a blocking one through `_Blocking`)."""

    key = EncryptionKey(bytes(range(32)))

    def __init__(self, store_class: Any) -> None:
        self.store_class = store_class

    async def open(self, path: str, limits: Limits) -> Any:
        opened = self.store_class.open(path, limits=limits, encryption=self.key)
        if isinstance(opened, sync.SyncStore):
            return _Blocking(opened)
        return await opened


class EncryptedLmdbMachine(StoreMachine):
    opener = _EncryptedOpener(LmdbStore)
    file_name = "store.lmdb"


class EncryptedSqliteMachine(StoreMachine):
    opener = _EncryptedOpener(SqliteStore)
    file_name = "store.sqlite"


class SqliteMachine(StoreMachine):
    opener = SqliteStore
    file_name = "store.sqlite"


class _MemoryOpener:
    """Opens the same MemoryStore data again, as a path would reopen a file."""

    def __init__(self) -> None:
        self.storage = MemoryStore()._memory()

    async def open(self, path: str, limits: Limits) -> MemoryStore:
        return MemoryStore(limits=limits, _storage=self.storage)


class MemoryMachine(StoreMachine):
    file_name = "unused"

    def __init__(self) -> None:
        self.opener = _MemoryOpener()
        super().__init__()


class _Blocking:
    """A blocking store seen through async methods that call it at once (the machine runs
    one call at a time, so nothing waits for another task of the loop)."""

    def __init__(self, store: sync.SyncStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Blocking]:
        with self._store.transaction() as tx:
            yield _Blocking(tx)


class _BlockingOpener:
    def __init__(self, store_class: Any) -> None:
        self.store_class = store_class

    async def open(self, path: str, limits: Limits) -> _Blocking:
        return _Blocking(self.store_class.open(path, limits=limits))


class BlockingLmdbMachine(StoreMachine):
    opener = _BlockingOpener(sync.SyncLmdbStore)
    file_name = "store.lmdb"


class BlockingEncryptedLmdbMachine(StoreMachine):
    opener = _EncryptedOpener(sync.SyncLmdbStore)
    file_name = "store.lmdb"


class BlockingSqliteMachine(StoreMachine):
    opener = _BlockingOpener(sync.SyncSqliteStore)
    file_name = "store.sqlite"


class _PostgresOpener:
    """Opens the store of a machine in a schema named after its path (so a reopen finds
    it), in the test session's PostgreSQL (`url`, set by the test)."""

    url = ""

    def __init__(self, key: EncryptionKey | None = None) -> None:
        self.key = key

    @staticmethod
    def schema(path: str) -> str:
        return "m_" + hashlib.sha256(path.encode()).hexdigest()[:16]

    async def open(self, path: str, limits: Limits) -> PostgresStore:
        return await PostgresStore.open(
            self.url, schema=self.schema(path), limits=limits, encryption=self.key
        )


class PostgresMachine(StoreMachine):
    opener = _PostgresOpener()
    file_name = "store.pg"

    def teardown(self) -> None:
        super().teardown()
        with psycopg.connect(self.opener.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.opener.schema(self.path)} CASCADE")


class EncryptedPostgresMachine(PostgresMachine):
    opener = _PostgresOpener(_EncryptedOpener.key)


@pytest.mark.parametrize(
    "machine",
    [
        LmdbMachine,
        EncryptedLmdbMachine,
        SqliteMachine,
        EncryptedSqliteMachine,
        MemoryMachine,
        BlockingLmdbMachine,
        BlockingEncryptedLmdbMachine,
        BlockingSqliteMachine,
        PostgresMachine,
        EncryptedPostgresMachine,
    ],
    ids=[
        "lmdb",
        "encrypted-lmdb",
        "sqlite",
        "encrypted-sqlite",
        "memory",
        "blocking-lmdb",
        "blocking-encrypted-lmdb",
        "blocking-sqlite",
        "postgres",
        "encrypted-postgres",
    ],
)
def test_backend_behaves_like_the_model(
    machine: type[StoreMachine], request: pytest.FixtureRequest
) -> None:
    if issubclass(machine, PostgresMachine):
        _PostgresOpener.url = request.getfixturevalue("postgres_url")
    runner = machine.TestCase
    runner.settings = settings(max_examples=EXAMPLES, deadline=None, stateful_step_count=30)
    runner().runTest()
