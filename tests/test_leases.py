"""Device leases across real processes: a holder killed with SIGKILL hands over within its
ttl and a second, and holders in four processes taking one device's lease 100 times in
turn never overlap; on LmdbStore and SqliteStore (the processes of one host) and on
PostgresStore (as many hosts). The rules within one process are `LeaseConformance`'s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import anyio
import pytest

import lmdbstore
from lmdbstore.errors import DeviceLeaseError

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(params=["lmdb", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        schema = request.getfixturevalue("postgres_schema")
        return f"{request.getfixturevalue('postgres_url')}#{schema}"
    return {"lmdb": f"lmdb://{tmp_path / 'store'}", "sqlite": f"sqlite://{tmp_path / 's.db'}"}[
        str(request.param)
    ]


HOLDER = """
import sys, time, anyio, lmdbstore

async def main(url, ttl):
    store = await lmdbstore.open(url)
    await store.acquire_device_lease(ttl)
    print("held", flush=True)
    while True:
        await anyio.sleep(1)

anyio.run(main, sys.argv[1], float(sys.argv[2]))
"""


def test_a_killed_holder_hands_over_within_its_ttl(url: str) -> None:
    ttl = 2.0

    async def create() -> None:
        async with await lmdbstore.open(url):
            pass  # the store exists before the holder opens it

    anyio.run(create)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, str(ttl)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        time.sleep(ttl)  # it has renewed its lease meanwhile

        async def refused() -> None:
            async with await lmdbstore.open(url) as store:
                with pytest.raises(DeviceLeaseError, match="another holder"):
                    await store.acquire_device_lease(ttl)

        anyio.run(refused)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    killed = time.monotonic()

    async def take_over() -> float:
        async with await lmdbstore.open(url) as store:
            while True:
                try:
                    lease = await store.acquire_device_lease(ttl)
                except DeviceLeaseError:
                    await anyio.sleep(0.05)
                    continue
                await lease.release()
                return time.monotonic() - killed

    assert anyio.run(take_over) <= ttl + 1.0


TAKER = """
import os, sys, time, anyio, lmdbstore
from lmdbstore.errors import DeviceLeaseError

async def main(url, log, turns):
    async with await lmdbstore.open(url) as store:
        while True:
            with open(log) as done:
                if done.read().count("end") >= turns:
                    return
            try:
                lease = await store.acquire_device_lease(1.0)
            except DeviceLeaseError:
                await anyio.sleep(0.002)
                continue
            fd = os.open(log, os.O_WRONLY | os.O_APPEND)
            os.write(fd, f"start {os.getpid()}\\n".encode())
            await store.put_session("turn@lid", str(os.getpid()).encode())
            await anyio.sleep(0.01)
            assert not lease.lost
            os.write(fd, f"end {os.getpid()}\\n".encode())
            os.close(fd)
            await lease.release()

anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
"""


def test_holders_in_four_processes_never_overlap(url: str, tmp_path: Path) -> None:
    """Each turn is logged between taking the lease and giving it up (appends, in the
    order they happen): the log must alternate one holder's start and end."""

    async def create() -> None:
        async with await lmdbstore.open(url):
            pass

    anyio.run(create)
    log = tmp_path / "turns.log"
    log.write_text("")
    takers = [
        subprocess.Popen([sys.executable, "-c", TAKER, url, str(log), "100"]) for _ in range(4)
    ]
    assert [taker.wait(timeout=300) for taker in takers] == [0, 0, 0, 0]
    lines = log.read_text().split()
    events = list(zip(lines[::2], lines[1::2], strict=True))
    assert len([e for e in events if e[0] == "end"]) >= 100
    for start, end in zip(events[::2], events[1::2], strict=False):
        assert start[0] == "start" and end == ("end", start[1]), (start, end)
    assert len({pid for _, pid in events}) > 1  # the lease did change hands
