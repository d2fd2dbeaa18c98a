"""The export format: one JSON object per line, a stable description of every record.

The first line is ``{"format": "lmdbstore-export", "version": 3}``. Every other line but
the last is one record: ``{"kind": ..., "device": <id>, <fields>}``, the fields of its kind
as listed in `KINDS` (bytes as standard base64 with padding; ``device`` records carry the
fields of `Device` by attribute name). The last line is the trailer,
``{"end": "lmdbstore-export", "records": <count>, "sha256": <hex>}``: the number of record
lines and the SHA-256 of every byte before the trailer, so that a truncated or altered file
is refused instead of imported as a smaller store. Indexes are not exported: they are
rebuilt from the records on import. Times, write sequence numbers and the "latest sync key"
pointer are exported as stored, so that an import reproduces the store exactly. Version 2
is version 1 with the trailer; version 3 is version 2 with the kinds of the stores that
format 2 added (contacts, chat settings, the event buffer). Files of versions 2 and 3 are
read alike; files of version 1 (no trailer) only when the caller accepts them unverified. A
later version may add kinds or fields, never change these.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import TYPE_CHECKING, Any

from lmdbstore.codec import DEVICE_FIELDS
from lmdbstore.errors import ValidationError
from lmdbstore.kinds import ALL
from lmdbstore.types import Device, NoiseCert, ServerCertChain

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import BinaryIO

    from lmdbstore.kinds import Kind

HEADER = {"format": "lmdbstore-export", "version": 3}
READABLE_VERSIONS = (1, 2, 3)
"""Version 1 is version 2 without the trailer; version 3 is version 2 with more kinds."""
END = "lmdbstore-export"

STRUCTURED_FIELDS: dict[str, dict[str, str]] = {
    "app_state_version": {
        "name": "str",
        "version": "int",
        "hash": "bytes",
        "index_value_map": "map",
        "mac_mismatch_fatal": "bool",
    },
    "device_list": {
        "user": "str",
        "devices": "devices",
        "timestamp": "int",
        "phash": "str?",
        "raw_id": "int?",
    },
    "device": {"record": "device"},
    "device_counter": {"value": "int"},
}
"""The fields of the kinds exported as a structure of their stored value, not as their
declared components and fields (and of the device counter, which is no record kind)."""

_COMPONENT_TYPES = {"s": "str", "u32": "int", "i64": "int", "b": "bytes"}


def _declared(kind: Kind) -> dict[str, str]:
    """A kind's export fields: its components, then its fields, with their types."""
    types = (*(_COMPONENT_TYPES[type_] for _, type_ in kind.key), *(t for _, t in kind.values))
    return dict(zip(kind.export_names, types, strict=True))


KINDS: dict[str, dict[str, str]] = {
    kind.name: STRUCTURED_FIELDS.get(kind.name) or _declared(kind)
    for kind in ALL
    if not kind.is_index and kind.exported
} | {"device_counter": STRUCTURED_FIELDS["device_counter"]}
"""Every record kind and its fields (``?``: may be null), from their declarations
(`lmdbstore.kinds`) but for `STRUCTURED_FIELDS`."""

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
    if value is None and kind.endswith("?"):
        return None
    kind = kind.rstrip("?")
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
            elif field_kind == "certs?" and item is not None:
                item = {
                    name: {"key": _b64(c.key), "not_before": c.not_before, "not_after": c.not_after}
                    for name, c in (("intermediate", item.intermediate), ("leaf", item.leaf))
                }
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
            elif field_kind == "certs?" and item is not None:
                item = _cert_chain(item, f"{where}.{attr}")
            fields[attr] = item
        return Device(**fields)
    expected = {"str": str, "int": int, "bool": bool, "devices": list}[base]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValidationError(f"{where} must be {base}, not {type(value).__name__}")
    return value


def _cert_chain(value: object, where: str) -> ServerCertChain:
    """A certificate chain of an export line (its fields checked with the device)."""
    if not isinstance(value, dict) or set(value) != {"intermediate", "leaf"}:
        raise ValidationError(f"{where} must be an object of intermediate and leaf")
    certs = []
    for name in ("intermediate", "leaf"):
        cert = value[name]
        if not isinstance(cert, dict) or set(cert) != {"key", "not_before", "not_after"}:
            raise ValidationError(f"{where}.{name} must be an object of key and validity")
        key = _unb64(cert["key"], f"{where}.{name}.key")
        certs.append(NoiseCert(key, cert["not_before"], cert["not_after"]))
    return ServerCertChain(*certs)


def _json(line: bytes, number: int) -> object:
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:  # a 5,000-digit int is a ValueError too
        raise ValidationError(f"line {number}: not JSON: {exc}") from None


def from_line(line: bytes, number: int) -> Record:
    """The record of one JSON line (``number`` for messages); ValidationError when the
    line is not a record of a known kind with the fields of its kind."""
    raw = _json(line, number)
    if not isinstance(raw, dict) or not isinstance(raw.get("kind"), str):
        raise ValidationError(f"line {number}: not a record of a known kind")
    if raw["kind"] not in KINDS:
        raise ValidationError(f"line {number}: not a record of a known kind")
    device = raw.get("device")
    if not isinstance(device, int) or isinstance(device, bool) or not 0 <= device < 1 << 32:
        raise ValidationError(f"line {number}: device must be an int from 0 to 2**32 - 1")
    record: Record = {"kind": raw["kind"], "device": device}
    for name, kind in KINDS[raw["kind"]].items():
        if name not in raw:
            raise ValidationError(f"line {number}: {raw['kind']} lacks {name!r}")
        record[name] = _check(kind, raw[name], f"line {number}: {name}")
    return record


def write(output: BinaryIO, records: Iterable[Record]) -> int:
    """Write the header, one line per record and the trailer to ``output``; the number of
    records."""
    digest = hashlib.sha256()

    def put(line: str) -> None:
        data = line.encode() + b"\n"
        digest.update(data)
        output.write(data)

    put(json.dumps(HEADER))
    count = 0
    for record in records:
        put(to_line(record))
        count += 1
    output.write(trailer(count, digest.hexdigest()).encode() + b"\n")
    return count


def trailer(count: int, sha256: str) -> str:
    """The last line of an export of ``count`` records whose bytes before it hash to
    ``sha256``."""
    return json.dumps({"end": END, "records": count, "sha256": sha256})


def read(file: BinaryIO, *, accept_unverified: bool = False) -> Iterator[Record]:
    """The records of an export file, each line checked as it is read; ValidationError
    names the line. The trailer is checked at the end (the file is whole and unaltered)
    before the generator finishes, so a consumer that writes what it is given must treat
    the store as complete only once the generator is exhausted. A version 1 file, which has
    no trailer, is read only with ``accept_unverified``."""
    first = file.readline()
    digest = hashlib.sha256(first)
    header = _json(first, 1) if first.strip() else None
    version = header.get("version") if isinstance(header, dict) else None
    if (
        not isinstance(header, dict)
        or header.keys() != HEADER.keys()
        or header["format"] != HEADER["format"]
        or type(version) is not int
        or version not in READABLE_VERSIONS
    ):
        raise ValidationError(f"line 1: not an lmdbstore export header: {first[:80]!r}")
    if version == 1 and not accept_unverified:
        raise ValidationError(
            "line 1: a version 1 export has no trailer, so a truncated file cannot be told"
            " from a whole one; pass --accept-unverified to import it anyway"
        )
    count = 0
    end: object = None
    number = 1
    for number, line in enumerate(file, start=2):
        if end is not None:
            if line.strip():
                raise ValidationError(f"line {number}: a line after the trailer")
            continue
        if version >= 2 and line.startswith(b'{"end"'):
            end = _json(line, number)
            continue
        digest.update(line)
        if line.strip():
            yield from_line(line, number)
            count += 1
    if version == 1:
        return
    if end is None:
        raise ValidationError(f"line {number}: the file ends without its trailer (truncated?)")
    if end != {"end": END, "records": count, "sha256": digest.hexdigest()}:
        raise ValidationError(
            f"the trailer does not match the {count} records read: the file was altered"
        )
