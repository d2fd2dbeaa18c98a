"""Run the benchmarks: ``python -m benchmarks [--quick] [--json FILE] [--chart FILE]``.

Every workload runs in this one process, LmdbStore and SqliteStore through the same public
async API, with the raw engines' floors where they say something: py-lmdb (one transaction
per operation) and stdlib sqlite3 (WAL, the matching synchronous level). Each store pair runs
at the default durability against SQLite NORMAL and at ``full`` against SQLite FULL. The
table gives ops/s (or ms, MB) and LmdbStore's advantage. Nothing is asserted; ``--quick``
is a small smoke run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import anyio

from benchmarks import report, workloads
from benchmarks.workloads import PAIRS, PROCESS_PAIR, Row


async def run_all(quick: bool) -> list[Row]:
    scale = 20 if quick else 1
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="lmdbstore-bench-") as directory:
        tmp = Path(directory)
        rows += await workloads.point_reads(tmp, 200_000 // scale, 10_000)
        for pair in (*PAIRS, PROCESS_PAIR):
            rows += await workloads.sequential_writes(tmp, 3_000 // scale, pair)
        for pair in PAIRS:
            rows += await workloads.concurrent_writes(tmp, 6_000 // scale, pair)
            rows += await workloads.decrypt_mix(tmp, 4_000 // scale, pair)
            rows += await workloads.prekey_batches(tmp, 40 // scale or 1, pair)
        big = 1_000_000 // scale
        for stored, expired in ((big, big // 100), (big, 100), (10_000, 100)):
            rows += await workloads.expiry(tmp, stored, expired)
        rows += await workloads.open_and_size(tmp, 100_000 // scale)
        rows += await workloads.cache_stores(tmp, 20_000 // scale)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write the results as JSON")
    parser.add_argument(
        "--chart", metavar="FILE", type=Path, help="write a PNG bar chart (needs matplotlib)"
    )
    args = parser.parse_args()
    rows = anyio.run(run_all, args.quick)
    report.print_table(rows)
    report.print_other_rows(rows)
    if args.json:
        report.write_json(rows, args.json)
    if args.chart:
        report.write_chart(rows, args.chart)


if __name__ == "__main__":
    main()
