"""How long a store holds the event loop, on a big store: the worst lateness of a 1 ms
ticker (`lmdbstore.testing.loop_lag`) while each scenario runs, on LmdbStore and on
SqliteStore. The scenarios are the ones a bot meets that could stall its loop: a long scan
(``verify``) with a conflict, point reads and a write that must grow the map meanwhile;
batches of 100,000; scans and ``verify`` inside a transaction; a value of the largest size
accepted (8 MiB)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from benchmarks.workloads import Row, address, fill_sessions
from lmdbstore import LidPnMappingEntry, LmdbStore, SqliteStore, TransactionConflictError
from lmdbstore.testing.loop_lag import worst_lag
from lmdbstore.validate import MAX_VALUE

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

SESSION = bytes(100)
MiB = 1 << 20


async def _while_verifying(store: Any, meanwhile: Callable[[], Awaitable[None]]) -> None:
    """``meanwhile()`` once ``verify`` has started walking the store on a worker thread."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.verify)
        await anyio.sleep(0.05)
        await meanwhile()


async def _a_conflict_and_reads(store: Any) -> None:
    await store.put_session("k@lid", b"0")

    async def conflict() -> None:
        try:
            async with store.transaction() as tx:
                await tx.get_session("k@lid")
                await store.put_session("k@lid", b"1")
                await tx.put_session("k@lid", b"2")
        except TransactionConflictError:
            pass
        for i in range(10):
            await store.get_session(address(i))

    await _while_verifying(store, conflict)


async def _crowd_the_map(store: Any) -> None:
    """Fill an LmdbStore's map to within 6 MiB of its size (setup, not timed), so that
    the next 8 MiB write must grow it."""
    if not isinstance(store, LmdbStore):
        return
    filler = bytes(MAX_VALUE)
    n = 0
    while True:
        report = await store.resource_report()
        if report.map_size is None or report.map_used is None:
            return
        if report.map_size - report.map_used < 6 * MiB:
            return
        await store.put_session(f"filler-{n}@lid", filler)
        n += 1


async def _a_growing_write(store: Any, value: bytes) -> None:
    await _while_verifying(store, lambda: store.put_session("grow@lid", value))


async def loop_lag(tmp: Path, sessions: int) -> list[Row]:
    big = min(100_000, sessions)
    names = [address(i) for i in range(big)]
    batch = [(name, SESSION) for name in names]
    inbound = [("c@g.us", "s@lid", f"m{i}", SESSION) for i in range(big)]
    mappings = [LidPnMappingEntry(f"{i}@lid", f"{i}", 1, 1, "bench") for i in range(big // 2)]

    def in_a_transaction(store: Any, call: str) -> Callable[[], Awaitable[object]]:
        async def run() -> None:
            async with store.transaction() as tx:
                await getattr(tx, call)()

        return run

    label = f"loop lag, {sessions:,}"
    rows = []
    for engine, opener, path in (
        ("LmdbStore", LmdbStore.open, tmp / "lag.lmdb"),
        ("SqliteStore", SqliteStore.open, tmp / "lag.sqlite"),
    ):
        store: Any = await opener(path)  # type: ignore[operator]
        try:
            await fill_sessions(store, sessions, SESSION)
            await store.put_lid_mappings(mappings)
            await store.put_session("big@lid", bytes(MAX_VALUE))
            scenarios: list[tuple[str, Callable[[], Awaitable[object]]]] = [
                ("verify + a conflict + point reads", lambda s=store: _a_conflict_and_reads(s)),
                ("get_sessions_batch of 100,000", lambda s=store: s.get_sessions_batch(names)),
                ("put_sessions_batch of 100,000", lambda s=store: s.put_sessions_batch(batch)),
                (
                    "store_pending_inbound_batch of 100,000",
                    lambda s=store: s.store_pending_inbound_batch(inbound),
                ),
                ("in a transaction: device_ids", in_a_transaction(store, "device_ids")),
                (
                    "in a transaction: get_all_lid_mappings",
                    in_a_transaction(store, "get_all_lid_mappings"),
                ),
                ("in a transaction: verify", in_a_transaction(store, "verify")),
                ("get_session of an 8 MiB value", lambda s=store: s.get_session("big@lid")),
            ]
            for name, action in scenarios:
                lag = await worst_lag(action)
                rows.append(Row(f"{label}: {name}", engine, lag * 1000, "ms"))
            await _crowd_the_map(store)
            growing = bytes(MAX_VALUE)  # made before the ticker runs: it is not the store's
            lag = await worst_lag(lambda s=store, v=growing: _a_growing_write(s, v))
            rows.append(Row(f"{label}: verify + a write growing the map", engine, lag * 1000, "ms"))
        finally:
            await store.close()
    return rows
