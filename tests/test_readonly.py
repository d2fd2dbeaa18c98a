"""``readonly=True``: a store opened for inspection reads everything, writes nothing (every
write is a `ReadOnlyError`), creates no file of lmdbstore's, and leaves the data file's
bytes as they were; the CLI's read commands use it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lmdbstore import (
    LmdbStore,
    ReadOnlyError,
    SqliteStore,
    StoreConnectionError,
    ValidationError,
    durability,
)
from lmdbstore.testing.protocol import fill_every_kind
from lmdbstore.testing.raw_fuzz import CALLS

pytestmark = pytest.mark.anyio

BACKENDS = [(LmdbStore, "store"), (SqliteStore, "store.sqlite")]
FIRST_WRITE = CALLS.index(("mark_prekeys_uploaded", ([1, 2],)))
READS = CALLS[:FIRST_WRITE]
WRITES = [call for call in CALLS[FIRST_WRITE:] if call[0] != "verify"]


def data_file(path: Path) -> Path:
    return path / "data.mdb" if path.is_dir() else path


def digest(path: Path) -> str:
    return hashlib.sha256(data_file(path).read_bytes()).hexdigest()


def listing(path: Path) -> set[str]:
    """The files of the store: its directory (LMDB), or those beside its file (SQLite)."""
    return {p.name for p in (path if path.is_dir() else path.parent).iterdir()} - {"copy"}


@pytest.mark.parametrize(("backend", "name"), BACKENDS)
async def test_reads_work_writes_are_refused_and_nothing_changes(
    tmp_path: Path, backend: Any, name: str
) -> None:
    path = tmp_path / name
    async with await backend.open(path) as store:
        await fill_every_kind(store)
        expected = [(call, await getattr(store, call[0])(*call[1])) for call in READS[:10]]
    before, files = digest(path), listing(path)
    async with await backend.open(path, readonly=True) as store:
        for call, value in expected:
            assert await getattr(store, call[0])(*call[1]) == value, call
        for method, args in READS:
            await getattr(store, method)(*args)
        assert await store.verify() == []
        for method, args in WRITES:
            with pytest.raises(ReadOnlyError):
                await getattr(store, method)(*args)
        with pytest.raises(ReadOnlyError):
            await store.put_sessions_batch([(f"{i}@lid", b"x") for i in range(100)])
        with pytest.raises(ReadOnlyError):
            async with store.transaction() as tx:
                assert await tx.get_session("5511:7@s.whatsapp.net.0") == b"session"
                await tx.put_session("5511:7@s.whatsapp.net.0", b"changed")
        other = store.for_device(3)
        with pytest.raises(ReadOnlyError):
            await other.save_base_key("a@lid", "m", b"k")
        await other.close()
        with pytest.raises(ReadOnlyError):
            await store.delete_device()
        assert await store.get_session("5511:7@s.whatsapp.net.0") == b"session"  # still alive
        await store.copy_to(str(tmp_path / "copy"))
    assert digest(path) == before
    after = listing(path)
    assert files <= after
    # SQLite's mode=ro may leave the -wal and -shm files beside the database.
    assert all(f.endswith(("-wal", "-shm")) for f in after - files), after - files
    async with await backend.open(tmp_path / "copy") as copy:
        assert await copy.get_session("5511:7@s.whatsapp.net.0") == b"session"


@pytest.mark.parametrize(("backend", "name"), BACKENDS)
async def test_a_missing_store_or_bad_flag_is_refused_and_nothing_is_created(
    tmp_path: Path, backend: Any, name: str
) -> None:
    with pytest.raises(StoreConnectionError, match="readonly creates none"):
        await backend.open(tmp_path / "absent" / name, readonly=True)
    with pytest.raises(StoreConnectionError, match="readonly creates none"):
        await backend.open(tmp_path / name, readonly=True)
    assert list(tmp_path.iterdir()) == []
    for bad in ("yes", 1, None):
        with pytest.raises(ValidationError, match="readonly"):
            await backend.open(tmp_path / name, readonly=bad)


async def test_lmdb_readonly_and_writable_in_one_process_are_refused(tmp_path: Path) -> None:
    # LMDB opens an environment once per process: one mode for all its handles.
    async with await LmdbStore.open(tmp_path / "db") as store:
        await store.put_session("a@lid", b"x")
        with pytest.raises(StoreConnectionError, match="already open in this process"):
            await LmdbStore.open(tmp_path / "db", readonly=True)


async def test_lmdb_readonly_refuses_a_store_due_for_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await LmdbStore.open(tmp_path / "db") as store:  # "normal": checkpoints
        await store.put_session("a@lid", b"x")
    monkeypatch.setattr(durability, "boot_id", lambda: "a later boot")
    with pytest.raises(StoreConnectionError, match="not recovered from a restart"):
        await LmdbStore.open(tmp_path / "db", readonly=True)
    async with await LmdbStore.open(tmp_path / "db") as store:  # recovers
        assert await store.get_session("a@lid") == b"x"
    async with await LmdbStore.open(tmp_path / "db", readonly=True) as store:
        assert await store.get_session("a@lid") == b"x"


@pytest.mark.parametrize(("backend", "name"), BACKENDS)
def test_the_cli_read_commands_write_nothing(tmp_path: Path, backend: Any, name: str) -> None:
    import anyio

    path = tmp_path / name

    async def fill() -> None:
        async with await backend.open(path) as store:
            await fill_every_kind(store)

    anyio.run(fill)
    before = digest(path)
    script = str(Path(sys.executable).parent / "lmdbstore")
    for command in (
        ["info", str(path)],
        ["verify", str(path)],
        ["export", "-o", str(tmp_path / "out.jsonl"), str(path)],
        ["snapshot", str(path), str(tmp_path / "snap")],
        ["migrate", str(path), str(tmp_path / "migrated")],
    ):
        done = subprocess.run(
            [script, *command], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (command, done.stderr)
    assert digest(path) == before
