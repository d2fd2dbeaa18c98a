"""A transaction killed (SIGKILL) in the middle of its commit leaves all of its writes or none.

A child process commits transactions of 50 writes each, back to back, and reports each one
once its commit returned; the parent kills it at a random moment, reopens the store and
checks every transaction: all 50 records or none, and all 50 for each one reported. On
LmdbStore, SqliteStore and PostgresStore.
"""

from __future__ import annotations

import random
import textwrap

import anyio
import pytest

import lmdbstore
from lmdbstore.testing.crash import run_and_kill

pytestmark = pytest.mark.anyio

WRITES = 50

CHILD = textwrap.dedent(
    """
    import sys, anyio, lmdbstore

    store_url, first = sys.argv[1], int(sys.argv[2])

    async def main():
        store = await lmdbstore.open(store_url)
        i = first
        while True:
            async with store.transaction() as tx:
                await tx.put_sessions_batch([(f"t{i}-{j}@lid", b"x" * 300) for j in range(50)])
                await tx.put_group_metadata("last@g.us", str(i).encode())
            print(i, flush=True)
            i += 1

    anyio.run(main)
    """
)


async def test_killed_commits_are_all_or_nothing(
    store_url: str, request: pytest.FixtureRequest
) -> None:
    kills = 30 if request.config.getoption("--run-slow") else 3
    first = 0
    for _ in range(kills):
        lines = await anyio.to_thread.run_sync(
            run_and_kill, CHILD, [store_url, str(first)], random.uniform(0.0, 0.2)
        )
        acked = [int(line) for line in lines]
        async with await lmdbstore.open(store_url) as store:
            for i in range(first, acked[-1] + 3):
                names = [f"t{i}-{j}@lid" for j in range(WRITES)]
                found = len(await store.get_sessions_batch(names))
                assert found in (0, WRITES), f"transaction {i}: {found} of {WRITES} writes"
                if i in acked:
                    assert found == WRITES, f"acknowledged transaction {i} is missing"
                if found:
                    first = i + 1
            last = await store.get_group_metadata("last@g.us")
            assert last == str(first - 1).encode()
