"""Durability levels: the LMDB flags each one sets, checkpoints and recovery after a
reboot, atomic creation, one level per store across processes, and commits on the
caller's thread. (The power-loss simulator, which checks the promises against the disk
states a power loss can leave, is tests/test_power_loss.py.)"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING

import anyio
import pytest

import lmdbstore
from lmdbstore import (
    LmdbStore,
    StoreClosedError,
    StoreConnectionError,
    ValidationError,
    durability,
    sync,
)
from lmdbstore.testing.together import run_together

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("level", "flags"),
    [("full", {"sync": True, "metasync": True}), ("normal", {"sync": False})],
)
async def test_each_level_sets_its_lmdb_flags(tmp_path: Path, level: str, flags: dict) -> None:
    async with await LmdbStore.open(tmp_path / "db", durability=level) as store:  # type: ignore[arg-type]
        env_flags = store._lmdb().env.flags()
        assert {name: env_flags[name] for name in flags} == flags
        assert (store._lmdb().checkpoints is not None) == (level == "normal")
        assert store._lmdb().inline == (level == "normal")


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"durability": "process"}, "is gone"),
        ({"durability": "NORMAL"}, "durability"),
        ({"sync_interval": 0}, "sync_interval"),
        ({"sync_interval": 61}, "sync_interval"),
        ({"sync_interval": True}, "sync_interval"),
        ({"sync_interval": "0.1"}, "sync_interval"),
    ],
)
async def test_bad_durability_options_create_nothing(
    tmp_path: Path, options: dict, says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        await LmdbStore.open(tmp_path / "db", **options)
    assert not (tmp_path / "db").exists()


async def test_a_checkpoint_follows_commits_within_the_interval(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db", sync_interval=0.05) as store:
        checkpoint = tmp_path / "db" / durability.CHECKPOINT_FILE
        first = checkpoint.stat().st_mtime_ns  # taken at open, before any write
        await store.put_session("a@lid", b"x")
        deadline = time.monotonic() + 5
        while checkpoint.stat().st_mtime_ns == first and time.monotonic() < deadline:
            await anyio.sleep(0.01)
        assert checkpoint.stat().st_mtime_ns != first
        saved = durability.read_checkpoint(checkpoint.read_bytes())
        assert saved is not None
        assert saved.txnid == store._lmdb().env.info()["last_txnid"]
        assert saved.boot == durability.boot_id()


WRITER = textwrap.dedent(
    """
    import sys, time, anyio
    from lmdbstore import LmdbStore

    async def main():
        store = await LmdbStore.open(sys.argv[1], sync_interval=0.05)
        await store.put_session("before@lid", b"checkpointed")
        time.sleep(0.5)  # the checkpoint thread takes a checkpoint
        await store.put_session("after@lid", b"in the page cache only")
        print("written", flush=True)
        time.sleep(60)

    anyio.run(main)
    """
)


def write_then_die(path: Path) -> None:
    """A process that commits, lets a checkpoint happen, commits again, and is killed."""
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline() == b"written\n"
    child.kill()
    child.wait()


async def test_after_a_process_crash_nothing_is_rolled_back(tmp_path: Path) -> None:
    write_then_die(tmp_path / "db")
    async with await LmdbStore.open(tmp_path / "db") as store:
        assert await store.get_session("after@lid") == b"in the page cache only"
        assert await store.verify() == []


async def test_after_a_reboot_the_store_is_its_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_then_die(tmp_path / "db")
    # A reboot, as the next open sees it: another boot id.
    other_boot = tmp_path / "boot_id"
    other_boot.write_text("00000000-0000-4000-8000-000000000000\n")
    monkeypatch.setattr(durability, "BOOT_ID_FILE", str(other_boot))
    async with await LmdbStore.open(tmp_path / "db") as store:
        assert await store.get_session("before@lid") == b"checkpointed"
        assert await store.get_session("after@lid") is None  # committed after the checkpoint
        assert await store.verify() == []
        await store.put_session("again@lid", b"writes go on")
    saved = durability.read_checkpoint((tmp_path / "db" / durability.CHECKPOINT_FILE).read_bytes())
    assert saved is not None
    assert saved.boot == "00000000-0000-4000-8000-000000000000"  # recovered once, not again
    async with await LmdbStore.open(tmp_path / "db") as store:
        assert await store.get_session("again@lid") == b"writes go on"


async def test_full_forgets_the_checkpoint_so_a_reboot_keeps_its_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_then_die(tmp_path / "db")
    async with await LmdbStore.open(tmp_path / "db", durability="full") as store:
        await store.put_session("full@lid", b"fsynced")
    assert not (tmp_path / "db" / durability.CHECKPOINT_FILE).exists()
    other_boot = tmp_path / "boot_id"
    other_boot.write_text("00000000-0000-4000-8000-000000000001\n")
    monkeypatch.setattr(durability, "BOOT_ID_FILE", str(other_boot))
    async with await LmdbStore.open(tmp_path / "db") as store:
        assert await store.get_session("full@lid") == b"fsynced"
        assert await store.get_session("after@lid") == b"in the page cache only"


HOLDER = textwrap.dedent(
    """
    import sys, time, anyio
    from lmdbstore import LmdbStore

    async def main():
        store = await LmdbStore.open(sys.argv[1], durability=sys.argv[2])
        print("open", flush=True)
        time.sleep(60)

    anyio.run(main)
    """
)


@pytest.mark.parametrize(("held", "wanted"), [("normal", "full"), ("full", "normal")])
async def test_one_level_per_store_across_processes(tmp_path: Path, held: str, wanted: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "db"), held], stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"open\n"
        with pytest.raises(StoreConnectionError, match=f"durability='{held}'"):
            await LmdbStore.open(tmp_path / "db", durability=wanted)  # type: ignore[arg-type]
        async with await LmdbStore.open(tmp_path / "db", durability=held) as store:  # type: ignore[arg-type]
            await store.put_session("same@lid", b"level")
    finally:
        child.kill()
        child.wait()
    async with await LmdbStore.open(tmp_path / "db", durability=wanted) as store:  # type: ignore[arg-type]
        assert await store.get_session("same@lid") == b"level"


def test_another_openers_probe_is_not_a_holder_of_the_other_level(tmp_path: Path) -> None:
    """An opener asks whether the other level is in use with an exclusive lock of its file
    held for microseconds; another opener at the same level asking meanwhile must not take
    that probe for a holder (as a real holder, with its lock kept, is)."""
    tmp_path.mkdir(exist_ok=True)
    full = os.open(tmp_path / durability.LEVEL_FILES["full"], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(full, fcntl.LOCK_EX)  # another opener's probe, released 10 ms later
    threading.Timer(0.01, os.close, (full,)).start()
    durability.LevelLock(str(tmp_path), "normal").close()
    holder = os.open(tmp_path / durability.LEVEL_FILES["full"], os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_SH)  # a process holding the store at "full"
    try:
        with pytest.raises(StoreConnectionError, match="durability='full'"):
            durability.LevelLock(str(tmp_path), "normal")
        assert durability.level_in_use(str(tmp_path)) == "full"
    finally:
        os.close(holder)
    assert durability.level_in_use(str(tmp_path)) is None


OPENER = """
import sys, anyio
import lmdbstore

async def main(url, name):
    sys.stdin.readline()  # all at once: every process is started and imported
    async with await lmdbstore.open(url) as store:
        await store.put_session(f"{name}@lid", b"here")

anyio.run(main, *sys.argv[1:])
"""


@pytest.mark.parametrize("scheme", ["lmdb", "sqlite"])
async def test_processes_opening_a_new_store_at_once_all_open_it(
    tmp_path: Path, scheme: str
) -> None:
    url = f"{scheme}://{tmp_path / 'store'}"
    for _ in range(3):
        outcomes = run_together(OPENER, [[url, f"p{n}"] for n in range(8)])
        assert [code for code, _ in outcomes] == [0] * 8, outcomes
    async with await lmdbstore.open(url) as store:
        assert len(await store.get_sessions_batch([f"p{n}@lid" for n in range(8)])) == 8
        assert await store.verify() == []


def test_a_torn_slot_leaves_the_checkpoint_before() -> None:
    older = durability.Saved("boot", 70, 4096, bytes(8192))
    newer = durability.Saved("boot", 80, 4096, bytes(8192))
    whole = bytearray(2 * durability.SLOT)
    for slot, saved in ((1, older), (0, newer)):
        packed = saved.pack()
        start = slot * durability.SLOT
        whole[start : start + len(packed)] = packed
    assert durability.read_checkpoint(bytes(whole)) == newer
    torn = bytearray(whole)
    torn[100] ^= 1  # a bit of the newer slot (slot 0) never made it
    assert durability.read_checkpoint(bytes(torn)) == older
    assert durability.read_checkpoint(b"") is None


def test_a_checkpoint_never_overwrites_the_newest(tmp_path: Path) -> None:
    """Processes take turns on the file; a checkpoint goes to the slot that does not hold
    the newest one, and one older than the newest is not written at all."""
    fd = os.open(tmp_path / "checkpoint", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        for txnid in (5, 9, 7, 12):
            durability._record(fd, durability.Saved("boot", txnid, 4096, bytes(8192)))
        slots = durability._slots(os.pread(fd, 2 * durability.SLOT, 0))
        assert sorted(s.txnid for s in slots if s is not None) == [9, 12]
    finally:
        os.close(fd)


async def test_a_new_store_appears_whole(tmp_path: Path) -> None:
    async with await LmdbStore.open(tmp_path / "db"):
        pass
    names = sorted(os.listdir(tmp_path / "db"))
    assert "data.mdb" in names
    assert not [n for n in names if n.startswith(".lmdbstore-new-")]  # the private build is gone


async def test_an_idle_writer_commits_on_the_callers_thread(tmp_path: Path) -> None:
    # No checkpoint comes between (a long interval, fewer commits than CHECKPOINT_COMMITS),
    # so nothing else ever holds the writer lock.
    async with await LmdbStore.open(tmp_path / "db", sync_interval=60) as store:
        for i in range(100):
            await store.put_session(f"{i}@lid", b"x")
        assert not store._lmdb()._writer.started  # no write needed the writer thread


LOCKER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


def hold_writer_lock(store_path: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Another process holding the store's writer lock for ``seconds``, once it has it."""
    child = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(store_path / durability.LOCK_FILE), str(seconds)],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"locked\n"
    return child


async def ticking_while(write: Callable[[], Awaitable[object]]) -> tuple[int, float]:
    """How many 10 ms ticks the event loop made while ``write()`` ran, and its seconds."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        start = time.monotonic()
        await write()
        waited = time.monotonic() - start
        tg.cancel_scope.cancel()
    return ticks, waited


async def test_a_write_meeting_another_processs_writer_waits_off_the_loop(
    tmp_path: Path,
) -> None:
    async with await LmdbStore.open(tmp_path / "db") as store:
        child = hold_writer_lock(tmp_path / "db", 0.5)
        ticks, waited = await ticking_while(lambda: store.put_session("waited@lid", b"x"))
        child.wait()
        assert waited >= 0.2  # it waited for the other process's lock...
        assert ticks >= 10  # ...while the event loop went on
        assert await store.get_session("waited@lid") == b"x"


async def test_a_write_cancelled_before_the_writer_takes_it_is_withdrawn(
    tmp_path: Path,
) -> None:
    async with await LmdbStore.open(tmp_path / "db") as store:
        child = hold_writer_lock(tmp_path / "db", 1.5)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.3):
                await store.put_session("withdrawn@lid", b"never")
        assert time.monotonic() - start < 0.6  # at once, not when the lock is released
        async with anyio.create_task_group() as tg:  # a cancelled group exits at once too
            tg.start_soon(store.put_session, "also@lid", b"never")
            await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        assert time.monotonic() - start < 0.8
        child.wait()
        await store.put_session("after@lid", b"applied")  # the writer goes on
        assert await store.get_session("withdrawn@lid") is None
        assert await store.get_session("also@lid") is None
        assert await store.get_session("after@lid") == b"applied"


async def test_a_process_closing_makes_the_others_checkpoint_before_their_next_commit(
    tmp_path: Path,
) -> None:
    """Its last checkpoint may be the file's newest, and its pin leaves with it: the others
    see its close counted and take a checkpoint of their own before reusing any page."""
    async with await LmdbStore.open(tmp_path / "db", sync_interval=60) as store:
        await store.put_session("mine@lid", b"x")
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, anyio\n"
                "from lmdbstore import LmdbStore\n"
                "async def main():\n"
                "    async with await LmdbStore.open(sys.argv[1]) as store:\n"
                "        await store.put_session('theirs@lid', b'y')\n"
                "anyio.run(main)\n",
                str(tmp_path / "db"),
            ],
            check=True,
        )
        assert other.returncode == 0
        checkpoint = tmp_path / "db" / durability.CHECKPOINT_FILE
        theirs = durability.read_checkpoint(checkpoint.read_bytes())
        assert theirs is not None
        await store.put_session("after@lid", b"z")
        assert store._lmdb().checkpoints is not None  # a checkpoint came before our commit
        assert store._lmdb().checkpoints._pin is not None
        assert store._lmdb().checkpoints._pin.id() >= theirs.txnid


async def test_a_new_lmdb_store_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        async with await LmdbStore.open(tmp_path / "db") as store:
            await store.put_session("a@lid", b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "db").stat().st_mode & 0o777 == 0o700
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "db").iterdir()}
    assert set(modes.values()) == {0o600}, modes


@pytest.fixture
def few_pinned(monkeypatch: pytest.MonkeyPatch) -> int:
    """Writes wait for a checkpoint after 20 commits past the pinned one, not 2,000; a
    checkpoint is due after 5, not 500."""
    monkeypatch.setattr(durability, "CHECKPOINT_COMMITS", 5)
    monkeypatch.setattr(durability, "MAX_PINNED_COMMITS", 20)
    monkeypatch.setattr(durability, "PACE_WAIT", 30.0)
    return 20


def checkpoints_of(store: sync.SyncStore | LmdbStore) -> durability.Checkpoints:
    inner = store._inner if isinstance(store, sync.SyncStore) else store
    checkpoints = inner._lmdb().checkpoints  # type: ignore[attr-defined]
    assert checkpoints is not None
    return checkpoints


def test_writes_far_past_the_pinned_checkpoint_wait_for_the_next(
    tmp_path: Path, few_pinned: int
) -> None:
    """The pinned checkpoint keeps LMDB from reusing freed pages, so a writer faster than
    the checkpoints' fsyncs grew the file without end: past MAX_PINNED_COMMITS commits,
    writes wait until the next checkpoint is durable (holding the checkpoint's mutex stands
    for an fsync that takes long)."""
    with sync.open(tmp_path / "db", sync_interval=60) as store:
        checkpoints = checkpoints_of(store)
        with checkpoints._mutex:
            for i in range(few_pinned):
                store.put_session(f"{i}@lid", b"x")
            assert checkpoints.behind
            waiting = threading.Thread(target=store.put_session, args=("next@lid", b"y"))
            waiting.start()
            waiting.join(0.5)
            assert waiting.is_alive()  # it waits for the checkpoint...
            assert store.get_session("next@lid") is None
        waiting.join(10)  # ...which the released mutex lets finish
        assert not waiting.is_alive()
        assert not checkpoints.behind
        assert checkpoints.pinned_commits < few_pinned
        assert store.get_session("next@lid") == b"y"


async def test_a_write_from_the_loop_waits_for_the_checkpoint_off_the_loop(
    tmp_path: Path, few_pinned: int
) -> None:
    async with await LmdbStore.open(tmp_path / "db", sync_interval=60) as store:
        checkpoints = checkpoints_of(store)
        checkpoints._mutex.acquire()
        release = threading.Timer(0.5, checkpoints._mutex.release)
        try:
            for i in range(few_pinned):
                await store.put_session(f"{i}@lid", b"x")
            assert checkpoints.behind
            release.start()
            ticks, waited = await ticking_while(lambda: store.put_session("next@lid", b"y"))
        finally:
            if release.ident is None:  # never started: the mutex is released here
                checkpoints._mutex.release()
            else:
                release.join()
        assert waited >= 0.2  # it waited for the checkpoint...
        assert ticks >= 10  # ...on the writer thread, while the loop went on
        assert store._lmdb()._writer.started
        assert await store.get_session("next@lid") == b"y"


def test_a_checkpoint_that_cannot_finish_slows_writes_but_never_stops_them(
    tmp_path: Path, few_pinned: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(durability, "PACE_WAIT", 0.2)
    with sync.open(tmp_path / "db", sync_interval=60) as store:
        checkpoints = checkpoints_of(store)
        with checkpoints._mutex:
            for i in range(few_pinned + 5):
                store.put_session(f"{i}@lid", b"x")  # each one past the limit waits 0.2 s
            assert checkpoints.behind
        assert store.get_session(f"{few_pinned + 4}@lid") == b"x"


def test_closing_releases_a_write_waiting_for_a_checkpoint(tmp_path: Path, few_pinned: int) -> None:
    store = sync.open(tmp_path / "db", sync_interval=60)
    checkpoints = checkpoints_of(store)
    outcome: list[object] = []

    def write() -> None:
        try:
            store.put_session("last@lid", b"y")
            outcome.append("written")
        except StoreClosedError as exc:
            outcome.append(exc)

    with checkpoints._mutex:
        for i in range(few_pinned):
            store.put_session(f"{i}@lid", b"x")
        waiting = threading.Thread(target=write)
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive()
        closing = threading.Thread(target=store.close)
        closing.start()
        waiting.join(10)  # the close ends the wait, though the checkpoint cannot finish
        assert not waiting.is_alive()
    closing.join(10)
    assert not closing.is_alive()
    with sync.open(tmp_path / "db") as again:
        written = again.get_session("last@lid") == b"y"
    assert outcome == ["written"] if written else isinstance(outcome[0], StoreClosedError)
