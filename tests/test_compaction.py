"""``lmdbstore compact``: real stores bloated by real writes, compacted by the installed
command in a subprocess; other processes holding the store; compactions killed midway."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import lmdb
import pytest

from lmdbstore import LmdbStore, SqliteStore
from lmdbstore.durability import CHECKPOINT_FILE
from lmdbstore.storage.compaction import BUILD_PREFIX
from tests.test_cli import export_lines, lmdbstore, make_full_store, one_line_failure

SESSION = bytes(600)


def store_bytes(path: Path) -> int:
    """The store's bytes on disk, as ``lmdbstore info`` reports them."""
    done = lmdbstore("info", "--json", str(path))
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["bytes_on_disk"])


def bloat(path: Path, backend: Any, sessions: int = 1_000) -> None:
    """Every record kind, then writes that leave free space behind: rewrites of each
    session, and sessions stored and deleted."""

    async def write() -> None:
        async with await backend.open(path) as store:
            names = [f"{i}@lid" for i in range(sessions)]
            await store.put_sessions_batch([(name, SESSION) for name in names])
            for _ in range(3):
                for name in names:
                    await store.put_session(name, SESSION)
            await store.put_sessions_batch([(f"gone-{n}", SESSION) for n in names])
            for name in names:
                await store.delete_session(f"gone-{name}")

    make_full_store(path, backend)
    anyio.run(write)


@pytest.mark.parametrize(("backend", "name"), [(LmdbStore, "store"), (SqliteStore, "s.sqlite")])
def test_compact_gives_space_back_and_keeps_every_record(
    tmp_path: Path, backend: Any, name: str
) -> None:
    path = tmp_path / name
    bloat(path, backend)
    before, records = store_bytes(path), export_lines(str(path), tmp_path)[1:-1]

    done = lmdbstore("compact", str(path))
    assert done.returncode == 0, done.stderr
    assert " -> " in done.stdout
    after = store_bytes(path)
    print(f"{before:,} -> {after:,} bytes")
    assert after < 0.6 * before
    assert export_lines(str(path), tmp_path)[1:-1] == records
    assert lmdbstore("verify", str(path)).stdout.strip() == "ok"
    if backend is LmdbStore:
        # No checkpoint of the old file is left for a recovery to write back over the new
        # one, and no build directory.
        assert not (path / CHECKPOINT_FILE).exists()
        assert not list(path.glob(BUILD_PREFIX + "*"))

    async def still_a_store() -> None:
        async with await backend.open(path) as store:
            await store.put_session("after@lid", b"1")
        async with await backend.open(path) as store:
            assert await store.get_session("after@lid") == b"1"
            assert await store.get_session("0@lid") == SESSION

    anyio.run(still_a_store)


HOLDER = """
import sys, time, anyio
from lmdbstore import LmdbStore
async def main():
    options = {"readonly": True} if sys.argv[2] == "readonly" else {"durability": sys.argv[2]}
    store = await LmdbStore.open(sys.argv[1], **options)
    print("open", flush=True)
    time.sleep(60)
anyio.run(main)
"""


@pytest.mark.parametrize("mode", ["normal", "full", "readonly"])
def test_compact_refuses_a_store_another_process_has_open(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "store"
    bloat(path, LmdbStore, sessions=200)
    data = path / "data.mdb"
    inode, size = data.stat().st_ino, data.stat().st_size
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), mode], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"open\n"
        one_line_failure(lmdbstore("compact", str(path)), 4, "open in another process")
        assert (data.stat().st_ino, data.stat().st_size) == (inode, size)
    finally:
        holder.kill()
        holder.wait()
    assert lmdbstore("compact", str(path)).returncode == 0  # once it is gone


def test_a_compaction_killed_midway_leaves_the_store_whole(tmp_path: Path) -> None:
    """SIGKILL at increasing moments of a compaction of 50,000 sessions: after each, the
    store holds every record and verifies (the old file or the new one, whole); the next
    compaction removes what a killed one left."""
    path = tmp_path / "store"
    bloat(path, LmdbStore, sessions=2_000)

    async def more() -> None:
        async with await LmdbStore.open(path) as store:
            for first in range(0, 50_000, 10_000):
                batch = [(f"more-{i}@lid", SESSION) for i in range(first, first + 10_000)]
                await store.put_sessions_batch(batch)

    anyio.run(more)
    records = export_lines(str(path), tmp_path)[1:-1]
    script = Path(sys.executable).parent / "lmdbstore"
    start = time.perf_counter()
    assert lmdbstore("compact", str(path)).returncode == 0
    whole = time.perf_counter() - start  # later ones copy the same records
    killed_while_running = 0
    for share in (0.2, 0.5, 0.7, 0.9):
        compaction = subprocess.Popen([str(script), "compact", str(path)])
        time.sleep(share * whole)
        if compaction.poll() is None:
            killed_while_running += 1
            compaction.send_signal(signal.SIGKILL)
        compaction.wait()
        assert lmdbstore("verify", str(path)).stdout.strip() == "ok"
        assert export_lines(str(path), tmp_path)[1:-1] == records
    assert killed_while_running >= 2
    done = lmdbstore("compact", str(path))
    assert done.returncode == 0, done.stderr
    assert not list(path.glob(BUILD_PREFIX + "*"))
    assert export_lines(str(path), tmp_path)[1:-1] == records


def test_compact_bad_input(tmp_path: Path) -> None:
    one_line_failure(lmdbstore("compact", str(tmp_path / "none")), 3, "no store")
    (tmp_path / "empty").mkdir()
    one_line_failure(lmdbstore("compact", str(tmp_path / "empty")), 3, "no store")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database, not at all" * 100)
    one_line_failure(lmdbstore("compact", str(tmp_path / "junk.sqlite")), 4, "junk.sqlite")
    one_line_failure(
        lmdbstore("compact", "postgresql://localhost/db"), 2, "PostgreSQL reclaims space"
    )
    one_line_failure(lmdbstore("compact"), 2, "PATH")
    foreign = tmp_path / "foreign"
    env = lmdb.Environment(str(foreign), max_dbs=2)
    with env.begin(write=True) as txn:
        txn.put(b"theirs", b"1")
    env.close()
    before = (foreign / "data.mdb").read_bytes()
    one_line_failure(lmdbstore("compact", str(foreign)), 4, "not an lmdbstore store")
    assert (foreign / "data.mdb").read_bytes() == before
