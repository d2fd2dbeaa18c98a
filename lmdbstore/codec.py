"""The byte form of stored records: one CBOR map per record, with short stable field names.

Decoding is strict: a record whose bytes are not a CBOR map of the expected fields and types
raises :class:`~lmdbstore.errors.SerializationError` naming the domain and the key, instead
of handing a half-read object to the client. Fields added by a later version are decoded
with defaults when absent, which is how an older record keeps loading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import cbor2

from lmdbstore.errors import SerializationError
from lmdbstore.types import AppStateSyncKey, HashState

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_T = TypeVar("_T")

MAX_DEPTH = 16
"""Nesting bound for decoding: our records are at most 3 deep, hostile bytes may be more."""


class _Malformed(Exception):
    """A record's content is not what its kind requires (turned into SerializationError)."""


def dumps(fields: Mapping[str, object]) -> bytes:
    """Encode one record map."""
    return cbor2.dumps(fields)


def load(domain: str, key: bytes, raw: bytes, decoder: Callable[[dict[str, object]], _T]) -> _T:
    """Decode ``raw`` (stored at ``key`` of ``domain``) with ``decoder``, or raise
    SerializationError naming both."""
    try:
        fields = cbor2.loads(raw, max_depth=MAX_DEPTH)
        if not isinstance(fields, dict):
            raise _Malformed(f"expected a map, found {type(fields).__name__}")
        return decoder(fields)
    except (_Malformed, cbor2.CBORError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise SerializationError(domain, key, str(exc) or type(exc).__name__) from None


def field_bytes(fields: dict[str, object], name: str) -> bytes:
    """A required bytes field."""
    value = fields[name]
    if not isinstance(value, bytes):
        raise _Malformed(f"field {name!r} is {type(value).__name__}, not bytes")
    return value


def field_int(fields: dict[str, object], name: str, default: int | None = None) -> int:
    """An int field; ``default`` when absent (required when ``default`` is None)."""
    if name not in fields and default is not None:
        return default
    value = fields[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Malformed(f"field {name!r} is {type(value).__name__}, not int")
    return value


def field_bool(fields: dict[str, object], name: str, default: bool = False) -> bool:
    """A bool field; ``default`` when absent."""
    value = fields.get(name, default)
    if not isinstance(value, bool):
        raise _Malformed(f"field {name!r} is {type(value).__name__}, not bool")
    return value


# Records with one opaque value: identities, sessions, signed pre-keys, sender keys.
def dump_blob(value: bytes) -> bytes:
    """An opaque-value record."""
    return cbor2.dumps({"r": value})


def read_blob(fields: dict[str, object]) -> bytes:
    """Decoder of :func:`dump_blob`."""
    return field_bytes(fields, "r")


def dump_prekey(record: bytes, uploaded: bool) -> bytes:
    """A one-time pre-key and whether the server has it."""
    return cbor2.dumps({"r": record, "u": uploaded})


def read_prekey(fields: dict[str, object]) -> tuple[bytes, bool]:
    """Decoder of :func:`dump_prekey`."""
    return field_bytes(fields, "r"), field_bool(fields, "u")


def dump_sync_key(key: AppStateSyncKey) -> bytes:
    """An app-state sync key."""
    return cbor2.dumps({"d": key.key_data, "f": key.fingerprint, "t": key.timestamp})


def read_sync_key(fields: dict[str, object]) -> AppStateSyncKey:
    """Decoder of :func:`dump_sync_key`."""
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


def read_hash_state(fields: dict[str, object]) -> HashState:
    """Decoder of :func:`dump_hash_state`."""
    mapping = fields.get("m", {})
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, bytes) for k, v in mapping.items()
    ):
        raise _Malformed("field 'm' is not a map of str to bytes")
    state_hash = field_bytes(fields, "h")
    if len(state_hash) != 128:
        raise _Malformed(f"field 'h' is {len(state_hash)} bytes, not 128")
    return HashState(
        version=field_int(fields, "v"),
        hash=state_hash,
        index_value_map=mapping,
        mac_mismatch_fatal=field_bool(fields, "x"),
    )


def dump_mutation_mac(value_mac: bytes, version: int) -> bytes:
    """The value MAC of one index MAC, with the collection version that wrote it."""
    return cbor2.dumps({"v": value_mac, "n": version})


def read_mutation_mac(fields: dict[str, object]) -> bytes:
    """Decoder of :func:`dump_mutation_mac` (the value MAC)."""
    return field_bytes(fields, "v")


def dump_key_id(key_id: bytes) -> bytes:
    """The pointer to the latest sync key."""
    return cbor2.dumps({"k": key_id})


def read_key_id(fields: dict[str, object]) -> bytes:
    """Decoder of :func:`dump_key_id`."""
    return field_bytes(fields, "k")
