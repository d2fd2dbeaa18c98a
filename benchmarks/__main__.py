"""Run the benchmarks: ``python -m benchmarks [--quick] [--json FILE] [--chart FILE]``
(``--scale``: costs against store size instead, `benchmarks.scale`).

Every workload runs in this one process, LmdbStore and SqliteStore through the same public
async API (and, in the rows marked "blocking API", through `lmdbstore.sync` from a thread
with no event loop), with the raw engines' floors where they say something: py-lmdb (one
transaction per operation) and stdlib sqlite3 (WAL, the matching synchronous level). Each
store pair runs at the default durability against SQLite NORMAL and at ``full`` against
SQLite FULL. The table gives ops/s (or ms, MB) and LmdbStore's advantage. Nothing is
asserted; ``--quick`` is a small smoke run.

Each workload's rows are printed as soon as it is measured (on a terminal, a progress line
names the one running). A workload that fails is reported in its row, the others still
run, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from benchmarks import blocking, encryption, loop_lag, peers, report, scale, workloads
from benchmarks import postgres as pg
from benchmarks.workloads import PAIRS, Row

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    Job = tuple[str, Callable[[Path], Awaitable[list[Row]]]]


def jobs(quick: bool, postgres: bool = False) -> list[Job]:
    """Every workload, named, in the order it runs; each takes the scratch directory.
    ``postgres``: the PostgreSQL workloads too (`benchmarks.postgres`)."""
    scale = 20 if quick else 1
    planned: list[Job] = [
        ("point reads", lambda tmp: workloads.point_reads(tmp, 200_000 // scale, 10_000)),
        (
            "point reads, blocking API",
            lambda tmp: blocking.point_reads(tmp, 200_000 // scale, 10_000),
        ),
        (
            "sequential writes, blocking API",
            lambda tmp: blocking.sequential_writes(tmp, 3_000 // scale),
        ),
        (
            "sequential decrypt loop, blocking API",
            lambda tmp: blocking.decrypt_loop(tmp, 2_000 // scale),
        ),
        (
            "sustained writes, blocking API",
            lambda tmp: blocking.sustained_writes(tmp, 200_000 // scale, 10_000 // scale),
        ),
    ]
    for pair in PAIRS:
        planned += [
            (
                f"sequential writes, {pair[0]}",
                lambda tmp, p=pair: workloads.sequential_writes(tmp, 3_000 // scale, p),
            ),
            (
                f"sequential decrypt loop, {pair[0]}",
                lambda tmp, p=pair: workloads.decrypt_loop(tmp, 2_000 // scale, p),
            ),
            (
                f"write latency, {pair[0]}",
                lambda tmp, p=pair: workloads.write_latency(tmp, 5_000 // scale, p),
            ),
            (
                f"64 concurrent writers, {pair[0]}",
                lambda tmp, p=pair: workloads.concurrent_writes(tmp, 6_000 // scale, p),
            ),
            (
                f"decrypt mix, {pair[0]}",
                lambda tmp, p=pair: workloads.decrypt_mix(tmp, 4_000 // scale, p),
            ),
            (
                f"pre-key batches, {pair[0]}",
                lambda tmp, p=pair: workloads.prekey_batches(tmp, 40 // scale or 1, p),
            ),
            (
                f"decrypt transaction with the event buffer, {pair[0]}",
                lambda tmp, p=pair: peers.buffered_decrypts(tmp, 2_000 // scale, p),
            ),
        ]
    big = 1_000_000 // scale
    for stored, expired in ((big, big // 100), (big, 100), (10_000, 100)):
        planned.append(
            (
                f"expire {expired:,} of {stored:,}",
                lambda tmp, s=stored, e=expired: workloads.expiry(tmp, s, e),
            )
        )
    planned += [
        ("get_lids_for_pns", lambda tmp: peers.lids_for_pns(tmp, 200 // scale, 100_000 // scale)),
        ("delete_device", lambda tmp: peers.delete_device(tmp, 100_000 // scale)),
        ("sent messages", lambda tmp: peers.sent_messages(tmp, 20_000 // scale, None)),
        ("sent messages, capped", lambda tmp: peers.sent_messages(tmp, 20_000 // scale, 4_096)),
        ("loop lag", lambda tmp: loop_lag.loop_lag(tmp, 1_000_000 // scale)),
        ("encryption at rest", lambda tmp: encryption.all_rows(tmp, scale)),
        ("open and size", lambda tmp: workloads.open_and_size(tmp, 100_000 // scale)),
        ("cache stores", lambda tmp: workloads.cache_stores(tmp, 20_000 // scale)),
    ]
    if postgres:
        planned.append(("PostgreSQL workloads", lambda tmp: pg.all_rows(tmp, scale)))
    return planned


async def run_all(planned: list[Job], out: report.Stream) -> list[Row]:
    """Run every job in its own scratch directory, streaming its rows to ``out``."""
    rows: list[Row] = []
    for number, (title, job) in enumerate(planned, start=1):
        out.running(number, len(planned), title)
        try:
            with tempfile.TemporaryDirectory(prefix="lmdbstore-bench-") as directory:
                measured = await job(Path(directory))
        except Exception as exc:
            out.failed(title, exc)
            continue
        out.rows(measured)
        rows += measured
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write the results as JSON")
    parser.add_argument(
        "--chart", metavar="FILE", type=Path, help="write a PNG bar chart (needs matplotlib)"
    )
    parser.add_argument(
        "--only", metavar="TEXT", help="run only the workloads whose name contains TEXT"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also PostgresStore against a naive store (needs the postgres extra, and"
        " PostgreSQL installed or LMDBSTORE_BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="instead, costs against store size: 10^4 to 10^7 sessions and 1,000 accounts"
        " (benchmarks/scale.py; minutes, and up to 40 GB of disk); --chart then draws them",
    )
    args = parser.parse_args()
    every = scale.jobs(args.quick) if args.scale else jobs(args.quick, args.postgres)
    planned = [job for job in every if args.only is None or args.only in job[0]]
    if not planned:
        parser.error(f"no workload name contains {args.only!r}")
    out = report.Stream(progress=sys.stderr.isatty())
    rows = anyio.run(run_all, planned, out)
    if args.json:
        report.write_json(rows, out.failures, args.json)
    if args.scale:
        print("\n".join(scale.growth_lines(rows)))
    if args.chart:
        (scale.write_chart if args.scale else report.write_chart)(rows, args.chart)
    if out.failures:
        print(f"\n{len(out.failures)} workload(s) failed:", file=sys.stderr)
        for title, exc in out.failures:
            print(f"--- {title}", file=sys.stderr)
            traceback.print_exception(exc, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
