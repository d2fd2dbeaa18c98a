"""Consistency of the secondary indexes with their records, on every storage.

Every index entry of the ``protocol`` and ``msgsecret`` sub-databases is derived from one
record; `index_problems` derives the whole expected index from the records of a
device and compares it with what is stored. It reads only, in one read transaction, so it
sees a consistent state. The tests run it after every step of random operation sequences;
``verify`` builds on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from lmdbstore import codec, keys
from lmdbstore.errors import SerializationError
from lmdbstore.keys import CacheTag, MsgSecretTag, ProtocolTag
from lmdbstore.validate import I64_MIN  # the index time of an empty tc token

T = TypeVar("T")

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lmdbstore.domains.handle import DomainHandle
    from lmdbstore.storage.view import ReadView


def _keys_under(view: ReadView, db: str, start: bytes) -> set[bytes]:
    return {k for k, _ in view.scan_prefix(db, start)}


def _decoded(
    view: ReadView, db: str, start: bytes, decoder: Callable[[dict[str, object]], T]
) -> Iterator[tuple[bytes, T]]:
    """The records under ``start`` that decode (verify reports the others itself; their
    index entries then show as stray)."""
    for k, raw in view.scan_prefix(db, start):
        try:
            yield k, codec.load(db, k, raw, decoder)
        except SerializationError:
            continue


def _expected(view: ReadView, dev: bytes) -> dict[tuple[str, int], set[bytes]]:
    """The index keys (by sub-database and index tag) that the records of ``dev`` imply."""
    p = ProtocolTag
    want: dict[tuple[str, int], set[bytes]] = {
        ("protocol", p.SENDER_KEY_DEVICE_BY_JID): set(),
        ("protocol", p.LID_BY_PHONE): set(),
        ("protocol", p.TC_TOKEN_BY_TIME): set(),
        ("protocol", p.SENT_MESSAGE_BY_TIME): set(),
        ("protocol", p.PENDING_INBOUND_BY_TIME): set(),
        ("msgsecret", MsgSecretTag.SECRET_BY_EXPIRY): set(),
        ("cache", CacheTag.ENTRY_BY_EXPIRY): set(),
    }
    start = keys.prefix(dev, p.SENDER_KEY_DEVICE)
    for k, _ in view.scan_prefix("protocol", start):
        group, offset = keys.read_str(k, len(start))
        jid, _ = keys.read_str(k, offset)
        want["protocol", p.SENDER_KEY_DEVICE_BY_JID].add(
            keys.make(dev, p.SENDER_KEY_DEVICE_BY_JID, keys.s(jid.encode()), keys.s(group.encode()))
        )
    start = keys.prefix(dev, p.LID_MAPPING)
    for k, (entry, seq) in _decoded(view, "protocol", start, codec.read_lid_mapping("")):
        lid = k[len(start) : -1]
        want["protocol", p.LID_BY_PHONE].add(
            keys.make(
                dev,
                p.LID_BY_PHONE,
                keys.s(entry.phone_number.encode()),
                keys.i64(entry.updated_at),
                keys.i64(seq),
                keys.s(lid),
            )
        )
    start = keys.prefix(dev, p.TC_TOKEN)
    for k, tc in _decoded(view, "protocol", start, codec.read_tc_token):
        at = tc.token_timestamp if tc.token else I64_MIN
        want["protocol", p.TC_TOKEN_BY_TIME].add(
            keys.make(dev, p.TC_TOKEN_BY_TIME, keys.i64(at), k[len(start) :])
        )
    for tag, index_tag in (
        (p.SENT_MESSAGE, p.SENT_MESSAGE_BY_TIME),
        (p.PENDING_INBOUND, p.PENDING_INBOUND_BY_TIME),
    ):
        start = keys.prefix(dev, tag)
        for k, (_, at) in _decoded(view, "protocol", start, codec.read_timed):
            want["protocol", index_tag].add(
                keys.make(dev, index_tag, keys.i64(at), k[len(start) :])
            )
    start = keys.prefix(dev, MsgSecretTag.SECRET)
    for k, (_, expires_at, _) in _decoded(view, "msgsecret", start, codec.read_msg_secret):
        if expires_at:
            want["msgsecret", MsgSecretTag.SECRET_BY_EXPIRY].add(
                keys.make(dev, MsgSecretTag.SECRET_BY_EXPIRY, keys.i64(expires_at), k[len(start) :])
            )
    start = keys.prefix(dev, CacheTag.ENTRY)
    for k, (_, expires) in _decoded(view, "cache", start, codec.read_cache_entry):
        if expires is not None:
            want["cache", CacheTag.ENTRY_BY_EXPIRY].add(
                keys.make(dev, CacheTag.ENTRY_BY_EXPIRY, keys.i64(expires), k[len(start) :])
            )
    return want


def device_index_problems(view: ReadView, dev: bytes) -> list[str]:
    """Every disagreement between the indexes of device ``dev`` and its records."""
    problems = []
    for (db, tag), expected in _expected(view, dev).items():
        stored = _keys_under(view, db, keys.prefix(dev, tag))
        problems += [f"{db} index {tag:#04x}: missing {k.hex()}" for k in expected - stored]
        problems += [f"{db} index {tag:#04x}: stray {k.hex()}" for k in stored - expected]
    return problems


def index_problems(store: DomainHandle) -> list[str]:
    """Every disagreement between the indexes of ``store``'s device and its records."""
    dev = keys.device_prefix(store.device_id)
    return store._storage_open().read(lambda view: device_index_problems(view, dev))
