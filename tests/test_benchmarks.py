"""The benchmark runs green as a smoke run (``--quick``); it asserts no timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_runs_every_workload_on_every_store(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    engines: dict[str, set[str]] = {}
    for row in results["rows"]:
        engines.setdefault(row["workload"], set()).add(row["engine"])
        assert row["value"] > 0
    assert len(engines) >= 17
    for workload, seen in engines.items():
        if workload.startswith("cache"):
            assert {"MemoryCacheStore", "LmdbCacheStore"} <= seen, workload
        else:
            assert {"LmdbStore", "SqliteStore"} <= seen, workload
    assert "point reads" in done.stdout
