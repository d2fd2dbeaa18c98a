"""The records of one kind of one device, with their index entries kept in step.

Every write of a record kind that an index is derived from goes through `Records`
(`lmdbstore.kinds`: an index kind's ``derive``): a put replaces the entries of the record it
overwrites with those of the new one, a take removes them, expiry walks a time index and
deletes each record with its entry. So no domain method builds an index key by hand, and a
new index is declared, not coded: its entries appear, move and go with their records on
every storage, and ``verify`` checks them from the same declarations
(`lmdbstore.domains.indexes`). The device's tally of a counted index
(`lmdbstore.kinds.Kind.counted`) moves with its entries too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

from lmdbstore import keys
from lmdbstore.errors import ValidationError
from lmdbstore.kinds import BY_NAME, INDEXES_OF
from lmdbstore.validate import MAX_KEY

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from lmdbstore.kinds import Fields, Kind
    from lmdbstore.storage.view import ReadView, WriteView

UNREAD: Final = object()
"""`Records.put`'s ``old`` when the caller has not read the record it overwrites."""


class Records:
    """The records of kind ``name`` of ``device`` (see the module docstring). Components
    are a kind's key components (strings as ``str`` or as validated UTF-8 bytes), fields
    its value fields, both in the order the kind declares."""

    __slots__ = (
        "_counted",
        "_dump",
        "_index_starts",
        "_start",
        "db",
        "indexes",
        "kind",
        "reads_old",
    )

    def __init__(self, name: str, device: int) -> None:
        self.kind: Kind = BY_NAME[name]
        self.db = self.kind.db
        self.indexes = INDEXES_OF[name]
        # Whether an overwrite must read the old record: some entry depends on its fields.
        self.reads_old = not all(index.derived_from_key for index in self.indexes)
        dev = keys.device_prefix(device)
        self._start = keys.prefix(dev, self.kind.tag)
        self._dump = cast("Callable[..., bytes]", self.kind.dump)
        # Each index kind by name, with the prefix of this device's entries.
        self._index_starts = {
            index.name: (index, keys.prefix(dev, index.tag)) for index in self.indexes
        }
        # The counted index, if any, and the key of this device's tally of it.
        self._counted = next(
            ((index, keys.tally(dev, index.tag)) for index in self.indexes if index.counted),
            None,
        )

    def key(self, components: Sequence[Any]) -> bytes:
        """The key of the record with these components (the first ones only: a prefix).
        A key over LMDB's limit is refused, a last line of defence (the validators of
        `lmdbstore.validate` already bound every component)."""
        key = self._start + self.kind.components(components)
        if len(key) > MAX_KEY:
            raise ValidationError(f"key of {len(key)} bytes exceeds the {MAX_KEY}-byte limit")
        return key

    @property
    def decode(self) -> Callable[[dict[str, object]], Fields]:
        """The kind's decoder of a stored map, for `lmdbstore.codec.load` (of a kind kept
        as a map of its fields, `lmdbstore.kinds`' ``_mapped``: its fields)."""
        return cast("Callable[[dict[str, object]], Fields]", self.kind.read)

    def get(self, view: ReadView, components: Sequence[Any]) -> Fields | None:
        """The fields of the record, or ``None``."""
        key = self.key(components)
        raw = view.get(self.db, key)
        return None if raw is None else self.kind.load_fields(key, raw)

    def _entries(self, components: Sequence[Any], fields: Fields) -> Iterator[bytes]:
        for index, start in self._index_starts.values():
            derived = cast("Callable[..., Fields | None]", index.derive)(tuple(components), fields)
            if derived is not None:
                yield start + index.components(derived)

    def items(self, components: Sequence[Any], fields: Fields) -> list[tuple[bytes, bytes]]:
        """The record and its index entries as stored, for a key that holds none yet. An
        entry over LMDB's key limit is refused as the record's key is (`key`)."""
        record = (self.key(components), self._dump(*fields))
        entries = [(entry, b"") for entry in self._entries(components, fields)]
        for entry, _ in entries:
            if len(entry) > MAX_KEY:
                raise ValidationError(
                    f"index key of {len(entry)} bytes exceeds the {MAX_KEY}-byte limit"
                )
        return [record, *entries]

    def _counts(self, components: Sequence[Any], fields: object) -> int:
        """Whether the record with these fields (``None``: no record) has an entry in the
        counted index."""
        assert self._counted is not None
        if fields is None:
            return 0
        derive = cast("Callable[..., Fields | None]", self._counted[0].derive)
        return derive(tuple(components), fields) is not None

    def put(
        self, view: WriteView, components: Sequence[Any], fields: Fields, old: object = UNREAD
    ) -> None:
        """Write the record, with its index entries in place of the old record's. ``old``:
        the old record's fields (``None``: there is none) when the caller has read them."""
        items = self.items(components, fields)  # first: a key it refuses writes nothing
        if self.reads_old:
            if old is UNREAD:
                old = self.get(view, components)
            if old is not None:
                for entry in self._entries(components, cast("Fields", old)):
                    view.delete(self.db, entry)
        view.put_many(self.db, items)
        if self._counted is not None:
            delta = self._counts(components, fields) - self._counts(components, old)
            if delta:
                view.tally(self.db, self._counted[1], delta)

    def take(self, view: WriteView, components: Sequence[Any]) -> Fields | None:
        """Delete the record and its index entries; its fields, or ``None`` when there was
        none. (Of a kind whose entries come from the key alone, the fields are ``()``:
        its value is not decoded.)"""
        key = self.key(components)
        raw = view.pop(self.db, key)
        if raw is None:
            return None
        fields = self.kind.load_fields(key, raw) if self.reads_old else ()
        for entry in self._entries(components, fields):
            view.delete(self.db, entry)
        if self._counted is not None and self._counts(components, fields):
            view.tally(self.db, self._counted[1], -1)
        return fields

    def count(self, view: ReadView) -> int:
        """The device's tally of the counted index: how many of its records have an entry
        there."""
        assert self._counted is not None
        key = self._counted[1]
        raw = view.get(self.db, key)
        return 0 if raw is None else keys.read_tally(self.db, key, raw)

    def under(self, view: ReadView, components: Sequence[Any] = ()) -> Iterator[list[Any]]:
        """The components of every record whose key starts with these components, in key
        order (strings decoded)."""
        for key, _ in view.scan_prefix(self.db, self.key(components)):
            yield self.kind.parse_key(key)

    def scan(
        self, view: ReadView, components: Sequence[Any] = ()
    ) -> Iterator[tuple[list[Any], Fields]]:
        """`under`, with each record's fields."""
        for key, raw in view.scan_prefix(self.db, self.key(components)):
            yield self.kind.parse_key(key), self.kind.load_fields(key, raw)

    def via(
        self,
        view: ReadView,
        name: str,
        components: Sequence[Any] = (),
        *,
        below: int | None = None,
        reverse: bool = False,
    ) -> Iterator[list[Any]]:
        """The components of the records whose entries in the index ``name`` start with
        these components, in the index's order (or reversed); ``below``: only entries whose
        next component, an i64, is less than it."""
        index, start = self._index_starts[name]
        first = start + index.components(components)
        stop = keys.prefix_end(first) if below is None else first + keys.i64(below)
        for key, _ in view.scan(self.db, first, stop, reverse=reverse):
            yield index.record_components(index.parse_key(key))

    def expire(
        self, view: WriteView, name: str, below: int | None, limit: int | None = None
    ) -> int:
        """Delete the records whose entry in the time index ``name`` (an i64, then the
        record's key) is below ``below`` (``None``: every one), oldest first, at most
        ``limit``; how many. Its cost grows with what it deletes, and a storage may do it
        in one statement (`WriteView.delete_indexed`)."""
        index, start = self._index_starts[name]
        assert len(self.indexes) == 1 and index.key[1:] == self.kind.key, name
        stop = keys.prefix_end(start) if below is None else start + keys.i64(below)
        deleted = view.delete_indexed(self.db, start, stop, self._start, 8, limit)
        if deleted and self._counted is not None:
            view.tally(self.db, self._counted[1], -deleted)
        return deleted

    def timed(self, view: ReadView, name: str) -> Iterator[tuple[int, list[Any]]]:
        """Each entry of the time index ``name`` (an i64, then the record's components),
        oldest first: its time and the components of its record."""
        index, start = self._index_starts[name]
        for key, _ in view.scan_prefix(self.db, start):
            parsed = index.parse_key(key)
            yield parsed[0], index.record_components(parsed)

    def clear(self, view: WriteView) -> None:
        """Delete every record of this kind of the device, and every index entry."""
        for start in (self._start, *(start for _, start in self._index_starts.values())):
            for key, _ in view.scan_prefix(self.db, start):
                view.delete(self.db, key)
        if self._counted is not None:
            view.delete(self.db, self._counted[1])
