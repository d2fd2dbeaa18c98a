"""Encryption at rest on the main workloads: an encrypted LmdbStore against a plain one and
against SqliteStore, and an encrypted SqliteStore against a plain one, all at the default
durability (``normal`` / ``NORMAL``), the engines taking turns round by round
(`benchmarks.workloads.interleaved`).

The targets (issue 20): encrypted point reads at least 0.5 of plain LmdbStore's and 20x
SqliteStore's; sequential and concurrent writes at least 0.7 of plain LmdbStore's.
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Any

from benchmarks.report import ENCRYPTED, ENCRYPTED_PREFIX, ENCRYPTED_SQLITE, ENCRYPTION_ENGINES
from benchmarks.workloads import (
    DECRYPT_SENDERS,
    RECORD,
    Row,
    address,
    decrypt_message,
    fill_sessions,
    in_parallel,
    interleaved,
    open_pair,
    seed_senders,
)
from lmdbstore import EncryptionKey, LmdbStore, SqliteStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

ENGINES = ENCRYPTION_ENGINES


async def _stores(tmp: Path, name: str) -> dict[str, Any]:
    """An encrypted and a plain LmdbStore and SqliteStore, by engine name."""
    plain, sqlite = await open_pair(tmp, name, "normal", "NORMAL")
    key = EncryptionKey.generate()
    return {
        ENCRYPTED: await LmdbStore.open(tmp / f"{name}-encrypted.lmdb", encryption=key),
        "LmdbStore": plain,
        ENCRYPTED_SQLITE: await SqliteStore.open(tmp / f"{name}-encrypted.db", encryption=key),
        "SqliteStore": sqlite,
    }


async def _compare(
    tmp: Path,
    what: str,
    ops: dict[str, int],
    run: Callable[[Any, int], Awaitable[None]],
    setup: Callable[[Any], Awaitable[None]] | None = None,
) -> list[Row]:
    """``run(store, ops)`` on each engine, best of three interleaved rounds; ``ops`` by
    engine (SqliteStore pays a thread hop per call: fewer)."""
    stores = await _stores(tmp, re.sub(r"\W+", "-", what))
    try:
        if setup is not None:
            for store in stores.values():
                await setup(store)
        runs = {
            engine: (ops[engine], lambda s=store, n=ops[engine]: run(s, n))
            for engine, store in stores.items()
        }
        return await interleaved(ENCRYPTED_PREFIX + what, runs, rounds=3)
    finally:
        for store in stores.values():
            await store.close()


async def point_reads(tmp: Path, reads: int, stored: int) -> list[Row]:
    async def run(store: Any, n: int) -> None:
        for i in range(n):
            await store.get_session(address(i * 7919 % stored))

    few = max(1, reads // 10)
    ops = {ENCRYPTED: reads, "LmdbStore": reads, ENCRYPTED_SQLITE: few, "SqliteStore": few}
    return await _compare(
        tmp, "point reads (hot), get_session", ops, run, lambda s: fill_sessions(s, stored)
    )


async def sequential_writes(tmp: Path, n: int, *, shuffled: bool = False) -> list[Row]:
    """One awaited ``put_session`` after another, to names in ascending order (as the main
    table's row: each commit lands on the page of the one before, which a plain store's
    keys keep and an encrypted store's hashed keys do not), or ``shuffled``: the contacts
    of a client in the order their messages come, which neither store keeps together."""
    names = [address(i) for i in range(n)]
    if shuffled:
        random.Random(7).shuffle(names)

    async def run(store: Any, count: int) -> None:
        for name in names[:count]:
            await store.put_session(name, RECORD)

    what = (
        "sequential put_session, random contacts" if shuffled else "sequential awaited put_session"
    )
    return await _compare(tmp, what, dict.fromkeys(ENGINES, n), run)


async def concurrent_writes(tmp: Path, n: int) -> list[Row]:
    async def run(store: Any, count: int) -> None:
        await in_parallel(64, count, lambda i: store.put_session(address(i), RECORD))

    return await _compare(tmp, "64 concurrent writers", dict.fromkeys(ENGINES, n), run)


async def decrypt_loop(tmp: Path, messages: int) -> list[Row]:
    async def setup(store: Any) -> None:
        await seed_senders(store, DECRYPT_SENDERS)
        await store.store_prekeys_batch([(i + 1, RECORD[:100]) for i in range(3 * messages)])

    rounds = iter(range(3 * len(ENGINES)))  # each round removes pre-keys of its own

    async def run(store: Any, count: int) -> None:
        first = next(rounds) // len(ENGINES) * count
        for i in range(first, first + count):
            await decrypt_message(store, i)

    return await _compare(
        tmp, "sequential decrypt loop", dict.fromkeys(ENGINES, messages), run, setup
    )


async def all_rows(tmp: Path, scale: int) -> list[Row]:
    """Every workload of this module (``scale``: 20 for a quick run)."""
    rows = await point_reads(tmp, 200_000 // scale, 10_000)
    rows += await sequential_writes(tmp, 3_000 // scale)
    rows += await sequential_writes(tmp, 3_000 // scale, shuffled=True)
    rows += await concurrent_writes(tmp, 6_000 // scale)
    rows += await decrypt_loop(tmp, 2_000 // scale)
    return rows
