"""The blocking API (`lmdbstore.sync`): every conformance suite through it on every
backend, threads, both APIs on one file, and bad input."""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from lmdbstore import LmdbStore, SqliteStore, sync
from lmdbstore.errors import (
    StoreClosedError,
    StoreConnectionError,
    TransactionConflictError,
    ValidationError,
)
from lmdbstore.sync import generate
from lmdbstore.testing import (
    AppSyncConformance,
    PeerConformance,
    ProtocolConformance,
    SignalConformance,
    TransactionConformance,
)

if TYPE_CHECKING:
    import pathlib
    from collections.abc import AsyncIterator, Callable, Iterator
    from contextlib import AbstractContextManager
    from types import TracebackType


class AsyncOverSync:
    """A blocking store seen through async methods, each a hop to a worker thread: the
    async conformance suites then drive every blocking method from real threads, many at
    once where a test runs tasks concurrently."""

    def __init__(self, store: sync.SyncStore, limiter: anyio.CapacityLimiter) -> None:
        self._store = store
        self._limiter = limiter

    def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self._limiter)

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not callable(found):
            return found

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._in_thread(functools.partial(found, *args, **kwargs))

        return call

    def for_device(self, device_id: int) -> AsyncOverSync:
        return AsyncOverSync(self._store.for_device(device_id), self._limiter)

    def transaction(self) -> _AsyncBlock:
        return _AsyncBlock(self, self._store.transaction(), self._limiter)

    async def run_transaction(self, fn: Any, retries: int = 3) -> Any:
        def attempt(tx: sync.SyncStore) -> Any:
            joined = self if tx is self._store else AsyncOverSync(tx, self._limiter)
            return anyio.from_thread.run(fn, joined)

        return await self._in_thread(
            self._store.run_transaction, attempt if callable(fn) else fn, retries
        )

    async def __aenter__(self) -> AsyncOverSync:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._in_thread(self._store.close)


class _AsyncBlock:
    def __init__(
        self,
        store: AsyncOverSync,
        block: AbstractContextManager[sync.SyncStore],
        limiter: anyio.CapacityLimiter,
    ) -> None:
        self._parent = store
        self._block = block
        self._limiter = limiter

    async def __aenter__(self) -> AsyncOverSync:
        tx = await anyio.to_thread.run_sync(self._block.__enter__, limiter=self._limiter)
        # A nested block yields its transaction itself, and so does this adapter.
        return self._parent if tx is self._parent._store else AsyncOverSync(tx, self._limiter)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(
            self._block.__exit__, exc_type, exc, tb, limiter=self._limiter
        )


class TestEveryConformanceSuite(
    SignalConformance,
    AppSyncConformance,
    ProtocolConformance,
    PeerConformance,
    TransactionConformance,
):
    """Every suite through the blocking API, on each backend (``url``)."""

    @pytest.fixture
    async def store(self, url: str) -> AsyncIterator[AsyncOverSync]:
        # Enough threads for the suites' 100 concurrent writers and the transaction they
        # wait for.
        adapter = AsyncOverSync(sync.open(url), anyio.CapacityLimiter(500))
        yield adapter
        await adapter.__aexit__()


def run_threads(count: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_transactions_of_eight_threads_stay_exact(url: str) -> None:
    """8 threads increment one counter and move one token between two records, 200 times
    each, in transactions: no update is lost and the token is never doubled or lost."""
    with sync.open(url) as store:
        store.put_group_metadata("counter@g.us", b"0")
        store.put_session("left@lid", b"token")

        def increment(tx: sync.SyncStore) -> None:
            value = int(tx.get_group_metadata("counter@g.us") or b"")
            tx.put_group_metadata("counter@g.us", str(value + 1).encode())

        def move(tx: sync.SyncStore) -> None:
            # Each read is a fresh one, checked at the commit: two reads may see two
            # moments, and then the commit conflicts and the attempt runs again.
            left, right = tx.get_session("left@lid"), tx.get_session("right@lid")
            if (left is None) != (right is None):
                tx.delete_session("left@lid" if right is None else "right@lid")
                tx.put_session("right@lid" if right is None else "left@lid", b"token")

        def work(_n: int) -> None:
            for _ in range(200):
                store.run_transaction(increment, retries=3)
                store.run_transaction(move, retries=3)

        run_threads(8, work)
        assert store.get_group_metadata("counter@g.us") == b"1600"
        held = [store.get_session(a) for a in ("left@lid", "right@lid")]
        assert sorted(held, key=lambda v: v is None) == [b"token", None]
        assert store.verify() == []


def test_writes_of_many_threads_all_commit(url: str) -> None:
    with sync.open(url) as store:

        def work(n: int) -> None:
            for i in range(100):
                store.put_session(f"{n}-{i}@lid", bytes([n]) * 64)
            store.put_sessions_batch([(f"{n}-b{i}@lid", b"b") for i in range(300)])

        run_threads(8, work)
        for n in range(8):
            assert store.get_sessions_batch([f"{n}-{i}@lid" for i in range(100)]) == {
                f"{n}-{i}@lid": bytes([n]) * 64 for i in range(100)
            }
            assert store.has_session(f"{n}-b299@lid")


def test_a_conflicting_block_writes_nothing(url: str) -> None:
    with sync.open(url) as store:
        store.put_session("a@lid", b"1")
        with pytest.raises(TransactionConflictError), store.transaction() as tx:
            seen = tx.get_session("a@lid")
            store.put_session("a@lid", b"changed")
            tx.put_session("a@lid", (seen or b"") + b"!")
            tx.put_session("b@lid", b"not written")
        assert store.get_session("a@lid") == b"changed"
        assert store.get_session("b@lid") is None
        with pytest.raises(StoreClosedError):
            tx.get_session("a@lid")


@pytest.mark.anyio
async def test_one_file_open_through_both_apis_in_one_process(tmp_path: pathlib.Path) -> None:
    for backend, prefix, url in (
        (LmdbStore, "lmdb://", tmp_path / "store"),
        (SqliteStore, "sqlite://", tmp_path / "store.db"),
    ):
        async with await backend.open(url) as store:
            blocking = await anyio.to_thread.run_sync(sync.open, f"{prefix}{url}")
            await store.put_session("a@lid", b"from async")

            def both(blocking: sync.SyncStore) -> None:
                assert blocking.get_session("a@lid") == b"from async"
                blocking.put_session("b@lid", b"from blocking")
                with blocking.transaction() as tx:
                    tx.store_prekey(1, b"p")

            await anyio.to_thread.run_sync(both, blocking)
            assert await store.get_session("b@lid") == b"from blocking"
            assert await store.load_prekey(1) == b"p"
            async with anyio.create_task_group() as tg:  # both APIs writing at once
                for i in range(50):
                    tg.start_soon(store.put_session, f"async-{i}@lid", b"a")
                    tg.start_soon(
                        anyio.to_thread.run_sync, blocking.put_session, f"sync-{i}@lid", b"s"
                    )
            await anyio.to_thread.run_sync(blocking.close)
            assert await store.get_session("sync-49@lid") == b"s"
            assert await store.get_session("async-49@lid") == b"a"
            assert await store.verify() == []


def test_handles_close_and_refuse_calls_after(url: str) -> None:
    store = sync.open(url)
    other = store.for_device(2)
    other.put_session("a@lid", b"2")
    assert other.device_id == 2 and store.get_session("a@lid") is None
    other.close()
    other.close()  # idempotent
    assert other.closed
    with pytest.raises(StoreClosedError):
        other.get_session("a@lid")
    store.close()
    with pytest.raises(StoreClosedError):
        store.put_session("a@lid", b"x")
    with pytest.raises(StoreClosedError), store:
        pass
    with pytest.raises(StoreClosedError):
        store.transaction()


def test_bad_input_is_refused_and_changes_nothing(url: str) -> None:
    with sync.open(url) as store:
        store.put_session("a@lid", b"kept")
        with pytest.raises(ValidationError):
            store.put_session("", b"x")
        with pytest.raises(ValidationError):
            store.put_sessions_batch([("b@lid", b"x"), ("c@lid", "not bytes")])  # type: ignore[list-item]
        with pytest.raises(ValidationError):
            store.for_device(-1)
        with pytest.raises(ValidationError):
            store.run_transaction("not a function")  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            store.run_transaction(lambda tx: None, retries=-1)
        with pytest.raises(ValidationError):
            store.get_sessions_batch("a@lid")
        assert store.get_session("a@lid") == b"kept"
        assert store.get_session("b@lid") is None


def test_bad_opens_are_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValidationError, match="unknown option"):
        sync.open(tmp_path / "store", colour="blue")
    with pytest.raises(ValidationError, match="unknown option"):
        sync.SyncLmdbStore.open(tmp_path / "store", synchronous="FULL")
    with pytest.raises(ValidationError, match="unknown option"):
        sync.SyncSqliteStore.open(tmp_path / "s.db", durability="full")
    with pytest.raises(ValidationError):
        sync.SyncLmdbStore.open(tmp_path / "store", durability="process")
    with pytest.raises(ValidationError):
        sync.SyncMemoryStore(device_id=-1)
    with pytest.raises(StoreConnectionError):
        sync.open("postgresql://u@127.0.0.1:1/db")
    with pytest.raises(StoreConnectionError):
        sync.SyncLmdbStore.open("sqlite://x.db")
    (tmp_path / "file").write_bytes(b"not a store")
    with pytest.raises(StoreConnectionError):
        sync.SyncLmdbStore.open(tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_copies_and_snapshots_refuse_bad_targets(tmp_path: pathlib.Path) -> None:
    from lmdbstore.errors import DatabaseError

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken.db").write_bytes(b"mine")
    for store, taken in (
        (sync.SyncLmdbStore.open(tmp_path / "store"), tmp_path / "taken"),
        (sync.SyncSqliteStore.open(tmp_path / "store.db"), tmp_path / "taken.db"),
    ):
        with store:
            store.put_session("a@lid", b"x")
            with pytest.raises(DatabaseError):
                store.copy_to(str(taken))
            with pytest.raises(ValidationError):
                store.snapshot_db("")
            with pytest.raises(ValidationError):
                store.snapshot_db("s", extra_content="not bytes")  # type: ignore[arg-type]
            assert store.get_session("a@lid") == b"x"
    assert (tmp_path / "taken.db").read_bytes() == b"mine"
    assert not list((tmp_path / "taken").iterdir())
    with pytest.raises(NotImplementedError):
        sync.SyncMemoryStore().copy_to(str(tmp_path / "nowhere"))


def test_read_only_stores_refuse_writes(tmp_path: pathlib.Path) -> None:
    with sync.SyncLmdbStore.open(tmp_path / "store") as store:
        store.put_session("a@lid", b"x")
    with sync.SyncLmdbStore.open(tmp_path / "store", readonly=True) as store:
        assert store.get_session("a@lid") == b"x"
        with pytest.raises(Exception, match="read-only"):
            store.put_session("a@lid", b"y")


def test_the_blocking_methods_are_generated_from_the_contract() -> None:
    """``python -m lmdbstore.sync.generate`` writes lmdbstore/sync/methods.py."""
    assert generate.TARGET.read_text() == generate.source()


def test_every_blocking_method_is_documented() -> None:
    for klass in (sync.SyncLmdbStore, sync.SyncSqliteStore, sync.SyncMemoryStore):
        for name in dir(klass):
            if not name.startswith("_"):
                assert getattr(klass, name).__doc__, f"{klass.__name__}.{name}"


@pytest.fixture
def no_event_loop() -> Iterator[None]:
    with pytest.raises(Exception):  # noqa: B017 - sniffio's error: no async library here
        anyio.get_current_task()
    yield


def test_no_event_loop_is_needed(no_event_loop: None, tmp_path: pathlib.Path) -> None:
    with sync.open(tmp_path / "store", durability="full") as store:
        store.put_session("a@lid", b"x")
        store.run_transaction(lambda tx: tx.put_session("b@lid", b"y"))
        store.snapshot_db("s")
        store.copy_to(str(tmp_path / "copy"))
        assert store.verify() == []
        assert store.resource_report().backend == "lmdb"
    with sync.SyncLmdbStore.open(tmp_path / "copy") as copy:
        assert copy.get_session("b@lid") == b"y"
