"""LmdbStore: the default backend, one LMDB environment per path."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Self, cast

import lmdb

from lmdbstore import files, validate
from lmdbstore.derived import DerivedMethods
from lmdbstore.domains import AllDomains
from lmdbstore.domains.handle import NO_LIMITS
from lmdbstore.encryption import Encryption, check_encryption
from lmdbstore.errors import DatabaseError, ValidationError
from lmdbstore.keys import FORMAT_VERSION
from lmdbstore.protocols import Backend, with_docs_of
from lmdbstore.storage import lmdb as engine
from lmdbstore.storage.lmdb import LmdbReadView, wrap_lmdb_error
from lmdbstore.storage.transaction import TransactionStorage
from lmdbstore.types import REPORT_DOMAINS, Limits, ResourceReport

if TYPE_CHECKING:
    from lmdbstore.storage.view import ReadView


@with_docs_of(Backend)
class LmdbStore(AllDomains, DerivedMethods):
    """The store on LMDB. Open with `open`; close with `close` or ``async with``.

    Every handle of one path in a process shares one environment and one writer thread;
    `for_device` gives a handle bound to another device of the same database.
    """

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        device_id: int = 1,
        durability: engine.Durability = "normal",
        map_size: int | None = None,
        max_size: int | None = None,
        sync_interval: float = engine.DEFAULT_SYNC_INTERVAL,
        max_readers: int = engine.DEFAULT_MAX_READERS,
        readonly: bool = False,
        limits: Limits = NO_LIMITS,
        encryption: Encryption | None = None,
    ) -> Self:
        """Open (creating if needed) the store in directory ``path`` for ``device_id``.

        ``readonly=True`` opens an existing store for inspection: LMDB's read-only mode, no
        file created, nothing written (``data.mdb`` keeps its bytes); every write raises
        `ReadOnlyError`. ``durability``, ``map_size``, ``max_size`` and ``sync_interval``
        then do not apply. A store that has not yet recovered from a restart of the machine
        is refused (a writable open recovers it), and so is a path with no store.

        ``durability`` (see the durability page of the docs):

        - ``"normal"`` (default): a commit is not fsynced, and a checkpoint every
          ``sync_interval`` seconds (default 0.1) is. A process crash loses nothing
          acknowledged; a power loss or OS crash leaves the store intact at its last
          checkpoint, losing at most the writes of the last ``sync_interval`` (plus the few
          milliseconds a checkpoint takes) — the promise of SQLite's WAL
          ``synchronous=NORMAL``.
        - ``"full"``: every commit is fsynced before its call returns; nothing acknowledged
          is ever lost.

        ``map_size`` is the initial map (default 64 MiB, or ``max_size`` when smaller); it
        doubles by itself when full, up to ``max_size`` (no bound when ``None``).
        ``max_readers`` (default 256) sizes the reader table of a new environment's lock
        file, which every process shares: the first process to open the store sets it. Each
        open read transaction (a point read, a scan, the checkpoint's pin) holds a slot.

        ``limits``: the size caps of `Limits` (none by default), enforced by the writes of
        this handle, of its `for_device` handles and of their transactions; another open
        of the path (another process) has its own.

        ``encryption``: the store's `EncryptionKey`, or a function that returns it (called
        once, on a worker thread; see `lmdbstore.encryption`). A new store opened with a
        key is encrypted from its first record on; an encrypted store must be opened with
        its key, and a plain store holding records is refused with one (convert it with
        ``lmdbstore encrypt``). Needs the ``encryption`` extra (`cryptography`).

        Raises:
            ValidationError: a bad option (``durability="process"`` was removed: ``"normal"``
                is as fast and survives power loss).
            StoreConnectionError: the path cannot be opened, is a file, is open in this
                process with other options, or in another process at the other
                durability; a wrong or missing encryption key, or a key provider that
                fails.
            MigrationError: the store was written by a newer lmdbstore.
        """
        directory = validate.store_path(path, "lmdb://", "directory")
        validate.u32(device_id, "device_id")
        if durability in engine.REMOVED_LEVELS:
            raise ValidationError(engine.REMOVED_LEVELS[durability])
        if durability not in engine.FLAGS:
            raise ValidationError(f"durability must be 'normal' or 'full', not {durability!r}")
        if (
            isinstance(sync_interval, bool)
            or not isinstance(sync_interval, int | float)
            or not 0.001 <= sync_interval <= 60
        ):
            raise ValidationError(
                f"sync_interval must be seconds from 0.001 to 60, not {sync_interval!r}"
            )
        if map_size is None:
            map_size = engine.DEFAULT_MAP_SIZE
            if max_size is not None:
                map_size = min(map_size, validate.u64(max_size, "max_size"))
        size = validate.u64(map_size, "map_size")
        if size < 1 << 16:
            raise ValidationError(f"map_size must be at least 65536 bytes, not {size}")
        if max_size is not None and validate.u64(max_size, "max_size") < size:
            raise ValidationError(f"max_size {max_size} is smaller than map_size {size}")
        caps = validate.limits(limits)
        key = check_encryption(encryption)
        readers = validate.u32(max_readers, "max_readers")
        if not 1 <= readers <= 1 << 16:
            raise ValidationError(f"max_readers must be from 1 to 65536, not {max_readers!r}")
        mode: engine.Mode = "readonly" if validate.flag(readonly, "readonly") else durability
        shared = await cls._off_loop(
            engine.acquire, directory, mode, size, max_size, float(sync_interval), readers, key
        )
        return cls(shared, device_id)._with_limits(caps)

    def for_device(self, device_id: int) -> Self:
        """A handle on the same database bound to ``device_id``; close it like the store.
        The environment closes with its last handle."""
        validate.u32(device_id, "device_id")
        shared = self._lmdb()
        engine.add_reference(shared)
        return type(self)(shared, device_id)._with_limits(self._limits)

    def _lmdb(self) -> engine.Engine:
        """The environment of this (not transaction) handle."""
        return cast("engine.Engine", self._storage_open())

    @property
    def path(self) -> str:
        """The directory of the environment."""
        return cast("engine.Engine", self._storage).path

    @property
    def encrypted(self) -> bool:
        """Whether the store is encrypted (opened with its key: `lmdbstore.encryption`)."""
        return cast("engine.Engine", self._storage).cipher is not None

    @property
    def format_version(self) -> int:
        """The on-disk format of the environment (an open store always has this library's:
        another one is refused at open)."""
        return FORMAT_VERSION

    async def close(self) -> None:
        """Close this handle (idempotent). Queued writes finish first. On a transaction
        handle: discard the transaction."""
        if self._closed:
            return
        self._closed = True
        self._release_device()
        if not isinstance(self._storage, TransactionStorage):
            await self._off_loop(engine.release, cast("engine.Engine", self._storage))

    async def copy_to(self, target: str) -> None:
        """Copy the whole environment (every device), hot and consistent, into the new
        directory ``target``, compacted (LMDB's compacting copy). Writers go on meanwhile."""
        target = validate.store_path(target, "lmdb://", "directory")
        engine = self._lmdb()

        def copy() -> None:
            try:
                files.make_dir(target)
                engine.env.copy(target, compact=True)
                files.restrict(os.path.join(target, "data.mdb"))
            except FileExistsError:
                raise DatabaseError(f"{target!r} already exists") from None
            except OSError as exc:
                raise DatabaseError(f"cannot write {target!r}: {exc}") from None
            except lmdb.Error as exc:
                raise wrap_lmdb_error(exc) from None

        await self._read_in_thread(lambda _view: copy())

    async def resource_report(self) -> ResourceReport:
        """Bytes on disk, entries per domain (every key of the sub-database, index entries
        included), map size and use, reader slots in use (all processes)."""
        engine = self._lmdb()

        def report(view: ReadView) -> ResourceReport:
            env = engine.env
            info = env.info()
            stat = env.stat()
            entries = {name: cast("LmdbReadView", view).entries(name) for name in REPORT_DOMAINS}
            return ResourceReport(
                backend="lmdb",
                path=engine.path,
                bytes_on_disk=sum(
                    entry.stat().st_size for entry in os.scandir(engine.path) if entry.is_file()
                ),
                entries=entries,
                durability=engine.durability,
                map_size=info["map_size"],
                map_used=(info["last_pgno"] + 1) * stat["psize"],
                readers_in_use=info["num_readers"],
                max_readers=info["max_readers"],
            )

        return await self._read_in_thread(report)
