"""The export format: one JSON object per line, a stable description of every record.

The first line is ``{"format": "lmdbstore-export", "version": 1}``. Every other line is one
record: ``{"kind": ..., "device": <id>, <fields>}``, the fields of its kind as listed in
`KINDS` (bytes as standard base64 with padding; ``device`` records carry the fields of
`Device` by attribute name). Indexes are not exported: they are
rebuilt from the records on import. Times, write sequence numbers and the "latest sync key"
pointer are exported as stored, so that an import reproduces the store exactly. Version 1
of the format is frozen; a later one may add kinds or fields, never change these.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from lmdbstore.codec import DEVICE_FIELDS
from lmdbstore.errors import ValidationError
from lmdbstore.types import Device

HEADER = {"format": "lmdbstore-export", "version": 1}

KINDS: dict[str, dict[str, str]] = {
    "identity": {"address": "str", "key": "bytes"},
    "session": {"address": "str", "record": "bytes"},
    "prekey": {"id": "int", "record": "bytes", "uploaded": "bool"},
    "signed_prekey": {"id": "int", "record": "bytes"},
    "sender_key": {"name": "str", "record": "bytes"},
    "sync_key": {
        "key_id": "bytes",
        "key_data": "bytes",
        "fingerprint": "bytes",
        "timestamp": "int",
    },
    "latest_sync_key": {"key_id": "bytes"},
    "app_state_version": {
        "name": "str",
        "version": "int",
        "hash": "bytes",
        "index_value_map": "map",
        "mac_mismatch_fatal": "bool",
    },
    "mutation_mac": {"name": "str", "index_mac": "bytes", "value_mac": "bytes", "version": "int"},
    "sender_key_device": {"group": "str", "device_jid": "str", "has_key": "bool"},
    "lid_mapping": {
        "lid": "str",
        "phone_number": "str",
        "created_at": "int",
        "updated_at": "int",
        "learning_source": "str",
        "seq": "int",
    },
    "base_key": {"address": "str", "message_id": "str", "key": "bytes"},
    "device_list": {
        "user": "str",
        "devices": "devices",
        "timestamp": "int",
        "phash": "str?",
        "raw_id": "int?",
    },
    "group_metadata": {"group": "str", "metadata": "bytes"},
    "tc_token": {
        "jid": "str",
        "token": "bytes",
        "token_timestamp": "int",
        "sender_timestamp": "int?",
    },
    "sent_message": {"chat": "str", "message_id": "str", "payload": "bytes", "created_at": "int"},
    "pending_inbound": {
        "chat": "str",
        "sender": "str",
        "message_id": "str",
        "message": "bytes",
        "inserted_at": "int",
    },
    "msg_secret": {
        "chat": "str",
        "sender": "str",
        "msg_id": "str",
        "secret": "bytes",
        "expires_at": "int",
        "message_ts": "int",
    },
    "device": {"record": "device"},
    "device_counter": {"value": "int"},
    "cache_entry": {"ns": "str", "key": "str", "value": "bytes", "expires_ms": "int?"},
}
"""Every record kind and its fields (``?``: may be null)."""

Record = dict[str, Any]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise ValidationError(f"{where} must be base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{where} is not valid base64") from None


def _json_value(kind: str, value: Any) -> Any:
    if kind == "bytes":
        return _b64(value)
    if kind == "map":
        return {k: _b64(v) for k, v in sorted(value.items())}
    if kind == "device":
        fields = {}
        for attr, _, field_kind in DEVICE_FIELDS:
            item = getattr(value, attr)
            if isinstance(item, bytes):
                item = _b64(item)
            elif field_kind == "version":
                item = list(item)
            fields[attr] = item
        return fields
    return value


def to_line(record: Record) -> str:
    """One record as its JSON line (without the newline)."""
    fields = KINDS[record["kind"]]
    out = {"kind": record["kind"], "device": record["device"]}
    for name, kind in fields.items():
        out[name] = _json_value(kind, record[name])
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def _check(kind: str, value: Any, where: str) -> Any:
    base = kind.rstrip("?")
    if kind.endswith("?") and value is None:
        return None
    if base == "bytes":
        return _unb64(value, where)
    if base == "map":
        if not isinstance(value, dict):
            raise ValidationError(f"{where} must be an object")
        return {str(k): _unb64(v, f"{where}.{k}") for k, v in value.items()}
    if base == "device":
        if not isinstance(value, dict):
            raise ValidationError(f"{where} must be an object")
        fields = {}
        for attr, _, field_kind in DEVICE_FIELDS:
            if attr not in value:
                continue
            item = value[attr]
            if field_kind.rstrip("?") in ("bytes", "key64", "key32") and item is not None:
                item = _unb64(item, f"{where}.{attr}")
            elif field_kind == "version" and isinstance(item, list):
                item = tuple(item)
            fields[attr] = item
        return Device(**fields)
    expected = {"str": str, "int": int, "bool": bool, "devices": list}[base]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValidationError(f"{where} must be {base}, not {type(value).__name__}")
    return value


def from_line(line: str, number: int) -> Record:
    """The record of one JSON line (``number`` for messages); ValidationError when the
    line is not a record of a known kind with the fields of its kind."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"line {number}: not JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
        raise ValidationError(f"line {number}: not a record of a known kind")
    device = raw.get("device")
    if not isinstance(device, int) or isinstance(device, bool):
        raise ValidationError(f"line {number}: device must be an int")
    record: Record = {"kind": raw["kind"], "device": device}
    for name, kind in KINDS[raw["kind"]].items():
        if name not in raw:
            raise ValidationError(f"line {number}: {raw['kind']} lacks {name!r}")
        record[name] = _check(kind, raw[name], f"line {number}: {name}")
    return record
