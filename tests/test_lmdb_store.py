"""LmdbStore beyond the shared contract: files on disk, format, growth, group commit."""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING

import anyio
import cbor2
import lmdb
import pytest

from lmdbstore import (
    AppSyncStore,
    DatabaseError,
    Device,
    DeviceStore,
    HashState,
    LmdbStore,
    MigrationError,
    MsgSecretStore,
    ProtocolStore,
    SerializationError,
    SignalStore,
    StoreConnectionError,
    StoreError,
    ValidationError,
    keys,
)
from lmdbstore.storage import lmdb as engine
from lmdbstore.testing import appsync as appsync_suite
from lmdbstore.testing import protocol as protocol_suite
from lmdbstore.testing import signal as signal_suite

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

KEY = bytes(32)


def raw_env(path: Path) -> lmdb.Environment:
    return lmdb.Environment(str(path), max_dbs=10)


@pytest.mark.parametrize("durability", ["full", "normal"])
async def test_every_durability_persists(tmp_path: Path, durability: str) -> None:
    async with await LmdbStore.open(tmp_path / "db", durability=durability) as store:  # type: ignore[arg-type]
        await store.put_session("a@lid", b"x")
    async with await LmdbStore.open(tmp_path / "db") as store:
        assert await store.get_session("a@lid") == b"x"


async def test_handles_share_one_environment_until_the_last_closes(tmp_path: Path) -> None:
    first = await LmdbStore.open(tmp_path / "db")
    second = first.for_device(2)
    again = await LmdbStore.open(tmp_path / "db", device_id=3)
    assert second.device_id == 2
    assert first._storage is second._storage is again._storage
    await first.close()
    await second.put_session("a@lid", b"still open")
    await again.close()
    assert await second.get_session("a@lid") == b"still open"
    await second.close()
    assert str((tmp_path / "db").resolve()) not in engine._registry
    raw = raw_env(tmp_path / "db")  # the process no longer holds it open
    raw.close()


async def test_conflicting_open_options_are_refused(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db"):
        with pytest.raises(StoreConnectionError, match="durability"):
            await LmdbStore.open(tmp_path / "db", durability="full")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"device_id": -1},
        {"device_id": 2**32},
        {"durability": "fast"},
        {"map_size": 10},
        {"map_size": 1 << 20, "max_size": 1 << 19},
        {"max_readers": 0},
        {"max_readers": 1 << 17},
        {"max_readers": True},
        {"max_readers": "8"},
    ],
)
async def test_bad_open_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        await LmdbStore.open(tmp_path / "db", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "db").exists()


async def test_newer_format_is_a_migration_error(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db") as store:
        await store.put_session("a@lid", b"x")
    env = raw_env(tmp_path / "db")
    with env.begin(write=True) as txn:
        txn.put(
            keys.FORMAT_KEY,
            cbor2.dumps(keys.FORMAT_VERSION + 1),
            db=env.open_db(b"meta", txn=txn),
        )
    env.close()
    newer = keys.FORMAT_VERSION + 1
    with pytest.raises(MigrationError, match=f"format {newer}"):
        await LmdbStore.open(tmp_path / "db")
    # Nothing was changed by the refused open.
    env = raw_env(tmp_path / "db")
    with env.begin() as txn:
        assert cbor2.loads(txn.get(keys.FORMAT_KEY, db=env.open_db(b"meta", txn=txn))) == newer
    env.close()


@pytest.mark.parametrize("kind", ["bignum", "str", "list"])
async def test_a_hostile_format_version_is_a_migration_error(tmp_path: Path, kind: str) -> None:
    # A 5,000-digit int (which repr() refuses) or a value of another type: still a clear
    # MigrationError, never a raw ValueError.
    version = {"bignum": 10**5000, "str": "1", "list": [1]}[kind]
    async with await LmdbStore.open(tmp_path / "db") as store:
        await store.put_session("a@lid", b"x")
    env = raw_env(tmp_path / "db")
    with env.begin(write=True) as txn:
        txn.put(keys.FORMAT_KEY, cbor2.dumps(version), db=env.open_db(b"meta", txn=txn))
    env.close()
    with pytest.raises(MigrationError, match="is not supported"):
        await LmdbStore.open(tmp_path / "db")


async def test_a_url_inside_a_url_is_refused(tmp_path: Path) -> None:
    for url in (f"lmdb://lmdb://{tmp_path}/x", f"lmdb://sqlite://{tmp_path}/x"):
        with pytest.raises(StoreConnectionError, match="URL inside a URL"):
            await LmdbStore.open(url)
    assert not os.path.lexists("lmdb:")


async def test_records_without_format_version_are_refused(tmp_path: Path) -> None:
    env = raw_env(tmp_path / "db")
    with env.begin(write=True) as txn:
        txn.put(b"\x00\x00\x00\x01\x02x\x00", b"?", db=env.open_db(b"signal", txn=txn))
    env.close()
    with pytest.raises(MigrationError, match="no format version"):
        await LmdbStore.open(tmp_path / "db")


async def test_corrupt_record_names_domain_and_key(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db") as store:
        await store.put_session("a@lid", b"good")
        await store.put_session("b@lid", b"will be broken")
        await store.set_version("regular", HashState(version=1))
    broken = keys.make(keys.device_prefix(1), keys.SignalTag.SESSION, b"b@lid\x00")
    env = raw_env(tmp_path / "db")
    with env.begin(write=True) as txn:
        assert txn.get(broken, db=env.open_db(b"signal", txn=txn)) is not None
        txn.put(broken, b"\xff\x00garbage", db=env.open_db(b"signal", txn=txn))
        version_key = keys.make(keys.device_prefix(1), keys.AppSyncTag.VERSION, b"regular\x00")
        txn.put(version_key, cbor2.dumps({"v": "seven"}), db=env.open_db(b"appsync", txn=txn))
    env.close()
    async with await LmdbStore.open(tmp_path / "db") as store:
        with pytest.raises(SerializationError, match=f"signal record at key {broken.hex()}"):
            await store.get_session("b@lid")
        with pytest.raises(SerializationError) as caught:
            await store.get_sessions_batch(["a@lid", "b@lid"])
        assert caught.value.domain == "signal"
        assert caught.value.key == broken
        with pytest.raises(SerializationError, match="appsync"):
            await store.get_version("regular")
        # The rest of the store keeps working, and the broken record can be replaced.
        assert await store.get_session("a@lid") == b"good"
        assert await store.has_session("b@lid")
        await store.put_session("b@lid", b"repaired")
        assert await store.get_session("b@lid") == b"repaired"


async def test_map_grows_by_itself(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db", map_size=1 << 16) as store:
        record = bytes(4000)
        for chunk in range(10):
            await store.put_sessions_batch([(f"{chunk}-{i}@lid", record) for i in range(100)])
        assert store._lmdb().env.info()["map_size"] > 1 << 16
    async with await LmdbStore.open(tmp_path / "db") as store:
        got = await store.get_sessions_batch(
            [f"{c}-{i}@lid" for c in range(10) for i in range(100)]
        )
        assert len(got) == 1000


async def test_max_size_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db", map_size=1 << 16, max_size=1 << 20) as store:
        written = []
        with pytest.raises(DatabaseError, match="max_size"):
            for i in range(1000):
                await store.put_session(f"{i}@lid", bytes(8000))
                written.append(i)
        assert written
        got = await store.get_sessions_batch([f"{i}@lid" for i in written])
        assert len(got) == len(written)
        assert isinstance(DatabaseError("x"), StoreError)
        await store.delete_session("0@lid")  # deletes still work at the limit
    async with await LmdbStore.open(tmp_path / "db", max_size=1 << 20) as store:
        assert await store.get_session(f"{written[-1]}@lid") == bytes(8000)


async def test_a_write_past_its_deadline_is_applied_exactly_when_it_returns(
    tmp_path: Path,
) -> None:
    """A write whose deadline has passed: committed on the loop it could not be cancelled
    and would return; queued for the writer thread (here: anyio has the cancellation's
    delivery ready to run, so the write does not commit on the loop) it is withdrawn and
    the cancellation raised. Either way the caller knows which."""
    async with await LmdbStore.open(tmp_path / "db") as store:
        with anyio.move_on_after(0) as scope:
            await store.put_session("a@lid", b"written")
        written = await store.get_session("a@lid") == b"written"
        assert written != scope.cancelled_caught


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_tasks_writing_at_once_share_commits_and_a_lone_writer_commits_inline(
    tmp_path: Path, anyio_backend: str
) -> None:
    """A lone task's writes commit on the loop, one commit each, with no writer thread;
    on asyncio, 64 tasks ready to write at once group-commit on the writer thread (each
    alone on the loop would hold up the others and commit by itself); on both, every write
    lands (`lmdbstore.storage.writer.others_ready`)."""
    async with await LmdbStore.open(tmp_path / "db") as store:
        engine_ = store._lmdb()
        checkpoints = engine_.checkpoints
        assert checkpoints is not None
        before = checkpoints.commits
        for i in range(50):
            await store.put_session(f"alone{i}@lid", b"v")
        assert checkpoints.commits - before == 50
        assert not engine_._writer.started

        async def writes(task: int) -> None:
            for i in range(10):
                await store.put_session(f"t{task}w{i}@lid", bytes([task]))

        before = checkpoints.commits
        async with anyio.create_task_group() as tg:
            for task in range(64):
                tg.start_soon(writes, task)
        if anyio_backend == "asyncio":  # batches of 64: 10 commits here (113 before)
            assert checkpoints.commits - before <= 640 // 8
        got = await store.get_sessions_batch(
            [f"t{t}w{i}@lid" for t in range(64) for i in range(10)]
        )
        assert got == {f"t{t}w{i}@lid": bytes([t]) for t in range(64) for i in range(10)}


@pytest.mark.parametrize(
    ("protocol", "calls"),
    [
        (SignalStore, signal_suite.BAD_CALLS),
        (AppSyncStore, appsync_suite.BAD_CALLS),
        (ProtocolStore, protocol_suite.BAD_CALLS),
        (MsgSecretStore, protocol_suite.BAD_CALLS),
        (DeviceStore, protocol_suite.BAD_CALLS),
    ],
)
def test_every_method_with_arguments_has_a_bad_input_test(protocol, calls) -> None:
    tested = {method for method, _ in calls}
    for name, member in vars(protocol).items():
        if inspect.iscoroutinefunction(member):
            params = list(inspect.signature(member).parameters)[1:]
            if params:
                assert name in tested, f"{name} has no bad-input test"


async def test_device_written_by_an_older_version_loads(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db") as store:
        await store.save(Device(push_name="kept"))
    env = raw_env(tmp_path / "db")
    with env.begin(write=True) as txn:
        # An older version knew only a few fields.
        old = cbor2.dumps({"pn": "5511@s.whatsapp.net", "rid": 7, "pnm": "old"})
        txn.put(
            keys.make(keys.device_prefix(1), keys.DeviceTag.DEVICE),
            old,
            db=env.open_db(b"device", txn=txn),
        )
    env.close()
    async with await LmdbStore.open(tmp_path / "db") as store:
        assert await store.load() == Device(
            pn="5511@s.whatsapp.net", registration_id=7, push_name="old"
        )


async def test_resource_report_shows_the_map(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db") as store:
        report = await store.resource_report()
    assert report.map_used is not None
    assert report.map_size is not None
    assert 0 < report.map_used <= report.map_size


async def test_reader_threads_never_stall_the_writer(tmp_path: Path) -> None:
    """Readers on several threads keep reading (without a lock) while the writer doubles the
    map again and again and aborts batches whose operation failed (py-lmdb 3 makes such an
    abort wait for every LMDB call of the process: unguarded, overlapping readers starve it).
    No read fails or sees a wrong value; no write hangs."""
    import threading

    async with await LmdbStore.open(tmp_path / "db", map_size=1 << 16) as store:
        await store.put_session("fixed@lid", b"fixed")
        key = store._named_key(keys.SignalTag.SESSION, "fixed@lid", "address")
        stop = threading.Event()
        problems: list[object] = []
        reads = [0]

        def reader() -> None:
            while not stop.is_set():
                try:
                    if store._storage.get("signal", key) is None:
                        problems.append("missing")
                except Exception as exc:  # pragma: no cover - the failure being tested for
                    problems.append(exc)
                reads[0] += 1

        async def doomed() -> None:
            with pytest.raises(ValidationError):
                await store.migrate_pn_to_lid("5511", "8" * 252)

        await store.put_session("5511@s.whatsapp.net", b"pn")
        threads = [threading.Thread(target=reader) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            with anyio.fail_after(60):
                for chunk in range(40):
                    batch = [(f"{chunk}-{i}@lid", bytes(2000)) for i in range(50)]
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(store.put_sessions_batch, batch)
                        tg.start_soon(doomed)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert store._lmdb().env.info()["map_size"] >= 1 << 22
        assert not problems
        assert reads[0] > 100
        assert await store.get_session("fixed@lid") == b"fixed"
        assert await store.get_session("39-49@lid") == bytes(2000)


async def test_max_readers_sizes_a_new_environments_reader_table(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db", max_readers=16) as store:
        assert (await store.resource_report()).max_readers == 16
        assert store._lmdb().env.max_readers() == 16


async def test_more_reading_threads_than_reader_slots_all_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 slots (one held by the checkpoint), 16 threads each with an event loop of its own
    reading at once: a read that finds the table full waits, backing off, for a slot
    instead of failing (before: "reader table full" at once). The wait's bound is raised so
    that a slow machine cannot make it fail: what is tested is the waiting."""
    import threading

    from lmdbstore.storage import lmdb as engine

    monkeypatch.setattr(engine, "READERS_FULL_WAIT", 60.0)

    async with await LmdbStore.open(tmp_path / "db", max_readers=4) as store:
        await store.put_sessions_batch([(f"{i}@lid", bytes(200)) for i in range(2000)])
        failures: list[BaseException] = []

        def reader() -> None:
            async def reads() -> None:
                for _ in range(5):
                    assert (
                        len(await store.get_sessions_batch([f"{i}@lid" for i in range(2000)]))
                        == 2000
                    )
                    assert await store.get_session("7@lid") == bytes(200)

            try:
                anyio.run(reads)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(16)]

        def run_all() -> None:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        await anyio.to_thread.run_sync(run_all)
        assert failures == []
        assert (await store.resource_report()).readers_in_use <= 4
