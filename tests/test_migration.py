"""Stores and exports written by the previous format open, migrate and pass ``verify``.

``fixtures/format-1.tar.gz`` was written by lmdbstore's format-1 code (`fill_every_kind`
on device 1, a session on device 2), as an LMDB store, a SQLite store and a version-2
export of the LMDB one. It is never regenerated: it is what users have on disk.

``fixtures/format-2.tar.gz`` was written by the format-2 code likewise
(`fill_every_kind`, six sent messages and five expiring secrets on device 1, one sent
message on device 2), as an LMDB store and a SQLite store (schema version 2): format 3
and schema version 3 add the tallies of the counted indexes, which the first writable
open counts.
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

FIXTURES = Path(__file__).parent / "fixtures"


def _unpack(name: str, target: Path) -> Path:
    # Our own archive; the "data" filter where this Python has it (3.11.4 on).
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(FIXTURES / name) as archive:
        archive.extractall(target, **safe)  # type: ignore[arg-type]
    return target


@pytest.fixture
def old(tmp_path: Path) -> Path:
    return _unpack("format-1.tar.gz", tmp_path)


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


def _tallies(path: Path) -> dict[tuple[str, int, int], int]:
    """Every tally stored in the LMDB store at ``path``: (sub-database, device, index tag)
    to count."""
    env = lmdb.Environment(str(path), readonly=True, max_dbs=len(keys.DOMAINS) + 1)
    found = {}
    with env.begin() as txn:
        for name in keys.DOMAINS:
            for key, value in txn.cursor(db=env.open_db(name.encode(), txn=txn)):
                if len(key) == 6 and key[4] == keys.TALLY:
                    found[name, keys.read_u32(key, 0)[0], key[5]] = keys.read_tally(
                        name, key, value
                    )
    env.close()
    return found


async def test_a_format_2_lmdb_store_gains_its_tallies_on_its_first_writable_open(
    tmp_path: Path,
) -> None:
    path = _unpack("format-2.tar.gz", tmp_path) / "store.lmdb"
    with pytest.raises(StoreConnectionError, match="migrated first"):
        await LmdbStore.open(path, readonly=True)
    assert _tallies(path) == {}
    async with await LmdbStore.open(path) as store:
        assert await store.verify() == []  # the tallies agree with the indexes
        assert await store.peek_sent_message("120363@g.us", "sent4") == b"p4"
        await store.store_sent_message("120363@g.us", "after", b"p")
        assert await store.verify() == []
    sent, secret = keys.ProtocolTag.SENT_MESSAGE_BY_TIME, keys.MsgSecretTag.SECRET_BY_EXPIRY
    assert _tallies(path) == {
        ("protocol", 1, sent): 7,
        ("protocol", 2, sent): 1,
        ("msgsecret", 1, secret): 5,
    }


async def test_a_version_2_sqlite_store_gains_its_tallies_on_its_first_writable_open(
    tmp_path: Path,
) -> None:
    path = _unpack("format-2.tar.gz", tmp_path) / "store.sqlite"
    with pytest.raises(StoreConnectionError, match="migrated first"):
        await SqliteStore.open(path, readonly=True)
    async with await SqliteStore.open(path) as store:
        assert await store.verify() == []
        await store.store_sent_message("120363@g.us", "after", b"p")
        assert await store.verify() == []
    conn = sqlite3.connect(path)
    sent, secret = keys.ProtocolTag.SENT_MESSAGE_BY_TIME, keys.MsgSecretTag.SECRET_BY_EXPIRY
    assert sorted(conn.execute("SELECT * FROM tallies")) == [
        (1, "msgsecret", secret, 5),
        (1, "protocol", sent, 7),
        (2, "protocol", sent, 1),
    ]
    conn.close()


def _schema(path: Path) -> dict[str, str]:
    """Each table's and index's SQL in ``sqlite_master``, its spacing normalised."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        spaced = {name: " ".join(sql.split()) for name, sql in rows}
    finally:
        conn.close()
    return {n: sql.replace("( ", "(").replace(" )", ")") for n, sql in spaced.items()}


async def test_the_tables_made_from_the_declarations_are_those_the_old_code_wrote(
    tmp_path: Path,
) -> None:
    """The schema is generated from `lmdbstore.kinds` (`lmdbstore.storage.ddl`): a new store
    gets, statement for statement, the tables and indexes that the hand-written schema of
    the format-2 code created (the fixture, migrated to the current version)."""
    old = _unpack("format-2.tar.gz", tmp_path / "old") / "store.sqlite"
    async with await SqliteStore.open(old):  # migrates it to version 3
        pass
    async with await SqliteStore.open(tmp_path / "new.sqlite"):
        pass
    assert _schema(tmp_path / "new.sqlite") == _schema(old)
    assert len(_schema(old)) == 37  # 28 tables (schema_version, sealed included), 9 indexes
