"""The results: a table of every workload with the ratios that matter, JSON, and a bar chart.

Ratios are LmdbStore's advantage, so >1 is better for LmdbStore whatever the unit: for ops/s
LmdbStore / other, for milliseconds and megabytes other / LmdbStore.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.workloads import Row

OTHERS = ("SqliteStore", "raw sqlite3", "raw py-lmdb")
PREFIX = "PostgreSQL: "
"""The workloads of `benchmarks.postgres` are named ``PREFIX + what``: a table of their own."""
ENCRYPTED_PREFIX = "encrypted: "
"""The workloads of `benchmarks.encryption`, named ``ENCRYPTED_PREFIX + what``: a table of
their own too."""
ENCRYPTED = "encrypted LmdbStore"
ENCRYPTED_SQLITE = "encrypted SqliteStore"
ENCRYPTION_ENGINES = (ENCRYPTED, "LmdbStore", ENCRYPTED_SQLITE, "SqliteStore")
OWN_TABLES = (PREFIX, ENCRYPTED_PREFIX)
NAIVE = "naive psycopg"
ENCRYPTED_POSTGRES = "encrypted PostgresStore"
POSTGRES_ENGINES = ("PostgresStore", ENCRYPTED_POSTGRES, NAIVE, "LmdbStore", "SqliteStore")
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
        if ours is not None and not workload.startswith(ENCRYPTED_PREFIX):
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


HEADER = (
    f"{'workload':<50} {'LmdbStore':>12} {'SqliteStore':>12} {'raw py-lmdb':>12}"
    f" {'raw sqlite3':>12} {'x Sqlite':>9} {'x raw sql':>9} {'of lmdb':>8}"
)


def table_lines(rows: list[Row]) -> list[str]:
    """One line per workload of the main table (the engines of :data:`COLUMNS`), with
    LmdbStore's advantage over SqliteStore, raw sqlite3 and raw py-lmdb."""
    lines = []
    advantages = ratios(rows)
    for workload, engines in by_workload(rows).items():
        if workload.startswith(OWN_TABLES) or not any(e in COLUMNS for e in engines):
            continue
        adv = advantages.get(workload, {})
        cells = [format_value(engines.get(e)) for e in COLUMNS]
        marks = [f"{adv[o]:.2f}x" if o in adv else "" for o in ("SqliteStore", "raw sqlite3")]
        floor = f"{adv['raw py-lmdb']:.2f}" if "raw py-lmdb" in adv else ""
        line = (
            f"{workload:<50} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12} {cells[3]:>12}"
            f" {marks[0]:>9} {marks[1]:>9} {floor:>8}"
        )
        lines.append(line.rstrip())
    return lines


def other_lines(rows: list[Row]) -> list[str]:
    """Rows of engines outside the main table (the cache stores): a header, a line each."""
    others = [r for r in rows if r.engine not in COLUMNS and not r.workload.startswith(OWN_TABLES)]
    if not others:
        return []
    lines = ["", f"{'workload':<50} {'engine':<20} {'value':>14}"]
    lines += [f"{r.workload:<50} {r.engine:<20} {format_value(r):>14}" for r in others]
    return lines


def postgres_advantage(rows: list[Row]) -> dict[str, float]:
    """PostgreSQL workload -> PostgresStore's advantage over the naive store."""
    out = {}
    for workload, engines in by_workload(rows).items():
        if workload.startswith(PREFIX) and "PostgresStore" in engines and NAIVE in engines:
            out[workload] = advantage(engines["PostgresStore"], engines[NAIVE])
    return out


def side_table(
    rows: list[Row],
    prefix: str,
    title: str,
    engines: tuple[str, ...],
    marks: dict[str, dict[str, str]],
) -> list[str]:
    """The table of the workloads named ``prefix + what``, outside the main one: a column
    of each engine's rate, then a column of each of the ``marks`` (by workload, by name:
    the ratios that matter there)."""
    table = {w: e for w, e in by_workload(rows).items() if w.startswith(prefix)}
    if not table:
        return []
    names = list(dict.fromkeys(name for found in marks.values() for name in found))
    widths = [max(12, len(engine)) for engine in engines]
    header = f"{title:<40}" + "".join(f" {e:>{w}}" for e, w in zip(engines, widths, strict=True))
    header += "".join(f" {name:>9}" for name in names)
    lines = ["", header, "-" * len(header)]
    for workload, found in table.items():
        cells = [format_value(found.get(e)) for e in engines]
        line = f"{workload[len(prefix) :]:<40}"
        line += "".join(f" {c:>{w}}" for c, w in zip(cells, widths, strict=True))
        line += "".join(f" {marks.get(workload, {}).get(name, ''):>9}" for name in names)
        lines.append(line.rstrip())
    return lines


def postgres_lines(rows: list[Row]) -> list[str]:
    """The table of the PostgreSQL workloads: ops/s of each engine, PostgresStore's
    advantage over the naive store (``x naive``), and the encrypted PostgresStore's rate
    as a fraction of the plain one's (``enc/plain``)."""
    marks: dict[str, dict[str, str]] = {
        w: {"x naive": f"{x:.2f}x"} for w, x in postgres_advantage(rows).items()
    }
    for workload, engines in by_workload(rows).items():
        if workload.startswith(PREFIX) and {"PostgresStore", ENCRYPTED_POSTGRES} <= engines.keys():
            ratio = advantage(engines[ENCRYPTED_POSTGRES], engines["PostgresStore"])
            marks.setdefault(workload, {})["enc/plain"] = f"{ratio:.2f}"
    return side_table(rows, PREFIX, "PostgreSQL workload (ops/s)", POSTGRES_ENGINES, marks)


def encryption_ratios(rows: list[Row]) -> dict[str, dict[str, float]]:
    """Encrypted workload -> the encrypted LmdbStore's rate as a fraction of plain
    LmdbStore's (``of plain``), its advantage over SqliteStore (``x SqliteStore``), and
    the encrypted SqliteStore's rate as a fraction of plain SqliteStore's (``sqlite of
    plain``)."""
    out = {}
    for workload, engines in by_workload(rows).items():
        if workload.startswith(ENCRYPTED_PREFIX) and ENCRYPTED in engines:
            ours = engines[ENCRYPTED]
            out[workload] = {
                "of plain": advantage(ours, engines["LmdbStore"]),
                "x SqliteStore": advantage(ours, engines["SqliteStore"]),
                "sqlite of plain": advantage(engines[ENCRYPTED_SQLITE], engines["SqliteStore"]),
            }
    return out


def encryption_lines(rows: list[Row]) -> list[str]:
    """The table of the encrypted workloads: ops/s of each engine, and the ratios of
    `encryption_ratios`."""
    marks = {
        workload: {
            "of plain": f"{found['of plain']:.2f}",
            "x Sqlite": f"{found['x SqliteStore']:.2f}x",
            "sq/plain": f"{found['sqlite of plain']:.2f}",
        }
        for workload, found in encryption_ratios(rows).items()
    }
    title = "encrypted workload (ops/s)"
    return side_table(rows, ENCRYPTED_PREFIX, title, ENCRYPTION_ENGINES, marks)


class Stream:
    """The table, printed as it is measured: the header at once, each workload's lines as
    soon as it is done, a failed workload as a line of its own. With ``progress`` (stderr
    is a terminal), a line on stderr names the workload running and is wiped before the
    next row."""

    def __init__(self, progress: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr):
        self._progress = progress
        self._out = out
        self._err = err
        self.failures: list[tuple[str, BaseException]] = []
        print(f"# {machine()}\n# ops/s unless a unit is given; x = LmdbStore's advantage", file=out)
        print(HEADER, file=out)
        print("-" * len(HEADER), file=out, flush=True)

    def running(self, number: int, total: int, title: str) -> None:
        if self._progress:
            self._err.write(f"\r\x1b[K[{number}/{total}] {title} ...")
            self._err.flush()

    def _wipe(self) -> None:
        if self._progress:
            self._err.write("\r\x1b[K")
            self._err.flush()

    def rows(self, rows: list[Row]) -> None:
        self._wipe()
        lines = table_lines(rows) + other_lines(rows) + postgres_lines(rows)
        for line in lines + encryption_lines(rows):
            print(line, file=self._out)
        self._out.flush()

    def failed(self, title: str, exc: BaseException) -> None:
        self._wipe()
        self.failures.append((title, exc))
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        print(f"{title:<50} FAILED ({reason})", file=self._out, flush=True)


def write_json(rows: list[Row], failures: list[tuple[str, BaseException]], path: Path) -> None:
    path.write_text(
        json.dumps(
            {
                "machine": machine(),
                "rows": [asdict(r) for r in rows],
                "advantage": ratios(rows),
                "postgres_advantage_over_naive": postgres_advantage(rows),
                "encryption": encryption_ratios(rows),
                "failed": {title: f"{type(exc).__name__}: {exc}" for title, exc in failures},
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

    advantages = {
        w: r["SqliteStore"]
        for w, r in ratios(rows).items()
        if "SqliteStore" in r and not w.startswith(PREFIX)
    }
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
