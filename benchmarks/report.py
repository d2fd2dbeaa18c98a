"""The results: a table of every workload with the ratios that matter, JSON, and a bar chart.

Ratios are LmdbStore's advantage, so >1 is better for LmdbStore whatever the unit: for ops/s
LmdbStore / other, for milliseconds and megabytes other / LmdbStore.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.workloads import Row

OTHERS = ("SqliteStore", "raw sqlite3", "raw py-lmdb")
COLUMNS = ("LmdbStore", "SqliteStore", "raw py-lmdb", "raw sqlite3")


def by_workload(rows: list[Row]) -> dict[str, dict[str, Row]]:
    table: dict[str, dict[str, Row]] = {}
    for row in rows:
        table.setdefault(row.workload, {})[row.engine] = row
    return table


def advantage(ours: Row, other: Row) -> float:
    """How many times better LmdbStore is than ``other`` on this row's measure."""
    if ours.higher_is_better:
        return ours.value / other.value
    return other.value / ours.value


def ratios(rows: list[Row]) -> dict[str, dict[str, float]]:
    """workload -> {other engine: LmdbStore's advantage over it}."""
    out: dict[str, dict[str, float]] = {}
    for workload, engines in by_workload(rows).items():
        ours = engines.get("LmdbStore")
        if ours is not None:
            out[workload] = {
                other: advantage(ours, engines[other]) for other in OTHERS if other in engines
            }
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
        cpu = f"{len(names)} x {names[0]}" if names else cpu
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {cpu}, Python {platform.python_version()}"


def format_value(row: Row | None) -> str:
    if row is None:
        return ""
    if row.unit.endswith("/s"):
        return f"{row.value:,.0f}"
    return f"{row.value:,.2f} {row.unit}"


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'workload':<50} {'LmdbStore':>12} {'SqliteStore':>12} {'raw py-lmdb':>12}"
        f" {'raw sqlite3':>12} {'x Sqlite':>9} {'x raw sql':>9} {'of lmdb':>8}"
    )
    print(f"# {machine()}\n# ops/s unless a unit is given; x = LmdbStore's advantage")
    print(header)
    print("-" * len(header))
    advantages = ratios(rows)
    for workload, engines in by_workload(rows).items():
        if not any(e in COLUMNS for e in engines):
            continue
        adv = advantages.get(workload, {})
        cells = [format_value(engines.get(e)) for e in COLUMNS]
        marks = [f"{adv[o]:.2f}x" if o in adv else "" for o in ("SqliteStore", "raw sqlite3")]
        floor = f"{adv['raw py-lmdb']:.2f}" if "raw py-lmdb" in adv else ""
        line = (
            f"{workload:<50} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12} {cells[3]:>12}"
            f" {marks[0]:>9} {marks[1]:>9} {floor:>8}"
        )
        print(line.rstrip())


def print_other_rows(rows: list[Row]) -> None:
    """Rows of engines outside the main table (the cache stores), one line each."""
    others = [r for r in rows if r.engine not in COLUMNS]
    if not others:
        return
    print(f"\n{'workload':<50} {'engine':<20} {'value':>14}")
    for row in others:
        print(f"{row.workload:<50} {row.engine:<20} {format_value(row):>14}")


def write_json(rows: list[Row], path: Path) -> None:
    path.write_text(
        json.dumps(
            {
                "machine": machine(),
                "rows": [asdict(r) for r in rows],
                "advantage": ratios(rows),
            },
            indent=2,
        )
    )


def write_chart(rows: list[Row], path: Path) -> None:
    """A horizontal bar chart of LmdbStore's advantage over SqliteStore (log scale)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    advantages = {w: r["SqliteStore"] for w, r in ratios(rows).items() if "SqliteStore" in r}
    names = list(advantages)[::-1]
    values = [advantages[n] for n in names]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(names) + 1.2))
    bars = ax.barh(names, values, color=["#2a7" if v >= 1 else "#c44" for v in values])
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.axvline(1, color="black", linewidth=0.8)
    ax.bar_label(bars, labels=[f"{v:.1f}x" for v in values], padding=3, fontsize=8)
    ax.set_xlabel("LmdbStore's advantage over SqliteStore (x, log scale; >1 = LmdbStore better)")
    ax.set_title(machine(), fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
