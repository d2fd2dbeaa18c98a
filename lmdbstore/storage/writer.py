"""Group commit: one writer thread per open store commits the queued writes in batches.

A write is an operation ``op(target)`` handed to `Writer.submit` (from an event loop) or
`Writer.submit_blocking` (from a thread). The writer thread, started on first use, takes
every queued write (up to `MAX_BATCH`), has the engine commit them in one transaction
(``commit(batch)``, which records each outcome in its `Request`), then wakes the waiting
callers: a thread's event at once, an event loop's events with one callback per loop. So N
writers in flight cost about N / batch commits, and each caller resumes after the commit
that holds its write. The engine applies a batch's operations in turn and drops one that
raises, committing the others without it (`lmdbstore.storage.lmdb`,
`lmdbstore.postgres_store.database`).

Cancellation: a caller cancelled while its write is still queued (the writer may be waiting
for another process's lock) withdraws it and the cancellation propagates at once; once the
writer has taken it into a transaction, the caller waits for that commit and gets its
outcome, the cancellation striking at its next await. So a raised cancellation means not
applied. The writer takes a batch inside ``hold()`` (the engine's lock across processes,
when it has one), so a write waiting for that lock can still be withdrawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import anyio.lowlevel

from lmdbstore.errors import DatabaseError, StoreClosedError, StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

R = TypeVar("R")

MAX_BATCH = 1024
"""Most operations committed in one transaction (bounds a commit's latency)."""


class Request:
    """One queued write: the operation, its outcome, and how to wake its caller (an event
    of its event loop ``loop``, or a thread's event when ``loop`` is ``None``). Until the
    writer takes it into a transaction (``taken``), its caller may withdraw it
    (``withdrawn``); the writer's claims lock orders the two."""

    __slots__ = ("error", "event", "loop", "op", "result", "taken", "withdrawn")

    def __init__(
        self, op: Callable[[Any], object], event: anyio.Event | threading.Event, loop: object
    ) -> None:
        self.op = op
        self.event = event
        self.loop = loop
        self.result: object = None
        self.error: BaseException | None = None
        self.taken = False
        self.withdrawn = False

    def outcome(self) -> Any:
        """What the operation returned, or its error raised."""
        if self.error is not None:
            raise self.error
        return self.result


_STOP = object()


class Writer:
    """The writer thread of one open store (see the module docstring). ``commit(batch)``
    commits a batch and records each request's outcome; ``hold()`` is entered around it;
    ``pace()``, if given, runs before each batch is taken, and may wait (with no lock held:
    `lmdbstore.durability.Checkpoints.pace`)."""

    def __init__(
        self,
        name: str,
        commit: Callable[[list[Request]], None],
        hold: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
        pace: Callable[[], None] | None = None,
    ) -> None:
        self._name = name
        self._commit = commit
        self._hold = hold
        self._pace = pace
        self._queue: queue.SimpleQueue[Request | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # starting and stopping the thread
        self._claims = threading.Lock()  # taking or withdrawing a queued write
        self._closed = False

    @property
    def started(self) -> bool:
        """Whether a write has needed the thread yet (it starts on first use)."""
        return self._thread is not None

    def idle(self) -> bool:
        """Whether no write is queued."""
        return self._queue.empty()

    async def submit(self, op: Callable[[Any], R]) -> R:
        """``op`` committed by the writer thread; its result (see the module docstring for
        cancellation)."""
        event = anyio.Event()
        request = Request(op, event, _running_loop())
        self._enqueue(request)
        try:
            await event.wait()
        except BaseException:
            with self._claims:
                request.withdrawn = not request.taken
            if request.withdrawn:
                raise
            with anyio.CancelScope(shield=True):
                await event.wait()
        return cast("R", request.outcome())

    def submit_blocking(self, op: Callable[[Any], R]) -> R:
        """`submit`, for a thread that waits for the commit."""
        event = threading.Event()
        request = Request(op, event, None)
        self._enqueue(request)
        event.wait()
        return cast("R", request.outcome())

    def _enqueue(self, request: Request) -> None:
        with self._lock:
            if self._closed:
                raise StoreClosedError("the store is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put(request)

    def close(self) -> None:
        """Commit what is queued, then stop the thread (blocking); later writes raise
        `StoreClosedError`."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if self._pace is not None and first is not _STOP:
                self._pace()  # what queues meanwhile joins this batch
            if first is _STOP or self._serve(cast("Request", first)):
                return
            # ``first`` goes here and the rest of its batch with _serve's frame: freeing what
            # the operations held (a bulk write's data) is that write's cost, not a delay
            # before the next one.
            del first

    def _serve(self, first: Request) -> bool:
        """Commit ``first`` with whatever else is queued, and wake their callers; whether
        the writer must stop after it."""
        stopping = False
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stopping = True
                break
            batch.append(cast("Request", item))
        try:
            with self._hold():
                # Taken now, with the lock held (which may have waited for another process):
                # a write withdrawn until here is dropped.
                with self._claims:
                    batch = [request for request in batch if not request.withdrawn]
                    for request in batch:
                        request.taken = True
                self._commit(batch)
        except BaseException as exc:  # nothing here may leave callers waiting forever
            # The engine's own errors (a server gone, say) reach the callers as they are;
            # anything else is a bug.
            error = exc if isinstance(exc, StoreError) else DatabaseError(f"writer failed: {exc!r}")
            for request in batch:
                request.error = request.error or error
        _notify(batch)
        return stopping


def others_ready() -> bool:
    """Whether other tasks of this thread's asyncio loop are ready to run. A write
    committed on the loop now would hold them up, and what they are about to write could
    share its commit on the writer thread. 64 tasks writing at once on 10,000 sessions:
    36,000-43,000 writes a second committed on the loop, 64,000-72,000 batched on the
    writer thread. asyncio keeps its ready queue private; uvloop has none, and
    trio's count of runnable tasks leaves out the batch of them it is running (it saw none
    of 64 woken at once): there this is False, and writes commit on the loop as they would
    alone."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    return bool(getattr(loop, "_ready", None))


def _running_loop() -> object:
    """The event loop of this thread, as `_wake` takes it: asyncio's loop (asked of asyncio
    first: anyio's `current_token` costs a few microseconds, on every queued write), else
    trio's token."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return anyio.lowlevel.current_token().native_token


def _notify(batch: list[Request]) -> None:
    by_loop: dict[int, tuple[object, list[anyio.Event | threading.Event]]] = {}
    for request in batch:
        entry = by_loop.setdefault(id(request.loop), (request.loop, []))
        entry[1].append(request.event)
    for loop, events in by_loop.values():
        _wake(loop, events)


def _wake(loop: object, events: list[anyio.Event | threading.Event]) -> None:
    """Schedule ``events`` to be set on their event loop, from the writer thread; set them
    now if they are threads' (``loop`` is ``None``)."""

    def set_all() -> None:
        for event in events:
            event.set()

    if loop is None:
        set_all()
        return
    try:
        if isinstance(loop, asyncio.AbstractEventLoop):
            loop.call_soon_threadsafe(set_all)
        else:  # trio.lowlevel.TrioToken
            cast("_TrioToken", loop).run_sync_soon(set_all)
    except RuntimeError:
        pass  # that loop has finished: nobody is waiting any more


class _TrioToken:
    def run_sync_soon(self, fn: Callable[[], None]) -> None: ...
