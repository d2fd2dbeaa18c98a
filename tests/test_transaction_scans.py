"""A transaction's range scans (`lmdbstore.storage.transaction`): read lazily in chunks,
merged with the transaction's own writes, and checked at the commit exactly where the
reader went: a change there is a conflict, a change past it is not. Checked against a
model on every storage."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmdbstore import codec, keys, sync
from lmdbstore.devices import Life
from lmdbstore.errors import TransactionConflictError
from lmdbstore.keys import SignalTag
from lmdbstore.kinds import BY_NAME
from lmdbstore.storage.transaction import FIRST_CHUNK, TransactionStorage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from lmdbstore.storage import Storage

DB = "signal"
DEVICE = keys.device_prefix(1)


def key(n: int) -> bytes:
    return keys.make(DEVICE, SignalTag.SESSION, keys.s(f"{n:05d}@lid".encode()))


def value(text: str) -> bytes:
    return codec.dump_blob(text.encode())


GROUPS = BY_NAME["sender_key_device"]


def two_part_key(n: int) -> bytes:
    """A key of two string components (group, device), in the order of ``n``."""
    return GROUPS.key_bytes(1, [f"g{n // 8:02d}@g.us", f"{n % 8}@lid"])


def flag(text: str) -> bytes:
    return cast("Callable[[bool], bytes]", GROUPS.dump)(text in "acx")


LAYOUTS = {"one component": (DB, key, value), "two components": ("protocol", two_part_key, flag)}


@pytest.fixture(scope="module", params=["lmdb", "sqlite", "memory"])
def opened(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[sync.SyncStore]:
    tmp = tmp_path_factory.mktemp("scans")
    store = {
        "lmdb": lambda: sync.SyncLmdbStore.open(tmp / "store"),
        "sqlite": lambda: sync.SyncSqliteStore.open(tmp / "store.db"),
        "memory": sync.SyncMemoryStore,
    }[str(request.param)]()
    yield store
    store.close()


def reset(
    storage: Storage,
    db: str,
    key: Callable[[int], bytes],
    value: Callable[[str], bytes],
    items: dict[int, str],
) -> None:
    def op(view: Any) -> None:
        for k, _ in list(view.scan(db, DEVICE, None)):
            view.delete(db, k)
        for n, text in items.items():
            view.put(db, key(n), value(text))

    storage.write_blocking(op)


scenario = st.fixed_dictionaries(
    {
        "stored": st.dictionaries(st.integers(0, 60), st.sampled_from("abc"), max_size=40),
        "own": st.dictionaries(st.integers(0, 60), st.sampled_from(["x", None]), max_size=8),
        "start": st.one_of(st.just(None), st.integers(0, 60)),  # None: the kind's prefix
        "length": st.integers(0, 61),
        "reverse": st.booleans(),
        "taken": st.integers(0, 50),
        "change": st.tuples(st.integers(0, 60), st.sampled_from(["z", None])),
    }
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=scenario)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_scan_sees_the_merge_and_conflicts_exactly_where_it_went(
    opened: sync.SyncStore, layout: str, case: dict[str, Any]
) -> None:
    db, key, value = LAYOUTS[layout]
    storage = opened._inner._storage  # type: ignore[attr-defined]
    stored, own = case["stored"], case["own"]
    reset(storage, db, key, value, stored)
    start = case["start"] or 0
    stop = start + case["length"]
    # From a whole key, or from the prefix of the kind (the shape of the domain's scans).
    low = key(start) if case["start"] is not None else key(0)[:5]
    tx = TransactionStorage(storage, Life())

    def write_own(view: Any) -> None:
        for n, text in own.items():
            if text is None:
                view.delete(db, key(n))
            else:
                view.put(db, key(n), value(text))

    tx.write_blocking(write_own)

    def scan(view: Any) -> list[tuple[bytes, bytes]]:
        items = view.scan(db, low, key(stop), reverse=case["reverse"])
        return list(itertools.islice(items, case["taken"]))

    seen = tx.read_long(scan)
    merged = {n: t for n, t in stored.items() if start <= n < stop}
    for n, text in own.items():
        if start <= n < stop:
            if text is None:
                merged.pop(n, None)
            else:
                merged[n] = text
    expected = sorted(merged.items(), reverse=case["reverse"])[: case["taken"]]
    assert seen == [(key(n), value(t)) for n, t in expected]

    # Another writer changes one key; the commit conflicts when the scan went over it.
    changed, text = case["change"]
    before = stored.get(changed)
    storage.write_blocking(
        lambda view: (
            view.delete(db, key(changed))
            if text is None
            else view.put(db, key(changed), value(text))
        )
    )
    really_changed = (before and value(before)) != (text and value(text))
    exhausted = case["taken"] > len(merged)
    reached = expected[-1][0] if expected else None
    if exhausted:
        covered = start <= changed < stop
    elif reached is None:
        covered = False
    elif case["reverse"]:
        covered = reached <= changed < stop
    else:
        covered = start <= changed <= reached
    covered = covered or (changed in own and own[changed] is None)  # a delete reads its key
    if really_changed and covered:
        with pytest.raises(TransactionConflictError):
            tx.commit_blocking()
    else:
        tx.commit_blocking()


def test_a_long_scan_reads_in_chunks_and_misses_nothing(tmp_path: Path) -> None:
    with sync.SyncLmdbStore.open(tmp_path / "store") as store:
        storage = store._inner._storage  # type: ignore[attr-defined]
        count = 5 * 1024 + 7
        reset(storage, DB, key, value, {})
        storage.write_blocking(
            lambda view: [view.put(DB, key(n), value("v")) for n in range(count)]
        )
        tx = TransactionStorage(storage, Life())
        tx.write_blocking(lambda view: view.delete(DB, key(3)))
        for reverse in (False, True):
            found = tx.read_long(
                lambda view, r=reverse: list(view.scan(DB, DEVICE, None, reverse=r))
            )
            names = [k for k, _ in found]
            assert len(names) == count - 1 and key(3) not in names
            assert names == sorted(names, reverse=reverse)
        assert all(read.count >= count - 1 for read in tx.state.scans)
        tx.commit_blocking()


def test_an_early_stop_is_no_conflict_with_a_change_past_it(tmp_path: Path) -> None:
    """get_max_prekey_id reads the greatest pre-key: removing a smaller one meanwhile does
    not conflict (the whole range used to be read and checked), adding a greater one does."""
    with sync.SyncLmdbStore.open(tmp_path / "store") as store:
        store.store_prekeys_batch([(i, b"k") for i in range(1, 2 * FIRST_CHUNK)])
        with store.transaction() as tx:
            top = tx.get_max_prekey_id()
            store.remove_prekey(1)
            tx.store_prekey(top + 1, b"mine")
        assert store.load_prekey(top + 1) == b"mine"
        with pytest.raises(TransactionConflictError), store.transaction() as tx:
            top = tx.get_max_prekey_id()
            store.store_prekey(top + 5, b"theirs")
            tx.store_prekey(top + 1, b"mine")
