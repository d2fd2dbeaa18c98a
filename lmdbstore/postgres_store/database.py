"""The PostgreSQL engine of PostgresStore: a pool of connections, serializable writes.

- **Connections.** A psycopg 3 pool (`psycopg_pool.ConnectionPool`) of autocommit
  connections whose ``search_path`` is the store's own schema (``lmdbstore`` by default),
  so that one database can hold the stores of several fleets, and nothing else of the
  database is touched.
- **Reads.** A point read is one statement in autocommit (one round trip); any other read
  runs in one ``REPEATABLE READ, READ ONLY`` transaction: one snapshot for its statements.
- **Writes.** In ``SERIALIZABLE`` transactions, group-committed by a writer thread
  (`lmdbstore.storage.writer`): the writes of this process that arrive while one commits
  are committed together in the next transaction, pipelined, on one pooled connection, so
  64 writers in flight cost a few transactions and round trips, not 64. When PostgreSQL
  refuses to serialise a transaction with another process's or host's (a serialization
  failure or a deadlock), it is rolled back and run again, with backoff, for up to
  `RETRY_SECONDS`. So every read-modify-write (a tally, the LID write sequence, the device
  counter) and a transaction's check of what it read, made at its commit
  (`lmdbstore.storage.transaction`), are exact across hosts.
- **Errors.** No psycopg exception reaches a caller: an unreachable server is a
  `StoreConnectionError`, anything else a `DatabaseError`.

The schema (`lmdbstore.storage.ddl`, PostgreSQL's types) is created or migrated by the first
open, under a session advisory lock taken before the migrating transaction begins, so that
stores opened at once on many hosts migrate once. Statements are written with ``?``
parameters (`lmdbstore.storage.sql`); `QmarkConnection` gives them to psycopg as ``%s``.
"""

from __future__ import annotations

import contextlib
import re
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import psycopg
import psycopg.errors
from psycopg import IsolationLevel, sql
from psycopg_pool import ConnectionPool, PoolTimeout

from lmdbstore.devices import Devices
from lmdbstore.errors import (
    DatabaseError,
    MigrationError,
    NoStoreError,
    ReadOnlyError,
    StoreClosedError,
    StoreConnectionError,
    ValidationError,
)
from lmdbstore.opener import POSTGRES_SCHEMES
from lmdbstore.storage import ddl
from lmdbstore.storage.gate import WriteGate
from lmdbstore.storage.sealed_rows import sql_cipher
from lmdbstore.storage.writer import Request, Writer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from lmdbstore.encryption import EncryptionKey
    from lmdbstore.storage.sealed import Cipher
    from lmdbstore.storage.sql import Cursor

R = TypeVar("R")

MIGRATIONS = ddl.migrations(ddl.POSTGRES)
"""``MIGRATIONS[n]``: the statements that take the schema from version ``n`` to ``n + 1``."""

VERSION_TABLE = ddl.version_table(ddl.POSTGRES)

RETRY_SECONDS = 60.0
"""How long a write that PostgreSQL cannot serialise with others is retried before it fails."""

CONNECT_SECONDS = 10.0
"""How long opening waits for the server, and a call for a free pooled connection."""

_RETRIED = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)

EXTRA_TABLE = "snapshot_extra"
"""The one-row table of a snapshot's ``extra_content`` (`PgDatabase.copy_schema`)."""


class QmarkConnection:
    """A psycopg connection that takes the ``?`` parameters of `lmdbstore.storage.sql`'s
    statements (no statement of ours holds a ``?`` or a ``%`` of its own). ``streaming``
    (reads only): a statement's rows are iterated through a server-side cursor, fetched
    `STREAM_ROWS` at a time, so that a walk's memory does not grow with the store."""

    __slots__ = ("_conn", "_deferred", "_pipeline", "_streaming")

    _translated: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        streaming: bool = False,
        pipeline: psycopg.Pipeline | None = None,
    ) -> None:
        self._conn = conn
        self._streaming = streaming
        self._pipeline = pipeline
        self._deferred: list[tuple[str, list[Sequence[Any]]]] = []

    @classmethod
    def _sql(cls, statement: str) -> str:
        found = cls._translated.get(statement)
        if found is None:
            found = cls._translated[statement] = statement.replace("?", "%s")
        return found

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> Cursor:
        if self._streaming:
            return _Streamed(self._conn, self._sql(statement), parameters)
        if self._deferred:
            self.flush()
        cursor = self._conn.execute(self._sql(statement), parameters)
        if self._pipeline is not None:
            return _Piped(cursor, self._pipeline)
        return cursor

    def executemany(self, statement: str, parameters: Iterable[Sequence[Any]], /) -> None:
        """Run ``statement`` once for each row of ``parameters``; on a pipelined connection,
        later (`flush`), together with the rows of the same statement that follow it, until
        another statement: psycopg's per-statement work, not the server's, is most of a
        small write's cost, and one ``executemany`` of 64 rows costs a fraction of 64."""
        rows = parameters if isinstance(parameters, list) else list(parameters)
        if self._pipeline is not None:
            if self._deferred and self._deferred[-1][0] == statement:
                self._deferred[-1][1].extend(rows)
            else:
                self._deferred.append((statement, rows))
            return
        self._executemany(statement, rows)

    def _executemany(self, statement: str, rows: list[Sequence[Any]]) -> None:
        if len(rows) == 1:  # psycopg's executemany costs a pipeline sync of its own
            self._conn.execute(self._sql(statement), rows[0])
            return
        with self._conn.cursor() as cursor:
            cursor.executemany(self._sql(statement), rows)

    def flush(self) -> None:
        """Send the statements `executemany` has deferred, in order."""
        deferred, self._deferred = self._deferred, []
        for statement, rows in deferred:
            self._executemany(statement, rows)


class _Piped:
    """A cursor of a pipelined statement: its result is waited for when it is read (a
    fetch does that by itself; ``rowcount`` syncs the pipeline first)."""

    __slots__ = ("_cursor", "_pipeline")

    def __init__(self, cursor: psycopg.Cursor[Any], pipeline: psycopg.Pipeline) -> None:
        self._cursor = cursor
        self._pipeline = pipeline

    @property
    def rowcount(self) -> int:
        self._pipeline.sync()
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


STREAM_ROWS = 2000
"""Rows a streaming walk fetches from its server-side cursor at a time."""


class _Streamed:
    """A statement run when its rows are asked for: ``fetchone`` runs it at once, iterating
    runs it through a server-side cursor (see `QmarkConnection`)."""

    __slots__ = ("_conn", "_parameters", "_statement")

    rowcount = -1

    def __init__(self, conn: psycopg.Connection[Any], statement: str, parameters: Any) -> None:
        self._conn = conn
        self._statement = statement
        self._parameters = parameters

    def fetchone(self) -> Any:
        return self._conn.execute(self._statement, self._parameters).fetchone()

    def __iter__(self) -> Iterator[Any]:
        with self._conn.cursor(name=f"lmdbstore_walk_{id(self):x}") as cursor:
            cursor.itersize = STREAM_ROWS
            cursor.execute(self._statement, self._parameters)
            yield from cursor


_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def schema_name(value: object) -> str:
    """A schema name of letters, digits and ``_`` (not a digit first), at most 63 bytes:
    what PostgreSQL takes unquoted."""
    if not isinstance(value, str) or not _SCHEMA_NAME.fullmatch(value):
        raise ValidationError(
            f"schema must be 1-63 letters, digits or _ (not a digit first), not {value!r}"
        )
    return value


def split_url(url: object, schema: object) -> tuple[str, str]:
    """The server URL (what libpq takes) and the schema of ``url`` (``#schema`` at its
    end) and the ``schema`` option: the option when the URL names none, the default
    ``lmdbstore`` when neither does; both, differing, are a `ValidationError`."""
    if not isinstance(url, str) or not url.startswith(POSTGRES_SCHEMES):
        raise ValidationError(f"url must be a postgresql:// URL, not {url!r}")
    server, _, named = url.partition("#")
    if named and schema is not None and named != schema:
        raise ValidationError(f"the URL names schema {named!r} and schema= says {schema!r}")
    return server, schema_name(named or ("lmdbstore" if schema is None else schema))


def said(exc: BaseException) -> str:
    """What psycopg says of ``exc``, on one line (libpq's messages span several)."""
    return " ".join(str(exc).split())


def shown(url: str) -> str:
    """``url`` without its password, for messages and `PostgresStore.path`."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class PgDatabase:
    """One schema of a PostgreSQL database, and the pool of connections to it."""

    _expected: ClassVar[dict[tuple[str, str], str] | None] = None

    def __init__(self, url: str, schema: str, pool_size: int, readonly: bool = False) -> None:
        self.url = url
        self.schema = schema
        self.readonly = readonly
        self.path = f"{shown(url)}#{schema}"
        search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute(search_path)

        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            configure=configure,
            timeout=CONNECT_SECONDS,
            open=False,
        )
        self.references = 1
        self.devices = Devices()
        self.gate = WriteGate()  # see lmdbstore.storage.gate
        self.cipher: Cipher | None = None
        """The keys of an encrypted store (`lmdbstore.storage.sealed`), set by the open."""
        self._writer_conn: psycopg.Connection[Any] | None = None
        self.writer = Writer(
            f"lmdbstore-writer:{self.path}", self._commit, self._writing_connection
        )
        self.closed = False

    @classmethod
    def open(
        cls,
        url: str,
        schema: str,
        pool_size: int,
        readonly: bool = False,
        key: EncryptionKey | None = None,
    ) -> PgDatabase:
        """Connect, then create the schema or migrate it to the current version; with
        ``readonly``, check that it is at the current version instead; and check ``key``
        (`lmdbstore.storage.sealed_rows.sql_cipher`) in the same transaction (blocking)."""
        try:  # one connection first: a wrong URL or a server down is told at once
            first = psycopg.connect(url, connect_timeout=int(CONNECT_SECONDS), autocommit=True)
        except psycopg.Error as exc:
            raise StoreConnectionError(
                f"cannot connect to PostgreSQL at {shown(url)}: {said(exc)}"
            ) from None
        with first:  # closed at the end, which releases the migration lock
            return cls._opened(first, url, schema, pool_size, readonly, key)

    @classmethod
    def _opened(
        cls,
        first: psycopg.Connection[Any],
        url: str,
        schema: str,
        pool_size: int,
        readonly: bool,
        key: EncryptionKey | None,
    ) -> PgDatabase:
        """`open`, once connected (``first``)."""
        database = cls(url, schema, pool_size, readonly)
        try:
            database.pool.open(wait=True, timeout=CONNECT_SECONDS)
            where = repr(database.path)
            if readonly:

                def checked(conn: QmarkConnection) -> Cipher | None:
                    database._check_current(conn)
                    return sql_cipher(conn, where, key, writable=False)

                database.cipher = database.read_sync(checked)
            else:

                def migrated(conn: QmarkConnection) -> Cipher | None:
                    database._migrate(conn)
                    return sql_cipher(conn, where, key, writable=True)

                # One open of the schema migrates at a time, on every host: each takes
                # its transaction's snapshot once the one before has committed, and so
                # sees its tables. (A lock taken inside that transaction would come after
                # its snapshot: hosts opening a new schema at once failed on each other's
                # CREATE TABLE.)
                lock = "SELECT pg_advisory_lock(hashtext(%s))"
                first.execute(lock, (f"lmdbstore:{schema}",))
                database.cipher = database.write_blocking(migrated)
        except (PoolTimeout, psycopg.Error) as exc:
            database.close()
            raise StoreConnectionError(
                f"cannot connect to PostgreSQL at {shown(url)}: {said(exc)}"
            ) from None
        except BaseException:
            database.close()
            raise
        return database

    def _migrate(self, conn: QmarkConnection) -> None:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        ddl.migrate(conn, self.tables(conn), MIGRATIONS, VERSION_TABLE)

    def shape(self, conn: QmarkConnection, schema: str | None = None) -> dict[tuple[str, str], str]:
        """Each table and index of the store's schema (or ``schema``), by kind and name,
        with what defines it: a table's columns (name, type, collation, nullability, in
        order), an index's definition."""
        schema = self.schema if schema is None else schema
        found: dict[tuple[str, str], str] = {}
        columns = conn.execute(
            "SELECT table_name, string_agg(column_name || ' ' || data_type || ' '"
            " || coalesce(collation_name, '') || ' ' || is_nullable, ', '"
            " ORDER BY ordinal_position) FROM information_schema.columns"
            " WHERE table_schema = ? GROUP BY table_name",
            (schema,),
        )
        for table, definition in columns:
            found["table", table] = definition
        indexes = conn.execute(
            "SELECT indexname, replace(indexdef, ?, '') FROM pg_indexes WHERE schemaname = ?",
            (f"{schema}.", schema),
        )
        for name, definition in indexes:
            found["index", name] = definition
        return found

    def expected_shape(self) -> dict[tuple[str, str], str]:
        """`shape` of the schema this version creates: made in a scratch schema inside a
        transaction that is rolled back (once per process)."""
        if PgDatabase._expected is None:
            scratch = "lmdbstore_expected_shape"
            level = IsolationLevel.READ_COMMITTED
            with self._transaction(level, read_only=False, rollback=True) as conn:
                conn.execute(f'CREATE SCHEMA "{scratch}"')
                conn.execute(f'SET LOCAL search_path TO "{scratch}"')
                ddl.migrate(conn, set(), MIGRATIONS, VERSION_TABLE)
                PgDatabase._expected = self.shape(conn, scratch)
        return PgDatabase._expected

    def _check_current(self, conn: QmarkConnection) -> None:
        version = ddl.stored_version(conn, self.tables(conn), len(MIGRATIONS))
        if version is None:
            raise NoStoreError(
                f"no lmdbstore store in schema {self.schema!r} (readonly creates none)"
            )
        if version < len(MIGRATIONS):
            raise StoreConnectionError(
                f"schema version {version} must be migrated first: open it once without readonly"
            )

    def tables(self, conn: QmarkConnection) -> set[str]:
        """The tables of the store's schema."""
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            (self.schema,),
        )
        return {row[0] for row in rows}

    # -- reads and writes --------------------------------------------------------------------

    def check_open(self) -> None:
        if self.closed:
            raise StoreClosedError("this store is closed")

    def query_sync(self, fn: Callable[[QmarkConnection], R]) -> R:
        """``fn(connection)`` in autocommit, on this thread: for one statement, which runs
        on one snapshot by itself."""
        with self._connection() as conn:
            try:
                return fn(QmarkConnection(conn))
            except psycopg.Error as exc:
                raise _error(exc) from None

    @contextlib.contextmanager
    def _transaction(
        self,
        level: IsolationLevel,
        *,
        read_only: bool,
        streaming: bool = False,
        rollback: bool = False,
    ) -> Iterator[QmarkConnection]:
        """One transaction at ``level`` on a pooled connection (``rollback``: always rolled
        back); psycopg's errors in it become lmdbstore's."""
        with self._connection() as conn:
            conn.isolation_level = level
            conn.read_only = read_only
            try:
                with conn.transaction(force_rollback=rollback):
                    yield QmarkConnection(conn, streaming=streaming)
            except psycopg.Error as exc:
                raise _error(exc) from None

    def read_sync(self, fn: Callable[[QmarkConnection], R]) -> R:
        """``fn(connection)`` in one repeatable-read, read-only transaction."""
        with self._transaction(IsolationLevel.REPEATABLE_READ, read_only=True) as conn:
            return fn(conn)

    async def write(self, fn: Callable[[QmarkConnection], R]) -> R:
        """``fn(connection)`` committed in a serializable transaction, with the writes
        queued beside it, by the writer thread (see the module docstring and
        `lmdbstore.storage.writer`, which says what a cancelled write does)."""
        self._check_writable()
        return await self.writer.submit(fn)

    def write_blocking(self, fn: Callable[[QmarkConnection], R]) -> R:
        """`write`, for a thread that waits for the commit."""
        self._check_writable()
        return self.writer.submit_blocking(fn)

    def _check_writable(self) -> None:
        self.check_open()
        if self.readonly:
            raise ReadOnlyError(f"{self.path!r} is open read-only")

    def _commit(self, batch: list[Request]) -> None:
        """Commit ``batch`` (`lmdbstore.storage.writer`) in one serializable transaction,
        pipelined: each write's operation in turn, as one transaction would run them, their
        statements sent without waiting for each other's results (a read waits for what
        was sent before it). An operation that raises is left out and the rest run again
        without it. PostgreSQL reports a statement's error at the next read or at the
        commit, which may not be its write's: then each write runs again alone, so that
        only the guilty one fails. A transaction PostgreSQL cannot serialise with another
        process's runs again, with backoff, for up to `RETRY_SECONDS`. On the connection
        `_writing_connection` holds."""
        conn = cast("psycopg.Connection[Any]", self._writer_conn)
        if not self._commit_together(conn, batch):
            for write in batch:
                if write.error is None:
                    self._commit_together(conn, [write])

    @contextlib.contextmanager
    def _writing_connection(self) -> Iterator[None]:
        """A pooled connection for the writer thread's next batch (`Writer`'s ``hold``):
        taken before the batch is, so that a write whose caller is cancelled while the
        pool has no free connection is still withdrawn, as one waiting for LMDB's lock."""
        with self._connection() as conn:
            conn.isolation_level = IsolationLevel.SERIALIZABLE
            conn.read_only = False
            self._writer_conn = conn
            try:
                yield
            finally:
                self._writer_conn = None

    def _commit_together(self, conn: psycopg.Connection[Any], batch: list[Request]) -> bool:
        """Commit ``batch`` in one transaction (see `_commit`); False when PostgreSQL
        reported an error in a transaction of several writes, none of them committed."""
        pending = batch
        delay = 0.001
        deadline = time.monotonic() + RETRY_SECONDS
        while pending:
            culprit: Request | None = None
            together = len(pending) > 1
            try:
                # Pipelined when several: alone, a write is faster without the pipeline's
                # own cost (measured: 267 against 374 µs for one upsert's transaction).
                piped = conn.pipeline() if together else contextlib.nullcontext()
                with piped as pipeline, conn.transaction():
                    view = QmarkConnection(conn, pipeline=pipeline)
                    for write in pending:
                        culprit = write
                        write.result = write.op(view)
                    culprit = None
                    view.flush()
                return True
            except _RETRIED as exc:
                if time.monotonic() >= deadline:
                    error = DatabaseError(
                        f"PostgreSQL could not serialise this write with others for"
                        f" over {RETRY_SECONDS:.0f} s: {said(exc)}"
                    )
                    for write in pending:
                        write.error = error
                    return True
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
                continue
            except psycopg.Error as exc:
                if together:
                    return False
                pending[0].error = _error(exc)
            except Exception as exc:  # the operation's own error
                assert culprit is not None
                culprit.error = exc
            pending = [write for write in pending if write.error is None]
        return True

    def _connection(self) -> Any:
        """A pooled connection (a context manager), or the reason there is none."""
        self.check_open()
        return _Pooled(self.pool)

    def snapshot(self) -> contextlib.AbstractContextManager[QmarkConnection]:
        """One repeatable-read, read-only transaction for a long walk (an export, a
        migration), whose scans stream through server-side cursors: the walk's memory does
        not grow with the store."""
        return self._transaction(IsolationLevel.REPEATABLE_READ, read_only=True, streaming=True)

    def schema_exists(self, name: str) -> bool:
        """Whether the database has a schema ``name``."""
        return self.query_sync(lambda conn: _has_schema(conn, name))

    def rename_schema(self, target: str) -> None:
        """Give the store's schema the name ``target`` (which must be free)."""
        self.write_blocking(
            lambda conn: conn.execute(f'ALTER SCHEMA "{self.schema}" RENAME TO "{target}"')
        )

    def drop_schema(self) -> None:
        """Drop the store's schema and everything in it."""
        self.write_blocking(lambda conn: conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE'))

    def copy_schema(self, target: str, extra: bytes | None) -> None:
        """Create the schema ``target`` with lmdbstore's tables and copy every row of this
        store's into them, in one repeatable-read transaction (a consistent copy while
        writers go on); ``extra``: the content of its one-row table `EXTRA_TABLE`."""
        with self._transaction(IsolationLevel.REPEATABLE_READ, read_only=False) as conn:
            self._copy(conn, target, extra)

    def _copy(self, conn: QmarkConnection, target: str, extra: bytes | None) -> None:
        if _has_schema(conn, target):
            raise DatabaseError(f"schema {target!r} already exists")
        conn.execute(f'CREATE SCHEMA "{target}"')
        conn.execute(f'SET LOCAL search_path TO "{target}"')
        ddl.migrate(conn, set(), MIGRATIONS, VERSION_TABLE)
        # A snapshot's extra content is its own, not the store's: a copy of it leaves it.
        for table in sorted(self.tables(conn) - {"schema_version", EXTRA_TABLE}):
            conn.execute(f'INSERT INTO "{target}".{table} SELECT * FROM "{self.schema}".{table}')
        if extra is not None:
            conn.execute(f"CREATE TABLE {EXTRA_TABLE} (content BYTEA NOT NULL)")
            conn.execute(f"INSERT INTO {EXTRA_TABLE} VALUES (?)", (extra,))

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Commit the queued writes, then close every connection (blocking); calls in
        flight end first."""
        try:
            self.writer.close()
        finally:
            self.closed = True
            self.pool.close()


def _has_schema(conn: QmarkConnection, name: str) -> bool:
    """Whether the database has a schema ``name``."""
    found = conn.execute(
        "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", (name,)
    ).fetchone()
    return found is not None


class _Pooled:
    """``pool.connection()``, its failure to give one a `StoreConnectionError`."""

    __slots__ = ("_context", "_pool")

    def __init__(self, pool: ConnectionPool[psycopg.Connection[Any]]) -> None:
        self._pool = pool

    def __enter__(self) -> psycopg.Connection[Any]:
        self._context = self._pool.connection()
        try:
            return self._context.__enter__()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreConnectionError(f"no connection to PostgreSQL: {said(exc)}") from None

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)  # type: ignore[arg-type]


def _error(exc: psycopg.Error) -> Exception:
    if isinstance(exc, psycopg.OperationalError):
        return StoreConnectionError(f"PostgreSQL: {said(exc)}")
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return MigrationError(f"the store's schema lacks a table: {said(exc)}")
    return DatabaseError(f"PostgreSQL error: {said(exc)}")
