"""The workloads: each runs LmdbStore and SqliteStore through the same public API, and where
it says something the raw engines' floors (py-lmdb, one transaction per operation; stdlib
sqlite3, WAL at the matching synchronous level). Each returns :class:`Row` s."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import lmdb

from lmdbstore import LmdbStore, SqliteStore
from lmdbstore.keys import SignalTag

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

RECORD = bytes(600)  # a Signal session record is a few hundred bytes
IDENTITY = bytes(32)
DECRYPT_SENDERS = 64
"""The senders a sequential decrypt loop cycles through."""

# (label, LmdbStore durability, SqliteStore synchronous): the default pair and the safe pair.
PAIRS = [("normal vs NORMAL", "normal", "NORMAL"), ("full vs FULL", "full", "FULL")]

RAW_FLAGS = {"normal": {"sync": False}, "full": {"sync": True, "metasync": True}}
"""The raw py-lmdb floor at each level's sync setting: "normal" commits without fsync (its
checkpoints are off the commit path), "full" fsyncs data and meta pages."""


@dataclass
class Row:
    """One measurement: ``value`` in ``unit``; ops/s are better higher, ms and MB lower."""

    workload: str
    engine: str
    value: float
    unit: str = "ops/s"

    @property
    def higher_is_better(self) -> bool:
        return self.unit.endswith("/s")


def address(i: int) -> str:
    return f"{1_000_000 + i}:1@s.whatsapp.net"


async def timed(
    workload: str, engine: str, ops: int, run: Callable[[], Awaitable[None]], rounds: int = 1
) -> Row:
    """The rate of ``run`` (``ops`` operations); the best of ``rounds`` runs, for workloads
    that can be repeated (reads), which filters out the noise of a shared machine."""
    return (await interleaved(workload, {engine: (ops, run)}, rounds))[0]


def plain(run: Callable[[], None], *, thread: bool = False) -> Callable[[], Awaitable[None]]:
    """A floor's plain loop ``run`` as a workload; with ``thread``, run on a worker thread,
    where the blocking API's rows run theirs (a floor runs where the store it is compared
    with runs)."""

    async def run_there() -> None:
        if thread:
            await anyio.to_thread.run_sync(run)
        else:
            run()

    return run_there


async def interleaved(
    workload: str, runs: dict[str, tuple[int, Callable[[], Awaitable[None]]]], rounds: int
) -> list[Row]:
    """`timed` of each engine's ``(ops, run)``, best of ``rounds``, the engines taking
    turns round by round: this shared machine has slow phases of seconds (the same loop
    runs up to 1.6x slower in them), which would otherwise land on one engine's rounds and
    skew its ratio to the others."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for engine, (_, run) in runs.items():
            start = time.perf_counter()
            await run()
            best[engine] = min(best[engine], time.perf_counter() - start)
    return [Row(workload, engine, runs[engine][0] / best[engine]) for engine in runs]


async def open_pair(
    tmp: Path, name: str, durability: str, synchronous: str, **options: Any
) -> tuple[Any, Any]:
    """LmdbStore and SqliteStore at a durability pair, with the same other ``options``."""
    lmdb_store = await LmdbStore.open(tmp / f"{name}.lmdb", durability=durability, **options)  # type: ignore[arg-type]
    sqlite_store = await SqliteStore.open(
        tmp / f"{name}.sqlite",
        synchronous=synchronous,  # type: ignore[arg-type]
        **options,
    )
    return lmdb_store, sqlite_store


async def fill_sessions(store: Any, count: int, record: bytes = RECORD) -> None:
    for first in range(0, count, 5_000):
        batch = [(address(i), record) for i in range(first, min(count, first + 5_000))]
        await store.put_sessions_batch(batch)


def raw_sqlite(path: Path, synchronous: str) -> sqlite3.Connection:
    """The floor: one connection, the session table as SqliteStore lays it out."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS sessions (device_id INTEGER, address TEXT, record BLOB,"
        " PRIMARY KEY (device_id, address)) STRICT, WITHOUT ROWID"
    )
    return db


def raw_sqlite_put(db: sqlite3.Connection, i: int) -> None:
    db.execute("REPLACE INTO sessions VALUES (1, ?, ?)", (address(i), RECORD))


# -- point reads -------------------------------------------------------------------------


@contextlib.contextmanager
def raw_read_runs(
    env: lmdb.Environment,
    table: lmdb._Database,
    keys: list[bytes],
    path: Path,
    addresses: list[str],
    stored: int,
) -> Iterator[dict[str, Callable[[], None]]]:
    """The floors of point reads, as plain loops by engine name: one py-lmdb read
    transaction per key of ``table``, one sqlite3 SELECT per address of a raw table at
    ``path`` holding ``stored`` sessions."""
    db = raw_sqlite(path, "NORMAL")
    db.execute("BEGIN")
    for i in range(stored):
        raw_sqlite_put(db, i)
    db.execute("COMMIT")

    def raw_lmdb() -> None:
        for key in keys:
            with env.begin(db=table) as txn:
                txn.get(key)

    def raw_select() -> None:
        for a in addresses:
            db.execute(
                "SELECT record FROM sessions WHERE device_id = 1 AND address = ?", (a,)
            ).fetchone()

    try:
        yield {"raw py-lmdb": raw_lmdb, "raw sqlite3": raw_select}
    finally:
        db.close()


async def point_reads(tmp: Path, reads: int, stored: int) -> list[Row]:
    workload = "point reads (hot), get_session"
    wanted = [address(random.randrange(stored)) for _ in range(reads)]
    ours, theirs = await open_pair(tmp, "reads", "normal", "NORMAL")
    for store in (ours, theirs):
        await fill_sessions(store, stored)
    # The floor reads the same sub-database of the same environment, by the same keys.
    env, table = ours._lmdb().env, ours._lmdb().dbs["signal"]
    raw_keys = [ours._named_key(SignalTag.SESSION, a, "address") for a in wanted]

    async def run(store: Any, addresses: list[str]) -> None:
        for a in addresses:
            await store.get_session(a)

    few = wanted[: max(1, reads // 10)]  # SqliteStore pays a thread hop per read
    with raw_read_runs(env, table, raw_keys, tmp / "reads-raw.sqlite", wanted, stored) as raw:
        rows = await interleaved(
            workload,
            {
                "LmdbStore": (reads, lambda: run(ours, wanted)),
                "SqliteStore": (len(few), lambda: run(theirs, few)),
                "raw py-lmdb": (reads, plain(raw["raw py-lmdb"])),
                "raw sqlite3": (reads, plain(raw["raw sqlite3"])),
            },
            rounds=3,
        )
    await ours.close()
    await theirs.close()
    return rows


# -- writes ------------------------------------------------------------------------------


async def seed_senders(store: Any, count: int) -> None:
    """An identity and a session for each of ``count`` senders (setup, not timed)."""
    await store.put_identities_batch([(address(c), IDENTITY) for c in range(count)])
    await store.put_sessions_batch([(address(c), RECORD) for c in range(count)])


def raw_env(path: Path, durability: str) -> lmdb.Environment:
    return lmdb.Environment(str(path), map_size=1 << 30, max_dbs=8, **RAW_FLAGS[durability])


async def sequential_writes(tmp: Path, n: int, pair: tuple[str, str, str]) -> list[Row]:
    """One awaited ``put_session`` after another: what a client that decrypts one message at
    a time does. The floors commit one put per transaction at the same sync setting."""
    label, durability, synchronous = pair
    workload = f"sequential awaited put_session, {label}"
    ours, theirs = await open_pair(tmp, f"seq-{durability}", durability, synchronous)

    async def run(store: Any) -> None:
        for i in range(n):
            await store.put_session(address(i), RECORD)

    rows = [
        await timed(workload, "LmdbStore", n, lambda: run(ours)),
        await timed(workload, "SqliteStore", n, lambda: run(theirs)),
        *await raw_write_floors(tmp / f"seq-{durability}-raw", workload, n, durability),
    ]
    await ours.close()
    await theirs.close()
    return rows


async def raw_write_floors(
    path: Path, workload: str, n: int, durability: str, *, thread: bool = False
) -> list[Row]:
    """The floors of sequential writes at ``durability``'s sync setting: one py-lmdb write
    transaction per put, one sqlite3 upsert per put (autocommit); on a worker thread with
    ``thread`` (`plain`)."""
    synchronous = dict((d, s) for _, d, s in PAIRS)[durability]
    db = raw_sqlite(path.with_suffix(".sqlite"), synchronous)
    env = raw_env(path.with_suffix(".lmdb"), durability)

    def raw_lmdb() -> None:
        for i in range(n):
            with env.begin(write=True) as txn:
                txn.put(address(i).encode(), RECORD)

    def raw_upsert() -> None:
        for i in range(n):
            raw_sqlite_put(db, i)

    try:
        return [
            await timed(workload, "raw py-lmdb", n, plain(raw_lmdb, thread=thread)),
            await timed(workload, "raw sqlite3", n, plain(raw_upsert, thread=thread)),
        ]
    finally:
        env.close()
        db.close()


async def decrypt_loop(tmp: Path, messages: int, pair: tuple[str, str, str]) -> list[Row]:
    """A client decrypting one message at a time: load the sender's identity, get the
    session, put the advanced session, remove the used pre-key; each awaited. Ops are
    messages. The floor does the same four operations on raw py-lmdb (two reads, two write
    transactions)."""
    label, durability, synchronous = pair
    workload = f"sequential decrypt loop, {label}"
    ours, theirs = await open_pair(tmp, f"loop-{durability}", durability, synchronous)
    for store in (ours, theirs):
        await seed_senders(store, DECRYPT_SENDERS)
        await store.store_prekeys_batch([(i + 1, RECORD[:100]) for i in range(messages)])

    async def run(store: Any) -> None:
        for i in range(messages):
            await decrypt_message(store, i)

    rows = [
        await timed(workload, "LmdbStore", messages, lambda: run(ours)),
        await timed(workload, "SqliteStore", messages, lambda: run(theirs)),
        await raw_decrypt_floor(tmp / f"loop-{durability}-raw", workload, messages, durability),
    ]
    await ours.close()
    await theirs.close()
    return rows


async def decrypt_message(store: Any, i: int) -> None:
    """What a client does for message ``i`` of a decrypt loop: load its sender's identity,
    get the session, put the advanced session, remove the used pre-key ``i + 1``."""
    sender = address(i % DECRYPT_SENDERS)
    await store.load_identity(sender)
    session = await store.get_session(sender)
    await store.put_session(sender, session)
    await store.remove_prekey(i + 1)


async def raw_decrypt_floor(
    path: Path, workload: str, messages: int, durability: str, *, thread: bool = False
) -> Row:
    """The floor of the decrypt loop: its four operations on raw py-lmdb (two read
    transactions, two write transactions) at ``durability``'s sync setting; on a worker
    thread with ``thread`` (`plain`)."""
    senders = DECRYPT_SENDERS
    env = raw_env(path.with_suffix(".lmdb"), durability)
    with env.begin(write=True) as txn:
        for c in range(senders):
            txn.put(b"i" + address(c).encode(), IDENTITY)
            txn.put(b"s" + address(c).encode(), RECORD)
        for i in range(messages):
            txn.put(b"p%d" % (i + 1), RECORD[:100])

    def raw_lmdb() -> None:
        for i in range(messages):
            sender = address(i % senders).encode()
            with env.begin() as txn:
                txn.get(b"i" + sender)
            with env.begin() as txn:
                session = txn.get(b"s" + sender)
            with env.begin(write=True) as txn:
                txn.put(b"s" + sender, session)
            with env.begin(write=True) as txn:
                txn.delete(b"p%d" % (i + 1))

    try:
        return await timed(workload, "raw py-lmdb", messages, plain(raw_lmdb, thread=thread))
    finally:
        env.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p99 and p99.9 of ``samples`` (seconds), in microseconds."""
    ordered = sorted(samples)
    last = len(ordered) - 1
    return {
        name: ordered[min(last, int(q * len(ordered)))] * 1e6
        for name, q in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999))
    }


async def write_latency(tmp: Path, n: int, pair: tuple[str, str, str]) -> list[Row]:
    """The latency of one awaited ``put_session`` (sequential), as percentiles; the floor
    times one raw put-and-commit the same way."""
    label, durability, synchronous = pair
    ours, theirs = await open_pair(tmp, f"lat-{durability}", durability, synchronous)
    env = raw_env(tmp / f"lat-{durability}-raw.lmdb", durability)

    async def sample(put: Callable[[int], Awaitable[None]]) -> dict[str, float]:
        samples = []
        for i in range(n):
            start = time.perf_counter()
            await put(i)
            samples.append(time.perf_counter() - start)
        return percentiles(samples)

    async def raw_put(i: int) -> None:
        with env.begin(write=True) as txn:
            txn.put(address(i).encode(), RECORD)

    measured = {
        "LmdbStore": await sample(lambda i: ours.put_session(address(i), RECORD)),
        "SqliteStore": await sample(lambda i: theirs.put_session(address(i), RECORD)),
        "raw py-lmdb": await sample(raw_put),
    }
    await ours.close()
    await theirs.close()
    env.close()
    return [
        Row(f"put_session latency {name}, {label}", engine, values[name], "us")
        for name in ("p50", "p99", "p99.9")
        for engine, values in measured.items()
    ]


async def in_parallel(tasks: int, n: int, job: Callable[[int], Awaitable[object]]) -> None:
    """``job(i)`` for i in range(n), spread over ``tasks`` concurrent tasks."""

    async def worker(w: int) -> None:
        for i in range(w, n, tasks):
            await job(i)

    async with anyio.create_task_group() as tg:
        for w in range(tasks):
            tg.start_soon(worker, w)


async def on_both(
    workload: str, ops: int, ours: Any, theirs: Any, run: Callable[[Any], Awaitable[None]]
) -> list[Row]:
    """The rates of ``run(store)`` on LmdbStore, then on SqliteStore; both closed after."""
    try:
        return [
            await timed(workload, "LmdbStore", ops, lambda: run(ours)),
            await timed(workload, "SqliteStore", ops, lambda: run(theirs)),
        ]
    finally:
        await ours.close()
        await theirs.close()


async def concurrent_writes(tmp: Path, n: int, pair: tuple[str, str, str]) -> list[Row]:
    label, durability, synchronous = pair
    workload = f"64 concurrent writers, {label}"
    ours, theirs = await open_pair(tmp, f"conc-{durability}", durability, synchronous)

    async def run(store: Any) -> None:
        await in_parallel(64, n, lambda i: store.put_session(address(i), RECORD))

    return await on_both(workload, n, ours, theirs, run)


async def decrypt_mix(tmp: Path, messages: int, pair: tuple[str, str, str]) -> list[Row]:
    """Per message: load the sender's identity, get the session, save the advanced session;
    64 chats at once. Ops are messages."""
    label, durability, synchronous = pair
    workload = f"decrypt mix, 64 chats, {label}"
    ours, theirs = await open_pair(tmp, f"mix-{durability}", durability, synchronous)
    chats = 64
    for store in (ours, theirs):
        await seed_senders(store, chats)

    async def run(store: Any) -> None:
        async def message(i: int) -> None:
            sender = address(i % chats)
            await store.load_identity(sender)
            session = await store.get_session(sender)
            await store.put_session(sender, session)

        await in_parallel(chats, messages, message)

    return await on_both(workload, messages, ours, theirs, run)


async def prekey_batches(tmp: Path, batches: int, pair: tuple[str, str, str]) -> list[Row]:
    """Upload-time pre-key generation: store_prekeys_batch of 812 keys. Ops are batches."""
    label, durability, synchronous = pair
    workload = f"pre-key batch of 812, {label}"
    ours, theirs = await open_pair(tmp, f"prekeys-{durability}", durability, synchronous)
    prekey = bytes(100)

    async def run(store: Any) -> None:
        for b in range(batches):
            await store.store_prekeys_batch([(b * 812 + i + 1, prekey) for i in range(812)])

    return await on_both(workload, batches, ours, theirs, run)


# -- expiry ------------------------------------------------------------------------------


async def fill_sent_messages(store: Any, ids: range, at: int) -> None:
    """Setup only: many sent messages stored at time ``at``, in one transaction, through
    each store's internal write path (the public one stamps the current time)."""
    payload = RECORD[:100]
    records = store._records("sent_message")
    pairs = [
        pair
        for i in ids
        for pair in records.items((b"chat@g.us", f"{i:08d}".encode()), (payload, at))
    ]
    await store._write(lambda view: view.put_many("protocol", pairs))


EXPIRED_AT, CUTOFF, KEPT_AT = 1_000, 1_500, 2_000
"""The times of the sent messages that expiry deletes, of its cutoff, and of the others."""


async def fill_expiring(store: Any, stored: int, expired: int) -> None:
    """Setup only: ``stored`` sent messages, the first ``expired`` of them older than
    `CUTOFF`, in transactions of 50,000."""
    for first in range(0, stored, 50_000):
        last = min(stored, first + 50_000)
        await fill_sent_messages(store, range(first, min(last, expired)), EXPIRED_AT)
        await fill_sent_messages(store, range(max(first, expired), last), KEPT_AT)


EXPIRY_ROUNDS = 5
"""Expiries timed per engine (the best is kept): one takes a few milliseconds, so a single
one swung 0.7-2.6x between runs of this machine."""


async def expiry(tmp: Path, stored: int, expired: int) -> list[Row]:
    """Delete the ``expired`` oldest of ``stored`` sent messages (one call), best of
    `EXPIRY_ROUNDS`, the engines taking turns as in `interleaved`; between rounds the
    expired messages are stored again (not timed). Its cost must follow what it deletes,
    not what is stored."""
    workload = f"expire {expired:,} of {stored:,} sent messages"
    ours, theirs = await open_pair(tmp, f"expiry-{stored}", "normal", "NORMAL")
    stores = {"LmdbStore": ours, "SqliteStore": theirs}
    best = dict.fromkeys(stores, float("inf"))
    for store in stores.values():
        await fill_expiring(store, stored, expired)
    for round_ in range(EXPIRY_ROUNDS):
        for engine, store in stores.items():
            if round_:
                await fill_sent_messages(store, range(expired), EXPIRED_AT)
            start = time.perf_counter()
            deleted = await store.delete_expired_sent_messages(CUTOFF)
            best[engine] = min(best[engine], time.perf_counter() - start)
            assert deleted == expired, (engine, deleted)
    await ours.close()
    await theirs.close()
    return [Row(workload, engine, best[engine] * 1000, "ms") for engine in stores]


# -- open time and size ------------------------------------------------------------------


def bytes_on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir())
    return sum(
        os.path.getsize(f"{path}{suffix}")
        for suffix in ("", "-wal", "-shm")
        if os.path.exists(f"{path}{suffix}")
    )


async def open_and_size(tmp: Path, sessions: int) -> list[Row]:
    """Open a store holding ``sessions`` sessions and read one; and its bytes on disk."""
    rows = []
    for engine, cls, name in (
        ("LmdbStore", LmdbStore, "size.lmdb"),
        ("SqliteStore", SqliteStore, "size.sqlite"),
    ):
        path = tmp / name
        async with await cls.open(path) as store:
            await fill_sessions(store, sessions)
        start = time.perf_counter()
        async with await cls.open(path) as store:
            await store.get_session(address(sessions // 2))
        ms = (time.perf_counter() - start) * 1000
        rows.append(Row(f"open + first read, {sessions:,} sessions", engine, ms, "ms"))
        megabytes = bytes_on_disk(path) / 1e6
        rows.append(Row(f"bytes on disk, {sessions:,} sessions", engine, megabytes, "MB"))
    return rows


# -- cache stores ------------------------------------------------------------------------


async def cache_stores(tmp: Path, n: int) -> list[Row]:
    """get and set throughput of the three cache stores (64 concurrent setters, then
    sequential gets of hot keys). Redis runs when a redis-server binary is installed: a
    server is started on loopback for the run."""
    from lmdbstore import LmdbCacheStore, MemoryCacheStore, RedisCacheStore
    from lmdbstore.testing.redis_server import running_redis

    rows: list[Row] = []
    value = RECORD[:200]
    lmdb_store = await LmdbStore.open(tmp / "cache.lmdb")
    with running_redis() as url:
        stores: list[tuple[str, Any]] = [
            ("MemoryCacheStore", MemoryCacheStore(max_entries=n * 2)),
            ("LmdbCacheStore", LmdbCacheStore(lmdb_store)),
        ]
        if url is not None:
            stores.append(("RedisCacheStore", RedisCacheStore.from_url(url)))
        for engine, store in stores:

            async def sets(store: Any = store) -> None:
                await in_parallel(64, n, lambda i: store.set("group", f"g{i}", value, 3600))

            async def gets(store: Any = store) -> None:
                for i in range(n):
                    await store.get("group", f"g{i}")

            rows.append(await timed("cache set, 64 concurrent", engine, n, sets))
            rows.append(await timed("cache get, sequential", engine, n, gets, rounds=3))
            if engine == "RedisCacheStore":
                await store.close()
    await lmdb_store.close()
    return rows
