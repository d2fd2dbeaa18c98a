"""``verify``: walk every record and index of an LMDB store and report each problem.

Read-only, in one read transaction (a consistent state; writers go on meanwhile). For every
key of every sub-database: the key has a known device and record kind, and the value
decodes as that kind (index entries are empty). Then, for each device found, every index is
compared with what its records imply (`lmdbstore.lmdb_store.indexes`). Each problem is
one line naming the sub-database and the key; a record that cannot be decoded does not stop
the walk (the index entries of such a record then show as stray as well).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import codec, keys
from lmdbstore.domains.indexes import device_index_problems
from lmdbstore.errors import DatabaseError, SerializationError
from lmdbstore.keys import (
    DOMAINS,
    FORMAT_KEY,
    FORMAT_VERSION,
    LAST_DEVICE_KEY,
)
from lmdbstore.kinds import ALL, BY_TAG, is_tally

if TYPE_CHECKING:
    from collections.abc import Callable

    from lmdbstore.storage.view import ReadView

KINDS: dict[str, dict[int, Callable[[dict[str, object]], object] | None]] = {}
for _kind in ALL:
    KINDS.setdefault(_kind.db, {})[_kind.tag] = _kind.read
"""The record kinds of each sub-database and how their values decode (``None``: index),
from `lmdbstore.kinds`."""


def _record_problem(db: str, key: bytes, value: bytes) -> str | None:
    if len(key) < 5:
        return f"{db} key {key.hex()}: too short for a device and a record kind"
    tag = key[4]
    if keys.is_write_seq(db, key):
        return None if len(value) == 8 else f"{db} key {key.hex()}: sequence is not 8 bytes"
    if tag == keys.TALLY:
        # Its value is checked with the index it counts (device_index_problems).
        return None if is_tally(db, key) else f"{db} key {key.hex()}: a tally of no counted index"
    kinds = KINDS[db]
    if tag not in kinds:
        return f"{db} key {key.hex()}: unknown record kind {tag:#04x}"
    try:
        BY_TAG[db, tag].parse_key(key)
    except SerializationError as exc:
        return str(exc)
    decoder = kinds[tag]
    if decoder is None:
        return None if value == b"" else f"{db} key {key.hex()}: index entry with a value"
    if decoder is codec.read_blob and codec.is_blob(value):
        return None  # what load_blob reads: no need to copy the value out
    try:
        codec.load(db, key, value, decoder)
    except SerializationError as exc:
        return str(exc)
    return None


def _meta_problems(view: ReadView) -> list[str]:
    problems = []
    raw = view.get("meta", FORMAT_KEY)
    version = None if raw is None else codec.stored_version(raw)
    if version != FORMAT_VERSION:
        shown = "absent" if raw is None else "unreadable" if version is None else version
        problems.append(f"meta: format version is {shown}, not {FORMAT_VERSION}")
    try:
        counter = view.get("meta", LAST_DEVICE_KEY)
        if counter is not None:
            keys.load_device_counter(counter)
    except SerializationError as exc:  # not 4 bytes; on SQLite, outside u32
        problems.append(str(exc))
    return problems


def problems(view: ReadView) -> list[str]:
    """Every problem of the store seen through ``view``; empty when it is sound."""
    found = _meta_problems(view)
    devices: set[bytes] = set()
    for db in DOMAINS:
        if db == "meta":
            continue
        try:
            for item in view.audit(db, b""):
                if isinstance(item, SerializationError):  # a sealed value that does not open
                    found.append(str(item))
                    continue
                key, value = item
                if len(key) > 4:  # a shorter key is reported below, and has no device
                    devices.add(key[:4])
                problem = _record_problem(db, key, value)
                if problem is not None:
                    found.append(problem)
        except (DatabaseError, SerializationError) as exc:
            # A damaged tree, or a row no key can name: the rest cannot be walked.
            found.append(str(exc))
    for dev in sorted(devices):
        try:
            found += device_index_problems(view, dev)
        except (DatabaseError, SerializationError) as exc:
            found.append(f"device {dev.hex()}: the indexes cannot be checked: {exc}")
    return found
