"""Stores and exports written by the previous format open, migrate and pass ``verify``.

``fixtures/format-1.tar.gz`` was written by lmdbstore's format-1 code (`fill_every_kind`
on device 1, a session on device 2), as an LMDB store, a SQLite store and a version-2
export of the LMDB one. It is never regenerated: it is what users have on disk.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import cbor2
import lmdb
import pytest

from lmdbstore import LmdbStore, SqliteStore, keys
from lmdbstore.errors import StoreConnectionError
from lmdbstore.sqlite_store import schema

pytestmark = pytest.mark.anyio

FIXTURE = Path(__file__).parent / "fixtures" / "format-1.tar.gz"


@pytest.fixture
def old(tmp_path: Path) -> Path:
    # Our own archive; the "data" filter where this Python has it (3.11.4 on).
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path, **safe)  # type: ignore[arg-type]
    return tmp_path


async def _holds_the_old_records(store: LmdbStore | SqliteStore) -> None:
    assert await store.verify() == []
    assert await store.get_session("5511:7@s.whatsapp.net.0") == b"session"
    assert await store.get_msg_secret("120363@g.us", "a@lid", "m1") == bytes(range(32))
    assert (await store.get_pn_mapping("5511")).lid == "9@lid"  # type: ignore[union-attr]
    device = await store.load()
    assert device is not None and device.push_name == "filled"
    assert device.server_cert_chain is None  # not in a format-1 record
    async with store.for_device(2) as other:
        assert await other.get_session("4477@s.whatsapp.net") == b"second device"


async def test_a_format_1_lmdb_store_migrates_on_its_first_writable_open(old: Path) -> None:
    path = old / "store.lmdb"
    with pytest.raises(StoreConnectionError, match="migrated first"):
        await LmdbStore.open(path, readonly=True)
    async with await LmdbStore.open(path) as store:
        await _holds_the_old_records(store)
    env = lmdb.Environment(str(path), readonly=True, max_dbs=len(keys.DOMAINS) + 1)
    with env.begin() as txn:
        meta = env.open_db(b"meta", txn=txn)
        assert cbor2.loads(txn.get(keys.FORMAT_KEY, db=meta)) == keys.FORMAT_VERSION
        for name in ("contact", "chat", "eventbuf"):
            env.open_db(name.encode(), txn=txn, create=False)  # created by the migration
    env.close()
    async with await LmdbStore.open(path, readonly=True) as store:
        await _holds_the_old_records(store)


async def test_a_version_1_sqlite_store_migrates_on_its_first_writable_open(old: Path) -> None:
    path = old / "store.sqlite"
    with pytest.raises(StoreConnectionError, match="migrated first"):
        await SqliteStore.open(path, readonly=True)
    async with await SqliteStore.open(path) as store:
        await _holds_the_old_records(store)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (
        len(schema.MIGRATIONS),
    )
    conn.close()


def _lmdbstore(*args: str) -> None:
    script = Path(sys.executable).parent / "lmdbstore"
    done = subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_version_2_export_imports_into_the_new_format(old: Path) -> None:
    target, out = old / "imported", old / "again.jsonl"
    _lmdbstore("import", str(old / "export.jsonl"), f"lmdb://{target}")
    _lmdbstore("export", str(target), "-o", str(out))
    before = (old / "export.jsonl").read_text().splitlines()
    after = out.read_text().splitlines()
    assert json.loads(after[0])["version"] == 3
    records = [json.loads(line) for line in after[1:-1]]
    for record in records:  # the one field version 3 adds to a device, absent before
        if record["kind"] == "device":
            assert record["record"].pop("server_cert_chain") is None
    assert records == [json.loads(line) for line in before[1:-1]]  # every record, as it was
