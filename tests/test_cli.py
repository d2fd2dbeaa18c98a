"""The ``lmdbstore`` command, run as the installed console script in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import cbor2
import lmdb
import pytest

from lmdbstore import LmdbStore, SqliteStore, engine, keys
from lmdbstore.testing.protocol import fill_every_kind

SCRIPT = Path(sys.executable).parent / "lmdbstore"


def lmdbstore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )


def make_store(path: Path, backend: Any) -> None:
    async def fill() -> None:
        async with await backend.open(path) as store:
            await fill_every_kind(store)
            other = store.for_device(3)
            await fill_every_kind(other)
            await other.close()

    anyio.run(fill)


@pytest.fixture(params=[("lmdb", LmdbStore, "store"), ("sqlite", SqliteStore, "store.sqlite")])
def store_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    _, backend, name = request.param
    path = tmp_path / name
    make_store(path, backend)
    return path


def test_help_of_the_script_and_of_the_module() -> None:
    assert lmdbstore("--help").returncode == 0
    module = subprocess.run(
        [sys.executable, "-m", "lmdbstore", "--help"], capture_output=True, text=True, check=False
    )
    assert module.returncode == 0
    assert "verify" in module.stdout


def test_info(store_path: Path) -> None:
    done = lmdbstore("info", str(store_path), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["devices"] == [1, 3]
    assert report["entries"]["signal"] > 0
    assert report["bytes_on_disk"] > 0
    text = lmdbstore("info", str(store_path))
    assert text.returncode == 0
    assert "devices: [1, 3]" in text.stdout


def test_verify_ok_then_problems(tmp_path: Path) -> None:
    path = tmp_path / "store"
    make_store(path, LmdbStore)
    done = lmdbstore("verify", f"lmdb://{path}")
    assert (done.returncode, done.stdout.strip()) == (0, "ok")
    env = lmdb.Environment(str(path), max_dbs=10)
    broken = keys.make(
        keys.device_prefix(3), keys.SignalTag.SESSION, b"5511:7@s.whatsapp.net.0\x00"
    )
    with env.begin(write=True) as txn:
        txn.put(broken, b"\xff", db=env.open_db(b"signal", txn=txn))
    env.close()
    done = lmdbstore("verify", str(path))
    assert done.returncode == 1
    assert broken.hex() in done.stdout
    assert "1 problem" in done.stderr


def test_snapshot(store_path: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    done = lmdbstore("snapshot", str(store_path), str(dest))
    assert done.returncode == 0, done.stderr
    backend = LmdbStore if store_path.is_dir() else SqliteStore

    async def check() -> None:
        async with await backend.open(dest, device_id=3) as copy:
            assert await copy.get_session("5511:7@s.whatsapp.net.0") == b"session"
            assert await copy.verify() == []

    anyio.run(check)
    again = lmdbstore("snapshot", str(store_path), str(dest))
    assert again.returncode == 4
    assert "exists" in again.stderr


def test_exit_codes_for_missing_unopenable_and_newer(tmp_path: Path) -> None:
    missing = lmdbstore("info", str(tmp_path / "nothing"))
    assert missing.returncode == 3
    assert "no store" in missing.stderr
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert lmdbstore("verify", str(empty_dir)).returncode == 3
    assert list(empty_dir.iterdir()) == []  # nothing created
    assert lmdbstore("info", f"sqlite://{empty_dir}").returncode == 3
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("not a database " * 100)
    assert lmdbstore("verify", str(not_a_db)).returncode == 4
    path = tmp_path / "newer"
    make_store(path, LmdbStore)
    env = lmdb.Environment(str(path), max_dbs=10)
    with env.begin(write=True) as txn:
        txn.put(engine.FORMAT_KEY, cbor2.dumps(99), db=env.open_db(b"meta", txn=txn))
    env.close()
    newer = lmdbstore("info", str(path))
    assert newer.returncode == 6
    assert "format" in newer.stderr
    assert lmdbstore("frobnicate").returncode == 2
