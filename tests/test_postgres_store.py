"""PostgresStore against a real PostgreSQL server (the session's, `conftest.postgres_url`):
opening and its bad input, the schema and its drift, the blocking API, snapshots, plans,
and writers in several processes racing on the same rows.

The conformance suites and the state machine run on it too (`test_conformance`,
`test_state_machine`)."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import psycopg
import pytest

import lmdbstore
from lmdbstore import EncryptionKey, Limits, PostgresStore, sync
from lmdbstore.errors import (
    DatabaseError,
    MigrationError,
    StoreConnectionError,
    TransactionConflictError,
    ValidationError,
)
from lmdbstore.keys import FORMAT_VERSION
from lmdbstore.testing.crash import run_and_kill
from lmdbstore.testing.postgres_server import PostgresServer
from lmdbstore.testing.together import run_together

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(postgres_url: str, postgres_schema: str) -> AsyncIterator[PostgresStore]:
    opened = await PostgresStore.open(postgres_url, schema=postgres_schema)
    yield opened
    await opened.close()


def _sql(url: str, schema: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cursor = conn.execute(statement)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


async def test_lmdbstore_open_takes_postgresql_urls(
    postgres_url: str, postgres_schema: str
) -> None:
    async with await lmdbstore.open(postgres_url, schema=postgres_schema, device_id=3) as store:
        assert type(store) is PostgresStore
        assert store.device_id == 3
        assert store.path.endswith(f"#{postgres_schema}")
        assert store.format_version == FORMAT_VERSION
        await store.put_session("a@lid", b"s")
    again = postgres_url.replace("postgresql://", "postgres://", 1)
    async with await lmdbstore.open(again, schema=postgres_schema, device_id=3) as store:
        assert await store.get_session("a@lid") == b"s"


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        ({"schema": "1abc"}, ValidationError, "schema"),
        ({"schema": 'x"; DROP TABLE y; --'}, ValidationError, "schema"),
        ({"schema": "x" * 64}, ValidationError, "schema"),
        ({"pool_size": 0}, ValidationError, "pool_size"),
        ({"pool_size": True}, ValidationError, "pool_size"),
        ({"device_id": -1}, ValidationError, "device_id"),
        ({"durability": "full"}, ValidationError, "unknown option"),
        ({"limits": Limits(sent_messages=0)}, ValidationError, "sent_messages"),
    ],
)
async def test_bad_options_are_refused_and_create_nothing(
    postgres_url: str, postgres_schema: str, options: dict[str, object], error: type, says: str
) -> None:
    options.setdefault("schema", postgres_schema)
    with pytest.raises(error, match=says):
        await lmdbstore.open(postgres_url, **options)
    assert (
        _sql(
            postgres_url,
            "public",
            "SELECT 1 FROM information_schema.schemata WHERE schema_name LIKE 't\\_%' AND"
            f" schema_name = '{postgres_schema}'",
        )
        == []
    )


async def test_an_unreachable_server_is_a_connection_error() -> None:
    with pytest.raises(StoreConnectionError, match="cannot connect to PostgreSQL"):
        await PostgresStore.open("postgresql://u:secret@127.0.0.1:1/db")
    with pytest.raises(StoreConnectionError) as raised:
        await PostgresStore.open("postgresql://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(raised.value)  # the password never reaches a message
    with pytest.raises(ValidationError, match="postgresql:// URL"):
        await PostgresStore.open("mysql://u@127.0.0.1/db")


async def test_a_newer_schema_is_a_migration_error(postgres_url: str, postgres_schema: str) -> None:
    async with await PostgresStore.open(postgres_url, schema=postgres_schema):
        pass
    _sql(postgres_url, postgres_schema, "UPDATE schema_version SET version = 99")
    with pytest.raises(MigrationError, match="newer"):
        await PostgresStore.open(postgres_url, schema=postgres_schema)


async def test_a_schema_of_someone_else_is_refused_and_left_alone(
    postgres_url: str, postgres_schema: str
) -> None:
    _sql(postgres_url, "public", f'CREATE SCHEMA "{postgres_schema}"')
    _sql(postgres_url, postgres_schema, "CREATE TABLE orders (id BIGINT)")
    with pytest.raises(StoreConnectionError, match="not an lmdbstore store"):
        await PostgresStore.open(postgres_url, schema=postgres_schema)
    tables = _sql(
        postgres_url,
        postgres_schema,
        "SELECT table_name FROM information_schema.tables"
        f" WHERE table_schema = '{postgres_schema}'",
    )
    assert tables == [("orders",)]


async def test_the_schema_is_the_declarations_in_postgresql_types(
    store: PostgresStore, postgres_url: str, postgres_schema: str
) -> None:
    columns = dict(
        _sql(
            postgres_url,
            postgres_schema,
            "SELECT column_name || ' ' || data_type || coalesce(' ' || collation_name, '')"
            ", is_nullable FROM information_schema.columns"
            f" WHERE table_schema = '{postgres_schema}' AND table_name = 'device_lists'",
        )
    )
    # "user" is a reserved word of PostgreSQL's: the column is quoted everywhere.
    assert columns == {
        "device_id bigint": "NO",
        "user text C": "NO",
        "record bytea": "NO",
    }
    record = lmdbstore.DeviceListRecord("5511", [lmdbstore.DeviceInfo(1)], 1)
    await store.update_device_list(record)
    assert await store.get_devices("5511") == record


async def test_key_strings_are_ordered_by_their_bytes_whatever_the_collation(
    store: PostgresStore,
) -> None:
    # Range scans need UTF-8 byte order, which the "C" collation of key columns gives
    # (a database's default collation would sort "B" after "a", "é" before "z").
    addresses = ["b@lid", "B@lid", "é@lid", "a@lid", "Z@lid", "z@lid"]
    for address in addresses:
        await store.put_session(address, b"s")
    prefix = store._records("session").key(())
    keys = await store._storage_open().read_in_thread(
        lambda view: [key for key, _ in view.scan_prefix("signal", prefix)]
    )
    assert keys == sorted(keys) and len(keys) == len(addresses)
    assert [k[5:-1].decode() for k in keys] == sorted(addresses, key=str.encode)


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        ("ALTER TABLE base_keys ALTER COLUMN base_key DROP NOT NULL", "table 'base_keys' is not"),
        ('ALTER TABLE sessions ALTER COLUMN "address" TYPE TEXT COLLATE "POSIX"', "'sessions'"),
        ("DROP INDEX sent_messages_by_time", "missing index 'sent_messages_by_time'"),
        ("CREATE INDEX extra_index ON sessions (record)", "unexpected index 'extra_index'"),
        ("CREATE TABLE extra (x BIGINT)", "unexpected table 'extra'"),
        ("INSERT INTO sessions VALUES (4294967296, 'a@lid', '\\x00')", "outside u32"),
        ("UPDATE schema_version SET version = 1", "schema version"),
    ],
)
async def test_verify_reports_drift(
    store: PostgresStore, postgres_url: str, postgres_schema: str, tamper: str, says: str
) -> None:
    await store.put_session("a@lid", b"s")
    assert await store.verify() == []
    _sql(postgres_url, postgres_schema, tamper)
    assert any(says in problem for problem in await store.verify())


async def test_a_dropped_table_is_named_by_the_error_of_every_read(
    store: PostgresStore, postgres_url: str, postgres_schema: str
) -> None:
    await store.save_base_key("a@lid", "m1", b"k")
    _sql(postgres_url, postgres_schema, "DROP TABLE base_keys")
    with pytest.raises(MigrationError, match='relation "base_keys" does not exist'):
        await store.verify()
    with pytest.raises(MigrationError, match="base_keys"):
        await store.has_same_base_key("a@lid", "m1", b"k")
    assert await store.get_session("a@lid") is None  # the other tables serve on


async def test_a_snapshot_is_a_schema_the_store_opens(
    store: PostgresStore, postgres_url: str, postgres_schema: str
) -> None:
    await store.put_session("a@lid", b"kept")
    await store.store_sent_message("c@g.us", "m1", b"p")
    await store.snapshot_db("nightly.1", b"extra bytes")
    await store.put_session("a@lid", b"after")
    [(name,)] = _sql(
        postgres_url,
        "public",
        "SELECT schema_name FROM information_schema.schemata"
        f" WHERE schema_name LIKE '{postgres_schema}\\_snapshot\\_%'",
    )
    assert name.endswith("_nightly_1")
    async with await PostgresStore.open(postgres_url, schema=name) as copy:
        assert await copy.get_session("a@lid") == b"kept"
        assert await copy.peek_sent_message("c@g.us", "m1") == b"p"
        assert await copy.verify() == []
        await copy.copy_to(f"{postgres_schema}_again")  # a snapshot's own extra stays behind
    async with await PostgresStore.open(postgres_url, schema=f"{postgres_schema}_again") as again:
        assert await again.get_session("a@lid") == b"kept"
        assert await again.verify() == []
    assert _sql(postgres_url, name, "SELECT content FROM snapshot_extra") == [(b"extra bytes",)]
    with pytest.raises(DatabaseError, match="already exists"):
        await store.copy_to(name)
    with pytest.raises(DatabaseError, match="63 bytes"):
        await store.snapshot_db("n" * 60)
    with pytest.raises(ValidationError):
        await store.copy_to("no-dashes")


async def test_the_blocking_api(postgres_url: str, postgres_schema: str) -> None:
    with sync.open(postgres_url, schema=postgres_schema) as store:
        assert type(store).__name__ == "SyncPostgresStore"
        store.put_session("a@lid", b"s")
        with store.transaction() as tx:
            tx.put_identity("a@lid", bytes(32))
            tx.remove_prekey(7)
        assert store.get_session("a@lid") == b"s"
        assert store.load_identity("a@lid") == bytes(32)
        assert store.verify() == []


async def test_every_statement_of_the_domain_layer_uses_an_index(
    postgres_url: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each lookup, scan and expiry the storage runs plans as a search of a primary key or
    an index, never a walk of a whole table (sequential scans made as costly as PostgreSQL
    allows, so that the small tables of the test are planned as large ones)."""
    from lmdbstore.postgres_store.database import QmarkConnection
    from lmdbstore.testing.protocol import fill_every_kind

    statements: list[tuple[str, tuple[object, ...]]] = []
    execute = QmarkConnection.execute

    def traced(self: QmarkConnection, statement: str, parameters: object = ()) -> object:
        statements.append((statement, tuple(parameters)))  # type: ignore[arg-type]
        return execute(self, statement, parameters)  # type: ignore[arg-type]

    caps = Limits(sent_messages=2, msg_secrets=2)
    async with await PostgresStore.open(postgres_url, schema=postgres_schema, limits=caps) as s:
        await fill_every_kind(s)
        monkeypatch.setattr(QmarkConnection, "execute", traced)
        await s.get_pn_mapping("5511")
        await s.get_max_prekey_id()
        await s.get_sender_key_devices("g1@g.us")
        await s.delete_sender_key_device_rows(["a@lid"])
        assert await s.has_signal_state_for_user("5511")
        await s.get_session("5511:7@s.whatsapp.net.0")
        await s.take_sent_message("g1@g.us", "m1")
        for n in range(3):  # over the caps: counted and evicted
            await s.store_sent_message("g1@g.us", f"c{n}", b"p")
            await s.put_msg_secret("g1@g.us", "a@lid", f"c{n}", bytes(32), 10 + n)
        for expire in (
            s.delete_expired_sent_messages,
            s.delete_expired_pending_inbound,
            s.delete_expired_msg_secrets,
            s.delete_expired_tc_tokens,
        ):
            await expire(10**12)
        await s.device_ids()
        await s.create()
    monkeypatch.undo()
    queries = [(q, p) for q, p in statements if q.split()[0] in ("SELECT", "DELETE")]
    assert len(queries) > 20
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{postgres_schema}"')
        conn.execute("SET enable_seqscan = off")
        for query, parameters in queries:
            if "information_schema" in query or "pg_advisory" in query:
                continue
            explained = "EXPLAIN " + query.replace("?", "%s")
            plan = "\n".join(row[0] for row in conn.execute(explained, parameters))  # type: ignore[arg-type]
            assert "Seq Scan" not in plan, (query, plan)


WRITER = """
import sys, anyio
from lmdbstore import LidPnMappingEntry, PostgresStore

async def main(url, schema, rounds):
    async with await PostgresStore.open(url, schema=schema) as store:
        async def bump(tx):
            raw = await tx.get_session("counter@lid")
            value = int.from_bytes(raw or bytes(8), "big") + 1
            await tx.put_session("counter@lid", value.to_bytes(8, "big"))
            await tx.put_lid_mapping(
                LidPnMappingEntry(f"{value}@lid", f"55{value}", 1, 1, "test")
            )
        for _ in range(rounds):
            await store.run_transaction(bump, retries=1000)

anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
"""


async def test_processes_racing_on_the_same_rows_stay_exact(
    postgres_url: str, postgres_schema: str
) -> None:
    """Four processes (four hosts, as far as PostgreSQL can tell) each increment one
    counter 25 times in optimistic transactions, and store a LID mapping per increment: no
    increment is lost, and the write sequence of the mappings stays one per mapping."""
    async with await PostgresStore.open(postgres_url, schema=postgres_schema):
        pass  # the schema exists before the racers start
    racers = [
        subprocess.Popen([sys.executable, "-c", WRITER, postgres_url, postgres_schema, "25"])
        for _ in range(4)
    ]
    assert [racer.wait(timeout=300) for racer in racers] == [0, 0, 0, 0]
    async with await PostgresStore.open(postgres_url, schema=postgres_schema) as store:
        assert await store.get_session("counter@lid") == (100).to_bytes(8, "big")
        assert len(await store.get_all_lid_mappings()) == 100
        assert await store.verify() == []
    seqs = _sql(postgres_url, postgres_schema, "SELECT seq FROM lid_mappings ORDER BY seq")
    assert len({seq for (seq,) in seqs}) == 100  # one write sequence number per mapping


OPENER = """
import sys, anyio
from lmdbstore import EncryptionKey, PostgresStore

async def main(url, schema, key, name):
    encryption = EncryptionKey.from_hex(key) if key else None
    sys.stdin.readline()  # all at once: every process is started and imported
    async with await PostgresStore.open(url, schema=schema, encryption=encryption) as store:
        await store.put_session(f"{name}@lid", b"here")

anyio.run(main, *sys.argv[1:])
"""


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_hosts_opening_a_new_schema_at_once_create_it_once(
    postgres_url: str, postgres_schema: str, encrypted: bool
) -> None:
    """Six processes open the same schema, which does not exist yet, at once: each waits
    for the one migrating before it, and sees its tables (and its key) instead of creating
    them again."""
    key = EncryptionKey.generate() if encrypted else None
    hexed = key.hex() if key is not None else ""
    argv = [postgres_url, postgres_schema, hexed]
    outcomes = run_together(OPENER, [[*argv, f"p{n}"] for n in range(6)])
    assert [code for code, _ in outcomes] == [0] * 6, outcomes
    async with await PostgresStore.open(
        postgres_url, schema=postgres_schema, encryption=key
    ) as store:
        assert store.encrypted == encrypted
        assert await store.get_sessions_batch([f"p{n}@lid" for n in range(6)]) == {
            f"p{n}@lid": b"here" for n in range(6)
        }
        assert await store.verify() == []


# -- group commit -----------------------------------------------------------------------


async def test_concurrent_writes_are_committed_together_each_with_its_own_outcome(
    store: PostgresStore,
) -> None:
    """64 writes in flight, a few of them failing on their own (a transaction whose read
    changed, a write to a deleted pre-key's id twice): they share transactions (fewer
    commits than writes), each caller gets its own result or error, and what failed left
    nothing behind."""
    commits = 0
    database = store._db()
    commit = database._commit

    def counting(batch: Any) -> None:
        nonlocal commits
        commits += 1
        commit(batch)

    database.writer._commit = counting  # type: ignore[method-assign]
    await store.put_session("shared@lid", b"0")
    outcomes: dict[int, object] = {}

    async def write(i: int) -> None:
        try:
            if i % 16 == 0:  # a transaction that another write of this batch makes stale
                async with store.transaction() as tx:
                    await tx.get_session("shared@lid")
                    await store.put_session("shared@lid", str(i).encode())
                    await tx.put_session(f"tx{i}@lid", b"never")
            else:
                await store.put_session(f"s{i}@lid", str(i).encode())
            outcomes[i] = "ok"
        except TransactionConflictError as exc:
            outcomes[i] = exc

    async with anyio.create_task_group() as tg:
        for i in range(64):
            tg.start_soon(write, i)
    assert commits < 64
    for i in range(64):
        if i % 16 == 0:
            assert isinstance(outcomes[i], TransactionConflictError)
            assert await store.get_session(f"tx{i}@lid") is None
        else:
            assert outcomes[i] == "ok"
            assert await store.get_session(f"s{i}@lid") == str(i).encode()


async def test_a_database_error_in_a_shared_transaction_fails_only_its_write(
    store: PostgresStore,
) -> None:
    """PostgreSQL reports a pipelined statement's error later, maybe in another write's
    turn: the batch then runs each write alone, and only the guilty one fails."""
    database = store._db()

    def guilty(conn: Any) -> None:
        conn.execute("SELECT 1 / 0")

    async def innocent(i: int) -> None:
        await store.put_session(f"i{i}@lid", b"x")

    async def failing() -> None:
        with pytest.raises(DatabaseError, match="division by zero"):
            await database.write(guilty)

    shared = []
    commit = database._commit

    def watching(batch: Any) -> None:
        shared.append(len(batch) > 1 and any(request.op is guilty for request in batch))
        commit(batch)

    database.writer._commit = watching  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        for i in range(40):
            if i == 20:
                tg.start_soon(failing)
            tg.start_soon(innocent, i)
    assert any(shared)  # the guilty write did share a transaction
    for i in range(40):
        assert await store.get_session(f"i{i}@lid") == b"x"


# -- crashes ----------------------------------------------------------------------------

KILLED_WRITER = """
import sys, anyio
from lmdbstore import PostgresStore

async def writer(store, tag, w):
    i = 0
    while True:
        key = f"{tag}-{w}-{i}@lid"
        await store.put_session(key, key.encode() * 20)
        print(key, flush=True)  # acknowledged: the call returned
        i += 1

async def main(url, schema, tag):
    store = await PostgresStore.open(url, schema=schema)
    async with anyio.create_task_group() as tg:
        for w in range(16):  # concurrent writers: group commits in flight
            tg.start_soon(writer, store, tag, w)

anyio.run(main, *sys.argv[1:])
"""


async def test_sigkill_loses_no_acknowledged_write(
    postgres_url: str, postgres_schema: str, request: pytest.FixtureRequest
) -> None:
    """A process writing with 16 concurrent tasks is killed at random moments; each time
    the store holds every write the process saw acknowledged, with its value, and verifies
    clean (a transaction in flight is PostgreSQL's to roll back)."""
    kills = 30 if request.config.getoption("--run-slow") else 3
    async with await PostgresStore.open(postgres_url, schema=postgres_schema):
        pass
    acknowledged: list[str] = []
    for kill in range(kills):
        acknowledged += await anyio.to_thread.run_sync(
            run_and_kill,
            KILLED_WRITER,
            [postgres_url, postgres_schema, f"k{kill}"],
            random.uniform(0.05, 0.3),
        )
        async with await PostgresStore.open(postgres_url, schema=postgres_schema) as store:
            found = await store.get_sessions_batch(acknowledged)
            missing = [key for key in acknowledged if key not in found]
            assert not missing, f"after kill {kill}: {len(missing)} acknowledged writes lost"
            assert all(value == key.encode() * 20 for key, value in found.items())
            assert await store.verify() == []


async def test_a_server_gone_away_is_a_connection_error_for_reads_and_writes() -> None:
    """The server stops under an open store: reads and writes fail with
    `StoreConnectionError` (not a writer failure), and the store still closes."""
    if not PostgresServer.available():
        pytest.skip("PostgreSQL is not installed (.ci/run installs it)")
    server = PostgresServer(durable=False)
    server.start()
    try:
        store = await PostgresStore.open(server.url)
        await store.put_session("a@lid", b"s")
    finally:
        server.stop()
    try:
        with pytest.raises(StoreConnectionError):
            await store.put_session("b@lid", b"s")
        with pytest.raises(StoreConnectionError):
            await store.get_session("a@lid")
    finally:
        await store.close()


async def test_a_write_cancelled_while_no_connection_is_free_is_withdrawn(
    postgres_url: str, postgres_schema: str
) -> None:
    """With the pool's one connection held elsewhere, a write waits for it; cancelled
    meanwhile, it raises at once and is never applied, as one waiting for LMDB's lock."""
    async with await PostgresStore.open(postgres_url, schema=postgres_schema, pool_size=1) as store:
        taken, release = threading.Event(), threading.Event()

        def hold() -> None:
            with store._db().pool.connection():
                taken.set()
                release.wait()

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            taken.wait()
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                with anyio.fail_after(0.3):
                    await store.put_session("late@lid", b"never")
            assert time.monotonic() - started < 0.6
        finally:
            release.set()
            holder.join()
        await store.put_session("after@lid", b"yes")  # the writer goes on
        assert await store.get_session("late@lid") is None
        assert await store.get_session("after@lid") == b"yes"
