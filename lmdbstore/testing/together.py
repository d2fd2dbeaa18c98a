"""Start several processes and release them at one moment: for the races of openers."""

from __future__ import annotations

import subprocess
import sys
import time

STARTUP_SECONDS = 1.0
"""Time given to the processes to start and import before they are released."""


def run_together(
    script: str, argvs: list[list[str]], timeout: float = 120
) -> list[tuple[int, str]]:
    """Run ``python -c script *argv`` for each of ``argvs``. ``script`` reads a line from
    stdin right before what must race (``sys.stdin.readline()``): once every process has
    had `STARTUP_SECONDS` to start, each gets its line at once. Their exit statuses and
    what they wrote to stderr, in order."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, *argv],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    time.sleep(STARTUP_SECONDS)
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outcomes = []
    for process in processes:
        _, err = process.communicate(timeout=timeout)
        outcomes.append((process.returncode, err))
    return outcomes
