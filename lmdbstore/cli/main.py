"""The ``lmdbstore`` command, on click.

A PATH is an LMDB store (a directory, or ``lmdb://path``) or a SQLite store (a file, or
``sqlite://path``). Exit status: 0 done, 1 ``verify`` found problems, 2 bad usage, 3 no
store at PATH, 4 the store cannot be opened (permissions, lock, another open), 5 the store
is damaged or the engine failed, 6 the store was written by a newer lmdbstore.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
import click

from lmdbstore.errors import (
    MigrationError,
    StoreConnectionError,
    StoreError,
)
from lmdbstore.lmdb_store import LmdbStore
from lmdbstore.sqlite_store import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

EXIT_PROBLEMS = 1
EXIT_MISSING = 3
EXIT_UNOPENABLE = 4
EXIT_DAMAGED = 5
EXIT_NEWER = 6


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"lmdbstore: {message}", err=True)
    sys.exit(code)


def locate(path: str) -> tuple[type[LmdbStore] | type[SqliteStore], str]:
    """The backend of the existing store at ``path`` and its plain path: by scheme, else a
    directory is LMDB and a file is SQLite. The commands never create a store: a directory
    without ``data.mdb`` or an empty file is no store."""
    backend: type[LmdbStore] | type[SqliteStore] | None = None
    plain = path
    for scheme, candidate in (("lmdb://", LmdbStore), ("sqlite://", SqliteStore)):
        if path.startswith(scheme):
            backend, plain = candidate, path.removeprefix(scheme)
    if backend is None:
        backend = LmdbStore if os.path.isdir(plain) else SqliteStore
    present = (
        os.path.isfile(os.path.join(plain, "data.mdb"))
        if backend is LmdbStore
        else os.path.isfile(plain) and os.path.getsize(plain) > 0
    )
    if not present:
        fail(f"no store at {plain!r}", EXIT_MISSING)
    return backend, plain


def run(path: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Open the store at ``path``, ``await work(store)``, close it; store errors become
    messages and exit codes."""
    backend, plain = locate(path)

    async def main() -> Any:
        async with await backend.open(plain) as store:
            return await work(store)

    try:
        return anyio.run(main)
    except MigrationError as exc:
        fail(f"{plain}: {exc}", EXIT_NEWER)
    except StoreConnectionError as exc:
        fail(f"{plain}: cannot open: {exc}", EXIT_UNOPENABLE)
    except StoreError as exc:
        fail(f"{plain}: {exc}", EXIT_DAMAGED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lmdbstore")
def main() -> None:
    """Inspect, check and copy lmdbstore stores (LMDB directories or SQLite files)."""


@main.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def info(path: str, as_json: bool) -> None:
    """What the store at PATH holds: format, devices, entries per domain, size and use."""

    async def report(store: Any) -> dict[str, Any]:
        found: dict[str, Any] = await store.resource_report()
        found["backend"] = type(store).__name__
        found["devices"] = await store.device_ids()
        return found

    found = run(path, report)
    if as_json:
        click.echo(json.dumps(found, indent=2, sort_keys=True, default=str))
        return
    for name, value in sorted(found.items()):
        if isinstance(value, dict):
            click.echo(f"{name}:")
            for inner, count in sorted(value.items()):
                click.echo(f"  {inner}: {count}")
        else:
            click.echo(f"{name}: {value}")


@main.command()
@click.argument("path")
def verify(path: str) -> None:
    """Check every record and index of the store at PATH; exit 1 when there are problems.
    Reads only."""
    problems = run(path, lambda store: store.verify())
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo("ok")


@main.command()
@click.argument("path")
@click.argument("dest")
def snapshot(path: str, dest: str) -> None:
    """Copy the store at PATH to DEST (which must not exist): hot, consistent, compacted.
    Writers of PATH go on meanwhile."""
    if os.path.exists(dest):
        fail(f"{dest!r} already exists", EXIT_UNOPENABLE)
    run(path, lambda store: store.copy_to(dest))
    click.echo(dest)
