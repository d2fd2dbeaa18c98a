"""Power loss, simulated (lmdbstore.testing.power_loss): a workload runs under strace, and
every disk state a power loss during it could leave is opened as after a reboot. At each
level the store must open, verify clean and hold every acknowledged write the level
promises; an unsafe configuration (raw LMDB without fsync on commit, synced now and then,
as the old "process" level was) must be caught.

CI checks a sample of states per level; ``--run-slow`` checks thousands
(``LMDBSTORE_POWER_LOSS_STATES`` sets how many)."""

from __future__ import annotations

import os
import shutil
import textwrap
from typing import TYPE_CHECKING

import pytest

from lmdbstore.testing import power_loss

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    shutil.which("strace") is None, reason="strace is not installed (.ci/run installs it)"
)

KEYS = 40
WRITES = 240  # per process; a second process writes numbers WRITES.. on keys of its own

PLAN = f"""
import hashlib

KEYS, WRITES = {KEYS}, {WRITES}


def key(i):
    return f"{{i // WRITES}}-{{i % KEYS}}@lid"


def value(i):
    return hashlib.sha256(b"%d" % i).digest() * 20  # 640 bytes


def acceptable(i):
    # The values key(i) may hold once write i is promised: its own, or a later write's.
    return {{value(j) for j in range(i, 2 * WRITES) if key(j) == key(i)}}
"""

STORE_WORKLOAD = PLAN + textwrap.dedent(
    """
    import subprocess, sys, anyio
    from lmdbstore import LmdbStore

    async def main():
        root, level, processes, first = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
        other = None
        if processes == "2" and first == "0":  # a second writer process, keys of its own
            other = subprocess.Popen([sys.executable, "-c", SCRIPT, root, level, "2", "1"])
        # A 64 KiB map grows several times during the run: resizes under checkpoints.
        store = await LmdbStore.open(
            root + "/db", durability=level, sync_interval=0.02, map_size=1 << 16
        )

        async def write(i):
            await store.put_session(key(i), value(i))
            print("ack", i, flush=True)

        start = int(first) * WRITES
        i = start
        while i < start + WRITES:
            if i % 40 == 20:  # 8 at once: group commits on the writer thread
                async with anyio.create_task_group() as tg:
                    for j in range(i, i + 8):
                        tg.start_soon(write, j)
                i += 8
            else:  # one at a time: commits on this thread when the writer is idle
                await write(i)
                i += 1
            if i % 25 == 0:
                await anyio.sleep(0.03)  # let a checkpoint happen
        await store.close()
        if other is not None and other.wait() != 0:
            raise SystemExit("the second writer failed")

    anyio.run(main)
    """
)
STORE_WORKLOAD = STORE_WORKLOAD.replace("SCRIPT", repr(STORE_WORKLOAD))

STORE_CHECKER = PLAN + textwrap.dedent(
    """
    import json, os, sys, tempfile, uuid, anyio
    from lmdbstore import LmdbStore, StoreError, durability

    level = sys.argv[1]
    boot = os.path.join(tempfile.mkdtemp(), "boot_id")
    durability.BOOT_ID_FILE = boot

    async def check(root, promised):
        with open(boot, "w") as out:
            out.write(str(uuid.uuid4()))  # every state is opened as after a reboot
        path = os.path.join(root, "db")
        if not os.path.exists(os.path.join(path, "data.mdb")):
            return [f"no store, but {len(promised)} writes promised"] if promised else []
        try:
            store = await LmdbStore.open(path, durability=level)
        except StoreError as exc:
            return [f"open: {type(exc).__name__}: {exc}"]
        async with store:
            problems = await store.verify()
            latest = {}
            for i in promised:
                latest[key(i)] = max(latest.get(key(i), -1), i)
            for name, i in sorted(latest.items()):
                if await store.get_session(name) not in acceptable(i):
                    problems.append(f"{name}: acknowledged write {i} missing or wrong")
            return problems

    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(anyio.run(check, request["path"], request["promised"])), flush=True)
    """
)

RAW_WORKLOAD = PLAN + textwrap.dedent(
    """
    import sys, threading, time, lmdb

    env = lmdb.Environment(sys.argv[1] + "/db", map_size=1 << 24, sync=False)
    stop = False

    def flusher():
        while not stop:
            time.sleep(0.02)
            env.sync(True)

    thread = threading.Thread(target=flusher)
    thread.start()
    for i in range(WRITES):
        with env.begin(write=True) as txn:
            txn.put(key(i).encode(), value(i))
        print("ack", i, flush=True)
        if i % 25 == 0:
            time.sleep(0.03)
    stop = True
    thread.join()
    env.close()
    """
)

RAW_CHECKER = PLAN + textwrap.dedent(
    """
    import json, os, sys, lmdb

    def check(root, promised):
        path = os.path.join(root, "db")
        if not os.path.exists(os.path.join(path, "data.mdb")):
            return [f"no store, but {len(promised)} writes promised"] if promised else []
        try:
            env = lmdb.Environment(path, map_size=1 << 24)
            with env.begin() as txn:
                stored = dict(txn.cursor())
            env.close()
        except lmdb.Error as exc:
            return [f"lmdb: {exc}"]
        everything = {value(i) for i in range(WRITES)}
        problems = [f"{k!r}: garbage" for k, v in stored.items() if v not in everything]
        latest = {}
        for i in promised:
            latest[key(i)] = max(latest.get(key(i), -1), i)
        for name, i in sorted(latest.items()):
            if stored.get(name.encode()) not in acceptable(i):
                problems.append(f"{name}: acknowledged write {i} missing or wrong")
        return problems

    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(check(request["path"], request["promised"])), flush=True)
    """
)


COMPACT_WORKLOAD = PLAN + textwrap.dedent(
    """
    import subprocess, sys, anyio
    from lmdbstore import LmdbStore

    async def main():
        path = sys.argv[1] + "/db"
        # Rewrites of a few keys at "full" (every ack promised) leave free pages; the
        # 64 KiB map grows several times. Then the store is compacted, by the command.
        async with await LmdbStore.open(path, durability="full", map_size=1 << 16) as store:
            for i in range(WRITES):
                await store.put_session(key(i), value(i))
                print("ack", i, flush=True)
        subprocess.run([sys.executable, "-m", "lmdbstore", "compact", path], check=True)

    anyio.run(main)
    """
)


def states_wanted(request: pytest.FixtureRequest, short: int) -> int:
    if request.config.getoption("--run-slow"):
        return int(os.environ.get("LMDBSTORE_POWER_LOSS_STATES", "2500"))
    return short


def simulate(
    tmp_path: Path, workload: str, checker: str, level: str, count: int, args: list[str]
) -> tuple[list[power_loss.Verdict], list[power_loss.Event]]:
    root = tmp_path / "root"
    root.mkdir()
    events = power_loss.record(workload, [str(root), *args], str(root))
    states = power_loss.crash_states(events, str(root), level, count, seed=len(events))
    return list(power_loss.check_states(states, str(root), checker, args)), events


@pytest.mark.parametrize(("level", "processes"), [("normal", "1"), ("full", "1"), ("normal", "2")])
def test_every_power_loss_state_keeps_what_the_level_promises(
    tmp_path: Path, level: str, processes: str, request: pytest.FixtureRequest
) -> None:
    verdicts, events = simulate(
        tmp_path,
        STORE_WORKLOAD,
        STORE_CHECKER,
        level,
        states_wanted(request, 40),
        [level, processes, "0"],
    )
    acks = [e for e in events if e.kind == "ack"]
    assert len(acks) == WRITES * int(processes)
    assert sum(e.kind == "write" for e in events) > WRITES  # unsynced pages to lose
    failed = [(v.state.at, v.state.adversarial, v.problems) for v in verdicts if v.problems]
    assert failed == []
    promised = [len(v.state.promised) for v in verdicts]
    assert max(promised) > WRITES // 2  # the states do promise writes
    print(
        f"{level}, {processes} process(es): {len(verdicts)} states,"
        f" {sum(v.state.adversarial for v in verdicts)}"
        f" adversarial, 0 failed; promised writes per state up to {max(promised)}"
    )


def test_the_simulator_catches_an_unsafe_configuration(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    verdicts, _ = simulate(
        tmp_path, RAW_WORKLOAD, RAW_CHECKER, "raw", states_wanted(request, 80), []
    )
    failed = [v for v in verdicts if v.problems]
    assert failed, "no state of raw LMDB without fsync was caught"
    print(f"raw, no fsync on commit: {len(failed)} of {len(verdicts)} states failed, e.g.")
    for verdict in failed[:3]:
        print("  ", verdict.state.adversarial, verdict.problems[:2])


def test_a_power_loss_during_compaction_loses_nothing(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``lmdbstore compact`` after writes at "full": every state a power loss during the
    compaction could leave opens, verifies clean and holds every write."""
    from lmdbstore.storage.compaction import BUILD_PREFIX

    root = tmp_path / "root"
    root.mkdir()
    events = power_loss.record(COMPACT_WORKLOAD, [str(root)], str(root))
    start = next(n for n, e in enumerate(events) if BUILD_PREFIX in e.path + "".join(e.op))
    renamed = [e for e in events[start:] if e.op and e.op[0] == "rename"]
    assert renamed, "the compaction renamed nothing into place"
    count = states_wanted(request, 40)
    states = power_loss.crash_states(events, str(root), "full", count, seed=start, start=start)
    verdicts = list(power_loss.check_states(states, str(root), STORE_CHECKER, ["full"]))
    failed = [(v.state.at, v.state.adversarial, v.problems) for v in verdicts if v.problems]
    assert failed == []
    assert min(len(v.state.promised) for v in verdicts) == WRITES
    print(f"compaction: {len(verdicts)} states after event {start} of {len(events)}, 0 failed")
