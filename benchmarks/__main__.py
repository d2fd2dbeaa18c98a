"""Run the benchmarks: ``python -m benchmarks [--quick] [--json FILE]``.

Every workload runs in this one process against lmdbstore's public async API and against the
floors of the raw engines: py-lmdb (one transaction per operation) and the stdlib sqlite3
module (WAL, the synchronous level that matches the durability). The table reports
operations per second and the ratio of LmdbStore to SQLite. Nothing is asserted: the
figures are for reading, and ``--quick`` only checks that every workload runs.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from lmdbstore import LmdbStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

RECORD = bytes(600)  # a typical Signal session record is a few hundred bytes


@dataclass
class Row:
    workload: str
    engine: str
    ops: int
    seconds: float

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds


def address(i: int) -> str:
    return f"{1000000 + i}:1@s.whatsapp.net"


def sqlite_connect(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS sessions (device_id INTEGER, address TEXT, record BLOB,"
        " PRIMARY KEY (device_id, address)) WITHOUT ROWID"
    )
    return db


def sqlite_put(db: sqlite3.Connection, i: int) -> None:
    db.execute(
        "INSERT INTO sessions VALUES (1, ?, ?) ON CONFLICT DO UPDATE SET record=excluded.record",
        (address(i), RECORD),
    )


async def timed(name: str, engine: str, ops: int, run: Callable[[], Awaitable[None]]) -> Row:
    start = time.perf_counter()
    await run()
    return Row(name, engine, ops, time.perf_counter() - start)


async def bench_point_reads(tmp: Path, n: int, stored: int) -> list[Row]:
    wanted = [random.randrange(stored) for _ in range(n)]
    store = await LmdbStore.open(tmp / "reads.lmdb")
    await store.put_sessions_batch([(address(i), RECORD) for i in range(stored)])
    db = sqlite_connect(tmp / "reads.sqlite", "NORMAL")
    db.execute("BEGIN")
    for i in range(stored):
        sqlite_put(db, i)
    db.execute("COMMIT")
    env = store._engine.env
    table = store._engine.dbs["signal"]
    raw_keys = [store._key(2, address(i).encode() + b"\x00") for i in wanted]

    async def ours() -> None:
        for i in wanted:
            await store.get_session(address(i))

    async def raw_lmdb() -> None:
        for key in raw_keys:
            with env.begin(db=table) as txn:
                txn.get(key)

    async def raw_sqlite() -> None:
        for i in wanted:
            db.execute(
                "SELECT record FROM sessions WHERE device_id=1 AND address=?", (address(i),)
            ).fetchone()

    rows = [
        await timed("point reads (hot)", "LmdbStore", n, ours),
        await timed("point reads (hot)", "raw py-lmdb", n, raw_lmdb),
        await timed("point reads (hot)", "raw sqlite3", n, raw_sqlite),
    ]
    await store.close()
    db.close()
    return rows


async def bench_writes(tmp: Path, n: int, writers: int, durability: str) -> list[Row]:
    synchronous = "FULL" if durability == "full" else "NORMAL"
    store = await LmdbStore.open(tmp / f"w-{durability}.lmdb", durability=durability)  # type: ignore[arg-type]
    db = sqlite_connect(tmp / f"w-{durability}.sqlite", synchronous)
    lock = threading.Lock()

    def sqlite_write(i: int) -> None:
        with lock:
            sqlite_put(db, i)

    async def ours_sequential() -> None:
        for i in range(n):
            await store.put_session(address(i), RECORD)

    async def sqlite_sequential() -> None:
        for i in range(n):
            sqlite_put(db, i)

    async def concurrently(write: Callable[[int], Awaitable[object]]) -> None:
        async def writer(w: int) -> None:
            for i in range(w, n, writers):
                await write(i)

        async with anyio.create_task_group() as tg:
            for w in range(writers):
                tg.start_soon(writer, w)

    async def ours_concurrent() -> None:
        await concurrently(lambda i: store.put_session(address(i), RECORD))

    async def sqlite_concurrent() -> None:
        await concurrently(lambda i: anyio.to_thread.run_sync(sqlite_write, i))

    label = f"{durability} vs sqlite {synchronous}"
    rows = [
        await timed(f"sequential writes, {label}", "LmdbStore", n, ours_sequential),
        await timed(f"sequential writes, {label}", "raw sqlite3", n, sqlite_sequential),
        await timed(f"{writers} concurrent writers, {label}", "LmdbStore", n, ours_concurrent),
        await timed(
            f"{writers} concurrent writers, {label}",
            "raw sqlite3 (thread hop)",
            n,
            sqlite_concurrent,
        ),
    ]
    await store.close()
    db.close()
    return rows


async def bench_expiry(tmp: Path, stored: int, expired: int) -> list[Row]:
    """Delete the ``expired`` oldest of ``stored`` sent messages: the walk of the time index
    must cost what it deletes, whatever is stored."""
    from lmdbstore.keys import ProtocolTag
    from lmdbstore.lmdb_store.protocol import _TimedTable

    store = await LmdbStore.open(tmp / f"expiry-{stored}.lmdb", durability="process")
    table = _TimedTable(store._dev, ProtocolTag.SENT_MESSAGE, ProtocolTag.SENT_MESSAGE_BY_TIME)
    chunk = 50_000
    for first in range(0, stored, chunk):
        rows_ = [
            (table.key([b"chat@g.us", f"{i:08d}".encode()]), i < expired)
            for i in range(first, min(stored, first + chunk))
        ]

        def fill(view, rows_=rows_):  # setup only: many puts in one commit
            for key, old in rows_:
                table.put(view, key, RECORD[:100], 1_000 if old else 2_000)

        await store._write(fill)
    start = time.perf_counter()
    deleted = await store.delete_expired_sent_messages(1_500)
    seconds = time.perf_counter() - start
    assert deleted == expired
    await store.close()
    return [Row(f"expire {expired:,} of {stored:,} sent messages", "LmdbStore", deleted, seconds)]


def print_table(rows: list[Row]) -> None:
    print(f"{'workload':<46} {'engine':<26} {'ops/s':>12} {'x sqlite':>9} {'seconds':>9}")
    baseline: dict[str, float] = {}
    for row in rows:
        if "sqlite" in row.engine:
            baseline[row.workload] = row.ops_per_second
    for row in rows:
        base = baseline.get(row.workload)
        ratio = f"{row.ops_per_second / base:8.2f}x" if base else ""
        print(
            f"{row.workload:<46} {row.engine:<26} {row.ops_per_second:>12,.0f} {ratio:>9}"
            f" {row.seconds:>9.4f}"
        )


async def main_async(quick: bool) -> list[Row]:
    scale = 10 if quick else 1
    with tempfile.TemporaryDirectory(prefix="lmdbstore-bench-") as directory:
        tmp = Path(directory)
        rows = await bench_point_reads(tmp, 200_000 // scale, 10_000)
        for durability in ("normal", "full", "process"):
            rows += await bench_writes(tmp, 4_000 // scale, 64, durability)
        big = 1_000_000 // scale
        for stored, expired in ((big, big // 100), (10_000, 100), (big, 100)):
            rows += await bench_expiry(tmp, stored, expired)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    rows = anyio.run(main_async, args.quick)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2))


if __name__ == "__main__":
    main()
