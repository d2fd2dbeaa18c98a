"""Consistency of the secondary indexes with their records, on every storage.

Every index entry is derived from one record, as its index kind declares
(`lmdbstore.kinds`); `index_problems` derives the whole expected index from the records
of a device and compares it with what is stored. It reads only, in one read transaction, so it
sees a consistent state. The tests run it after every step of random operation sequences;
``verify`` builds on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from lmdbstore import codec, keys
from lmdbstore.errors import SerializationError
from lmdbstore.kinds import ALL, BY_NAME, BY_TAG

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lmdbstore.domains.handle import DomainHandle
    from lmdbstore.kinds import Fields
    from lmdbstore.storage.view import ReadView


def _items_under(view: ReadView, db: str, start: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The items under ``start``, less those that cannot be read (verify reports each)."""
    for item in view.audit(db, start):
        if not isinstance(item, SerializationError):
            yield item


def _keys_under(view: ReadView, db: str, start: bytes) -> set[bytes]:
    return {k for k, _ in _items_under(view, db, start)}


def _expected(view: ReadView, dev: bytes) -> dict[tuple[str, int], set[bytes]]:
    """The index keys (by sub-database and index tag) that the records of ``dev`` imply,
    each derived as its index kind declares (`lmdbstore.kinds`). A record that does not
    decode implies nothing (verify reports it itself; its index entries then show as
    stray)."""
    device = keys.read_u32(dev, 0)[0]
    want: dict[tuple[str, int], set[bytes]] = {}
    for index in ALL:
        if index.derive is None:
            continue
        record = BY_NAME[cast("str", index.index_of)]
        found = want.setdefault((index.db, index.tag), set())
        for k, raw in _items_under(view, record.db, keys.prefix(dev, record.tag)):
            try:
                codec.load(record.db, k, raw, cast("Callable[..., object]", record.read))
                components = record.parse(k)
            except (SerializationError, ValueError):
                continue
            derived = index.derive(
                tuple(components), cast("Callable[[bytes], Fields]", record.fields)(raw)
            )
            if derived is not None:
                found.add(index.key_bytes(device, derived))
    return want


def device_index_problems(view: ReadView, dev: bytes) -> list[str]:
    """Every disagreement between the indexes of device ``dev`` (and the tallies of the
    counted ones) and its records."""
    problems = []
    for (db, tag), expected in _expected(view, dev).items():
        stored = _keys_under(view, db, keys.prefix(dev, tag))
        # Loops rather than set differences: one C call over a big index would hold the
        # interpreter, and so the event loop, for milliseconds.
        problems += [
            f"{db} index {tag:#04x}: missing {k.hex()}" for k in expected if k not in stored
        ]
        problems += [f"{db} index {tag:#04x}: stray {k.hex()}" for k in stored if k not in expected]
        if BY_TAG[db, tag].counted:
            key = keys.tally(dev, tag)
            raw = view.get(db, key)
            try:
                tally = 0 if raw is None else keys.read_tally(db, key, raw)
            except SerializationError as exc:
                problems.append(str(exc))
                continue
            if tally != len(expected):
                problems.append(
                    f"{db} tally {key.hex()}: the tally says {tally} entries, not {len(expected)}"
                )
    return problems


def index_problems(store: DomainHandle) -> list[str]:
    """Every disagreement between the indexes of ``store``'s device and its records."""
    dev = keys.device_prefix(store.device_id)
    return store._storage_open().read(lambda view: device_index_problems(view, dev))
