"""Every kind of record of the byte layout, declared once.

A `Kind` says where its records live (sub-database and tag, `lmdbstore.keys`), what its key
holds after ``device · tag`` (named, typed components), and what its value holds (named,
typed fields): `Kind.dump` writes the fields as the stored bytes (`lmdbstore.codec`),
`Kind.fields` reads them back, and `Kind.read` is the decoder that ``verify`` checks stored
values with. An index kind has no value (its entries are empty) and is derived from the
records of `Kind.index_of`.

Everything else a backend or a tool needs of a kind is derived from the same declaration:
its SQLite table (`Kind.table`: a column per component and field, typed by them), its
export fields (components then fields, under `Kind.renamed` where the export format
predates the declarations), and how an imported record is checked (each part's type, or
`Kind.checks`). ``verify``, the SQLite storage, the export walk and the import are keyed
by these declarations; a test checks that each of them covers every kind. (The write
sequence of LID mappings, ``ProtocolTag.WRITE_SEQ``, is a counter rather than a record: it
is not a kind.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import cbor2

from lmdbstore import codec, keys, validate
from lmdbstore.errors import SerializationError
from lmdbstore.keys import (
    AppSyncTag,
    CacheTag,
    ChatTag,
    ContactTag,
    DeviceTag,
    EventBufferTag,
    MsgSecretTag,
    ProtocolTag,
    SignalTag,
)
from lmdbstore.types import AppStateSyncKey, LidPnMappingEntry
from lmdbstore.validate import I64_MIN

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

Component = Literal["s", "u32", "i64", "b"]
"""A key component: a string (UTF-8 and a NUL), a u32, a sign-flipped i64, or raw bytes
(the last component only)."""

FieldType = Literal["bytes", "int", "str", "bool", "bytes?", "int?", "str?"]
"""A value field: bytes, an i64, a string or a flag; ``?``: or ``None``."""

Check = Callable[[Any, str], Any]
"""A validator of `lmdbstore.validate`'s shape: ``check(value, what)`` gives the value as
the domain layer takes it, or raises `ValidationError` naming ``what``."""

Fields = tuple[Any, ...]


@dataclass(frozen=True, eq=False)
class Kind:
    """One kind of record (or of index entry) of the byte layout (see the module
    docstring)."""

    name: str
    db: str
    tag: int
    key: tuple[tuple[str, Component], ...]
    values: tuple[tuple[str, FieldType], ...] = ()
    dump: Callable[..., bytes] | None = None
    fields: Callable[[bytes], Fields] | None = None
    read: Callable[[dict[str, object]], object] | None = None
    index_of: str | None = None
    derive: Callable[[Fields, Fields], Fields | None] | None = None
    counted: bool = False
    """An index whose entries each device keeps a tally of (`lmdbstore.keys.TALLY`): what
    a size cap (`lmdbstore.types.Limits`) counts. Its entries depend on their record's
    fields, so a write always knows whether it adds or removes one."""
    table: str = ""
    """A record kind's SQLite table (``""``: SQLite keeps none); an index is read from its
    record's."""
    renamed: dict[str, str] = field(default_factory=dict)
    """The export name of each component or field whose export name is another."""
    checks: dict[str, Check] = field(default_factory=dict)
    """The check of an imported component or field where its type's is not enough."""
    since: int = 1
    """The format that added the kind (`lmdbstore.keys.FORMAT_VERSION`): SQLite creates
    its table in the migration to that version."""
    exported: bool = True
    """Whether an export carries the records (a device's lease, which says who runs the
    account now, does not travel with it)."""

    @functools.cached_property
    def value_names(self) -> tuple[str, ...]:
        """The names of the value fields, in order (the SQLite value columns)."""
        return tuple(name for name, _ in self.values)

    @functools.cached_property
    def export_names(self) -> tuple[str, ...]:
        """The export name of each component, then of each field."""
        names = (*(name for name, _ in self.key), *self.value_names)
        return tuple(self.renamed.get(name, name) for name in names)

    @property
    def is_index(self) -> bool:
        """Whether this kind is a secondary index: ``derive`` gives the components of a
        record's entry (from the record's components and fields), or ``None`` when the
        record has none."""
        return self.index_of is not None

    @property
    def derived_from_key(self) -> bool:
        """Whether this index's entries are derived from their record's key alone (each
        component is named after one of the record's): overwriting a record then leaves
        its entry as it is."""
        record = {name for name, _ in BY_NAME[cast("str", self.index_of)].key}
        return {name for name, _ in self.key} <= record

    @functools.cached_property
    def _record_positions(self) -> tuple[int, ...]:
        """Where each component of the record's key stands in this index's key."""
        names = [name for name, _ in self.key]
        return tuple(names.index(name) for name, _ in BY_NAME[cast("str", self.index_of)].key)

    def checked(self, record: Mapping[str, Any]) -> tuple[list[Any], Fields]:
        """The components and fields of a record given by export name (an imported
        line), each through its check (`checks`, or its type's); a `ValidationError`
        names the first that fails. A key too long for its record or an index entry is
        refused when it is written (`lmdbstore.domains.records.Records`)."""
        parts = (*self.key, *self.values)
        found = [
            (self.checks.get(name) or _CHECKS[type_])(record[export], export)
            for (name, type_), export in zip(parts, self.export_names, strict=True)
        ]
        return found[: len(self.key)], tuple(found[len(self.key) :])

    def record_components(self, components: Sequence[Any]) -> list[Any]:
        """The key components of the record that this index entry (its ``components``)
        comes from: every component of a record's key is also one of its entries',
        under the same name."""
        return [components[position] for position in self._record_positions]

    def load_fields(self, key: bytes, raw: bytes) -> Fields:
        """`fields` of the value ``raw`` stored at ``key``: a `SerializationError` naming
        them when it is not a value of this kind (hostile bytes)."""
        try:
            return cast("Callable[[bytes], Fields]", self.fields)(raw)
        except SerializationError as exc:  # a blob's own check, which knows no key
            raise SerializationError(self.db, key, exc.reason) from None
        except codec.DECODE_ERRORS as exc:
            raise SerializationError(self.db, key, str(exc) or type(exc).__name__) from None

    def key_bytes(self, device: int, components: Sequence[Any]) -> bytes:
        """The key of the record of ``device`` with these components (a string as ``str``
        or as its validated UTF-8 bytes)."""
        return keys.device_prefix(device) + bytes((self.tag,)) + self.components(components)

    def parse_prefix(self, key: bytes) -> tuple[list[Any], str | None]:
        """The components that the key or key prefix ``key`` holds after ``device · tag``,
        in order (strings decoded), and a last string component cut before its NUL, or
        ``None``; `ValueError` (or `UnicodeDecodeError`) when its bytes are not of this
        kind."""
        found: list[Any] = []
        offset = 5
        for _, kind in self.key:
            if offset >= len(key):
                break
            if kind == "s":
                end = key.find(b"\x00", offset)
                if end < 0:
                    return found, key[offset:].decode()
                found.append(key[offset:end].decode())
                offset = end + 1
            elif kind in ("u32", "i64"):
                read = keys.read_u32 if kind == "u32" else keys.read_i64
                if len(key) < offset + (4 if kind == "u32" else 8):
                    raise ValueError("key too short")
                value, offset = read(key, offset)
                found.append(value)
            else:
                found.append(key[offset:])
                offset = len(key)
        if offset != len(key):
            raise ValueError("bytes past the key's components")
        return found, None

    def parse(self, key: bytes) -> list[Any]:
        """The components of the whole key ``key`` (strings decoded); `ValueError` (or
        `UnicodeDecodeError`) when it is not a whole key of this kind."""
        found, cut = self.parse_prefix(key)
        if cut is not None or len(found) != len(self.key):
            raise ValueError("key too short")
        return found

    def parse_key(self, key: bytes) -> list[Any]:
        """`parse`, for a key read from the store: one that is not of this kind (hostile
        bytes) is a `SerializationError` naming it."""
        try:
            return self.parse(key)
        except ValueError as exc:  # UnicodeDecodeError included
            raise SerializationError(self.db, key, f"malformed {self.name} key: {exc}") from None

    @functools.cached_property
    def _encoders(self) -> tuple[Callable[[Any], bytes], ...]:
        return tuple(_ENCODERS[kind] for _, kind in self.key)

    def items(self, head: bytes, rows: Sequence[Sequence[Any]]) -> list[tuple[bytes, bytes]]:
        """The stored ``(key, value)`` of each row (its key components, then its fields)
        of the records under ``head`` (``device · tag``): the path of every record a batch
        writes. A kind with one key component (most) encodes it without `components`,
        whose call per row cost as much as the rest, and with one or two fields its rows
        are unpacked instead of sliced (a pre-key batch of 812: 0.15 against 0.33 ms)."""
        dump = cast("Callable[..., bytes]", self.dump)
        width = len(self.key)
        if width == 1:
            encode = self._encoders[0]
            if len(self.values) == 1:
                return [(head + encode(k), dump(v)) for k, v in rows]
            if len(self.values) == 2:
                return [(head + encode(k), dump(a, b)) for k, a, b in rows]
            return [(head + encode(row[0]), dump(*row[1:])) for row in rows]
        return [(head + self.components(row[:width]), dump(*row[width:])) for row in rows]

    def components(self, components: Sequence[Any]) -> bytes:
        """The key after ``device · tag``: each component in its byte form (the first ones
        only: a key prefix). On the path of every record a batch writes: one encoder call
        per component."""
        encoders = self._encoders
        if len(components) > len(encoders):
            raise ValueError(f"{self.name} keys have {len(self.key)} components")
        if len(components) == 1:
            return encoders[0](components[0])
        return b"".join(
            [encode(value) for encode, value in zip(encoders, components, strict=False)]
        )


def _text_part(value: str | bytes) -> bytes:
    """A string component (as ``str``, or as its validated UTF-8 bytes) and its NUL."""
    return (value.encode() if isinstance(value, str) else value) + b"\x00"


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "s": _text_part,
    "u32": keys.pack_u32,
    "i64": keys.i64,
    "b": bytes,
}


def _optional(check: Check) -> Check:
    return lambda value, what: validate.optional(value, what, check)


_CHECKS: dict[str, Check] = {
    **{"s": validate.text, "u32": validate.u32, "i64": validate.i64, "b": validate.key_bytes},
    **{"bytes": validate.blob, "int": validate.i64, "str": validate.name, "bool": validate.flag},
}
"""The check of each type of key component and value field."""
_CHECKS |= {f"{type_}?": _optional(_CHECKS[type_]) for type_ in ("bytes", "int", "str")}


def _map(raw: bytes) -> dict[str, Any]:
    found = codec.loads(raw)
    if not isinstance(found, dict):
        raise TypeError("not a record map")
    return found


Key = tuple[tuple[str, Component], ...]


def _blob(name: str, db: str, tag: int, key: Key, value: str, **more: Any) -> Kind:
    """A record whose one field is an opaque value (`lmdbstore.codec.dump_blob`)."""
    return Kind(
        name,
        db,
        tag,
        key,
        ((value, "bytes"),),
        codec.dump_blob,
        lambda raw: (codec.load_blob(db, b"", raw),),
        codec.read_blob,
        **more,
    )


def _cbor(name: str, db: str, tag: int, key: Key, read: Any, table: str) -> Kind:
    """A record whose one field is its CBOR bytes themselves."""
    return Kind(
        name, db, tag, key, (("record", "bytes"),), bytes, lambda raw: (raw,), read, table=table
    )


def _mapped(
    name: str,
    db: str,
    tag: int,
    key: Key,
    values: tuple[tuple[str, FieldType, str], ...],
    **more: Any,
) -> Kind:
    """A record kept as one CBOR map of its fields (`lmdbstore.codec.dump_map`): each value
    is ``(name, type, stored name)``. A field with a check (``checks``) is held to it when
    read too: a stored value the write path would refuse is a corrupt record."""
    stored = tuple(short for _, _, short in values)
    types = tuple(type_ for _, type_, _ in values)
    decode = codec.read_map(stored, types)
    declared = more.get("checks", {})
    checked = [(i, declared[n], n) for i, (n, _, _) in enumerate(values) if n in declared]

    def read(fields: dict[str, object]) -> Fields:
        found = decode(fields)
        for i, check, field_name in checked:
            check(found[i], field_name)  # a ValidationError: a SerializationError on load
        return found

    reader = read if checked else decode
    return Kind(
        name,
        db,
        tag,
        key,
        tuple((n, type_) for n, type_, _ in values),
        codec.dump_map(stored, types),
        lambda raw: reader(_map(raw)),
        reader,
        **more,
    )


def _timed(name: str, tag: int, key: Key, value: str, at: str, table: str) -> Kind:
    """A value with the time it was stored (sent messages, pending inbound)."""
    return _mapped(
        name, "protocol", tag, key, ((value, "bytes", "r"), (at, "int", "at")), table=table
    )


def _lid_fields(raw: bytes) -> Fields:
    entry, seq = codec.read_lid_mapping("")(_map(raw))
    return entry.phone_number, entry.created_at, entry.updated_at, entry.learning_source, seq


def _lid_dump(phone: str, created: int, updated: int, source: str, seq: int) -> bytes:
    return codec.dump_lid_mapping(LidPnMappingEntry("", phone, created, updated, source), seq)


def _version_fields(raw: bytes) -> Fields:
    state = codec.read_hash_state(_map(raw))
    return state.version, state.hash, codec.dumps(state.index_value_map), state.mac_mismatch_fatal


def _version_dump(version: int, state_hash: bytes, value_map: bytes, fatal: int) -> bytes:
    mapping = codec.load("appsync", b"", value_map, codec.read_value_map)
    return cbor2.dumps({"v": version, "h": state_hash, "m": mapping, "x": bool(fatal)})


def _mac_fields(raw: bytes) -> Fields:
    found = _map(raw)
    return codec.field_bytes(found, "v"), codec.field_int(found, "n", bounds=codec.U64)


def _sync_key_fields(raw: bytes) -> Fields:
    key = codec.read_sync_key(_map(raw))
    return key.key_data, key.fingerprint, key.timestamp


_MESSAGE: Key = (("chat", "s"), ("message_id", "s"))
_INBOUND: Key = (("chat", "s"), ("sender", "s"), ("message_id", "s"))
_SECRET: Key = (("chat", "s"), ("sender", "s"), ("msg_id", "s"))

ALL: tuple[Kind, ...] = (
    _blob(
        "identity",
        "signal",
        SignalTag.IDENTITY,
        (("address", "s"),),
        "identity_key",
        table="identities",
        renamed={"identity_key": "key"},
    ),
    _blob("session", "signal", SignalTag.SESSION, (("address", "s"),), "record", table="sessions"),
    Kind(
        "prekey",
        "signal",
        SignalTag.PREKEY,
        (("prekey_id", "u32"),),
        (("record", "bytes"), ("uploaded", "bool")),
        lambda record, uploaded: codec.dump_prekey(record, bool(uploaded)),
        lambda raw: codec.load_prekey("signal", b"", raw),
        codec.read_prekey,
        table="prekeys",
        renamed={"prekey_id": "id"},
    ),
    _blob(
        "signed_prekey",
        "signal",
        SignalTag.SIGNED_PREKEY,
        (("signed_prekey_id", "u32"),),
        "record",
        table="signed_prekeys",
        renamed={"signed_prekey_id": "id"},
    ),
    _blob(
        "sender_key",
        "signal",
        SignalTag.SENDER_KEY,
        (("name", "s"),),
        "record",
        table="sender_keys",
    ),
    Kind(
        "sync_key",
        "appsync",
        AppSyncTag.SYNC_KEY,
        (("key_id", "b"),),
        (("key_data", "bytes"), ("fingerprint", "bytes"), ("timestamp", "int")),
        lambda data, fingerprint, at: codec.dump_sync_key(AppStateSyncKey(data, fingerprint, at)),
        _sync_key_fields,
        codec.read_sync_key,
        table="sync_keys",
    ),
    Kind(
        "latest_sync_key",
        "appsync",
        AppSyncTag.LATEST_SYNC_KEY,
        (),
        (("key_id", "bytes"),),
        codec.dump_key_id,
        lambda raw: (codec.read_key_id(_map(raw)),),
        codec.read_key_id,
        table="latest_sync_key",
        checks={"key_id": validate.key_bytes},
    ),
    Kind(
        "app_state_version",
        "appsync",
        AppSyncTag.VERSION,
        (("name", "s"),),
        (
            ("version", "int"),
            ("hash", "bytes"),
            ("value_map", "bytes"),
            ("mac_mismatch_fatal", "bool"),
        ),
        _version_dump,
        _version_fields,
        codec.read_hash_state,
        table="app_state_versions",
    ),
    Kind(
        "mutation_mac",
        "appsync",
        AppSyncTag.MUTATION_MAC,
        (("name", "s"), ("index_mac", "b")),
        (("value_mac", "bytes"), ("version", "int")),
        codec.dump_mutation_mac,
        _mac_fields,
        codec.read_mutation_mac,
        table="mutation_macs",
    ),
    _mapped(
        "sender_key_device",
        "protocol",
        ProtocolTag.SENDER_KEY_DEVICE,
        (("group_jid", "s"), ("device_jid", "s")),
        (("has_key", "bool", "k"),),
        table="sender_key_devices",
        renamed={"group_jid": "group"},
    ),
    Kind(
        "sender_key_device_by_jid",
        "protocol",
        ProtocolTag.SENDER_KEY_DEVICE_BY_JID,
        (("device_jid", "s"), ("group_jid", "s")),
        index_of="sender_key_device",
        derive=lambda key, _: (key[1], key[0]),
    ),
    Kind(
        "lid_mapping",
        "protocol",
        ProtocolTag.LID_MAPPING,
        (("lid", "s"),),
        (
            ("phone_number", "str"),
            ("created_at", "int"),
            ("updated_at", "int"),
            ("learning_source", "str"),
            ("seq", "int"),
        ),
        _lid_dump,
        _lid_fields,
        codec.read_lid_mapping(""),
        table="lid_mappings",
    ),
    Kind(
        "lid_by_phone",
        "protocol",
        ProtocolTag.LID_BY_PHONE,
        (("phone_number", "s"), ("updated_at", "i64"), ("seq", "i64"), ("lid", "s")),
        index_of="lid_mapping",
        derive=lambda key, fields: (fields[0], fields[2], fields[4], key[0]),
    ),
    _blob(
        "base_key",
        "protocol",
        ProtocolTag.BASE_KEY,
        (("address", "s"), ("message_id", "s")),
        "base_key",
        table="base_keys",
        renamed={"base_key": "key"},
    ),
    _cbor(
        "device_list",
        "protocol",
        ProtocolTag.DEVICE_LIST,
        (("user", "s"),),
        codec.read_device_list(""),
        "device_lists",
    ),
    _blob(
        "group_metadata",
        "protocol",
        ProtocolTag.GROUP_METADATA,
        (("group_jid", "s"),),
        "metadata",
        table="group_metadata",
        renamed={"group_jid": "group"},
    ),
    _mapped(
        "tc_token",
        "protocol",
        ProtocolTag.TC_TOKEN,
        (("jid", "s"),),
        (
            ("token", "bytes", "t"),
            ("token_timestamp", "int", "ts"),
            ("sender_timestamp", "int?", "s"),
        ),
        table="tc_tokens",
    ),
    Kind(
        "tc_token_by_time",
        "protocol",
        ProtocolTag.TC_TOKEN_BY_TIME,
        (("token_time", "i64"), ("jid", "s")),
        index_of="tc_token",
        # An empty token sits at the minimum time: expiry always considers it.
        derive=lambda key, fields: (fields[1] if fields[0] else I64_MIN, key[0]),
    ),
    _timed(
        "sent_message", ProtocolTag.SENT_MESSAGE, _MESSAGE, "payload", "created_at", "sent_messages"
    ),
    Kind(
        "sent_message_by_time",
        "protocol",
        ProtocolTag.SENT_MESSAGE_BY_TIME,
        (("created_at", "i64"), *_MESSAGE),
        index_of="sent_message",
        derive=lambda key, fields: (fields[1], *key),
        counted=True,
    ),
    _timed(
        "pending_inbound",
        ProtocolTag.PENDING_INBOUND,
        _INBOUND,
        "message",
        "inserted_at",
        "pending_inbound",
    ),
    Kind(
        "pending_inbound_by_time",
        "protocol",
        ProtocolTag.PENDING_INBOUND_BY_TIME,
        (("inserted_at", "i64"), *_INBOUND),
        index_of="pending_inbound",
        derive=lambda key, fields: (fields[1], *key),
    ),
    _mapped(
        "msg_secret",
        "msgsecret",
        MsgSecretTag.SECRET,
        _SECRET,
        (("secret", "bytes", "s"), ("expires_at", "int", "e"), ("message_ts", "int", "t")),
        table="msg_secrets",
    ),
    Kind(
        "msg_secret_by_expiry",
        "msgsecret",
        MsgSecretTag.SECRET_BY_EXPIRY,
        (("expires_at", "i64"), *_SECRET),
        index_of="msg_secret",
        derive=lambda key, fields: (fields[1], *key) if fields[1] else None,
        counted=True,
    ),
    _cbor("device", "device", DeviceTag.DEVICE, (), codec.read_device, "devices"),
    _mapped(
        "device_lease",
        "device",
        DeviceTag.LEASE,
        (),
        (("holder", "bytes", "h"), ("expires_at", "int", "e")),
        table="device_leases",
        since=4,
        exported=False,
    ),
    _mapped(
        "contact",
        "contact",
        ContactTag.CONTACT,
        (("jid", "s"),),
        (
            ("first_name", "str", "f"),
            ("full_name", "str", "n"),
            ("push_name", "str", "p"),
            ("business_name", "str", "b"),
            ("redacted_phone", "str", "r"),
        ),
        table="contacts",
        since=2,
    ),
    _mapped(
        "buffered_event",
        "eventbuf",
        EventBufferTag.BUFFERED,
        (("hash", "b"),),
        (("plaintext", "bytes?", "p"), ("server_ts", "int", "s"), ("insert_ts", "int", "i")),
        table="buffered_events",
        checks={"hash": validate.event_hash},
        since=2,
    ),
    Kind(
        "buffered_event_by_time",
        "eventbuf",
        EventBufferTag.BUFFERED_BY_TIME,
        (("insert_ts", "i64"), ("hash", "b")),
        index_of="buffered_event",
        derive=lambda key, fields: (fields[2], *key),
    ),
    _mapped(
        "outgoing_event",
        "eventbuf",
        EventBufferTag.OUTGOING,
        (("chat", "s"), ("message_id", "s")),
        (("format", "str", "f"), ("plaintext", "bytes", "p"), ("timestamp", "int", "t")),
        table="outgoing_events",
        since=2,
    ),
    Kind(
        "outgoing_event_by_time",
        "eventbuf",
        EventBufferTag.OUTGOING_BY_TIME,
        (("timestamp", "i64"), ("chat", "s"), ("message_id", "s")),
        index_of="outgoing_event",
        derive=lambda key, fields: (fields[2], *key),
    ),
    _mapped(
        "chat_settings",
        "chat",
        ChatTag.SETTINGS,
        (("chat", "s"),),
        (("muted_until", "int", "m"), ("pinned", "bool", "p"), ("archived", "bool", "a")),
        table="chat_settings",
        checks={"muted_until": validate.muted_until},
        since=2,
    ),
    _mapped(
        "cache_entry",
        "cache",
        CacheTag.ENTRY,
        (("namespace", "s"), ("key", "s")),
        (("value", "bytes", "v"), ("expires_ms", "int?", "e")),
        renamed={"namespace": "ns"},
        checks={"namespace": validate.namespace},
    ),
    Kind(
        "cache_entry_by_expiry",
        "cache",
        CacheTag.ENTRY_BY_EXPIRY,
        (("expires_ms", "i64"), ("namespace", "s"), ("key", "s")),
        index_of="cache_entry",
        derive=lambda key, fields: None if fields[1] is None else (fields[1], *key),
    ),
)
"""Every kind, records and indexes."""

BY_TAG: dict[tuple[str, int], Kind] = {(kind.db, kind.tag): kind for kind in ALL}
"""The kind of each (sub-database, tag)."""

BY_NAME: dict[str, Kind] = {kind.name: kind for kind in ALL}
"""Each kind by its name (a record kind's name is its export kind)."""

COUNTED: tuple[Kind, ...] = tuple(kind for kind in ALL if kind.counted)
"""The counted indexes (see `Kind.counted`)."""
assert not any(kind.derived_from_key for kind in COUNTED)


def is_tally(db: str, key: bytes) -> bool:
    """Whether ``key`` of ``db`` is a device's tally of a counted index (`keys.TALLY`)."""
    if len(key) != 6 or key[4] != keys.TALLY:
        return False
    index = BY_TAG.get((db, key[5]))
    return index is not None and index.counted


TABLES_OF: dict[str, tuple[str, ...]] = {
    db: tuple(kind.table for kind in ALL if kind.db == db and kind.table)
    for db in dict.fromkeys(kind.db for kind in ALL if kind.table)
}
"""The SQLite tables of each domain's record kinds, in declaration order."""

INDEXES_OF: dict[str, tuple[Kind, ...]] = {
    kind.name: tuple(index for index in ALL if index.index_of == kind.name)
    for kind in ALL
    if not kind.is_index
}
"""The index kinds derived from each record kind."""
