"""One opener for every backend: ``await lmdbstore.open(url, **options)``.

The scheme picks the backend: ``lmdb://PATH`` (`LmdbStore`),
``sqlite://PATH`` (`SqliteStore`), ``postgresql://…`` or ``postgres://…``
(`PostgresStore`, with the ``postgres`` extra installed), ``memory://``
(`MemoryStore`); a plain path is LMDB. The options are the chosen
backend's own (``device_id`` and ``limits``, the size caps of `Limits`, for all;
``durability``, ``map_size``, ``max_size`` for LMDB; ``synchronous`` for SQLite;
``schema`` and ``pool_size`` for PostgreSQL).
"""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Any

from lmdbstore import validate
from lmdbstore.errors import StoreConnectionError, ValidationError
from lmdbstore.lmdb_store import LmdbStore
from lmdbstore.memory_store import MemoryStore
from lmdbstore.sqlite_store import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from lmdbstore.protocols import Backend

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SCHEMES = ("lmdb://", "sqlite://", *POSTGRES_SCHEMES, "memory://")


def postgres_store() -> type[Any]:
    """`PostgresStore`, imported when first asked for: psycopg is an optional dependency."""
    try:
        from lmdbstore.postgres_store import PostgresStore
    except ImportError as exc:
        raise StoreConnectionError(
            f"PostgresStore needs psycopg 3: pip install 'lmdbstore[postgres]' ({exc})"
        ) from None
    return PostgresStore


async def open(url: str | os.PathLike[str], **options: Any) -> Backend:
    """Open the store that ``url`` names, creating it if needed (see the module docstring
    for the schemes and options).

    Raises:
        StoreConnectionError: an unknown scheme, a path of the wrong kind for its backend
            (a file for LMDB, a directory for SQLite), SQLite's ``:memory:``, a PostgreSQL
            server that cannot be reached (or psycopg not installed), or a store that cannot
            be opened. Nothing is created.
        ValidationError: an option the backend does not take, or a bad option value.
        MigrationError: the store was written by a newer lmdbstore.
    """
    return await open_with((LmdbStore, SqliteStore, MemoryStore), url, options, postgres_store)


async def open_with(
    classes: tuple[type[LmdbStore], type[SqliteStore], type[MemoryStore]],
    url: str | os.PathLike[str],
    options: dict[str, Any],
    postgres: Callable[[], type[Any]],
) -> Backend:
    """`open`, with these classes for the LMDB, SQLite and memory backends, and
    ``postgres()`` for PostgreSQL's (the blocking API's, for `lmdbstore.sync.open`)."""
    lmdb_class, sqlite_class, memory_class = classes
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url:
        raise ValidationError(f"url must be a non-empty str or path, not {url!r}")
    scheme = validate.URL_SCHEME.match(url)
    if scheme is not None and scheme.group(0) not in SCHEMES:
        raise StoreConnectionError(
            f"no backend for {scheme.group(0)} URLs in this version (known: {', '.join(SCHEMES)})"
        )
    if url.startswith(POSTGRES_SCHEMES):
        postgres_class = postgres()
        check_options(postgres_class.open, options)
        found: Backend = await postgres_class.open(url, **options)
        return found
    if url.startswith("memory://"):
        if url != "memory://":
            raise StoreConnectionError(f"a memory:// URL names nothing more, not {url!r}")
        check_options(memory_class, options)
        return memory_class(**options)
    backend = sqlite_class if url.startswith("sqlite://") else lmdb_class
    check_options(backend.open, options)
    store: Backend = await backend.open(url, **options)
    return store


def check_options(opener: Callable[..., object], options: dict[str, Any]) -> None:
    accepted = [
        name
        for name, parameter in inspect.signature(opener).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not name.startswith("_")
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValidationError(
            f"unknown option(s) {', '.join(unknown)}; this backend takes {', '.join(accepted)}"
        )
