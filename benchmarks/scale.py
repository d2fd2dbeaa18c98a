"""Costs against store size: ``python -m benchmarks --scale`` (not in the default run).

Stores of 10^4 to 10^7 sessions (600 B each, as in the main benchmark), each also holding a
tenth as many sent messages; then 1,000 accounts writing at once in one store. LmdbStore at
its default durability and SqliteStore at its default (NORMAL), side by side. For each size:
point-read latency (p50, p99; the store just written, so in the page cache: the keys read
once since the open, then read again hot), sequential
and 64-concurrent ``put_session`` to random stored sessions, expiry of 1% of the records
(the oldest sent messages), open time, bytes on disk (when filled, and after those writes:
on LmdbStore the difference is pages that checkpoints kept from reuse, see the docs'
"Where the bytes go"), and the process's peak resident memory.

Each engine and size runs in a child process of its own (``python -m benchmarks.scale``),
so that the memory figure is that store's alone. LmdbStore's resident memory counts the
pages of its memory map that the process has touched: the kernel drops those at will, as
it does SQLite's file pages in the page cache (which no process's figure counts). The 10^7
store is built only where the disk has room for both engines' files; the run says when it
skips it.
"""

from __future__ import annotations

import functools
import json
import random
import re
import resource
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

import anyio

from benchmarks.report import machine
from benchmarks.workloads import (
    CUTOFF,
    RECORD,
    Row,
    address,
    bytes_on_disk,
    fill_expiring,
    fill_sessions,
    in_parallel,
    percentiles,
)
from lmdbstore import LmdbStore, SqliteStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
QUICK_SIZES = (1_000, 10_000)
ENGINES = {"LmdbStore": (LmdbStore, "scale.lmdb"), "SqliteStore": (SqliteStore, "scale.sqlite")}
BYTES_PER_SESSION = 2_000
"""Room to ask of the disk per session and engine before building a store (measured: about
1,000 bytes on either engine, the sent messages included, with room for the map's growth)."""

READS = 20_000
WRITES = 2_000
CONCURRENT = 6_400
ACCOUNTS, QUICK_ACCOUNTS = 1_000, 50
ACCOUNT_SESSIONS = 100
ACCOUNT_WRITES = 50


def label(size: int) -> str:
    return f"scale, {size:,} sessions"


def accounts_label(accounts: int) -> str:
    return f"scale, {accounts:,} accounts in one store"


async def fill(store: Any, size: int) -> None:
    """``size`` sessions, and ``size // 10`` sent messages of which the first ``size // 100``
    are older than `CUTOFF`."""
    await fill_sessions(store, size)
    await fill_expiring(store, size // 10, size // 100)


def memory_rows(workload: str, engine: str) -> list[Row]:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return [Row(f"{workload}: peak resident memory", engine, peak, "MB")]


async def measure_size(engine: str, size: int, directory: Path) -> list[Row]:
    """Every figure of one engine at one size (in a child process)."""
    cls, name = ENGINES[engine]
    path = directory / name
    workload = label(size)
    rng = random.Random(size)
    async with await cls.open(path) as store:  # type: ignore[attr-defined]
        start = time.perf_counter()
        await fill(store, size)
        filled = size / (time.perf_counter() - start)
    rows = [
        Row(f"{workload}: fill (batches of 5,000 sessions)", engine, filled),
        Row(f"{workload}: bytes on disk when filled", engine, bytes_on_disk(path) / 1e6, "MB"),
    ]

    start = time.perf_counter()
    store = await cls.open(path)  # type: ignore[attr-defined]
    try:
        await store.get_session(address(size // 2))
        opened = (time.perf_counter() - start) * 1000
        rows.append(Row(f"{workload}: open + first read", engine, opened, "ms"))

        # The same keys twice: first since the open (on LmdbStore, most reads of a large
        # store then map a page of the file into the process: a page fault), then hot.
        wanted = [address(rng.randrange(size)) for _ in range(READS)]
        for what in ("first point read since open", "point read"):
            samples = []
            for name in wanted:
                start = time.perf_counter()
                await store.get_session(name)
                samples.append(time.perf_counter() - start)
            reads = percentiles(samples)
            rows += [
                Row(f"{workload}: {what} p50", engine, reads["p50"], "us"),
                Row(f"{workload}: {what} p99", engine, reads["p99"], "us"),
            ]

        start = time.perf_counter()
        for _ in range(WRITES):
            await store.put_session(address(rng.randrange(size)), RECORD)
        rate = WRITES / (time.perf_counter() - start)
        rows.append(Row(f"{workload}: sequential put_session", engine, rate))

        targets = [address(rng.randrange(size)) for _ in range(CONCURRENT)]
        start = time.perf_counter()
        await in_parallel(64, CONCURRENT, lambda i: store.put_session(targets[i], RECORD))
        rate = CONCURRENT / (time.perf_counter() - start)
        rows.append(Row(f"{workload}: 64 concurrent writers", engine, rate))

        start = time.perf_counter()
        deleted = await store.delete_expired_sent_messages(CUTOFF)
        ms = (time.perf_counter() - start) * 1000
        assert deleted == size // 100, (engine, size, deleted)
        rows.append(Row(f"{workload}: expire 1% ({deleted:,} sent messages)", engine, ms, "ms"))
    finally:
        await store.close()
    written = bytes_on_disk(path) / 1e6
    rows.append(Row(f"{workload}: bytes on disk after the writes", engine, written, "MB"))
    return rows + memory_rows(workload, engine)


async def measure_accounts(engine: str, accounts: int, directory: Path) -> list[Row]:
    """``accounts`` accounts (devices) in one store, each a handle of its own with
    `ACCOUNT_SESSIONS` sessions, all writing at once: `ACCOUNT_WRITES` awaited
    ``put_session`` each. Fairness is the worst account's p99 latency over the median
    account's."""
    cls, name = ENGINES[engine]
    workload = accounts_label(accounts)
    async with await cls.open(directory / name) as store:  # type: ignore[attr-defined]
        handles = [store.for_device(device) for device in range(1, accounts + 1)]
        try:
            for handle in handles:
                await fill_sessions(handle, ACCOUNT_SESSIONS)
            latencies: list[list[float]] = [[] for _ in handles]

            async def account(n: int) -> None:
                rng = random.Random(n)
                for _ in range(ACCOUNT_WRITES):
                    wanted = address(rng.randrange(ACCOUNT_SESSIONS))
                    start = time.perf_counter()
                    await handles[n].put_session(wanted, RECORD)
                    latencies[n].append(time.perf_counter() - start)

            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for n in range(accounts):
                    tg.start_soon(account, n)
            rate = accounts * ACCOUNT_WRITES / (time.perf_counter() - start)
        finally:
            for handle in handles:
                await handle.close()
    p99s = [percentiles(samples)["p99"] / 1000 for samples in latencies]
    typical = median(p99s)
    return [
        Row(f"{workload}: {accounts:,} concurrent writers", engine, rate),
        Row(f"{workload}: median account's p99 write latency", engine, typical, "ms"),
        Row(f"{workload}: worst account's p99 / median's", engine, max(p99s) / typical, "x"),
        *memory_rows(workload, engine),
    ]


async def in_children(what: str, directory: Path) -> list[Row]:
    """The rows of ``what`` (a size, or ``accounts:N``) for each engine, each measured by a
    child process in a scratch directory of its own."""
    rows: list[Row] = []
    for engine in ENGINES:
        scratch = directory / engine
        scratch.mkdir()
        done = await anyio.run_process(
            [sys.executable, "-m", "benchmarks.scale", engine, what, str(scratch)],
            check=False,
            stderr=None,  # the child's traceback, if any, goes to our stderr
        )
        if done.returncode != 0:
            raise RuntimeError(f"{engine} at {what}: the child exited {done.returncode}")
        rows += [Row(**row) for row in json.loads(done.stdout)]
        shutil.rmtree(scratch)
    return rows


async def size_rows(size: int, directory: Path) -> list[Row]:
    """`in_children` for ``size``, unless the disk lacks room for it (then no rows, and a
    note on stderr)."""
    needed = 2 * size * BYTES_PER_SESSION
    free = shutil.disk_usage(directory).free
    if free < needed:
        print(
            f"# {label(size)}: skipped, {free / 1e9:.0f} GB free of the {needed / 1e9:.0f} GB"
            " it needs",
            file=sys.stderr,
        )
        return []
    return await in_children(str(size), directory)


def child_main(engine: str, what: str, directory: str) -> None:
    if what.startswith("accounts:"):
        accounts = int(what.removeprefix("accounts:"))
        rows = anyio.run(measure_accounts, engine, accounts, Path(directory))
    else:
        rows = anyio.run(measure_size, engine, int(what), Path(directory))
    print(json.dumps([asdict(row) for row in rows]))


def jobs(quick: bool) -> list[tuple[str, Callable[[Path], Awaitable[list[Row]]]]]:
    """The scale run's workloads, as `benchmarks.__main__.jobs` gives the default run's."""
    planned: list[tuple[str, Callable[[Path], Awaitable[list[Row]]]]] = [
        (label(size), functools.partial(size_rows, size))
        for size in (QUICK_SIZES if quick else SIZES)
    ]
    accounts = QUICK_ACCOUNTS if quick else ACCOUNTS
    planned.append(
        (accounts_label(accounts), functools.partial(in_children, f"accounts:{accounts}"))
    )
    return planned


def series(rows: list[Row], what: str, engine: str) -> dict[int, float]:
    """Size -> value of ``engine``'s rows of one measure (``what``: how its name after the
    size begins)."""
    found = {}
    for row in rows:
        parsed = re.fullmatch(r"scale, ([\d,]+) sessions: (.*)", row.workload)
        if row.engine == engine and parsed and parsed[2].startswith(what):
            found[int(parsed[1].replace(",", ""))] = row.value
    return found


def growth_lines(rows: list[Row]) -> list[str]:
    """How point-read p50 (hot, and first since the open) and 64-concurrent write
    throughput move from the smallest size measured to the largest, per engine."""
    lines = []
    for what in ("point read p50", "first point read since open p50", "64 concurrent writers"):
        for engine in ENGINES:
            by_size = series(rows, what, engine)
            if len(by_size) > 1:
                low, high = min(by_size), max(by_size)
                lines.append(
                    f"# {engine}, {what}: x{by_size[high] / by_size[low]:.2f}"
                    f" from {low:,} to {high:,} sessions"
                )
    return lines


CHART_PANELS = (
    ("point read p50", "µs"),
    ("point read p99", "µs"),
    ("64 concurrent writers", "put_session/s"),
    ("expire 1%", "ms"),
    ("bytes on disk when filled", "bytes per session"),
)


def write_chart(rows: list[Row], path: Path) -> None:
    """Cost against size (log scales), LmdbStore and SqliteStore: each of `CHART_PANELS`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CHART_PANELS), figsize=(4 * len(CHART_PANELS), 3.6))
    for ax, (what, unit) in zip(axes, CHART_PANELS, strict=True):
        for engine, colour in (("LmdbStore", "#2a7"), ("SqliteStore", "#c44")):
            by_size = series(rows, what, engine)
            if what.startswith("bytes"):  # MB -> bytes per session
                by_size = {size: mb * 1e6 / size for size, mb in by_size.items()}
            sizes = sorted(by_size)
            ax.plot(sizes, [by_size[n] for n in sizes], marker="o", color=colour, label=engine)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(what, fontsize=10)
        ax.set_xlabel("sessions stored")
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
    fig.suptitle(machine(), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    child_main(*sys.argv[1:])
