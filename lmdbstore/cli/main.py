"""The ``lmdbstore`` command, on click.

A PATH is an LMDB store (a directory, or ``lmdb://path``), a SQLite store (a file, or
``sqlite://path``) or a PostgreSQL store (``postgresql://user@host/database#schema``, the
schema ``lmdbstore`` when the URL names none; with the ``postgres`` extra). Exit status:
0 done, 1 ``verify`` found problems, 2 bad usage, 3 no store at PATH (or no such device
in it), 4 the store cannot be opened (permissions, lock, another open, a path of the
wrong kind for its scheme, a server that cannot be reached; for ``compact``, another
process has it open), 5 the store is damaged or
the engine failed (or an import file is malformed), 6 the store was written by a newer
lmdbstore, 7 the destination of ``snapshot``, ``import`` or ``migrate`` already exists.
Every failure is one line on stderr, ``lmdbstore: <what>``.

An encrypted store (`lmdbstore.encryption`) is opened with its key: ``--key-file FILE``
(32 bytes, or 64 hexadecimal digits, as ``keygen`` writes) or ``--keyring SERVICE USER``
(the OS keyring, with the ``keyring`` extra). Without it, or with a wrong one: exit 4.
``encrypt``, ``decrypt`` and ``rekey`` convert a store in place (as ``compact`` does).

``export`` writes the line-per-record JSON of `lmdbstore.transfer.records`; ``import``
and ``migrate`` create a new store, streaming (memory does not grow with the store), built
beside its destination and moved into place only when complete (on PostgreSQL: built in a
schema of its own, renamed to the destination's when complete).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import anyio
import click

from lmdbstore import durability, files, validate
from lmdbstore.encryption import Encryption, EncryptionKey, keyring_key, resolve_key
from lmdbstore.errors import (
    MigrationError,
    NoStoreError,
    StoreConnectionError,
    StoreError,
    ValidationError,
)
from lmdbstore.lmdb_store import LmdbStore
from lmdbstore.opener import POSTGRES_SCHEMES, postgres_store
from lmdbstore.sqlite_store import SqliteStore, database
from lmdbstore.storage import compaction
from lmdbstore.transfer import records as records_format
from lmdbstore.transfer import sink, source

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Awaitable, Callable, Iterable, Iterator

EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_MISSING = 3
EXIT_UNOPENABLE = 4
EXIT_DAMAGED = 5
EXIT_NEWER = 6
EXIT_NOT_EMPTY = 7


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"lmdbstore: {message}", err=True)
    sys.exit(code)


def postgres_backend(url: str) -> Any:
    """`PostgresStore` for ``url``: exit 2 when the URL names no valid schema, 4 when
    psycopg is not installed."""
    try:
        backend = postgres_store()
    except StoreConnectionError as exc:
        fail(str(exc), EXIT_UNOPENABLE)
    from lmdbstore.postgres_store.database import split_url

    try:
        split_url(url, None)
    except ValidationError as exc:
        fail(str(exc), EXIT_USAGE)
    return backend


def locate(path: str) -> tuple[Any, str]:
    """The backend of the existing store at ``path`` and its plain path: by scheme, else a
    directory is LMDB and a file is SQLite. The commands never create a store: a directory
    without ``data.mdb`` or an empty file is no store (a PostgreSQL schema without one is
    found so when opened read-only)."""
    if path.startswith(POSTGRES_SCHEMES):
        return postgres_backend(path), path
    backend: type[LmdbStore] | type[SqliteStore] | None = None
    plain = path
    for scheme, candidate in (("lmdb://", LmdbStore), ("sqlite://", SqliteStore)):
        if path.startswith(scheme):
            backend, plain = candidate, path.removeprefix(scheme)
    if backend is None:
        backend = LmdbStore if os.path.isdir(os.path.expanduser(plain)) else SqliteStore
    kind: Literal["directory", "file"] = "directory" if backend is LmdbStore else "file"
    scheme = "lmdb://" if backend is LmdbStore else "sqlite://"
    try:
        plain = validate.store_path(plain, scheme, kind)
    except StoreConnectionError as exc:
        fail(str(exc), EXIT_UNOPENABLE)
    except ValidationError as exc:
        fail(str(exc), EXIT_USAGE)
    present = (
        os.path.isfile(os.path.join(plain, "data.mdb"))
        if backend is LmdbStore
        else os.path.isfile(plain) and os.path.getsize(plain) > 0
    )
    if not present:
        fail(f"no store at {plain!r}", EXIT_MISSING)
    return backend, plain


def destination(path: str) -> tuple[Any, str]:
    """The backend of ``path`` as a destination, which may not exist yet: by scheme, else
    an existing directory or a name without a SQLite suffix is LMDB."""
    if path.startswith(POSTGRES_SCHEMES):
        return postgres_backend(path), path
    for scheme, backend in (("lmdb://", LmdbStore), ("sqlite://", SqliteStore)):
        if path.startswith(scheme):
            return backend, path.removeprefix(scheme)
    if os.path.isdir(path) or not path.endswith(SQLITE_SUFFIXES):
        return LmdbStore, path
    return SqliteStore, path


SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def displayed(path: str) -> str:
    """``path`` as messages show it: a PostgreSQL URL without its password."""
    if path.startswith(POSTGRES_SCHEMES):
        from lmdbstore.postgres_store.database import shown

        return shown(path)
    return path


def store_failure(plain: str, exc: StoreError) -> NoReturn:
    """Exit with the message and the status of a store error about ``plain``."""
    if isinstance(exc, NoStoreError):
        fail(f"{plain}: {exc}", EXIT_MISSING)
    if isinstance(exc, MigrationError):
        fail(f"{plain}: {exc}", EXIT_NEWER)
    if isinstance(exc, StoreConnectionError):
        fail(f"{plain}: cannot open: {exc}", EXIT_UNOPENABLE)
    fail(f"{plain}: {exc}", EXIT_DAMAGED)


def run(
    path: str, work: Callable[[Any], Awaitable[Any]], encryption: Encryption | None = None
) -> Any:
    """Open the existing store at ``path`` read-only (with the key ``encryption``),
    ``await work(store)``, close it; store errors become messages and exit codes. An LMDB
    store that has not recovered from a restart of the machine yet is opened writable
    instead, which recovers it (at the durability in use, if another process has it open):
    its own recovery is the only write a command that reads makes."""
    backend, plain = locate(path)
    options: dict[str, Any] = {"readonly": True}
    if backend is LmdbStore and durability.recovery_due(plain):
        options = {"durability": durability.level_in_use(plain) or "normal"}
    if encryption is not None:
        options["encryption"] = encryption

    async def main() -> Any:
        async with await backend.open(plain, **options) as store:
            return await work(store)

    try:
        return anyio.run(main)
    except StoreError as exc:
        store_failure(displayed(plain), exc)


def key_options(prefix: str = "", what: str = "the store's key") -> Callable[[Any], Any]:
    """``--{prefix}key-file`` and ``--{prefix}keyring``: the key of an encrypted store
    (see `encryption_option`)."""

    def decorate(command: Any) -> Any:
        command = click.option(
            f"--{prefix}keyring",
            nargs=2,
            metavar="SERVICE USER",
            default=None,
            help=f"Read {what} from the OS keyring (the keyring extra).",
        )(command)
        return click.option(
            f"--{prefix}key-file",
            type=click.Path(dir_okay=False),
            default=None,
            help=f"Read {what} from this file: 32 bytes, or 64 hexadecimal digits.",
        )(command)

    return decorate


def encryption_option(
    key_file: str | None, keyring: tuple[str, str] | None, *, create: bool = False
) -> Encryption | None:
    """The key that ``--key-file`` or ``--keyring`` names (``None``: neither); exit 2 for
    both, or for a key file that holds no key. A keyring entry is read when the store is
    opened (``create``: a new key is stored there if it has none)."""
    if key_file is not None and keyring is not None:
        fail("give --key-file or --keyring, not both", EXIT_USAGE)
    if key_file is not None:
        try:
            return EncryptionKey.from_file(key_file)
        except ValidationError as exc:
            fail(str(exc), EXIT_USAGE)
    if keyring is not None:
        try:
            return keyring_key(*keyring, create=create)
        except ValidationError as exc:
            fail(str(exc), EXIT_USAGE)
    return None


def resolved(encryption: Encryption | None) -> EncryptionKey | None:
    """The key itself (a keyring is read now): exit 4 when it cannot be had."""
    try:
        return resolve_key(encryption)
    except StoreConnectionError as exc:
        fail(str(exc), EXIT_UNOPENABLE)


LOCK_WAIT_SECONDS = 5
"""How long a command waits for a SQLite database that another connection keeps locked
(a library user waits minutes; someone at a terminal wants an answer)."""


class OneLineErrors(click.Group):
    """click's group, with every usage error said in one line on stderr (``lmdbstore:
    <what> (try 'lmdbstore CMD --help')``, exit 2) instead of a usage block."""

    def main(self, *args: Any, **kwargs: Any) -> NoReturn:
        try:
            status = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "lmdbstore"
            fail(f"{exc.format_message()} (try '{where} --help')", EXIT_USAGE)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("aborted", EXIT_USAGE)
        sys.exit(status if isinstance(status, int) else 0)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lmdbstore")
def main() -> None:
    """Inspect, check and copy lmdbstore stores (LMDB directories, SQLite files or
    PostgreSQL schemas)."""
    database.BUSY_TIMEOUT_MS = LOCK_WAIT_SECONDS * 1000 // 2
    database.RETRY_SECONDS = LOCK_WAIT_SECONDS / 2


@main.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@key_options()
def info(path: str, as_json: bool, key_file: str | None, keyring: tuple[str, str] | None) -> None:
    """What the store at PATH holds: format, devices, records per kind, entries per domain,
    size and use. --json gives the same as one JSON object (sizes in bytes)."""

    async def report(store: Any) -> dict[str, Any]:
        found = dataclasses.asdict(await store.resource_report())
        if found["durability"] == "readonly":  # this command's handle: say the store's
            found["durability"] = durability.level_in_use(store.path) or "readonly"
        if found["backend"] != "postgres":  # a URL, not a path
            found["path"] = os.path.abspath(found["path"])
        found["format_version"] = store.format_version
        found["devices"] = await store.device_ids()
        found["records"] = source.count(store)
        found["encrypted"] = store.encrypted
        return found

    found = run(path, report, encryption_option(key_file, keyring))
    if as_json:
        click.echo(json.dumps(found, indent=2, sort_keys=True))
        return
    for line in info_lines(found):
        click.echo(line)


def info_lines(found: dict[str, Any]) -> list[str]:
    """The report of ``info`` for a person: one fact a line, sizes in KiB/MiB/GiB."""
    lines = [
        f"store       {found['path']}",
        f"backend     {found['backend']}, format {found['format_version']},"
        f" durability {found['durability']}"
        + (", encrypted (AES-256-GCM)" if found["encrypted"] else ""),
        f"devices     {', '.join(map(str, found['devices'])) or 'none'}",
        f"on disk     {human_size(found['bytes_on_disk'])}",
    ]
    if found["map_size"] is not None:
        lines.append(
            f"map         {human_size(found['map_used'])} used of {human_size(found['map_size'])}"
            " (grows by itself)"
        )
    readers = f"readers     {found['readers_in_use']} in use"
    if found["max_readers"] is not None:
        readers += f" of {found['max_readers']}"
    lines.append(readers)
    records = {kind: n for kind, n in found["records"].items() if n}
    lines.append(f"records     {sum(records.values()):,}")
    lines += [f"  {kind:<22} {n:>12,}" for kind, n in sorted(records.items())]
    lines.append("entries per domain (records and index entries)")
    lines += [f"  {domain:<22} {n:>12,}" for domain, n in found["entries"].items()]
    return lines


def human_size(size: int) -> str:
    """``size`` bytes as a person reads it: ``812 B``, ``4.0 KiB``, ``1.5 MiB``."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@main.command()
@click.argument("path")
@key_options()
def verify(path: str, key_file: str | None, keyring: tuple[str, str] | None) -> None:
    """Check every record and index of the store at PATH; exit 1 when there are problems.
    Reads only. Of an encrypted store, every value is authenticated too: one altered,
    moved to another key or copied from another store is a problem."""
    problems = run(path, lambda store: store.verify(), encryption_option(key_file, keyring))
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo("ok")


@main.command()
@click.argument("path")
@click.argument("dest")
@key_options()
def snapshot(path: str, dest: str, key_file: str | None, keyring: tuple[str, str] | None) -> None:
    """Copy the store at PATH to DEST (which must not exist): hot, consistent, compacted.
    Writers of PATH go on meanwhile. Of a PostgreSQL store, DEST is a new schema of the
    same database. The copy of an encrypted store is encrypted, under the same key."""
    if not path.startswith(POSTGRES_SCHEMES) and os.path.lexists(dest):
        fail(f"{dest!r} already exists: snapshot creates a new copy", EXIT_NOT_EMPTY)

    async def copy(store: Any) -> None:
        if path.startswith(POSTGRES_SCHEMES):
            exists = store._db().schema_exists
            if await store._off_loop(exists, dest):
                fail(f"schema {dest!r} already exists: snapshot creates a new copy", EXIT_NOT_EMPTY)
        await store.copy_to(dest)

    run(path, copy, encryption_option(key_file, keyring))
    click.echo(dest)


@main.command()
@click.argument("path")
@key_options()
def compact(path: str, key_file: str | None, keyring: tuple[str, str] | None) -> None:
    """Give back the space the store at PATH no longer uses: an LMDB store is rewritten
    without its free pages and renamed into place, a SQLite store is VACUUMed. Needs the
    store to itself: exit 4 while another process has it open. PostgreSQL reclaims space
    itself (autovacuum; VACUUM FULL to shrink)."""
    if path.startswith(POSTGRES_SCHEMES):
        fail("PostgreSQL reclaims space itself (autovacuum; VACUUM FULL to shrink)", EXIT_USAGE)
    backend, plain = locate(path)
    encryption = resolved(encryption_option(key_file, keyring))  # a keyring read once

    def bytes_on_disk() -> int:  # opening it also checks it is a store of ours, this format
        return int(run(path, lambda store: store.resource_report(), encryption).bytes_on_disk)

    before = bytes_on_disk()
    try:
        if backend is LmdbStore:
            compaction.compact_lmdb(plain)
        else:
            compaction.compact_sqlite(plain)
    except StoreError as exc:
        store_failure(plain, exc)
    click.echo(f"{plain}: {human_size(before)} -> {human_size(bytes_on_disk())}")


@main.command()
@click.argument("path")
@click.option(
    "--device",
    type=click.IntRange(0, 2**32 - 1),
    default=None,
    help="Only this device's records (exit 3 when the store has none of it).",
)
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Default: stdout. A file is written owner-only (it holds private keys).",
)
@key_options()
def export(
    path: str,
    device: int | None,
    output_path: str,
    key_file: str | None,
    keyring: tuple[str, str] | None,
) -> None:
    """Write every record of the store at PATH as JSON lines (see the format in
    lmdbstore.transfer.records), from one consistent view. The export of an encrypted
    store is plaintext (every key and name in the clear): the command says so on stderr."""

    async def dump(store: Any) -> int:
        if device is not None and device not in await store.device_ids():
            fail(f"no device {device} in {store.path!r}", EXIT_MISSING)
        if store.encrypted:
            click.echo(PLAINTEXT_EXPORT, err=True)
        # Closed here, on this thread, even when writing fails: a SQLite walk's connection
        # belongs to the thread that opened it.
        with contextlib.closing(source.records(store, device)) as stream:
            if output_path == "-":
                return records_format.write(sys.stdout.buffer, stream)
            return _export_to(output_path, stream)

    written = run(path, dump, encryption_option(key_file, keyring))
    click.echo(f"{written} records", err=True)


PLAINTEXT_EXPORT = (
    "lmdbstore: note: the store is encrypted, its export is not: the file holds every key,"
    " session and phone number in the clear. Keep it as safe as the key, and delete it"
    " once imported"
)


def _export_to(output_path: str, stream: Iterator[records_format.Record]) -> int:
    """Write the export of ``stream`` to the file ``output_path``; the record count."""
    # Built in a private directory and renamed over output_path only once complete: a failed
    # export leaves an existing file as it was, and a link there is replaced, never followed.
    with files.private_build_dir(output_path) as build:
        built = os.path.join(build, "export.jsonl")
        try:
            output = os.fdopen(files.open_file(built), "wb")
        except OSError as exc:
            fail(f"cannot write {output_path!r}: {exc.strerror}", EXIT_USAGE)
        with output:
            written = records_format.write(output, stream)
            output.flush()
            os.fsync(output.fileno())
        try:
            os.replace(built, output_path)
        except OSError as exc:
            fail(f"cannot write {output_path!r}: {exc.strerror}", EXIT_USAGE)
    return written


def read_export(file: str, *, accept_unverified: bool) -> Iterator[records_format.Record]:
    """The records of the export ``file``, checked as they are read (see
    `records_format.read`): ValidationError names the line."""
    try:
        with open(file, "rb") as stream:
            yield from records_format.read(stream, accept_unverified=accept_unverified)
    except OSError as exc:
        raise ValidationError(f"cannot read: {exc.strerror}") from None


async def fill(
    store: Any, stream: Iterable[records_format.Record], total: int | None
) -> tuple[int, Counter[str]]:
    """Write ``stream`` into the new ``store``, with a progress bar of ``total`` records on
    a terminal (none when ``total`` is None); see `sink.restore`."""
    with click.progressbar(
        length=total or 0,
        label="records",
        file=sys.stderr,
        hidden=not total or not sys.stderr.isatty(),
    ) as bar:
        return await sink.restore(store, stream, bar.update)


@main.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("path")
@click.option(
    "--accept-unverified",
    is_flag=True,
    help="Import a version 1 export, which has no trailer to prove it whole.",
)
@key_options(what="the key to encrypt the new store with")
def import_(
    file: str,
    path: str,
    accept_unverified: bool,
    key_file: str | None,
    keyring: tuple[str, str] | None,
) -> None:
    """Write the records of an export FILE into a new store at PATH (lmdb://, sqlite:// or
    postgresql://, else a .sqlite/.sqlite3/.db name is SQLite). The file is checked first,
    and the store appears at PATH only once complete. With a key, the new store is
    encrypted."""
    options = encrypted_options(path, encryption_option(key_file, keyring, create=True))
    try:
        total = sum(1 for _ in read_export(file, accept_unverified=accept_unverified))
    except ValidationError as exc:
        fail(f"{file}: {exc}", EXIT_DAMAGED)

    def load(backend: Any, plain: str) -> tuple[int, Counter[str]]:
        # Read again as it is written: the trailer is checked at the end of this pass too,
        # so a file changed since the first pass fails before the store is moved into place.
        async def write() -> tuple[int, Counter[str]]:
            async with await backend.open(plain, **options) as store:
                return await fill(
                    store, read_export(file, accept_unverified=accept_unverified), total
                )

        return anyio.run(write)

    summarise(*into_new_store(path, load, options))


def encrypted_options(path: str, encryption: Encryption | None) -> dict[str, Any]:
    """The options that open the new store ``path`` encrypted with ``encryption``."""
    if encryption is None:
        return {}
    return {"encryption": resolved(encryption)}


CONVERTED_BY_MIGRATE = (
    "a PostgreSQL schema is not converted in place (the server keeps the old rows in its"
    " WAL and free space): migrate it into a new schema, with --dest-key-file or"
    " --dest-keyring to encrypt it, then drop the old one"
)


def summarise(written: int, dropped: Counter[str]) -> None:
    """Say on stderr how many records were written, and which were left out and why."""
    click.echo(f"{written} records", err=True)
    for kind, count in sorted(dropped.items()):
        why = sink.DROPPED_BECAUSE.get(kind, "not kept by this backend")
        click.echo(f"{count} {kind} records left out: {why}", err=True)


def into_new_store(
    path: str, work: Callable[[Any, str], tuple[int, Counter[str]]], options: dict[str, Any]
) -> tuple[int, Counter[str]]:
    """Build the new store ``path`` with ``work(backend, build_path)`` in a fresh private
    directory beside it, and move it into place only when complete: a failed import or
    migration leaves nothing at ``path``, and nobody can plant a link where it is built.
    The move never replaces what appeared at ``path`` meanwhile (a file is linked into
    place, which refuses an existing name; a directory is renamed, which refuses anything
    but an empty directory). ``options``: those ``work`` opens the new store with (its
    key), for the moves that open it too (a PostgreSQL schema's)."""
    backend, plain = destination(path)
    if plain.startswith(POSTGRES_SCHEMES):
        return into_new_schema(backend, plain, work, options)
    if os.path.lexists(plain):
        fail(f"{plain!r} already exists: import and migrate create a new store", EXIT_NOT_EMPTY)
    with files.private_build_dir(plain) as build:
        built = os.path.join(build, os.path.basename(plain))
        try:
            result = work(backend, built)
        except StoreError as exc:
            store_failure(plain, exc)
        try:
            if os.path.isdir(built):
                os.rename(built, plain)
            else:
                for suffix in ("-wal", "-shm", ""):  # the main file last: it makes the store
                    if os.path.exists(built + suffix):
                        os.link(built + suffix, plain + suffix)
        except OSError as exc:
            fail(f"cannot move the new store to {plain!r}: {exc.strerror}", EXIT_NOT_EMPTY)
    return result


def into_new_schema(
    backend: Any,
    url: str,
    work: Callable[[Any, str], tuple[int, Counter[str]]],
    options: dict[str, Any],
) -> tuple[int, Counter[str]]:
    """`into_new_store` on PostgreSQL: build the store in a new schema of its own (which
    nothing else names) and rename it to the destination's only when complete; a failure
    drops it, leaving nothing under the destination's name. The rename refuses a schema
    that appeared meanwhile."""
    from lmdbstore.postgres_store.database import split_url

    server, schema = split_url(url, None)  # checked by destination()
    build = f"lmdbstore_build_{os.urandom(6).hex()}"

    async def on_build(step: Callable[[Any], Any]) -> Any:
        """``step(database)`` of the build schema's store, off the event loop."""
        async with await backend.open(server, schema=build, **options) as store:
            return await store._off_loop(step, store._db())

    try:
        if anyio.run(on_build, lambda database: database.schema_exists(schema)):
            anyio.run(on_build, lambda database: database.drop_schema())
            fail(
                f"schema {schema!r} already exists: import and migrate create a new store",
                EXIT_NOT_EMPTY,
            )
        try:
            result = work(backend, f"{server}#{build}")
        except BaseException:
            anyio.run(on_build, lambda database: database.drop_schema())
            raise
        anyio.run(on_build, lambda database: database.rename_schema(schema))
    except StoreError as exc:
        store_failure(displayed(f"{server}#{schema}"), exc)
    return result


@main.command()
@click.argument("src")
@click.argument("dest")
@key_options(what="SRC's key")
@key_options("dest-", "the key to encrypt DEST with")
def migrate(
    src: str,
    dest: str,
    key_file: str | None,
    keyring: tuple[str, str] | None,
    dest_key_file: str | None,
    dest_keyring: tuple[str, str] | None,
) -> None:
    """Copy every record of the store SRC into the new store DEST, streaming, between any
    two of LMDB, SQLite and PostgreSQL (lmdb://, sqlite://, postgresql://, or as for
    import). A progress bar shows on a terminal. Cache entries stay behind when DEST is
    SQLite or PostgreSQL, which keep no cache. DEST is encrypted with --dest-key-file or
    --dest-keyring, and plain without, whatever SRC is."""
    encryption = encryption_option(key_file, keyring)
    options = encrypted_options(dest, encryption_option(dest_key_file, dest_keyring, create=True))

    def copy(backend: Any, plain: str) -> tuple[int, Counter[str]]:
        async def transfer(source_store: Any) -> tuple[int, Counter[str]]:
            # Counting walks every key: only worth it for a bar someone will see.
            total = sum(source.count(source_store).values()) if sys.stderr.isatty() else None
            async with await backend.open(plain, **options) as target:
                with contextlib.closing(source.records(source_store)) as stream:
                    return await fill(target, stream, total)

        result: tuple[int, Counter[str]] = run(src, transfer, encryption)
        return result

    summarise(*into_new_store(dest, copy, options))


def _recode(path: str, old: Encryption | None, new: Encryption | None, done: str) -> None:
    """Convert the store at ``path`` from the key ``old`` to the key ``new``
    (`compaction.recode_lmdb`, `compaction.recode_sqlite`), and say ``done``."""
    if path.startswith(POSTGRES_SCHEMES):
        fail(CONVERTED_BY_MIGRATE, EXIT_USAGE)
    backend, plain = locate(path)
    old_key, new_key = resolved(old), resolved(new)
    recode = compaction.recode_lmdb if backend is LmdbStore else compaction.recode_sqlite
    try:
        recode(plain, old_key, new_key)
    except StoreError as exc:
        store_failure(plain, exc)
    click.echo(f"{plain}: {done}")


@main.command()
@click.argument("path")
@key_options(what="the key to encrypt with (a keyring entry is created if missing)")
def encrypt(path: str, key_file: str | None, keyring: tuple[str, str] | None) -> None:
    """Encrypt the plain store at PATH in place, every record sealed. An LMDB store is
    rewritten into a new file renamed into place (as compact does: it needs the store to
    itself); a SQLite store is converted in one transaction, then vacuumed. Older copies
    (snapshots, backups) stay plain."""
    key = encryption_option(key_file, keyring, create=True)
    if key is None:
        fail("give the key to encrypt with: --key-file or --keyring", EXIT_USAGE)
    _recode(path, None, key, "encrypted")


@main.command()
@click.argument("path")
@key_options()
def decrypt(path: str, key_file: str | None, keyring: tuple[str, str] | None) -> None:
    """Decrypt the encrypted store at PATH in place (as encrypt does): afterwards it holds
    every key and name in the clear, and opens without a key."""
    key = encryption_option(key_file, keyring)
    if key is None:
        fail("give the store's key: --key-file or --keyring", EXIT_USAGE)
    _recode(path, key, None, "decrypted: it is now stored in the clear")


@main.command()
@click.argument("path")
@key_options()
@key_options("new-", "the new key (a keyring entry is created if missing)")
def rekey(
    path: str,
    key_file: str | None,
    keyring: tuple[str, str] | None,
    new_key_file: str | None,
    new_keyring: tuple[str, str] | None,
) -> None:
    """Re-encrypt the encrypted store at PATH under a new key, in place (as encrypt does).
    Snapshots and backups taken before stay under the old key."""
    old = encryption_option(key_file, keyring)
    new = encryption_option(new_key_file, new_keyring, create=True)
    if old is None or new is None:
        fail("give the store's key and the new one (--key-file and --new-key-file)", EXIT_USAGE)
    _recode(path, old, new, "re-encrypted under the new key")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
def keygen(file: str) -> None:
    """Write a new random key to FILE (which must not exist), owner-only, as 64
    hexadecimal digits: for --key-file and encryption=EncryptionKey.from_file(...)."""
    try:
        fd = files.open_file(file)
    except FileExistsError:
        fail(f"{file!r} already exists: keygen writes a new key file", EXIT_NOT_EMPTY)
    except OSError as exc:
        fail(f"cannot write {file!r}: {exc.strerror}", EXIT_USAGE)
    with os.fdopen(fd, "w") as output:
        output.write(EncryptionKey.generate().hex() + "\n")
    click.echo(file)
