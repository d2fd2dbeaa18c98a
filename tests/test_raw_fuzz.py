"""The raw-layer fuzzer (`lmdbstore.testing.raw_fuzz`) on a short budget per backend, in a
process of its own: a hang ends it through faulthandler, a crash of the engine shows as a
signal, and any exception other than an lmdbstore error is a finding that fails the test
with the seed that reproduces it. A long run before a release:
``python -m lmdbstore.testing.raw_fuzz --backend lmdb --stores 20000``."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

BUDGET_SECONDS = float(os.environ.get("LMDBSTORE_FUZZ_SECONDS", "20"))


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("backend", ["lmdb", "sqlite"])
def test_mutated_stores_give_only_lmdbstore_errors(backend: str, encrypted: bool) -> None:
    seconds = BUDGET_SECONDS / 2 if encrypted else BUDGET_SECONDS  # fewer paths to cover
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmdbstore.testing.raw_fuzz",
            "--backend",
            backend,
            "--seconds",
            str(seconds),
            "--hang-seconds",
            "60",
            *(["--encrypted"] if encrypted else []),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 300,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = re.search(r"(\d+) stores .* peak memory (\d+) MiB, 0 findings", done.stdout)
    assert summary is not None, done.stdout
    assert int(summary.group(1)) >= 10  # the budget drove stores, not just the set-up
    assert int(summary.group(2)) < 500
    assert "StoreErrors" in done.stdout


def test_the_fuzzer_reports_what_is_not_an_lmdbstore_error() -> None:
    """The harness itself: a finding (here, a non-lmdbstore exception a read is made to
    raise) fails the run with its seed and mutations, so a green run means something."""
    probe = (
        "import sys\n"
        "from lmdbstore.testing import raw_fuzz\n"
        "from lmdbstore.domains.signal import SignalDomain\n"
        "async def broken(self, address):\n"
        "    raise KeyError(address)\n"
        "SignalDomain.get_session = broken\n"
        "sys.exit(raw_fuzz.main(['--backend', 'lmdb', '--stores', '2', '--seed', '7']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"[1-9]\d* findings", done.stdout), done.stdout
    assert "seed 7: device 1: get_session" in done.stdout
    assert "KeyError" in done.stdout
