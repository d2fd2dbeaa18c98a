"""A real, throwaway PostgreSQL server on loopback, for the tests and benchmarks of
PostgresStore.

A new cluster is made with the distribution's ``initdb`` in a temporary directory and run
with ``pg_ctl`` on a free port, trusting local connections. PostgreSQL refuses to run as
root: as root, the cluster belongs to the ``postgres`` user the package creates, and its
commands run through ``runuser``. ``durable=False`` turns the server's own fsyncs off, for
tests (they check what PostgresStore does, not that PostgreSQL survives a power loss, and
each creates a schema of some thirty tables); benchmarks keep them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile

from lmdbstore.testing.redis_server import free_port

USER = "lmdbstore"
"""The cluster's superuser, which the URL logs in as."""


def _binaries() -> str | None:
    """The directory of ``initdb``, ``pg_ctl`` and the programs of their version: where
    the ``initdb`` on the PATH is (a link followed), or the newest of Debian's
    ``/usr/lib/postgresql/<version>/bin``."""
    found = shutil.which("initdb")
    if found is not None:
        return os.path.dirname(os.path.realpath(found))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(versions[-1]) if versions else None


class PostgresServer:
    """One throwaway cluster: `start`, then `stop` (which deletes it)."""

    def __init__(self, *, durable: bool = True) -> None:
        self.durable = durable
        self.port = free_port()
        self.url = f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"
        self._dir = ""
        self._bin = _binaries()

    @staticmethod
    def available() -> bool:
        """Whether the server's binaries are installed."""
        return _binaries() is not None

    @property
    def directory(self) -> str:
        """The cluster's directory while the server runs: its data directory (``data``:
        tables, WAL), its log and its socket."""
        return self._dir

    def program(self, name: str) -> str:
        """The path of the client program ``name`` of the server's version (``pg_dump``)."""
        if self._bin is None:
            raise FileNotFoundError("PostgreSQL's binaries are not installed")
        return os.path.join(self._bin, name)

    def _run(self, *command: str) -> None:
        """Run ``command`` (as ``postgres`` when root); a failure is a `RuntimeError` that
        says what the command printed."""
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
        )
        if done.returncode != 0:
            said = done.stdout.decode(errors="replace").strip()[-2000:]
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {said}")

    def start(self) -> None:
        """Make the cluster and start the server; return once it accepts connections."""
        if self._bin is None:
            raise FileNotFoundError("PostgreSQL's initdb is not installed")
        self._dir = tempfile.mkdtemp(prefix="lmdbstore-pg-")
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self._dir, owner.pw_uid, owner.pw_gid)
        data = os.path.join(self._dir, "data")
        self._run(
            os.path.join(self._bin, "initdb"),
            *("-D", data, "-A", "trust", "-U", USER, "-E", "UTF8", "--locale=C.UTF-8"),
            "--no-sync",
        )
        options = f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            os.path.join(self._bin, "pg_ctl"),
            *("-D", data, "-o", options, "-l", os.path.join(self._dir, "log"), "-w", "start"),
        )

    def stop(self) -> None:
        """Stop the server at once and delete its cluster."""
        if self._bin is None or not self._dir:
            return
        with contextlib.suppress(RuntimeError):
            data = os.path.join(self._dir, "data")
            self._run(os.path.join(self._bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = ""
