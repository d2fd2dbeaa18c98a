"""Everything lmdbstore creates is owner-only whatever the umask, and nothing is written
through a link planted at a path it creates (the files hold identity keys and sessions)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from lmdbstore import DatabaseError, LmdbStore, SqliteStore, clock
from lmdbstore.testing.protocol import fill_every_kind

if TYPE_CHECKING:
    from collections.abc import Iterator

SCRIPT = Path(sys.executable).parent / "lmdbstore"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def _make_stores(root: Path) -> None:
    for backend, name in ((LmdbStore, "a.lmdb"), (SqliteStore, "a.sqlite")):
        async with await backend.open(root / name) as store:
            await fill_every_kind(store)
            await store.snapshot_db("snap", extra_content=b"notes")


def test_everything_created_is_owner_only_whatever_the_umask(
    tmp_path: Path, umask_022: None
) -> None:
    anyio.run(_make_stores, tmp_path)
    for name in ("a.lmdb", "a.sqlite"):
        done = cli("export", str(tmp_path / name), "-o", str(tmp_path / f"{name}.jsonl"))
        assert done.returncode == 0, done.stderr
        done = cli("snapshot", str(tmp_path / name), str(tmp_path / f"{name}.copy"))
        assert done.returncode == 0, done.stderr
    for target in ("b.lmdb", "b.sqlite"):
        done = cli("import", str(tmp_path / "a.lmdb.jsonl"), str(tmp_path / target))
        assert done.returncode == 0, done.stderr
    done = cli("migrate", str(tmp_path / "a.sqlite"), str(tmp_path / "c.lmdb"))
    assert done.returncode == 0, done.stderr
    done = cli("migrate", str(tmp_path / "a.lmdb"), str(tmp_path / "c.sqlite"))
    assert done.returncode == 0, done.stderr
    seen = 0
    for directory, dirs, names in os.walk(tmp_path):
        for name in dirs:
            mode = stat.S_IMODE(os.lstat(os.path.join(directory, name)).st_mode)
            assert mode == 0o700, (directory, name, oct(mode))
        for name in names:
            mode = stat.S_IMODE(os.lstat(os.path.join(directory, name)).st_mode)
            assert mode == 0o600, (directory, name, oct(mode))
            seen += 1
    # Stores, WAL files, snapshots and their .extra, exports, imports, migrations.
    assert seen >= 20
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no build left


@pytest.mark.anyio
async def test_a_planted_link_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    async with await SqliteStore.open(tmp_path / "db") as store:
        await store.put_session("a@lid", b"secret")
        # The snapshot itself (SQLite: a file), then its .extra.
        target = f"{store.path}.copy"
        os.symlink(victim, target)
        with pytest.raises(DatabaseError, match="already exists"):
            await store.copy_to(target)
        os.remove(target)
        real_now = clock.now
        clock.now = lambda: 1234
        try:
            os.symlink(victim, f"{store.path}.snapshot-1234-x.extra")
            with pytest.raises(DatabaseError, match="cannot write"):
                await store.snapshot_db("x", extra_content=b"planted?")
        finally:
            clock.now = real_now
    victim_dir = tmp_path / "victim-dir"
    victim_dir.mkdir()
    async with await LmdbStore.open(tmp_path / "lmdb") as store:
        os.symlink(victim_dir, tmp_path / "lmdb.copy")
        with pytest.raises(DatabaseError, match="already exists"):
            await store.copy_to(str(tmp_path / "lmdb.copy"))
    assert list(victim_dir.iterdir()) == []
    os.symlink(victim, tmp_path / "out.jsonl")
    done = await anyio.to_thread.run_sync(
        lambda: cli("export", str(tmp_path / "db"), "-o", str(tmp_path / "out.jsonl"))
    )
    # The export is renamed over the link: the link is replaced, its target untouched.
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "out.jsonl").is_symlink()
    assert victim.read_bytes() == b"untouched"


@pytest.mark.parametrize("name", ["new.lmdb", "new.sqlite"])
def test_import_and_migrate_build_where_no_one_else_can_write(tmp_path: Path, name: str) -> None:
    # The store is built in a fresh 0700 directory and moved into place; a name planted
    # at the destination before the move makes it fail, never redirects it.
    anyio.run(_make_stores, tmp_path)
    os.symlink(tmp_path / "elsewhere", tmp_path / name)
    done = cli("migrate", str(tmp_path / "a.lmdb"), str(tmp_path / name))
    assert done.returncode == 7, done.stderr
    assert not (tmp_path / "elsewhere").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{name}")]
