"""Size caps (`lmdbstore.types.Limits`): evicting a device's oldest sent messages and
soonest-expiring message secrets once it holds more than its cap.

What a cap counts is a counted index (`lmdbstore.kinds.Kind.counted`), whose tally each
write keeps (`lmdbstore.domains.records.Records`), so a capped write reads one number to
know whether it must evict. The eviction runs in the write that went over the cap (for a
transaction, inside its commit: `lmdbstore.storage.view.WriteView.at_commit`), so no
reader ever sees a device above its cap, and it brings the count down to 3/4 of the cap:
it runs once per quarter of the cap, not on every write (whatsapp-rust's in-memory caps,
``in_memory.rs``, do the same).

The eviction walks the time index from its oldest entry. Entries of one time go in whole
groups in ascending order: a sent message is a group of its own, a message's secrets
under several sender aliases are one group (chat, msg_id), so they leave together. So
the order is total and the same on every storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmdbstore.domains.records import Records
    from lmdbstore.storage.view import WriteView

CAPPED: dict[str, tuple[str, str, tuple[int, ...] | None]] = {
    "sent_messages": ("sent_message", "sent_message_by_time", None),
    "msg_secrets": ("msg_secret", "msg_secret_by_expiry", (0, 2)),
}
"""Each cap of `Limits`: the record kind it caps, the counted time index it evicts by, and
which of a record's key components make its eviction group (``None``: each record is a
group of its own, so the index's order is the eviction order)."""


def evict(view: WriteView, records: Records, cap: str, limit: int) -> int:
    """If ``records`` (of the kind ``cap`` caps) number more than ``limit``, delete them in
    eviction order until at most ``limit * 3 // 4`` remain (whole groups: perhaps a few
    fewer); how many remain."""
    count = records.count(view)
    if count <= limit:
        return count
    return count - _evict(view, records, cap, count - limit * 3 // 4)


def _evict(view: WriteView, records: Records, cap: str, wanted: int) -> int:
    """Delete at least ``wanted`` records in eviction order (whole groups); how many."""
    _, index, group = CAPPED[cap]
    if group is None:  # the oldest entries of the index, as expiry deletes them
        return records.expire(view, index, None, wanted)
    gone = 0
    bucket: list[list[Any]] = []
    bucket_time = None
    for time, components in records.timed(view, index):
        if bucket and time != bucket_time:
            # The bucket is complete (the walk is past it: deleting it is safe).
            gone += _evict_bucket(view, records, bucket, group, wanted - gone)
            if gone >= wanted:
                return gone
            bucket = []
        bucket_time = time
        bucket.append(components)
    return gone + _evict_bucket(view, records, bucket, group, wanted - gone)


def _evict_bucket(
    view: WriteView,
    records: Records,
    bucket: list[list[Any]],
    group: tuple[int, ...],
    wanted: int,
) -> int:
    """Delete whole groups of ``bucket`` (records of one time), in ascending order, until
    at least ``wanted`` went; how many went."""
    groups: dict[tuple[Any, ...], list[list[Any]]] = {}
    for components in bucket:
        groups.setdefault(tuple(components[at] for at in group), []).append(components)
    gone = 0
    for name in sorted(groups):
        if gone >= wanted:
            break
        for components in groups[name]:
            records.take(view, components)
            gone += 1
    return gone
