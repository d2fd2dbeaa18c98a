"""What the stores on a SQL database share (`SqliteStore`, `PostgresStore`): the handles of
one database, one per device, and closing the database with the last of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, cast

from lmdbstore import validate
from lmdbstore.derived import DerivedMethods
from lmdbstore.domains import AllDomains
from lmdbstore.kinds import TABLES_OF
from lmdbstore.storage.transaction import TransactionStorage
from lmdbstore.types import REPORT_DOMAINS

if TYPE_CHECKING:
    from lmdbstore.storage.sql import Connection, SqlStorage

D = TypeVar("D")


def rows_per_domain(conn: Connection, details: dict[str, int]) -> dict[str, int]:
    """The rows of every device per domain, for `resource_report`: of the kinds' tables,
    and of an encrypted store's ``sealed`` table (its items, index entries included, as
    LMDB counts them); each table's (and each domain's sealed rows') count goes into
    ``details`` too."""
    entries = dict.fromkeys(REPORT_DOMAINS, 0)
    for domain, names in TABLES_OF.items():
        for table in names:
            rows = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            details[f"rows.{table}"] = rows
            entries[domain] += rows
    sealed = "SELECT db, count(*) FROM sealed WHERE db != 'meta' GROUP BY db"
    for domain, rows in conn.execute(sealed):
        details[f"rows.sealed.{domain}"] = int(rows)
        entries[domain] = entries.get(domain, 0) + int(rows)
    return entries


class SqlStore(AllDomains, DerivedMethods, Generic[D]):
    """A store whose storage is a `SqlStorage` of a database of type ``D`` (which counts
    the handles open on it in ``references``)."""

    _storage_class: ClassVar[type[Any]]
    """The `SqlStorage` subclass of the backend."""

    def for_device(self, device_id: int) -> Self:
        """A handle on the same database bound to ``device_id``; close it like the store.
        The connections close with the last handle."""
        validate.u32(device_id, "device_id")
        database = self._db()
        cast("Any", database).references += 1
        return type(self)(self._storage_class(database), device_id)._with_limits(self._limits)

    def _db(self) -> D:
        """The database of this handle (of its store, on a transaction handle)."""
        storage = self._storage_open()
        if isinstance(storage, TransactionStorage):
            storage = storage.real
        return cast("D", cast("SqlStorage", storage).database)

    @property
    def encrypted(self) -> bool:
        """Whether the store is encrypted (opened with its key: `lmdbstore.encryption`),
        a SQLite file or a PostgreSQL schema alike."""
        return cast("SqlStorage", self._storage).database.cipher is not None

    @property
    def path(self) -> str:
        """Where the database is (see each backend's)."""
        return cast("str", cast("Any", self._storage).path)

    async def close(self) -> None:
        """Close this handle (idempotent); the last handle closes the connections once the
        calls in flight are done (see `_close_database`). On a transaction handle: discard
        the transaction."""
        if self._closed:
            return
        self._closed = True
        self._release_device()
        if isinstance(self._storage, TransactionStorage):
            return
        database = cast("Any", cast("SqlStorage", self._storage).database)
        database.references -= 1
        if database.references == 0:
            await self._close_database(database)

    @staticmethod
    async def _close_database(database: Any) -> None:
        """Close the database's connections (each backend's own way)."""
        raise NotImplementedError
