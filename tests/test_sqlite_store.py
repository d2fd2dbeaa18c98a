"""SqliteStore beyond the shared contract: configuration, schema versions, busy handling,
several processes on one file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING

import anyio
import cbor2
import pytest

from lmdbstore import (
    DatabaseError,
    Device,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    Limits,
    MigrationError,
    SerializationError,
    SqliteStore,
    StoreConnectionError,
    ValidationError,
    keys,
)
from lmdbstore.sqlite_store import database, schema
from lmdbstore.transfer import source

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


def pragma(conn: sqlite3.Connection, name: str) -> object:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


@pytest.mark.parametrize(("synchronous", "level"), [("NORMAL", 1), ("full", 2)])
async def test_connections_are_configured(tmp_path: Path, synchronous: str, level: int) -> None:
    async with await SqliteStore.open(tmp_path / "db", synchronous=synchronous) as store:  # type: ignore[arg-type]
        db = store._db()
        reader = db.read_sync(lambda conn: conn)
        for conn in (db.writer, reader):
            assert pragma(conn, "journal_mode") == "wal"
            assert pragma(conn, "synchronous") == level
            # The writer waits for locks in our retry loop, which cancellation can stop.
            assert pragma(conn, "busy_timeout") == (20 if conn is db.writer else 30_000)
            assert pragma(conn, "foreign_keys") == 1
            assert pragma(conn, "temp_store") == 2
            assert pragma(conn, "cache_size") == -2048
        assert pragma(reader, "query_only") == 1
        strict = db.writer.execute("SELECT count(*) FROM pragma_table_list WHERE strict").fetchone()
        statements = [s for step in schema.MIGRATIONS for s in step]
        tables = sum(s.startswith("CREATE TABLE") for s in statements)
        assert strict[0] == tables + 1  # and schema_version


@pytest.mark.parametrize("synchronous", ["OFF", "normalish", 1, None])
async def test_bad_synchronous(tmp_path: Path, synchronous: object) -> None:
    with pytest.raises(ValidationError):
        await SqliteStore.open(tmp_path / "db", synchronous=synchronous)  # type: ignore[arg-type]
    assert not (tmp_path / "db").exists()


async def test_newer_schema_is_a_migration_error(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "db") as store:
        await store.put_session("a@lid", b"x")
    conn = sqlite3.connect(tmp_path / "db")
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(MigrationError, match="99 is newer"):
        await SqliteStore.open(tmp_path / "db")
    conn = sqlite3.connect(tmp_path / "db")
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (99,)
    conn.close()


async def test_a_database_of_someone_else_is_refused_and_left_byte_identical(
    tmp_path: Path,
) -> None:
    conn = sqlite3.connect(tmp_path / "db")
    conn.execute("CREATE TABLE whatsmeow_sessions (their_id TEXT, session BLOB)")
    conn.commit()
    conn.close()
    before = (tmp_path / "db").read_bytes()
    with pytest.raises(StoreConnectionError, match="not an lmdbstore store"):
        await SqliteStore.open(tmp_path / "db")
    assert (tmp_path / "db").read_bytes() == before  # not even switched to WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]


async def test_forward_migrations_run_once_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await SqliteStore.open(tmp_path / "db") as store:
        await store.put_session("a@lid", b"kept")
    step = ("CREATE TABLE added_in_2 (x INTEGER) STRICT", "INSERT INTO added_in_2 VALUES (2)")
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, step])
    for _ in range(2):  # a second open finds the new version and runs nothing
        async with await SqliteStore.open(tmp_path / "db") as store:
            assert await store.get_session("a@lid") == b"kept"
    conn = sqlite3.connect(tmp_path / "db")
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (
        len(schema.MIGRATIONS),
    )
    assert conn.execute("SELECT * FROM added_in_2").fetchall() == [(2,)]
    conn.close()


async def test_corrupt_values_name_domain_and_key(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "db") as store:
        await store.save(Device(push_name="me"))
        await store.set_version("regular", HashState(version=1))
        await store.update_device_list(DeviceListRecord("5511", [DeviceInfo(1)], 1))
        await store.put_session("a@lid", b"good")
    conn = sqlite3.connect(tmp_path / "db")
    conn.execute("UPDATE devices SET record = x'ff00'")
    conn.execute("UPDATE app_state_versions SET value_map = ?", (cbor2.dumps({"i": "str"}),))
    conn.execute("UPDATE device_lists SET record = ?", (cbor2.dumps([1, 2]),))
    conn.commit()
    conn.close()
    async with await SqliteStore.open(tmp_path / "db") as store:
        with pytest.raises(SerializationError, match="device record") as caught:
            await store.load()
        # Errors name the key in the byte layout of every storage (`lmdbstore.keys`).
        assert caught.value.key == keys.make(keys.u32(1), keys.DeviceTag.DEVICE)
        with pytest.raises(SerializationError, match="appsync"):
            await store.get_version("regular")
        with pytest.raises(SerializationError, match="protocol") as caught:
            await store.get_devices("5511")
        assert caught.value.key == keys.make(
            keys.u32(1), keys.ProtocolTag.DEVICE_LIST, keys.s(b"5511")
        )
        assert await store.get_session("a@lid") == b"good"
        await store.save(Device(push_name="repaired"))
        assert (await store.load()) == Device(push_name="repaired")


async def test_device_written_by_an_older_version_loads(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "db") as store:
        await store.save(Device(push_name="kept"))
    conn = sqlite3.connect(tmp_path / "db")
    old = cbor2.dumps({"pn": "5511@s.whatsapp.net", "rid": 7, "pnm": "old"})
    conn.execute("UPDATE devices SET record = ?", (old,))
    conn.commit()
    conn.close()
    async with await SqliteStore.open(tmp_path / "db") as store:
        assert await store.load() == Device(
            pn="5511@s.whatsapp.net", registration_id=7, push_name="old"
        )


def hold_write_lock(path: Path, seconds: float, holding: threading.Event) -> threading.Thread:
    """Another connection (as another process would) holds the write lock for a while."""

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        holding.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


async def test_busy_writes_are_retried_and_reads_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 1)  # our backoff does the waiting
    async with await SqliteStore.open(tmp_path / "db") as store:
        await store.put_session("a@lid", b"old")
        holding = threading.Event()
        thread = hold_write_lock(tmp_path / "db", 0.5, holding)
        await anyio.to_thread.run_sync(holding.wait)
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.put_session, "a@lid", b"new")
            await anyio.sleep(0.05)
            # The write is blocked; a read is not.
            with anyio.fail_after(0.3):
                assert await store.get_session("a@lid") == b"old"
        assert await store.get_session("a@lid") == b"new"
        await anyio.to_thread.run_sync(thread.join)


async def test_a_write_cancelled_before_it_begins_is_withdrawn(tmp_path: Path) -> None:
    """Another connection holds the write lock: a timeout around a write raises at once
    (not when the lock is released, nor after the busy timeout) and the write is never
    applied; a cancelled task group exits at once too; the writer goes on afterwards."""
    async with await SqliteStore.open(tmp_path / "db") as store:
        holding = threading.Event()
        thread = hold_write_lock(tmp_path / "db", 1.5, holding)
        await anyio.to_thread.run_sync(holding.wait)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.3):
                await store.put_session("withdrawn@lid", b"never")
        assert time.monotonic() - start < 0.6
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.put_session, "also@lid", b"never")
            await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        assert time.monotonic() - start < 0.8
        await anyio.to_thread.run_sync(thread.join)
        await store.put_session("after@lid", b"applied")
        assert await store.get_session("withdrawn@lid") is None
        assert await store.get_session("also@lid") is None
        assert await store.get_session("after@lid") == b"applied"


async def test_a_lock_held_too_long_is_a_database_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 1)
    monkeypatch.setattr(database, "RETRY_SECONDS", 0.1)
    async with await SqliteStore.open(tmp_path / "db") as store:
        holding = threading.Event()
        thread = hold_write_lock(tmp_path / "db", 0.6, holding)
        await anyio.to_thread.run_sync(holding.wait)
        with pytest.raises(DatabaseError, match="locked"):
            await store.put_sessions_batch([("a@lid", b"x"), ("b@lid", b"y")])
        await anyio.to_thread.run_sync(thread.join)
        assert await store.get_sessions_batch(["a@lid", "b@lid"]) == {}
        await store.put_session("a@lid", b"x")  # and the store works again


async def test_reader_connections_are_pooled_and_closed(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "db")
    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(store.get_session, f"{i}@lid")
    db = store._db()
    assert 1 <= db.readers <= 20
    for _ in range(50):
        await store.get_session("a@lid")
    assert db.readers <= 20
    await store.close()
    assert db.readers == 0


WRITER = textwrap.dedent(
    """
    import os, sys, time, anyio
    from lmdbstore import SqliteStore
    from lmdbstore.sqlite_store import database

    path, name, go, busy_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    database.BUSY_TIMEOUT_MS = busy_ms

    async def main():
        while not os.path.exists(go):
            time.sleep(0.001)
        async with await SqliteStore.open(path) as store:
            async with anyio.create_task_group() as tg:
                for i in range(200):
                    tg.start_soon(store.put_session, f"{name}-{i}@lid", name.encode())
            for i in range(20):
                await store.put_sessions_batch([(f"{name}-b{i}-{j}@lid", b"b") for j in range(20)])
                await store.store_sent_message("g@g.us", f"m{i}", name.encode())
                await store.take_sent_message("g@g.us", f"m{i}")

    anyio.run(main)
    print("done")
    """
)


@pytest.mark.parametrize("busy_ms", [30_000, 1], ids=["busy_timeout", "backoff"])
async def test_two_processes_write_one_file(tmp_path: Path, busy_ms: int) -> None:
    path, go = tmp_path / "db", tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, str(go), str(busy_ms)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("p1", "p2")
    ]
    go.touch()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert "locked" not in err
        assert out.strip() == "done"
    async with await SqliteStore.open(path) as store:
        for name in ("p1", "p2"):
            single = [f"{name}-{i}@lid" for i in range(200)]
            batched = [f"{name}-b{i}-{j}@lid" for i in range(20) for j in range(20)]
            assert len(await store.get_sessions_batch(single + batched)) == 600
        assert await store.delete_expired_sent_messages(2**62) == 0  # each take followed its store


async def test_every_statement_of_the_domain_layer_uses_an_index(tmp_path: Path) -> None:
    # The storage turns byte-layout scans into SQL: each lookup, scan and expiry must be a
    # search of a primary key or an index, never a walk of a whole table.
    from lmdbstore.testing.protocol import fill_every_kind

    statements: list[str] = []
    caps = Limits(sent_messages=2, msg_secrets=2)
    async with await SqliteStore.open(tmp_path / "db", limits=caps) as store:
        await fill_every_kind(store)
        db = store._db()
        db.writer.set_trace_callback(statements.append)
        db.read_sync(lambda conn: conn.set_trace_callback(statements.append))
        await store.get_pn_mapping("5511")
        await store.get_max_prekey_id()
        await store.get_sender_key_devices("g1@g.us")
        await store.delete_sender_key_device_rows(["a@lid"])
        assert await store.has_signal_state_for_user("5511")
        await store.get_session("5511:7@s.whatsapp.net.0")
        await store.take_sent_message("g1@g.us", "m1")
        for n in range(3):  # over the caps: counted and evicted
            await store.store_sent_message("g1@g.us", f"c{n}", b"p")
            await store.put_msg_secret("g1@g.us", "a@lid", f"c{n}", bytes(32), 10 + n)
        for expire in (
            store.delete_expired_sent_messages,
            store.delete_expired_pending_inbound,
            store.delete_expired_msg_secrets,
            store.delete_expired_tc_tokens,
        ):
            await expire(10**12)
        await store.device_ids()
        await store.create()
    conn = sqlite3.connect(tmp_path / "db")
    queries = [s for s in statements if s.split()[0] in ("SELECT", "DELETE")]
    assert len(queries) > 20
    for query in queries:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}")]
        whole = [step for step in plan if step.startswith("SCAN") and "INDEX" not in step]
        assert whole == [], (query, plan)
    conn.close()


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (
            "CREATE TRIGGER wipe AFTER INSERT ON sessions BEGIN DELETE FROM identities; END",
            "unexpected trigger 'wipe'",
        ),
        (
            "DROP TABLE base_keys; CREATE TABLE base_keys (device_id, address, message_id,"
            " base_key, PRIMARY KEY (device_id, address, message_id))",
            "table 'base_keys' is not as lmdbstore creates it",
        ),
        ("DROP INDEX sent_messages_by_time", "missing index 'sent_messages_by_time'"),
    ],
)
async def test_verify_reports_schema_drift(tmp_path: Path, tamper: str, says: str) -> None:
    async with await SqliteStore.open(tmp_path / "db") as store:
        await store.put_identity("a@lid", bytes(32))
        assert await store.verify() == []
    conn = sqlite3.connect(tmp_path / "db")
    conn.executescript(tamper)
    conn.close()
    async with await SqliteStore.open(tmp_path / "db") as store:
        problems = await store.verify()
    assert any(says in p for p in problems), problems


@pytest.mark.parametrize(("count", "says"), [(-1, "is negative"), (5, "says 5 entries, not 1")])
async def test_verify_reports_a_wrong_tally(tmp_path: Path, count: int, says: str) -> None:
    async with await SqliteStore.open(tmp_path / "db") as store:
        await store.store_sent_message("g@g.us", "m", b"p")
    conn = sqlite3.connect(tmp_path / "db")
    conn.execute("UPDATE tallies SET count = ?", (count,))
    conn.commit()
    conn.close()
    async with await SqliteStore.open(tmp_path / "db") as store:
        problems = await store.verify()
    assert any(says in p for p in problems), problems


async def test_a_row_of_the_wrong_type_is_refused_as_corrupt(tmp_path: Path) -> None:
    # A table recreated without STRICT can hand back an int where a blob belongs: reads and
    # verify refuse it as a corrupt record, never return it.
    async with await SqliteStore.open(tmp_path / "db") as store:
        await store.put_identity("a@lid", bytes(32))
    conn = sqlite3.connect(tmp_path / "db")
    conn.executescript(
        "DROP TABLE identities; CREATE TABLE identities (device_id INTEGER, address TEXT,"
        " identity_key, PRIMARY KEY (device_id, address)) WITHOUT ROWID;"
        "INSERT INTO identities VALUES (1, 'a@lid', 42);"
    )
    conn.close()
    async with await SqliteStore.open(tmp_path / "db") as store:
        with pytest.raises(SerializationError, match="unreadable"):
            await store.load_identity("a@lid")
        problems = await store.verify()
    assert any("unreadable" in p for p in problems), problems
    assert any("identities" in p and "not as lmdbstore" in p for p in problems), problems


async def test_a_failed_read_kept_as_an_exception_holds_no_snapshot(tmp_path: Path) -> None:
    """The DatabaseError of a read that failed midway does not carry the sqlite3 error,
    whose frames hold the cursor, whose unfinished statement would hold a read snapshot:
    WAL checkpoints then wait for as long as anyone keeps the exception (the raw fuzzer
    found a VACUUM waiting out its busy timeout so)."""
    path = tmp_path / "s.sqlite"
    async with await SqliteStore.open(path) as store:
        await store.put_sessions_batch([(f"{i}@lid", b"s") for i in range(50)])
        raw = sqlite3.connect(path)
        raw.execute("UPDATE sessions SET address = CAST(x'c3' AS TEXT) WHERE address = '25@lid'")
        raw.commit()
        with pytest.raises(DatabaseError) as failed:
            await store.verify()
        with pytest.raises(DatabaseError) as exported:
            list(source.records(store))  # an export's walk, on a connection of its own
        assert failed.value.__context__ is None
        assert exported.value.__context__ is None
        kept = failed.value, exported.value  # as a logger or a framework might keep them
        raw.execute("UPDATE sessions SET record = x'01' WHERE address = '1@lid'")  # WAL frames
        raw.commit()
        raw.execute("PRAGMA busy_timeout = 100")
        busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        raw.close()
        assert busy == 0, kept
