"""Kill a writer process at a chosen moment, as a crash would (SIGKILL: no cleanup)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def run_and_kill(script: str, args: list[str], after: float) -> list[str]:
    """Run ``python -c script *args``, wait for its first line of output, let it go on for
    ``after`` seconds, SIGKILL it, and return every line it printed (a line printed is a
    write the child saw acknowledged)."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    first = child.stdout.readline()
    if not first:
        child.wait()
        raise RuntimeError(f"the writer exited with {child.returncode} before writing")
    time.sleep(after)
    os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate()
    return [first.strip(), *rest.split("\n")[:-1]] if rest else [first.strip()]
