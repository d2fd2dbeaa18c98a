"""The blocking API's workloads (`lmdbstore.sync`): SyncLmdbStore against SyncSqliteStore
and the raw floors, on the path a synchronous Signal library lives on. Each store is used
from one thread with no event loop, as such a library would; only the timed loops run
there, as plain calls. The raw floors run on a worker thread too (`plain`)."""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from benchmarks.workloads import (
    DECRYPT_SENDERS,
    IDENTITY,
    RECORD,
    Row,
    address,
    bytes_on_disk,
    interleaved,
    plain,
    raw_decrypt_floor,
    raw_read_runs,
    raw_write_floors,
    timed,
)
from lmdbstore import sync
from lmdbstore.keys import SignalTag

if TYPE_CHECKING:
    from collections.abc import Callable


async def open_pair(tmp: Path, name: str, durability: str, synchronous: str) -> tuple[Any, Any]:
    ours = await anyio.to_thread.run_sync(
        lambda: sync.SyncLmdbStore.open(tmp / f"{name}.lmdb", durability=durability)
    )
    theirs = await anyio.to_thread.run_sync(
        lambda: sync.SyncSqliteStore.open(tmp / f"{name}.sqlite", synchronous=synchronous)
    )
    return ours, theirs


async def on_a_thread(
    workload: str, ops: int, stores: tuple[Any, Any], run: Callable[[Any], None]
) -> list[Row]:
    """The rates of ``run(store)`` on SyncLmdbStore and SyncSqliteStore, each run on a
    worker thread, which has no event loop."""
    return [
        await timed(workload, engine, ops, plain(functools.partial(run, store), thread=True))
        for engine, store in zip(("LmdbStore", "SqliteStore"), stores, strict=True)
    ]


async def point_reads(tmp: Path, reads: int, stored: int) -> list[Row]:
    workload = "point reads (hot), get_session, blocking API"
    wanted = [address(random.randrange(stored)) for _ in range(reads)]
    ours, theirs = await open_pair(tmp, "b-reads", "normal", "NORMAL")
    batch = [(address(i), RECORD) for i in range(stored)]
    # The floor reads the same sub-database of the same environment, by the same keys.
    engine = ours._inner._lmdb()
    raw_keys = [ours._inner._named_key(SignalTag.SESSION, a, "address") for a in wanted]

    def run(store: Any) -> None:
        for a in wanted:
            store.get_session(a)

    try:
        for store in (ours, theirs):
            await anyio.to_thread.run_sync(store.put_sessions_batch, batch)
        with raw_read_runs(
            engine.env, engine.dbs["signal"], raw_keys, tmp / "b-reads-raw.sqlite", wanted, stored
        ) as raw:
            return await interleaved(
                workload,
                {
                    "LmdbStore": (reads, plain(functools.partial(run, ours), thread=True)),
                    "SqliteStore": (reads, plain(functools.partial(run, theirs), thread=True)),
                    **{name: (reads, plain(loop, thread=True)) for name, loop in raw.items()},
                },
                rounds=3,
            )
    finally:
        for store in (ours, theirs):
            await anyio.to_thread.run_sync(store.close)


async def sequential_writes(tmp: Path, n: int) -> list[Row]:
    workload = "sequential put_session, blocking API, normal vs NORMAL"
    ours, theirs = await open_pair(tmp, "b-seq", "normal", "NORMAL")

    def run(store: Any) -> None:
        for i in range(n):
            store.put_session(address(i), RECORD)

    try:
        return [
            *await on_a_thread(workload, n, (ours, theirs), run),
            *await raw_write_floors(tmp / "b-seq-raw", workload, n, "normal", thread=True),
        ]
    finally:
        for store in (ours, theirs):
            await anyio.to_thread.run_sync(store.close)


async def decrypt_loop(tmp: Path, messages: int) -> list[Row]:
    """`benchmarks.workloads.decrypt_loop` through the blocking API."""
    workload = "sequential decrypt loop, blocking API, normal vs NORMAL"
    ours, theirs = await open_pair(tmp, "b-loop", "normal", "NORMAL")
    senders = DECRYPT_SENDERS

    def seed(store: Any) -> None:
        store.put_identities_batch([(address(c), IDENTITY) for c in range(senders)])
        store.put_sessions_batch([(address(c), RECORD) for c in range(senders)])
        store.store_prekeys_batch([(i + 1, RECORD[:100]) for i in range(messages)])

    def run(store: Any) -> None:
        for i in range(messages):
            sender = address(i % senders)
            store.load_identity(sender)
            store.put_session(sender, store.get_session(sender))
            store.remove_prekey(i + 1)

    try:
        for store in (ours, theirs):
            await anyio.to_thread.run_sync(seed, store)
        return [
            *await on_a_thread(workload, messages, (ours, theirs), run),
            await raw_decrypt_floor(tmp / "b-loop-raw", workload, messages, "normal", thread=True),
        ]
    finally:
        for store in (ours, theirs):
            await anyio.to_thread.run_sync(store.close)


async def sustained_writes(tmp: Path, writes: int, sessions: int) -> list[Row]:
    """A writer that never pauses: ``writes`` sequential put_session calls over
    ``sessions`` sessions, then the bytes on disk (data of about 7 MB at 10,000 sessions).
    The short sequential rows measure bursts; here LmdbStore's checkpoints must keep up
    with commits that each write fresh pages (`lmdbstore.durability.MAX_PINNED_COMMITS`).
    Through the blocking API, where SqliteStore is fastest."""
    workload = "sustained put_session, blocking API"  # 200,000 over 10,000 in the full run
    ours, theirs = await open_pair(tmp, "b-sustained", "normal", "NORMAL")
    paths = {"LmdbStore": Path(ours.path), "SqliteStore": Path(theirs.path)}

    def run(store: Any) -> None:
        for i in range(writes):
            store.put_session(address(i % sessions), RECORD)

    try:
        for store in (ours, theirs):
            await anyio.to_thread.run_sync(
                store.put_sessions_batch, [(address(i), RECORD) for i in range(sessions)]
            )
        rows = await on_a_thread(workload, writes, (ours, theirs), run)
    finally:
        for store in (ours, theirs):
            await anyio.to_thread.run_sync(store.close)
    return [
        *rows,
        *(
            Row(f"{workload}: bytes on disk", engine, bytes_on_disk(path) / 1e6, "MB")
            for engine, path in paths.items()
        ),
    ]
