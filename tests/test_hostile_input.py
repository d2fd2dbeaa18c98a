"""Hostile input: hypothesis calls every public method of every backend with wrong types,
huge and empty values, NUL bytes, lone surrogates, out-of-range integers and malformed
records. Only lmdbstore errors may come out, and a rejected call leaves the store's content
exactly as it was (compared byte for byte, or row for row)."""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

import anyio.from_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmdbstore import (
    Backend,
    Device,
    DeviceInfo,
    DeviceLease,
    DeviceListRecord,
    HashState,
    LidPnMappingEntry,
    LmdbStore,
    MemoryStore,
    MsgSecretEntry,
    SqliteStore,
    StoreError,
    TcTokenEntry,
)
from lmdbstore.keys import DOMAINS
from lmdbstore.testing.protocol import fill_every_kind

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


HUGE = bytes(8 * 1024 * 1024 + 1)  # one byte over the value limit

METHODS = sorted(
    name
    for name, member in inspect.getmembers(Backend, inspect.iscoroutinefunction)
    if len(inspect.signature(member).parameters) > 1
    and not name.startswith("_")
    and name != "snapshot_db"  # writes files beside the store; tested on its own
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([-1, 2**32, 2**63, -(2**63) - 1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x" * 256, "é" * 200, "a@lid", "5511"]),
    st.binary(max_size=4),
    st.sampled_from([b"", bytes(32), bytes(64), bytes(128)]),
    st.builds(object),
)
records = st.one_of(
    st.builds(TcTokenEntry, scalars, scalars, scalars),
    st.builds(LidPnMappingEntry, scalars, scalars, scalars, scalars, scalars),
    st.builds(
        DeviceListRecord, scalars, st.lists(st.builds(DeviceInfo, scalars), max_size=2), scalars
    ),
    st.builds(MsgSecretEntry, scalars, scalars, scalars, scalars, scalars, scalars),
    st.builds(HashState, scalars, scalars, st.dictionaries(scalars, scalars, max_size=2)),
    st.builds(Device, push_name=scalars, noise_key=scalars, app_version=scalars),
)
values = st.recursive(
    st.one_of(scalars, records),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner)),
    max_leaves=6,
)


async def content(store: Any) -> object:
    """Everything the store holds, for comparison."""
    if isinstance(store, SqliteStore):
        return store._db().read_sync(lambda conn: list(conn.iterdump()))
    return store._storage.read(lambda view: {db: list(view.scan(db, b"", None)) for db in DOMAINS})


@pytest.fixture(params=["lmdb", "sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """(a portal into an event loop, a filled store of the backend) for the whole test."""
    with anyio.from_thread.start_blocking_portal() as portal:
        if request.param == "memory":
            opened: Any = MemoryStore()
        elif request.param == "lmdb":
            opened = portal.call(LmdbStore.open, tmp_path / "store")
        else:
            opened = portal.call(SqliteStore.open, tmp_path / "store.sqlite")
        portal.call(fill_every_kind, opened)
        yield portal, opened
        portal.call(opened.close)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_arguments_are_refused_cleanly(store: tuple[Any, Any], data: st.DataObject) -> None:
    portal, backend = store
    method = data.draw(st.sampled_from(METHODS), label="method")
    params = list(inspect.signature(getattr(Backend, method)).parameters.values())[1:]
    required = sum(p.default is inspect.Parameter.empty for p in params)
    args = data.draw(
        st.lists(values, min_size=required, max_size=len(params)).map(tuple), label="args"
    )
    positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    keywords = params[len(positional) :]
    named = {p.name: a for p, a in zip(keywords, args[len(positional) :], strict=False)}
    call = functools.partial(getattr(backend, method), *args[: len(positional)], **named)
    before = portal.call(content, backend)
    try:
        result = portal.call(call)
    except StoreError:
        assert portal.call(content, backend) == before, f"{method}{args!r} wrote, then failed"
    else:
        if isinstance(result, DeviceLease):  # a lease taken goes: its renewals would write
            portal.call(result.release)
    # Anything else propagates and fails the test: only lmdbstore errors may come out.


def test_a_value_over_the_limit_is_refused(store: tuple[Any, Any]) -> None:
    """8 MiB + 1 byte (kept out of the random draws: copying it costs too much to repeat)."""
    portal, backend = store
    before = portal.call(content, backend)
    for method, args in (
        ("put_session", ("a@lid", HUGE)),
        ("put_group_metadata", ("g@g.us", HUGE)),
        ("store_sent_message", ("g@g.us", "m", HUGE)),
    ):
        with pytest.raises(StoreError, match=r"limit|bytes"):
            portal.call(getattr(backend, method), *args)
    assert portal.call(content, backend) == before


@pytest.mark.anyio
async def test_a_stored_integer_out_of_range_is_a_corrupt_record(tmp_path: Path) -> None:
    # A time of 2**63 in a sent message (hostile bytes: a CBOR u64 outside i64): the take,
    # the expiry and verify refuse it as a corrupt record, never with a struct.error from
    # re-encoding the index. (A bigger one is a tagged bignum, refused as a tag.)
    import cbor2

    from lmdbstore import SerializationError, keys

    async with await LmdbStore.open(tmp_path / "db") as store:
        await store.store_sent_message("g@g.us", "m1", b"payload")
        k = keys.make(keys.u32(1), keys.ProtocolTag.SENT_MESSAGE, keys.s(b"g@g.us"), keys.s(b"m1"))
        await store._write(
            lambda view: view.put("protocol", k, cbor2.dumps({"r": b"x", "at": 2**63}))
        )
        with pytest.raises(SerializationError, match="out of range"):
            await store.take_sent_message("g@g.us", "m1")
        problems = await store.verify()
        assert any(k.hex() in p and "out of range" in p for p in problems), problems


@pytest.mark.anyio
async def test_a_malformed_key_is_refused_by_every_read_that_meets_it(tmp_path: Path) -> None:
    # Keys written below the library that no kind can hold (a name without its NUL, bad
    # UTF-8, an id cut short): each read that meets one raises SerializationError naming
    # it, and verify reports it, instead of an IndexError or struct.error.
    from lmdbstore import SerializationError, keys

    dev = keys.u32(1)
    bad = {
        "get_sender_key_devices": keys.make(
            dev, keys.ProtocolTag.SENDER_KEY_DEVICE, b"g@g.us\x00a@lid"
        ),
        "get_max_prekey_id": keys.make(dev, keys.SignalTag.PREKEY, b"\x07"),
        "get_all_tc_token_jids": keys.make(dev, keys.ProtocolTag.TC_TOKEN, b"\xff\xfe\x00"),
    }
    for name, key in bad.items():
        async with await LmdbStore.open(tmp_path / name) as store:
            db = "signal" if name == "get_max_prekey_id" else "protocol"
            await store._write(lambda view, db=db, key=key: view.put(db, key, b"\xa0"))
            args = ("g@g.us",) if name == "get_sender_key_devices" else ()
            with pytest.raises(SerializationError) as caught:
                await getattr(store, name)(*args)
            assert caught.value.key == key
            assert await store.verify() != []


def shared_reference_bomb() -> dict[str, object]:
    """An app-state version whose value map holds CBOR shared references: about 9 KB that
    expand to 1 TiB once copied out (1,000 x 1,000 x 1,000 references to 1 KiB)."""
    level: list[object] = ["a" * 1024]
    for _ in range(3):
        level = [level] * 1000
    return {"v": 1, "h": bytes(128), "m": {b"k": level}, "x": False}


def plant_bomb(path: Path, backend: str) -> bytes:
    """A store with every kind of record, then the bomb written below the library as the
    version of collection "regular"; returns the record's key."""
    import sqlite3

    import cbor2
    import lmdb

    from lmdbstore import keys

    async def fill() -> None:
        opener = LmdbStore if backend == "lmdb" else SqliteStore
        async with await opener.open(path) as store:
            await fill_every_kind(store)

    anyio.run(fill)
    bomb = cbor2.dumps(shared_reference_bomb(), value_sharing=True)
    assert len(bomb) < 20_000
    if backend == "lmdb":
        env = lmdb.Environment(str(path), max_dbs=10)
        with env.begin(write=True) as txn:
            txn.put(
                keys.make(keys.u32(1), keys.AppSyncTag.VERSION, keys.s(b"regular")),
                bomb,
                db=env.open_db(b"appsync", txn=txn),
            )
        env.close()
    else:
        conn = sqlite3.connect(path)
        conn.execute(
            "INSERT OR REPLACE INTO app_state_versions VALUES (1, 'regular', 1, ?, ?, 0)",
            (bytes(128), cbor2.dumps(shared_reference_bomb()["m"], value_sharing=True)),
        )
        conn.commit()
        conn.close()
    return keys.make(keys.u32(1), keys.AppSyncTag.VERSION, keys.s(b"regular"))


def peak_memory_mib(*command: str) -> tuple[int, float]:
    """Run ``command``; its exit code and its peak resident memory in MiB."""
    import subprocess
    import sys

    probe = (
        "import resource, subprocess, sys\n"
        "code = subprocess.run(sys.argv[1:], capture_output=True).returncode\n"
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True
    )
    code, kib = done.stdout.split()
    return int(code), int(kib) / 1024


@pytest.mark.parametrize("backend", ["lmdb", "sqlite"])
def test_a_shared_reference_bomb_is_refused_everywhere_in_bounded_memory(
    tmp_path: Path, backend: str
) -> None:
    """A record with CBOR shared references (about 9 KB, 1 TiB expanded) is a corrupt
    record for the API and for verify, and export and migrate refuse it with exit code 5
    within 50 MB of the memory they take for a clean store, leaving nothing behind."""
    import sys
    from pathlib import Path as RealPath

    from lmdbstore import SerializationError

    name = "store" if backend == "lmdb" else "store.sqlite"
    clean, bombed = tmp_path / "clean" / name, tmp_path / "bombed" / name
    clean.parent.mkdir()
    bombed.parent.mkdir()
    key = plant_bomb(bombed, backend)
    anyio.run(lambda: fill_clean(clean, backend))

    async def through_the_api() -> None:
        opener = LmdbStore if backend == "lmdb" else SqliteStore
        async with await opener.open(bombed) as store:
            with pytest.raises(SerializationError) as caught:
                await store.get_version("regular")
            assert caught.value.key == key
            assert "tag" in str(caught.value)
            problems = await store.verify()
            assert any(key.hex() in problem for problem in problems), problems

    anyio.run(through_the_api)
    script = str(RealPath(sys.executable).parent / "lmdbstore")
    for command in (
        ["export", "-o", "{dir}/out.jsonl", "{store}"],
        ["migrate", "{store}", "{dir}/copy"],
    ):
        _, baseline = peak_memory_mib(
            script, *(part.format(dir=clean.parent, store=clean) for part in command)
        )
        # SQLite's read-only connections may leave its -wal and -shm files: not ours.
        before = sorted(p.name for p in bombed.parent.iterdir() if "sqlite-" not in p.name)
        code, peak = peak_memory_mib(
            script, *(part.format(dir=bombed.parent, store=bombed) for part in command)
        )
        assert code == 5, command
        assert peak < baseline + 50, (command, peak, baseline)
        after = sorted(p.name for p in bombed.parent.iterdir() if "sqlite-" not in p.name)
        assert after == before, command


async def fill_clean(path: Path, backend: str) -> None:
    opener = LmdbStore if backend == "lmdb" else SqliteStore
    async with await opener.open(path) as store:
        await fill_every_kind(store)


@pytest.mark.anyio
async def test_a_stored_device_with_a_short_key_is_a_corrupt_record(tmp_path: Path) -> None:
    # The read holds a device record to the rules every write is held to (validate.device):
    # a 1-byte identity key written below the library is refused by load, verify and export.
    import subprocess
    import sys
    from pathlib import Path as RealPath

    import cbor2

    from lmdbstore import SerializationError, keys

    key = keys.make(keys.u32(1), keys.DeviceTag.DEVICE)
    async with await LmdbStore.open(tmp_path / "db") as store:
        await store.save(Device())
        fields = cbor2.loads((await store._read(lambda view: view.get("device", key))) or b"")
        fields["ik"] = b"\x01"
        await store._write(lambda view: view.put("device", key, cbor2.dumps(fields)))
        with pytest.raises(SerializationError, match="identity_key") as caught:
            await store.load()
        assert caught.value.key == key
        assert any(key.hex() in problem for problem in await store.verify())
    script = str(RealPath(sys.executable).parent / "lmdbstore")
    done = subprocess.run(
        [script, "export", str(tmp_path / "db")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 5, done.stderr
    assert "identity_key" in done.stderr


@pytest.mark.anyio
async def test_sqlite_rows_whose_keys_do_not_fit_the_layout_are_corrupt_records(
    tmp_path: Path,
) -> None:
    # Found by the raw-layer fuzzer: a u32 id or a device id out of range, or a NUL in a
    # key string, written below the library, gave struct.error from reads and verify.
    import sqlite3

    from lmdbstore import SerializationError

    path = tmp_path / "db.sqlite"
    async with await SqliteStore.open(path) as store:
        await fill_every_kind(store)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE signed_prekeys SET signed_prekey_id = -1")
    conn.execute("UPDATE sessions SET address = 'a' || char(0) || 'b'")
    conn.execute("UPDATE identities SET device_id = 4294967296")
    conn.execute("REPLACE INTO meta VALUES ('last_device_id', -5)")
    conn.commit()
    conn.close()
    async with await SqliteStore.open(path) as store:
        with pytest.raises(SerializationError, match="byte layout"):
            await store.load_all_signed_prekeys()
        with pytest.raises(SerializationError, match="device counter"):
            await store.create()
        problems = await store.verify()
        assert any("identities: 1 rows" in p for p in problems), problems
        assert any("byte layout" in p for p in problems), problems
        assert any("signed_prekeys: 1 rows" in p for p in problems), problems


@pytest.mark.anyio
async def test_lmdb_keys_too_short_and_a_broken_write_sequence_are_corrupt_records(
    tmp_path: Path,
) -> None:
    # Found by the raw-layer fuzzer: a key shorter than device and kind crashed verify and
    # info; a write sequence that is not 8 bytes crashed put_lid_mapping.
    from lmdbstore import SerializationError, keys

    async with await LmdbStore.open(tmp_path / "db") as store:
        await fill_every_kind(store)
        seq = keys.make(keys.u32(1), keys.ProtocolTag.WRITE_SEQ)
        await store._write(lambda view: view.put("protocol", seq, b"\x01"))
        await store._write(lambda view: view.put("protocol", b"\x00\x00", b"\xa0"))
        with pytest.raises(SerializationError, match="write sequence"):
            await store.put_lid_mapping(LidPnMappingEntry("7@lid", "77", 1, 1, "test"))
        problems = await store.verify()
        assert any("too short" in p for p in problems), problems
        assert any("sequence is not 8 bytes" in p for p in problems), problems
