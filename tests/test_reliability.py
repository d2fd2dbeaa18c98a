"""What lmdbstore promises when things go wrong: crashes, a full disk, corrupt records,
several processes, killed readers, fork. Figures are in the README ("Reliability")."""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import cbor2
import lmdb
import pytest

from lmdbstore import (
    DatabaseError,
    EncryptionKey,
    LmdbCacheStore,
    LmdbStore,
    SqliteStore,
    StoreError,
    clock,
    keys,
)
from lmdbstore.storage import lmdb as lmdb_storage
from lmdbstore.testing.crash import run_and_kill
from lmdbstore.testing.protocol import fill_every_kind

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.anyio


# -- crashes -----------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, anyio
    from lmdbstore import EncryptionKey, LmdbStore

    path, durability, tag = sys.argv[1], sys.argv[2], sys.argv[3]
    key = EncryptionKey.from_hex(sys.argv[4]) if len(sys.argv) > 4 else None

    async def writer(store, w):
        i = 0
        while True:
            key = f"{tag}-{w}-{i}@lid"
            await store.put_session(key, f"{key}={i}".encode() * 20)
            print(key, flush=True)  # acknowledged: the call returned
            i += 1

    async def main():
        store = await LmdbStore.open(
            path, durability=durability, map_size=1 << 16, encryption=key
        )
        async with anyio.create_task_group() as tg:
            for w in range(16):  # concurrent writers: group commits in flight
                tg.start_soon(writer, store, w)

    anyio.run(main)
    """
)


@pytest.mark.parametrize(
    ("durability", "encryption"),
    [("full", None), ("normal", None), ("normal", EncryptionKey(bytes(range(32))))],
    ids=["full", "normal", "normal-encrypted"],
)
async def test_sigkill_loses_no_acknowledged_write(
    tmp_path: Path,
    durability: str,
    encryption: EncryptionKey | None,
    request: pytest.FixtureRequest,
) -> None:
    """A process writing with 16 concurrent tasks (from a 64 KiB map, so it also grows the
    map) is killed at random moments; each time the store opens and holds every write the
    child saw acknowledged, with its exact value (of an encrypted store too)."""
    kills = 100 if request.config.getoption("--run-slow") else 3
    path = tmp_path / "store"
    acknowledged: list[str] = []
    args = [] if encryption is None else [encryption.hex()]
    for kill in range(kills):
        acknowledged += await anyio.to_thread.run_sync(
            run_and_kill,
            WRITER,
            [str(path), durability, f"k{kill}", *args],
            random.uniform(0, 0.15),
        )
        async with await LmdbStore.open(path, encryption=encryption) as store:
            found = await store.get_sessions_batch(acknowledged)
            missing = [key for key in acknowledged if key not in found]
            assert not missing, f"after kill {kill}: {len(missing)} acknowledged writes lost"
            for key, value in found.items():
                assert value == f"{key}={key.rsplit('-', 1)[1][:-4]}".encode() * 20
            assert await store.verify() == []


# -- full disk ---------------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs the right to mount: skipped without)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize("backend", [LmdbStore, SqliteStore], ids=["lmdb", "sqlite"])
async def test_full_disk_is_a_clear_error_and_writing_resumes(tmp_path: Path, backend: Any) -> None:
    with small_filesystem(tmp_path / "disk", "4m") as disk:
        ballast = disk / "ballast"
        ballast.write_bytes(bytes(1 << 20))  # freed later, to make room again
        store = await backend.open(disk / "store")
        written = []
        with pytest.raises(DatabaseError):
            for i in range(10_000):
                await store.put_session(f"{i}@lid", bytes([i % 251]) * 8000)
                written.append(i)
        assert len(written) > 50
        got = await store.get_sessions_batch([f"{i}@lid" for i in written])
        assert got == {f"{i}@lid": bytes([i % 251]) * 8000 for i in written}
        ballast.unlink()
        await store.put_session("after@lid", b"room again")
        await store.close()
        async with await backend.open(disk / "store") as store:
            assert await store.get_session("after@lid") == b"room again"
            last = written[-1]
            assert await store.get_session(f"{last}@lid") == bytes([last % 251]) * 8000
            assert await store.verify() == []


# -- corruption and verify() -------------------------------------------------------------


def raw_items(path: Path) -> dict[tuple[str, bytes], bytes]:
    env = lmdb.Environment(str(path), max_dbs=10, readonly=True, lock=False)
    try:
        items = {}
        with env.begin() as txn:
            for name in ("signal", "appsync", "protocol", "msgsecret", "device", "cache", "meta"):
                db = env.open_db(name.encode(), txn=txn, create=False)
                items.update({(name, k): v for k, v in txn.cursor(db=db)})
        return items
    finally:
        env.close()


async def test_verify_finds_every_injected_fault_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store"
    async with await LmdbStore.open(path) as store:
        await fill_every_kind(store)
        await LmdbCacheStore(store).set("group", "g", b"v", 3600)
    dev = keys.device_prefix(1)
    session = keys.make(dev, keys.SignalTag.SESSION, b"5511:7@s.whatsapp.net.0\x00")
    device = keys.make(dev, keys.DeviceTag.DEVICE)
    unknown = keys.make(dev, 0x0E, b"x\x00")
    tally = keys.tally(dev, keys.MsgSecretTag.SECRET_BY_EXPIRY)
    stray = keys.make(dev, keys.ProtocolTag.SENT_MESSAGE_BY_TIME, keys.i64(5), b"g\x00m\x00")
    env = lmdb.Environment(str(path), max_dbs=10)
    with env.begin(write=True) as txn:
        dbs = {
            n: env.open_db(n.encode(), txn=txn)
            for n in ("signal", "protocol", "device", "cache", "msgsecret")
        }
        txn.put(session, b"\xff\x00garbage", db=dbs["signal"])
        txn.put(device, cbor2.dumps([1, 2, 3]), db=dbs["device"])
        txn.put(unknown, b"?", db=dbs["signal"])
        txn.put(stray, b"", db=dbs["protocol"])
        txn.put(tally, keys.u64(99), db=dbs["msgsecret"])
        tc_index = next(
            k
            for k, _ in txn.cursor(db=dbs["protocol"])
            if k[4] == keys.ProtocolTag.TC_TOKEN_BY_TIME
        )
        txn.delete(tc_index, db=dbs["protocol"])
        skd_index = next(
            k
            for k, _ in txn.cursor(db=dbs["protocol"])
            if k[4] == keys.ProtocolTag.SENDER_KEY_DEVICE_BY_JID
        )
        txn.put(skd_index, b"not empty", db=dbs["protocol"])
        cache_index = next(
            k for k, _ in txn.cursor(db=dbs["cache"]) if k[4] == keys.CacheTag.ENTRY_BY_EXPIRY
        )
        txn.delete(cache_index, db=dbs["cache"])
    env.close()
    before = raw_items(path)
    async with await LmdbStore.open(path) as store:
        problems = await store.verify()
    assert raw_items(path) == before  # verify wrote nothing
    faults = {
        session: "cannot decode signal record",
        device: "cannot decode device record",
        unknown: "unknown record kind",
        tally: "the tally says 99 entries, not 1",
        stray: "stray",
        tc_index: "missing",
        skd_index: "index entry with a value",
        cache_index: "missing",
    }
    for key, phrase in faults.items():
        assert any(key.hex() in p and phrase in p for p in problems), (phrase, problems)
    assert len(problems) == len(faults), problems


async def test_sqlite_verify_finds_undecodable_values(tmp_path: Path) -> None:
    import sqlite3

    async with await SqliteStore.open(tmp_path / "db") as store:
        await fill_every_kind(store)
        assert await store.verify() == []
    conn = sqlite3.connect(tmp_path / "db")
    conn.execute("UPDATE devices SET record = x'ff00'")
    conn.execute("UPDATE device_lists SET record = ?", (cbor2.dumps({"d": "x"}),))
    conn.execute("UPDATE app_state_versions SET value_map = ?", (cbor2.dumps({"i": 1}),))
    conn.commit()
    conn.close()
    async with await SqliteStore.open(tmp_path / "db") as store:
        problems = await store.verify()
    assert len(problems) == 3, problems
    one = keys.u32(1)
    for key in (
        keys.make(one, keys.DeviceTag.DEVICE),
        keys.make(one, keys.ProtocolTag.DEVICE_LIST, keys.s(b"5511")),
        keys.make(one, keys.AppSyncTag.VERSION, keys.s(b"regular")),
    ):
        assert any(key.hex() in p for p in problems), (key, problems)


async def test_a_tree_with_keys_out_of_order_is_reported_never_walked_forever(
    tmp_path: Path,
) -> None:
    """Two keys of a leaf page swapped on disk (LMDB has no page checksums): verify reports
    the damaged tree, and the CLI's verify exits 1 and export 5, in time (a scan that
    re-seeks after each key used to go back and loop forever, or skip keys silently)."""
    path = tmp_path / "db"
    async with await LmdbStore.open(path, durability="full") as store:
        await store.put_sessions_batch([(f"user{i:04d}@lid", b"v") for i in range(50)])
    data = bytearray((path / "data.mdb").read_bytes())
    first, second = data.find(b"user0010@lid"), data.find(b"user0030@lid")
    assert first > 0 and second > 0
    data[first : first + 12], data[second : second + 12] = (
        data[second : second + 12],
        data[first : first + 12],
    )
    (path / "data.mdb").write_bytes(bytes(data))
    async with await LmdbStore.open(path, durability="full") as store:
        problems = await store.verify()
        assert any("out of order" in problem for problem in problems), problems
    script = str(Path(sys.executable).parent / "lmdbstore")
    for command, code, output in (("verify", 1, "stdout"), ("export", 5, "stderr")):
        done = subprocess.run(
            [script, command, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == code, done.stderr
        assert "out of order" in getattr(done, output)


@pytest.mark.parametrize("chunk", [lmdb_storage.EXPIRY_CHUNK, 10])
async def test_expiry_over_a_time_index_out_of_order_raises_and_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Two neighbouring message ids swapped on disk, in their records and time-index
    entries alike: expiry, which walks the index a chunk at a time, reports the damaged
    tree whether the two fall in one chunk or straddle two, and its transaction leaves
    every entry where it was."""
    path = tmp_path / "db"
    monkeypatch.setattr(clock, "now", lambda: 1_000)
    monkeypatch.setattr(lmdb_storage, "EXPIRY_CHUNK", chunk)
    async with await LmdbStore.open(path, durability="full") as store:
        for i in range(50):
            await store.store_sent_message("chat@g.us", f"msg{i:05d}", b"payload")
    data = (path / "data.mdb").read_bytes()
    assert b"msg00009" in data and b"msg00010" in data
    data = data.replace(b"msg00009", b"@" * 8).replace(b"msg00010", b"msg00009")
    (path / "data.mdb").write_bytes(data.replace(b"@" * 8, b"msg00010"))

    def entries() -> int:
        with lmdb.open(str(path), readonly=True, lock=False, max_dbs=len(keys.DOMAINS)) as env:
            protocol = env.open_db(b"protocol", create=False)
            with env.begin() as txn:
                return int(txn.stat(protocol)["entries"])

    before = entries()
    async with await LmdbStore.open(path, durability="full") as store:
        with pytest.raises(DatabaseError, match="out of order"):
            await store.delete_expired_sent_messages(2_000)
    assert entries() == before


@pytest.mark.parametrize("layout", ["named databases", "plain keys"])
async def test_another_programs_environment_is_refused_and_left_byte_identical(
    tmp_path: Path, layout: str
) -> None:
    path = tmp_path / "foreign"
    env = lmdb.Environment(str(path), max_dbs=4)
    with env.begin(write=True) as txn:
        if layout == "named databases":
            txn.put(b"alice", b"1", db=env.open_db(b"users", txn=txn))
        else:
            txn.put(b"some key", b"some value")
    env.close()
    before = (path / "data.mdb").read_bytes()
    listing = sorted(p.name for p in path.iterdir())
    with pytest.raises(StoreError, match="not an lmdbstore store"):
        await LmdbStore.open(path)
    script = str(Path(sys.executable).parent / "lmdbstore")
    for command in ("verify", "info", "export"):
        done = subprocess.run(
            [script, command, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 4, (command, done.stderr)
        assert "not an lmdbstore store" in done.stderr
    assert (path / "data.mdb").read_bytes() == before
    assert sorted(p.name for p in path.iterdir()) == listing  # no file of ours beside it


# -- several processes -------------------------------------------------------------------

PROCESS_WRITER = textwrap.dedent(
    """
    import sys, anyio
    from lmdbstore import LmdbStore

    path, name = sys.argv[1], sys.argv[2]

    async def main():
        async with await LmdbStore.open(path, map_size=1 << 16) as store:
            async with anyio.create_task_group() as tg:
                for i in range(300):
                    tg.start_soon(store.put_session, f"{name}-{i}@lid", name.encode())
            for i in range(30):
                await store.put_sessions_batch([(f"{name}-b{i}-{j}@lid", b"b") for j in range(10)])
        print("done")

    anyio.run(main)
    """
)


async def test_processes_writing_one_environment_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store"
    names = ["p1", "p2", "p3"]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS_WRITER, str(path), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip() == "done"
    async with await LmdbStore.open(path) as store:
        for name in names:
            wanted = [f"{name}-{i}@lid" for i in range(300)]
            wanted += [f"{name}-b{i}-{j}@lid" for i in range(30) for j in range(10)]
            assert len(await store.get_sessions_batch(wanted)) == 600
        assert await store.verify() == []


GROWER = textwrap.dedent(
    """
    import sys, anyio
    from lmdbstore import LmdbStore

    async def main():
        async with await LmdbStore.open(sys.argv[1], map_size=1 << 16) as store:
            await store.put_sessions_batch([(f"g{i}@lid", bytes(1000)) for i in range(2000)])

    anyio.run(main)
    """
)


async def test_a_map_grown_by_another_process_meanwhile_does_not_fail_close(
    tmp_path: Path,
) -> None:
    """This process writes, another grows the map past this one's size, then this process
    closes: its last checkpoint adopts the new size instead of failing with
    MDB_MAP_RESIZED (seen once in CI with three writers)."""
    path = tmp_path / "store"
    store = await LmdbStore.open(path, map_size=1 << 16, sync_interval=60)
    await store.put_session("mine@lid", b"x")
    grower = subprocess.run(
        [sys.executable, "-c", GROWER, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert grower.returncode == 0, grower.stderr
    await store.close()
    async with await LmdbStore.open(path) as store:
        assert await store.get_session("mine@lid") == b"x"
        assert len(await store.get_sessions_batch([f"g{i}@lid" for i in range(2000)])) == 2000
        assert await store.verify() == []


HOARDER = textwrap.dedent(
    """
    import sys, lmdb
    env = lmdb.Environment(sys.argv[1], max_dbs=10, max_readers=256)
    held = [env.begin() for _ in range(int(sys.argv[2]))]  # reader slots, never released
    print("holding", flush=True)
    sys.stdin.read()
    """
)


async def test_reader_slots_of_killed_processes_are_reclaimed(tmp_path: Path) -> None:
    """Two processes take 200 reader slots each and are killed holding them: more than the
    table's 256. Reads of this process still work (the slots of dead processes are reclaimed
    when the table is full), inline and on worker threads."""
    path = tmp_path / "store"
    async with await LmdbStore.open(path) as store:
        await store.put_session("a@lid", b"x")
    for _ in range(2):
        hoarder = subprocess.Popen(
            [sys.executable, "-c", HOARDER, str(path), "200"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert hoarder.stdout is not None
        assert hoarder.stdout.readline().strip() == "holding"
        hoarder.kill()
        hoarder.wait()
    async with await LmdbStore.open(path) as store:
        for _ in range(50):
            assert await store.get_session("a@lid") == b"x"
            assert await store.get_all_lid_mappings() == []
        report = await store.resource_report()
        assert report.readers_in_use < 256


def _use_in_child(path: str, queue: Any, inherited: Any) -> None:
    """In a forked child: report what using the inherited handle and opening the path give,
    then open and write a second store."""

    async def run() -> list[object]:
        outcomes: list[object] = []
        if inherited is not None:
            for attempt in (inherited.get_session("parent@lid"), LmdbStore.open(path)):
                try:
                    outcomes.append(await attempt)
                except StoreError as exc:
                    outcomes.append(type(exc).__name__ + (": fork" if "fork" in str(exc) else ""))
            await inherited.close()  # must not touch the parent's environment
            path_here = path + "-child"
        else:
            path_here = path
        async with await LmdbStore.open(path_here) as store:
            await store.put_session("child@lid", b"from the child")
            outcomes.append(await store.get_session("parent@lid"))
        return outcomes

    try:
        queue.put(anyio.run(run))
    except BaseException as exc:  # reported to the parent, which fails the test
        queue.put(repr(exc))


async def fork_and_wait(target: Any, *args: Any) -> tuple[object, int | None]:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=target, args=(args[0], queue, *args[1:]))
    # Forked from a worker thread, so the child does not inherit a running event loop.
    await anyio.to_thread.run_sync(child.start)
    result = await anyio.to_thread.run_sync(queue.get, True, 60)
    await anyio.to_thread.run_sync(child.join)
    return result, child.exitcode


async def test_a_child_forked_before_opening_uses_the_store(tmp_path: Path) -> None:
    path = tmp_path / "store"
    async with await LmdbStore.open(path) as store:
        await store.put_session("parent@lid", b"from the parent")
    result, code = await fork_and_wait(_use_in_child, str(path), None)
    assert (result, code) == ([b"from the parent"], 0)
    async with await LmdbStore.open(path) as store:
        assert await store.get_session("child@lid") == b"from the child"


async def test_a_child_forked_with_the_store_open_is_refused_clearly(tmp_path: Path) -> None:
    """LMDB forbids using an environment across fork(), and py-lmdb counts the inherited one
    as open in the child: the child's handle and a new open of the path refuse with a clear
    error (instead of touching LMDB), other paths open fine, and the parent is unharmed."""
    path = tmp_path / "store"
    async with await LmdbStore.open(path) as store:
        await store.put_session("parent@lid", b"from the parent")
        result, code = await fork_and_wait(_use_in_child, str(path), store)
        assert code == 0
        assert result == ["StoreConnectionError: fork", "StoreConnectionError: fork", None]
        assert await store.get_session("parent@lid") == b"from the parent"
        await store.put_session("parent@lid", b"still writing")
        assert await store.verify() == []
