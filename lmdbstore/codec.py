"""The byte form of stored records: one CBOR map per record, with short stable field names.

Decoding is strict: a record whose bytes are not a CBOR map of the expected fields and types
raises `SerializationError` naming the domain and the key, instead
of handing a half-read object to the client. Fields added by a later version are decoded
with defaults when absent, which is how an older record keeps loading.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import cbor2

from lmdbstore.errors import SerializationError, ValidationError
from lmdbstore.types import (
    AppStateSyncKey,
    Device,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMappingEntry,
    NoiseCert,
    ServerCertChain,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

_T = TypeVar("_T")

MAX_DEPTH = 16
"""Nesting bound for decoding: our records are at most 3 deep, hostile bytes may be more."""


def _refuse_tag(_decoder: object, _value: object) -> NoReturn:
    raise ValueError("a CBOR tag (none is ever written)")


class _NoTags(Mapping[int, "Callable[[object, object], NoReturn]"]):
    """cbor2's semantic decoders, replaced for every tag number by a refusal: a tag may be
    a shared reference (a few bytes that expand to gigabytes once copied out), a regular
    expression, a date... and lmdbstore never writes one."""

    def __getitem__(self, tag: int) -> Callable[[object, object], NoReturn]:
        return _refuse_tag

    def __contains__(self, tag: object) -> bool:
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


def loads(raw: bytes) -> object:
    """Decode CBOR strictly: plain data only (maps, arrays, strings, numbers, booleans,
    null), no tags, definite lengths, no duplicate map keys, at most `MAX_DEPTH` deep. So the
    decoded value is never bigger than ``raw``. Raises ``cbor2.CBORDecodeError``."""
    return _strict_loads(raw)


_strict_loads = functools.partial(
    cbor2.loads,
    semantic_decoders=_NoTags(),
    tag_hook=_refuse_tag,
    max_depth=MAX_DEPTH,
    allow_indefinite=False,
    allow_duplicate_keys=False,
)


def stored_version(raw: bytes) -> int | None:
    """The on-disk format version that ``raw`` holds; None when it holds no plain u32
    (hostile bytes, a tagged bignum, a value of another type)."""
    try:
        version = _strict_loads(raw)
    except (cbor2.CBORError, ValueError):
        return None
    if isinstance(version, int) and not isinstance(version, bool) and 0 <= version < 1 << 32:
        return version
    return None


class _Malformed(Exception):
    """A record's content is not what its kind requires (turned into SerializationError)."""


DECODE_ERRORS = (_Malformed, cbor2.CBORError, ValueError, TypeError, KeyError, RecursionError)
"""What decoding hostile bytes may raise (each turned into a SerializationError)."""


def dumps(fields: Mapping[str, object]) -> bytes:
    """Encode one record map."""
    return cbor2.dumps(fields)


UNREADABLE = b"\xff"
"""The first byte of the value a storage gives for a record it could not read (a SQLite row
with a column of the wrong type); the rest says why. No CBOR item starts with it."""


def unreadable(reason: str) -> bytes:
    """The value of a record a storage could not read, for `load` to refuse."""
    return UNREADABLE + reason.encode()


def load(domain: str, key: bytes, raw: bytes, decoder: Callable[[dict[str, object]], _T]) -> _T:
    """Decode ``raw`` (stored at ``key`` of ``domain``) with ``decoder``, or raise
    SerializationError naming both."""
    if raw[:1] == UNREADABLE:
        reason = raw[1:].decode(errors="replace")
        raise SerializationError(domain, key, f"unreadable: {reason}")
    try:
        fields = _strict_loads(raw)
        if not isinstance(fields, dict):
            raise _Malformed(f"expected a map, found {type(fields).__name__}")
        return decoder(fields)
    except DECODE_ERRORS as exc:
        raise SerializationError(domain, key, str(exc) or type(exc).__name__) from None


def field_bytes(fields: dict[str, object], name: str) -> bytes:
    """A required bytes field."""
    value = fields[name]
    if not isinstance(value, bytes):
        raise _Malformed(f"field {name!r} is {type(value).__name__}, not bytes")
    return value


I64 = (-(1 << 63), 1 << 63)
U64 = (0, 1 << 64)
"""The ranges of stored integers: times, sequence numbers and ids are i64 (what the key
layout and SQLite hold), collection versions u64."""


def field_int(
    fields: dict[str, object],
    name: str,
    default: int | None = None,
    *,
    bounds: tuple[int, int] = I64,
) -> int:
    """An int field within ``bounds`` (``[low, high)``, i64 by default); ``default`` when
    absent (required when ``default`` is None)."""
    if name not in fields and default is not None:
        return default
    value = fields[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Malformed(f"field {name!r} is {type(value).__name__}, not int")
    if not bounds[0] <= value < bounds[1]:
        raise _Malformed(f"field {name!r} is out of range")
    return value


def field_bool(fields: dict[str, object], name: str, default: bool = False) -> bool:
    """A bool field; ``default`` when absent."""
    value = fields.get(name, default)
    if not isinstance(value, bool):
        raise _Malformed(f"field {name!r} is {type(value).__name__}, not bool")
    return value


# Records with one opaque value: identities, sessions, signed pre-keys, sender keys. They
# are the hottest records, so their fixed CBOR form {"r": bytes} is written and read by hand
# (byte for byte what cbor2 writes; anything else is read by cbor2, strictly).
_BLOB_HEAD = b"\xa1\x61r"  # map of 1 pair, text key of length 1: "r"
_BYTES = 0x40  # CBOR major type 2 (byte string)


def _bytes_head(size: int) -> bytes:
    """The CBOR head of a byte string of ``size`` bytes (values written are at most 8 MiB)."""
    if size < 24:
        return bytes((_BYTES | size,))
    if size < 0x100:
        return bytes((_BYTES | 24, size))
    if size < 0x10000:
        return bytes((_BYTES | 25,)) + size.to_bytes(2, "big")
    return bytes((_BYTES | 26,)) + size.to_bytes(4, "big")


def dump_blob(value: bytes) -> bytes:
    """An opaque-value record: the CBOR map ``{"r": value}``."""
    return b"".join((_BLOB_HEAD, _bytes_head(len(value)), value))


def read_blob(fields: dict[str, object]) -> bytes:
    """Decoder of `dump_blob` (for `load`)."""
    return field_bytes(fields, "r")


_LENGTH_BYTES = {24: 1, 25: 2, 26: 4}


_BLOB_HEAD_2 = _BLOB_HEAD + bytes((_BYTES | 25,))  # the head of values of 256 B to 64 KiB
_HEAD_AND_SIZE_2 = struct.Struct(">4sH").unpack_from  # that head, then the 2-byte length


def _byte_string(raw: bytes, at: int) -> tuple[int, int] | None:
    """Where the content of the CBOR byte string at offset ``at`` of ``raw`` starts and
    ends, when one of a definite length is there (``None`` otherwise: the caller decodes
    strictly)."""
    if len(raw) <= at:
        return None
    info = raw[at] ^ _BYTES
    if info < 24:
        start, size = at + 1, info
    else:
        width = _LENGTH_BYTES.get(info, 0)
        if not width:
            return None
        start = at + 1 + width
        size = int.from_bytes(raw[at + 1 : start], "big")
    end = start + size
    return (start, end) if end <= len(raw) else None


def load_blob(domain: str, key: bytes, raw: bytes) -> bytes:
    """``load(domain, key, raw, read_blob)``, fast for the form `dump_blob` writes."""
    if len(raw) >= 6:  # sessions and most records first: one unpack, one comparison
        head, size = _HEAD_AND_SIZE_2(raw)
        if head == _BLOB_HEAD_2 and size == len(raw) - 6:
            return raw[6:]
    if raw[:3] == _BLOB_HEAD:
        found = _byte_string(raw, 3)
        if found is not None and found[1] == len(raw):
            return raw[found[0] :]
    return load(domain, key, raw, read_blob)


def is_blob(raw: bytes) -> bool:
    """Whether `load_blob` takes ``raw`` in the form `dump_blob` writes, found without
    copying the value (``verify`` of a store of large records must not hold the interpreter
    for their copies)."""
    if raw[:3] != _BLOB_HEAD:
        return False
    found = _byte_string(raw, 3)
    return found is not None and found[1] == len(raw)


_PREKEY_HEAD = b"\xa2\x61r"  # map of 2 pairs, then "r" (the record), then "u" (uploaded)
_UPLOADED = {b"\x61u\xf5": True, b"\x61u\xf4": False}


_PREKEY_HEADS = [_PREKEY_HEAD + _bytes_head(size) for size in range(0x100)]
"""`dump_prekey`'s head for each record size under 256 (pre-keys are about 100 bytes)."""


def dump_prekey(record: bytes, uploaded: bool) -> bytes:
    """A one-time pre-key and whether the server has it: ``{"r": record, "u": uploaded}``,
    written by hand as cbor2 writes it (a batch holds hundreds)."""
    size = len(record)
    head = _PREKEY_HEADS[size] if size < 0x100 else _PREKEY_HEAD + _bytes_head(size)
    return b"".join((head, record, b"\x61u\xf5" if uploaded else b"\x61u\xf4"))


def read_prekey(fields: dict[str, object]) -> tuple[bytes, bool]:
    """Decoder of `dump_prekey`."""
    return field_bytes(fields, "r"), field_bool(fields, "u")


def load_prekey(domain: str, key: bytes, raw: bytes) -> tuple[bytes, bool]:
    """``load(domain, key, raw, read_prekey)``, fast for the form `dump_prekey` writes
    (batches of hundreds of pre-keys are read and, on SQLite, turned into rows)."""
    if raw[:3] == _PREKEY_HEAD:
        found = _byte_string(raw, 3)
        if found is not None:
            uploaded = _UPLOADED.get(raw[found[1] :])
            if uploaded is not None:
                return raw[found[0] : found[1]], uploaded
    return load(domain, key, raw, read_prekey)


def dump_sync_key(key: AppStateSyncKey) -> bytes:
    """An app-state sync key."""
    return cbor2.dumps({"d": key.key_data, "f": key.fingerprint, "t": key.timestamp})


def read_sync_key(fields: dict[str, object]) -> AppStateSyncKey:
    """Decoder of `dump_sync_key`."""
    return AppStateSyncKey(
        key_data=field_bytes(fields, "d"),
        fingerprint=field_bytes(fields, "f"),
        timestamp=field_int(fields, "t"),
    )


def dump_hash_state(state: HashState) -> bytes:
    """The hash state of a collection."""
    return cbor2.dumps(
        {
            "v": state.version,
            "h": state.hash,
            "m": state.index_value_map,
            "x": state.mac_mismatch_fatal,
        }
    )


def read_value_map(mapping: object) -> dict[str, bytes]:
    """A hash state's index-value map: str keys, bytes values."""
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, bytes) for k, v in mapping.items()
    ):
        raise _Malformed("the index-value map is not a map of str to bytes")
    return mapping


def read_hash_state(fields: dict[str, object]) -> HashState:
    """Decoder of `dump_hash_state`."""
    mapping = read_value_map(fields.get("m", {}))
    state_hash = field_bytes(fields, "h")
    if len(state_hash) != 128:
        raise _Malformed(f"field 'h' is {len(state_hash)} bytes, not 128")
    return HashState(
        version=field_int(fields, "v", bounds=U64),
        hash=state_hash,
        index_value_map=mapping,
        mac_mismatch_fatal=field_bool(fields, "x"),
    )


def dump_mutation_mac(value_mac: bytes, version: int) -> bytes:
    """The value MAC of one index MAC, with the collection version that wrote it."""
    return cbor2.dumps({"v": value_mac, "n": version})


def read_mutation_mac(fields: dict[str, object]) -> bytes:
    """Decoder of `dump_mutation_mac` (the value MAC)."""
    return field_bytes(fields, "v")


def dump_key_id(key_id: bytes) -> bytes:
    """The pointer to the latest sync key."""
    return cbor2.dumps({"k": key_id})


def read_key_id(fields: dict[str, object]) -> bytes:
    """Decoder of `dump_key_id`."""
    return field_bytes(fields, "k")


def _optional(fields: dict[str, object], name: str, kind: type) -> object:
    value = fields.get(name)
    if value is not None and (
        not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)
    ):
        raise _Malformed(f"field {name!r} is {type(value).__name__}, not {kind.__name__}")
    if kind is int and value is not None and not I64[0] <= cast("int", value) < I64[1]:
        raise _Malformed(f"field {name!r} is out of range")
    return value


def field_str(fields: dict[str, object], name: str) -> str:
    """A required str field."""
    value = fields[name]
    if not isinstance(value, str):
        raise _Malformed(f"field {name!r} is {type(value).__name__}, not str")
    return value


def dump_lid_mapping(entry: LidPnMappingEntry, seq: int) -> bytes:
    """A LID mapping, with the write sequence number its phone-index entry carries."""
    return cbor2.dumps(
        {
            "p": entry.phone_number,
            "c": entry.created_at,
            "u": entry.updated_at,
            "s": entry.learning_source,
            "q": seq,
        }
    )


def read_lid_mapping(lid: str) -> Callable[[dict[str, object]], tuple[LidPnMappingEntry, int]]:
    """Decoder of `dump_lid_mapping` for the record of ``lid``: (entry, seq)."""

    def read(fields: dict[str, object]) -> tuple[LidPnMappingEntry, int]:
        entry = LidPnMappingEntry(
            lid=lid,
            phone_number=field_str(fields, "p"),
            created_at=field_int(fields, "c"),
            updated_at=field_int(fields, "u"),
            learning_source=field_str(fields, "s"),
        )
        return entry, field_int(fields, "q")

    return read


def dump_device_list(record: DeviceListRecord) -> bytes:
    """A user's device list."""
    return cbor2.dumps(
        {
            "d": [[d.device_id, d.key_index, d.is_hosted] for d in record.devices],
            "t": record.timestamp,
            "h": record.phash,
            "r": record.raw_id,
        }
    )


def read_device_list(user: str) -> Callable[[dict[str, object]], DeviceListRecord]:
    """Decoder of `dump_device_list` for the record of ``user``."""

    def read(fields: dict[str, object]) -> DeviceListRecord:
        devices = fields["d"]
        if not isinstance(devices, list):
            raise _Malformed("field 'd' is not a list")
        infos = []
        for item in devices:
            if not isinstance(item, list) or len(item) != 3:
                raise _Malformed("a device is not a [id, key_index, is_hosted] triple")
            device_id, key_index, hosted = item
            if not isinstance(device_id, int) or not isinstance(hosted, bool):
                raise _Malformed("a device has fields of the wrong type")
            if key_index is not None and not isinstance(key_index, int):
                raise _Malformed("a device key_index is not an int")
            if not 0 <= device_id < 1 << 32 or not 0 <= (key_index or 0) < 1 << 32:
                raise _Malformed("a device id or key index is not a u32")
            infos.append(DeviceInfo(device_id, key_index, hosted))
        return DeviceListRecord(
            user=user,
            devices=infos,
            timestamp=field_int(fields, "t"),
            phash=cast("str | None", _optional(fields, "h", str)),
            raw_id=cast("int | None", _optional(fields, "r", int)),
        )

    return read


DEVICE_FIELDS: tuple[tuple[str, str, str], ...] = (
    # (attribute, stored name, kind). Stored names never change; new fields are appended
    # and take their dataclass default when an older record lacks them.
    ("pn", "pn", "str?"),
    ("lid", "lid", "str?"),
    ("registration_id", "rid", "u32"),
    ("noise_key", "nk", "key64"),
    ("identity_key", "ik", "key64"),
    ("signed_pre_key", "spk", "key64"),
    ("signed_pre_key_id", "spi", "u32"),
    ("signed_pre_key_signature", "sps", "key64"),
    ("adv_secret_key", "adv", "key32"),
    ("account", "acc", "bytes?"),
    ("push_name", "pnm", "str"),
    ("app_version", "av", "version"),
    ("app_version_last_fetched_ms", "avt", "int"),
    ("edge_routing_info", "eri", "bytes?"),
    ("props_hash", "ph", "str?"),
    ("next_pre_key_id", "npk", "u32"),
    ("first_unupload_pre_key_id", "fup", "u32"),
    ("server_has_prekeys", "shp", "bool"),
    ("nct_salt", "nct", "bytes?"),
    ("login_counter", "lc", "int"),
    ("lid_migrated", "lm", "bool"),
    ("last_signed_pre_key_rotation_ms", "spr", "int?"),
    ("read_receipts_disabled", "rrd", "bool"),
    ("server_cert_chain", "scc", "certs?"),
)


def _dump_certs(chain: ServerCertChain | None) -> list[list[object]] | None:
    """A chain as stored: ``[[key, not_before, not_after]]`` for the intermediate and the
    leaf."""
    if chain is None:
        return None
    return [[c.key, c.not_before, c.not_after] for c in (chain.intermediate, chain.leaf)]


def _load_certs(value: object) -> object:
    """`_dump_certs` read back (its fields checked with the device, by ``validate``)."""
    if not isinstance(value, list) or len(value) != 2:
        return value  # refused by validate.device
    certs = [NoiseCert(*c) if isinstance(c, list) and len(c) == 3 else c for c in value]
    return ServerCertChain(*certs)


def dump_device(device: Device) -> bytes:
    """The device record."""
    fields: dict[str, object] = {}
    for attr, name, kind in DEVICE_FIELDS:
        value = getattr(device, attr)
        if kind == "version":
            value = list(value)
        elif kind == "certs?":
            value = _dump_certs(value)
        fields[name] = value
    return cbor2.dumps(fields)


def read_device(fields: dict[str, object]) -> Device:
    """Decoder of `dump_device`; fields an older version did not write get defaults. The
    record is held to the rules of `lmdbstore.validate.device`, as every write is: a key of
    the wrong length is a corrupt record, never a device handed to the client."""
    from lmdbstore import validate  # here: validate reads DEVICE_FIELDS of this module

    values: dict[str, object] = {}
    for attr, name, kind in DEVICE_FIELDS:
        if name in fields:
            value = fields[name]
            if kind == "version" and isinstance(value, list):
                value = tuple(value)
            elif kind == "certs?" and value is not None:
                value = _load_certs(value)
            values[attr] = value
    try:
        return validate.device(Device(**values))  # type: ignore[arg-type]
    except ValidationError as exc:
        raise _Malformed(str(exc)) from None


# The encoder and decoder of a kind kept as a map are compiled from its declaration, as
# `dataclasses` compiles ``__init__``: a generic loop over the fields cost about 0.9 µs more
# per record each way (measured), on the path of every write and read of those kinds. The
# names come from `lmdbstore.kinds`' declarations, never from data, and are inserted with
# ``repr``.


def _compiled(source: str, name: str, scope: dict[str, object]) -> Any:
    exec(compile(source, f"<lmdbstore.codec {name}>", "exec"), scope)
    return scope[name]


def dump_map(stored: Sequence[str], types: Sequence[str]) -> Callable[..., bytes]:
    """The encoder of a record kept as one CBOR map of its fields: each field under its
    ``stored`` name, in order (a flag as a real bool)."""
    args = [f"f{i}" for i in range(len(stored))]
    items = [
        f"{name!r}: {f'bool({arg})' if type_ == 'bool' else arg}"
        for name, type_, arg in zip(stored, types, args, strict=True)
    ]
    source = f"def dump({', '.join(args)}):\n    return dumps({{{', '.join(items)}}})\n"
    return cast("Callable[..., bytes]", _compiled(source, "dump", {"dumps": cbor2.dumps}))


def read_map(
    stored: Sequence[str], types: Sequence[str]
) -> Callable[[dict[str, object]], tuple[Any, ...]]:
    """Decoder of `dump_map`: the fields in order, each of its type (``?``: or None; an
    absent flag is false)."""
    scope: dict[str, object] = {}
    calls = []
    for i, (name, type_) in enumerate(zip(stored, types, strict=True)):
        scope[f"r{i}"] = _field_reader(type_)
        calls.append(f"r{i}(fields, {name!r})")
    source = f"def read(fields):\n    return ({', '.join(calls)},)\n"
    return cast("Callable[[dict[str, object]], tuple[Any, ...]]", _compiled(source, "read", scope))


def _field_reader(type_: str) -> Callable[[dict[str, object], str], object]:
    if type_.endswith("?"):
        kind = {"bytes?": bytes, "int?": int, "str?": str}[type_]
        return lambda fields, name: _optional(fields, name, kind)
    readers: dict[str, Callable[[dict[str, object], str], object]] = {
        "bytes": field_bytes,
        "int": field_int,
        "str": field_str,
        "bool": field_bool,
    }
    return readers[type_]
