"""Power-loss safety for LMDB commits that are not fsynced: checkpoints, recovery, creation.

With ``durability="normal"`` the environment commits with ``MDB_NOSYNC``: a commit writes its
pages and its meta page to the page cache and returns (a few microseconds). A process crash
loses nothing, since the kernel keeps the page cache. A power loss may leave any subset of
the unsynced pages on disk, so the newest meta page may point at pages that never arrived.
What makes that recoverable:

- **A checkpoint** (every ``sync_interval``, and after `CHECKPOINT_COMMITS` commits, by a
  background thread): with every writer of every process held off (`WriterLock`) for the
  microseconds it takes, copy both meta pages and begin a read transaction at the last
  commit; then, writers going on, fsync the data file and write the meta pages to a slot of
  the side file ``lmdbstore.checkpoint`` (two slots ordered by transaction id, each with a
  digest, fdatasynced: see "the checkpoint file" below). LMDB never reuses a page that a
  reader can still see, so no commit of any process writes over the checkpoint's pages:
  they stay on disk as synced. The previous checkpoint's reader is released only once the
  new slot is durable.
- **Recovery**: the checkpoint file records the boot it was written in
  (``/proc/sys/kernel/random/boot_id``). The first open after a reboot, with no process of
  the old boot alive, writes the saved meta pages back over ``data.mdb``'s and fsyncs it:
  the store is the checkpoint's, intact, and what was committed after it is gone. In the
  same boot only processes died and the page cache holds every commit, so nothing is
  restored. So that the checkpoint named in the file is always held by a live reader (or a
  dead process's slot not yet reclaimed), a process takes a checkpoint before its first
  write, before it reclaims reader slots of dead processes, and before its first commit
  after another process closed (closes are counted in ``lmdbstore.lock``).
- **One level per store at a time**: a process holding the store at ``"full"`` and another
  at ``"normal"`` would make a checkpoint forget fsynced commits, so each process holds a
  shared lock on its level's file and is refused while another process holds the other.
  ``"full"`` syncs and removes the checkpoint file when it opens.
- **Creation is atomic**: a new environment is built and fsynced in a private directory
  inside the store's, and its ``data.mdb`` is hard-linked into place (``link`` never
  replaces an existing file), so a power loss while a store is created leaves either no
  ``data.mdb`` or a complete one.

Where the boot id cannot be read (not Linux), a reboot cannot be told from a process crash,
so ``"normal"`` commits as ``"full"`` does there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import logging
import mmap
import os
import shutil
import struct
import tempfile
import threading
import time
from typing import TYPE_CHECKING

import lmdb

from lmdbstore.errors import StoreConnectionError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
LOCK_FILE = "lmdbstore.lock"
CHECKPOINT_FILE = "lmdbstore.checkpoint"
LEVEL_FILES = {"full": "lmdbstore.full", "normal": "lmdbstore.normal"}
DATA_FILE = "data.mdb"

log = logging.getLogger("lmdbstore.durability")

CHECKPOINT_COMMITS = 500
"""Commits after which a checkpoint runs before its interval is up: bounds what the pinned
snapshot keeps LMDB from reusing (a few pages per commit) and the size of the next fsync."""

MAX_PINNED_COMMITS = 4 * CHECKPOINT_COMMITS
"""Commits past the pinned checkpoint after which this process's writes wait for the next
one (`Checkpoints.pace`). No page that a commit frees is reused while the checkpoint before
it is pinned, so each commit writes fresh pages, which the next checkpoint must fsync. A
writer faster than the disk made each checkpoint longer than the last, and the file grew
without end: 10,000 sessions rewritten 1.5 million times in a row took 511 MB, and a commit
went from 16 to 26 µs. Paced, the file stays at about 67 MB and a commit at 20 µs. Bursts
shorter than this many commits never wait."""

PACE_WAIT = 1.0
"""Most seconds a write waits in `Checkpoints.pace`: a checkpoint that cannot finish (a
failing disk) slows writes, and never stops them."""

_MAGIC = b"lmdbstore-ckpt-2"
_HEAD = struct.Struct(">16s40sQI")  # magic, boot id, txnid, page size
_DIGEST = 32


def boot_id() -> str | None:
    """This boot's id, or ``None`` where the system does not say."""
    try:
        with open(BOOT_ID_FILE) as source:
            return source.read().strip()
    except OSError:
        return None


def fsync_directory(path: str) -> None:
    """Make the entries of directory ``path`` (creations, renames, removals) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_side_file(directory: str, name: str) -> int:
    return os.open(
        os.path.join(directory, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
    )


class WriterLock:
    """What every write transaction, checkpoint, map growth and recovery of a store holds:
    a lock of this process (threads) and an exclusive ``flock`` on ``lmdbstore.lock`` (other
    processes). LMDB's own writer mutex serialises commits too, but cannot be tried without
    blocking; this one can, which is what lets a write commit on the caller's thread only
    when nobody else is writing."""

    def __init__(self, directory: str) -> None:
        self._threads = threading.Lock()
        self._fd = _open_side_file(directory, LOCK_FILE)
        if os.fstat(self._fd).st_size < 8:
            os.ftruncate(self._fd, 8)
        # A count of clean closes, shared by every process through the file's memory map.
        self._closes = mmap.mmap(self._fd, 8)

    def closes(self) -> int:
        """How many processes have closed the store at ``"normal"`` so far (see
        `Checkpoints.close`)."""
        return int.from_bytes(self._closes[:8], "little")

    def count_close(self) -> None:
        """Count this process's close. With the lock held."""
        self._closes[:8] = (self.closes() + 1).to_bytes(8, "little")

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; with ``blocking=False``, only if it is free now."""
        if not self._threads.acquire(blocking):
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._threads.release()
            return False
        except BaseException:
            self._threads.release()
            raise
        return True

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        self._closes.close()
        os.close(self._fd)


PROBE_SECONDS = 0.05
"""How long a level file must stay locked to count as held. Whoever asks whether a level
is in use (an opener, for the other level; `level_in_use`) tries an exclusive lock of the
file, and holds it for the microseconds that takes: two openers at one level asking at
once saw each other's probe as a holder of the other level (1 of 30 processes opening a new
store together was refused). A holder keeps its shared lock for as long as the store is
open."""


def _held(open_file: Callable[[], int]) -> bool:
    """Whether a process holds a lock on the level file that ``open_file()`` opens (an
    `OSError` there: no file, so no holder), tried for `PROBE_SECONDS`."""
    deadline = time.monotonic() + PROBE_SECONDS
    while True:
        try:
            probe = open_file()
        except OSError:
            return False
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            pass
        finally:
            os.close(probe)  # closing the probe releases its lock
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.001)


class LevelLock:
    """A shared lock on the file of the durability level this process uses the store at,
    held while the store is open; refused while another process holds the other level."""

    def __init__(self, directory: str, level: str) -> None:
        self._fd = _open_side_file(directory, LEVEL_FILES[level])
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        for other, name in LEVEL_FILES.items():
            if other != level and _held(functools.partial(_open_side_file, directory, name)):
                self.close()
                raise StoreConnectionError(
                    f"{directory!r} is open in another process with durability={other!r};"
                    f" one store is used at one durability at a time"
                )

    def close(self) -> None:
        os.close(self._fd)


def level_in_use(directory: str) -> str | None:
    """The durability level another process holds the store at now, or None (for tools
    that only read, and so can join whichever level is in use)."""
    for level, name in LEVEL_FILES.items():
        path = os.path.join(directory, name)
        if _held(functools.partial(os.open, path, os.O_RDONLY | os.O_CLOEXEC)):
            return level
    return None


# -- the checkpoint file -------------------------------------------------------------------
#
# Two slots of `SLOT` bytes, each a checkpoint with a digest, ordered by transaction id (one
# sequence for every process). A checkpoint is written, under an exclusive flock of the file
# (processes take turns), into the slot that does not hold the newest, with pwrite +
# fdatasync: no rename and no directory fsync per checkpoint. So the newest whole checkpoint
# is never overwritten, and a slot torn by a power loss fails its digest and leaves the
# newest one before it, whose pages its writer still pins.

SLOT = 1 << 16
"""Bytes per slot: the header, two meta pages (LMDB pages are at most 32 KiB here) and the
digest."""


@dataclasses.dataclass(frozen=True)
class Saved:
    """One checkpoint: the boot it was taken in, the transaction it saved, and that
    transaction's meta pages (and the one's before)."""

    boot: str
    txnid: int
    page_size: int
    metas: bytes

    def pack(self) -> bytes:
        body = _HEAD.pack(_MAGIC, self.boot.encode()[:40], self.txnid, self.page_size)
        return body + self.metas + hashlib.sha256(body + self.metas).digest()


def read_slot(raw: bytes) -> Saved | None:
    """The checkpoint in one slot's bytes, or ``None`` when they are not a whole one."""
    if len(raw) < _HEAD.size:
        return None
    magic, boot, txnid, page_size = _HEAD.unpack_from(raw)
    end = _HEAD.size + 2 * page_size
    if magic != _MAGIC or end + _DIGEST > len(raw):
        return None
    if hashlib.sha256(raw[:end]).digest() != raw[end : end + _DIGEST]:
        return None
    return Saved(boot.rstrip(b"\x00").decode(), txnid, page_size, raw[_HEAD.size : end])


def _slots(raw: bytes) -> list[Saved | None]:
    return [read_slot(raw[i * SLOT : (i + 1) * SLOT]) for i in (0, 1)]


def _newest(slots: list[Saved | None]) -> int | None:
    """The index of the slot holding the newest whole checkpoint, or None."""
    whole = [i for i, slot in enumerate(slots) if slot is not None]
    return max(whole, key=lambda i: slots[i].txnid) if whole else None  # type: ignore[union-attr]


def read_checkpoint(raw: bytes) -> Saved | None:
    """The newest whole checkpoint of a checkpoint file's bytes, or ``None``."""
    slots = _slots(raw)
    newest = _newest(slots)
    return None if newest is None else slots[newest]


def _write_slot(fd: int, saved: Saved, slot: int) -> None:
    os.pwrite(fd, saved.pack(), slot * SLOT)
    os.fdatasync(fd)


def _record(fd: int, saved: Saved) -> int:
    """Write ``saved`` unless the file holds a checkpoint at least as new; the txnid of the
    file's newest checkpoint afterwards."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        slots = _slots(os.pread(fd, 2 * SLOT, 0))
        newest = _newest(slots)
        if newest is not None and slots[newest].txnid >= saved.txnid:  # type: ignore[union-attr]
            return slots[newest].txnid  # type: ignore[union-attr]
        _write_slot(fd, saved, 0 if newest is None else 1 - newest)
        return saved.txnid
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _open_checkpoint_file(directory: str) -> int:
    """The checkpoint file, created (and its directory entry made durable) if need be."""
    path = os.path.join(directory, CHECKPOINT_FILE)
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        fd = _open_side_file(directory, CHECKPOINT_FILE)
        fsync_directory(directory)
        return fd


def _read_file(directory: str) -> Saved | None:
    try:
        with open(os.path.join(directory, CHECKPOINT_FILE), "rb") as source:
            return read_checkpoint(source.read(2 * SLOT))
    except FileNotFoundError:
        return None


def _due(directory: str) -> tuple[str, Saved] | None:
    """This boot's id and the last checkpoint, when the checkpoint is of an earlier boot."""
    current, saved = boot_id(), _read_file(directory)
    if saved is None or current is None or saved.boot == current:
        return None
    return current, saved


def recovery_due(directory: str) -> bool:
    """Whether the machine restarted since the store's last checkpoint, so that `recover`
    must run before the environment is read (a read-only open cannot run it)."""
    return _due(directory) is not None


def recover(directory: str) -> bool:
    """After a reboot, put back the meta pages of the last checkpoint (see the module
    docstring); whether it did. Call with the `WriterLock` held, before LMDB opens the
    environment."""
    due = _due(directory)
    if due is None:
        return False
    current, saved = due
    data = os.open(os.path.join(directory, DATA_FILE), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.pwrite(data, saved.metas, 0)
        os.fsync(data)
    finally:
        os.close(data)
    fd = _open_checkpoint_file(directory)
    try:
        # Both slots now say this boot, so that no later open restores again.
        for slot in (0, 1):
            _write_slot(fd, dataclasses.replace(saved, boot=current), slot)
    finally:
        os.close(fd)
    return True


def forget_checkpoint(env: lmdb.Environment, directory: str) -> None:
    """For ``"full"``: make every commit so far durable and drop the checkpoint file, so that
    no later recovery rolls back what ``"full"`` commits. With the `WriterLock` held."""
    env.sync(True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(directory, CHECKPOINT_FILE))
        fsync_directory(directory)


class Checkpoints:
    """The checkpoints of one open environment at ``"normal"``: the reader that holds the
    last one, and the thread that takes one every ``interval`` seconds after a commit.

    A checkpoint holds the `WriterLock` only to copy the meta pages and begin the reader
    that pins them (microseconds); the fsyncs run with writers going on. A map resize ends
    every reader of the process, the pin included, so it runs through `unpinned` and is
    followed by `take_locked` before the `WriterLock` is released; a checkpoint begun
    before a resize is dropped (``_epoch``). Writes of this process that run too far
    ahead of the checkpoints wait for them (`pace`)."""

    def __init__(
        self, env: lmdb.Environment, directory: str, lock: WriterLock, interval: float
    ) -> None:
        self._env = env
        self._directory = directory
        self._lock = lock
        self.interval = interval
        self._boot = boot_id() or ""
        self._data = os.open(os.path.join(directory, DATA_FILE), os.O_RDONLY | os.O_CLOEXEC)
        self._file = _open_checkpoint_file(directory)
        self._pin: lmdb.Transaction[bytes] | None = None
        self._mutex = threading.Lock()  # one checkpoint (or resize) at a time
        self._epoch = 0
        self.commits = 0  # since the last checkpoint's snapshot
        # Since the snapshot of the checkpoint that is pinned (the last durable one); a
        # hint, counted without a lock.
        self.pinned_commits = 0
        self._caught_up = threading.Condition()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run `take` every ``interval`` seconds while there are new commits."""
        self._thread = threading.Thread(
            target=self._run, name=f"lmdbstore-checkpoint:{self._directory}", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        """Count a commit; after `CHECKPOINT_COMMITS` of them, checkpoint without waiting
        for the interval (the pinned snapshot keeps LMDB from reusing the pages that
        commits free, so the file would grow with the commits between checkpoints)."""
        self.commits += 1
        self.pinned_commits += 1
        if self.commits == CHECKPOINT_COMMITS:
            self._wake.set()
        if self.pinned_commits == MAX_PINNED_COMMITS:
            self._wake.set()

    @property
    def behind(self) -> bool:
        """Whether this process has committed `MAX_PINNED_COMMITS` past the pinned
        checkpoint, so that its writes must wait for the next (`pace`)."""
        return self.pinned_commits >= MAX_PINNED_COMMITS

    def pace(self) -> None:
        """Wait while this process has committed `MAX_PINNED_COMMITS` past the pinned
        checkpoint, until the next checkpoint is durable (at most `PACE_WAIT` seconds, and
        not once the store closes). Called with no lock held: by the writer thread before
        it takes a batch, by a blocking caller before it commits; a write from an event
        loop then goes to the writer thread instead of waiting there."""
        if not self.behind:
            return
        deadline = time.monotonic() + PACE_WAIT
        with self._caught_up:
            while self.behind and not self._stop:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._caught_up.wait(left)

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self.commits and not self._stop:
                try:
                    self.take()
                except Exception as exc:  # the next interval tries again
                    log.warning("checkpoint of %s failed: %s", self._directory, exc)

    def _snapshot(self) -> tuple[lmdb.Transaction[bytes], bytes, int, int]:
        """The reader pinning the last commit, both meta pages as they are now (the last
        commit's and the one before), the page size, and the resize epoch. With the
        `WriterLock` held, so that no commit comes between."""
        pin = self._env.begin()  # first: a MapResizedError leaves the commits counted
        self.commits = 0
        page_size: int = self._env.stat()["psize"]
        metas = os.pread(self._data, 2 * page_size, 0)
        return pin, metas, page_size, self._epoch

    def _persist(self, pin: lmdb.Transaction[bytes], metas: bytes, page_size: int) -> None:
        """fsync the data file (the pinned commit's pages and everything before), then save
        the meta pages; then the new pin replaces the old. With ``_mutex`` held. When
        another process has saved a newer checkpoint meanwhile, its pin protects that one,
        and ours is not needed."""
        try:
            self._env.sync(True)
            newest = _record(self._file, Saved(self._boot, pin.id(), page_size, metas))
        except BaseException:
            pin.abort()
            self.commits += 1  # not covered: the next checkpoint must run
            raise
        self.release_pin()
        if newest == pin.id():  # ours is (or equals) the file's newest: keep it pinned
            self._pin = pin
        else:
            pin.abort()
        with self._caught_up:
            self.pinned_commits = self.commits
            self._caught_up.notify_all()

    def take(self) -> None:
        """Take a checkpoint, holding the `WriterLock` only for `_snapshot`."""
        with self._lock.held():
            pin, metas, page_size, epoch = self._snapshot()
        with self._mutex:
            if epoch != self._epoch:  # a resize ended the pin meanwhile, and checkpointed
                with contextlib.suppress(lmdb.Error):
                    pin.abort()
                return
            self._persist(pin, metas, page_size)

    def take_locked(self) -> None:
        """Take a checkpoint wholly with the `WriterLock` held (at open, after a resize,
        before reclaiming readers)."""
        with self._mutex:
            pin, metas, page_size, _ = self._snapshot()
            self._persist(pin, metas, page_size)

    def release_pin(self) -> None:
        """End the reader that holds the last checkpoint."""
        pin, self._pin = self._pin, None
        if pin is not None:
            with contextlib.suppress(lmdb.Error):
                pin.abort()

    def unpinned(self, resize: Callable[[], None]) -> None:
        """End the pin and ``resize()``; with the `WriterLock` held, and `take_locked` to
        follow before it is released."""
        with self._mutex:
            self._epoch += 1
            self.release_pin()
            resize()

    def close(self, take_locked: Callable[[], None]) -> None:
        """Stop the thread, take a last checkpoint (so a clean close leaves nothing
        unsynced) and end its reader. ``take_locked`` takes that checkpoint with the
        `WriterLock` held: the engine's, which first adopts a map another process grew."""
        self._stop = True
        self._wake.set()
        with self._caught_up:
            self._caught_up.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._lock.held():
            if self.commits:
                take_locked()
            # The file's newest checkpoint may be ours, and our pin goes with us: other
            # processes see the count move and checkpoint before their next commit, so
            # that no commit reuses the pages of a checkpoint nobody pins.
            self._lock.count_close()
            self.release_pin()
        os.close(self._data)
        os.close(self._file)


def create_atomically(directory: str, build: Callable[[str], None]) -> None:
    """Make ``directory`` hold a new environment unless it holds one: ``build(private)``
    creates and fsyncs it in a private directory inside ``directory``, whose ``data.mdb`` is
    then hard-linked into place. With the `WriterLock` held."""
    if os.path.exists(os.path.join(directory, DATA_FILE)):
        return
    private = tempfile.mkdtemp(prefix=".lmdbstore-new-", dir=directory)
    try:
        build(private)
        built = os.path.join(private, DATA_FILE)
        with open(built, "rb") as data:
            os.fsync(data.fileno())
        try:
            os.link(built, os.path.join(directory, DATA_FILE))
        except FileExistsError:
            return  # created meanwhile by a process that does not take our lock
        fsync_directory(directory)
    finally:
        shutil.rmtree(private, ignore_errors=True)
