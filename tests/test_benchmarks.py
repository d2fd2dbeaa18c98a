"""The benchmark runs green as a smoke run (``--quick``); it asserts no timing."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def engines_by_workload(results: dict[str, Any]) -> dict[str, set[str]]:
    """The engines measured on each workload of a ``--json`` file (each value positive)."""
    engines: dict[str, set[str]] = {}
    for row in results["rows"]:
        engines.setdefault(row["workload"], set()).add(row["engine"])
        assert row["value"] > 0
    return engines


def quick_run(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks --quick ARGS`` from the project's root; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_quick_benchmark_runs_every_workload_on_every_store(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = quick_run("--json", str(out))
    engines = engines_by_workload(json.loads(out.read_text()))
    assert len(engines) >= 17
    for workload, seen in engines.items():
        if workload.startswith("cache"):
            assert {"MemoryCacheStore", "LmdbCacheStore"} <= seen, workload
        else:
            assert {"LmdbStore", "SqliteStore"} <= seen, workload
    assert "point reads" in done.stdout
    assert "FAILED" not in done.stdout


def test_quick_scale_run_measures_each_size_and_the_accounts_and_draws_its_chart(
    tmp_path: Path,
) -> None:
    out, chart = tmp_path / "scale.json", tmp_path / "scale.png"
    # The chart needs matplotlib, of the bench extra, which the test venv may lack.
    drawn = importlib.util.find_spec("matplotlib") is not None
    done = quick_run("--scale", "--json", str(out), *(["--chart", str(chart)] if drawn else []))
    engines = engines_by_workload(json.loads(out.read_text()))
    for size in ("1,000", "10,000"):
        for what in (
            "point read p50",
            "first point read since open p50",
            "64 concurrent writers",
            "expire 1%",
            "bytes on disk",
        ):
            measured = [w for w in engines if w.startswith(f"scale, {size} sessions: {what}")]
            assert measured, (size, what)
            assert all(engines[w] == {"LmdbStore", "SqliteStore"} for w in measured)
    assert any("accounts in one store: worst account's p99" in w for w in engines)
    assert "64 concurrent writers: x" in done.stdout  # the growth from size to size
    if drawn:
        assert chart.read_bytes().startswith(b"\x89PNG")


@pytest.mark.anyio
async def test_a_failing_workload_is_reported_in_its_row_and_the_others_still_run() -> None:
    from benchmarks.__main__ import run_all
    from benchmarks.report import Stream
    from benchmarks.workloads import Row

    async def fine(_tmp: Path) -> list[Row]:
        return [Row("fine workload", "LmdbStore", 10.0), Row("fine workload", "SqliteStore", 5.0)]

    async def broken(_tmp: Path) -> list[Row]:
        raise RuntimeError("disk on fire")

    out, err = io.StringIO(), io.StringIO()
    stream = Stream(progress=True, out=out, err=err)
    rows = await run_all([("first", fine), ("broken one", broken), ("last", fine)], stream)
    lines = out.getvalue().splitlines()
    assert [r.workload for r in rows] == ["fine workload"] * 4
    assert lines[0].startswith("# ")  # the header is printed before anything runs
    failed = [line for line in lines if "broken one" in line]
    assert failed == [f"{'broken one':<50} FAILED (RuntimeError: disk on fire)"]
    assert lines.index(failed[0]) < max(i for i, line in enumerate(lines) if "2.00x" in line)
    assert [title for title, _ in stream.failures] == ["broken one"]
    assert "[3/3] last" in err.getvalue()  # the progress line names each workload


def test_the_benchmark_and_the_package_import_without_the_test_dependencies() -> None:
    """What the first command of the README installs (the ``bench`` extra) runs the
    benchmark: nothing it imports may need pytest, hypothesis or trio, nor psycopg (the
    ``postgres`` extra: only the PostgreSQL modules import it)."""
    script = """
import importlib, pkgutil, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pytest", "_pytest", "hypothesis", "trio", "psycopg"):
            raise ImportError(f"{name} is a test dependency")

sys.meta_path.insert(0, Blocked())
import lmdbstore
suites = {"appsync", "cache", "lease", "peers", "protocol", "signal", "transaction", "raw_fuzz"}
postgres = {"postgres_store", "postgres"}
for module in pkgutil.walk_packages(lmdbstore.__path__, "lmdbstore."):
    parts = module.name.split(".")
    if parts[-1] == "__main__" or (parts[1] == "testing" and parts[-1] in suites):
        continue
    if postgres & set(parts):
        continue
    importlib.import_module(module.name)
import benchmarks.__main__, benchmarks.workloads, lmdbstore.cli.main
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def run_postgres_rows(url: str, out: Path) -> subprocess.CompletedProcess[str]:
    command = ["--quick", "--postgres", "--only", "PostgreSQL", "--json", str(out)]
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "LMDBSTORE_BENCH_POSTGRES_URL": url},
    )


def test_the_postgres_rows_run_on_a_server(postgres_url: str, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = run_postgres_rows(postgres_url, out)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    engines = engines_by_workload(results)
    assert len(engines) == 4
    for seen in engines.values():
        assert seen == {
            "PostgresStore",
            "encrypted PostgresStore",
            "naive psycopg",
            "LmdbStore",
            "SqliteStore",
        }
    assert set(results["postgres_advantage_over_naive"]) == set(engines)
    assert "x naive" in done.stdout and "enc/plain" in done.stdout


def test_the_postgres_rows_without_a_server_fail_in_their_row(tmp_path: Path) -> None:
    done = run_postgres_rows("postgresql://nobody@127.0.0.1:1/none", tmp_path / "r.json")
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("PostgreSQL workloads")
    assert "Connection refused" in failed[0]
