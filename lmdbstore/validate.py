"""Argument validation shared by every backend, so that all of them refuse the same input.

Each checker returns the value in the form the stores use (strings as UTF-8 bytes) or raises
`ValidationError` naming the argument. Nothing here touches storage,
which is how a refused call is guaranteed to have written nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from lmdbstore.codec import DEVICE_FIELDS
from lmdbstore.errors import StoreConnectionError, ValidationError
from lmdbstore.types import (
    AppStateMutationMAC,
    AppStateSyncKey,
    Device,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMappingEntry,
    Limits,
    MsgSecretEntry,
    NoiseCert,
    ServerCertChain,
    TcTokenEntry,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

MAX_KEY_PART = 255
"""Longest string (in UTF-8 bytes) allowed as a key component."""

MAX_KEY = 511
"""LMDB's key limit; a composite key longer than this is refused, never truncated."""

KEY_OVERHEAD = 5
"""Bytes every composite key spends before its components: device id (4) and tag (1)."""

MAX_VALUE = 8 * 1024 * 1024
"""Largest opaque value accepted (8 MiB): far above any Signal or app-state record (sessions
and group metadata are kilobytes). Returning a value copies it in one call that holds
Python's interpreter lock, about 1.5 ms per MiB whatever thread runs it: at 8 MiB the event
loop waits 2-12 ms (measured), at 16 MiB 15-33 ms, past the 20 ms a loop may stall."""

_T = TypeVar("_T")

U32_MAX = 0xFFFF_FFFF
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1


def text(value: object, what: str) -> bytes:
    """A string usable as a key component: 1-255 UTF-8 bytes, no NUL; returns its UTF-8."""
    if type(value) is str and value.isascii():  # the common case, checked in one go
        raw = value.encode()
        if 0 < len(raw) <= MAX_KEY_PART and b"\x00" not in raw:
            return raw
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be str, not {type(value).__name__}")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{what} is not valid Unicode text: {exc.reason}") from None
    if not raw:
        raise ValidationError(f"{what} must not be empty")
    if len(raw) > MAX_KEY_PART:
        raise ValidationError(f"{what} is {len(raw)} bytes long; the limit is {MAX_KEY_PART}")
    if b"\x00" in raw:
        raise ValidationError(f"{what} must not contain NUL")
    return raw


def plain_text(
    value: object, what: str, *, max_len: int = MAX_KEY_PART, column: bool = False
) -> str:
    """A string stored as a value (not a key): any length up to ``max_len`` bytes, encodable;
    with ``column``, one that has a column of its own in the SQL backends, without NUL
    (which PostgreSQL's ``TEXT`` cannot hold: every backend refuses it alike)."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be str, not {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{what} is not valid Unicode text: {exc.reason}") from None
    if size > max_len:
        raise ValidationError(f"{what} is {size} bytes long; the limit is {max_len}")
    if column and "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL")
    return value


def blob(value: object, what: str, *, length: int | None = None, empty: bool = True) -> bytes:
    """Opaque bytes (``bytes``, ``bytearray`` or ``memoryview``), returned as ``bytes``."""
    if type(value) is bytes:  # the common case first: isinstance of a union costs 0.5 µs
        raw = value
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    else:
        raise ValidationError(f"{what} must be bytes, not {type(value).__name__}")
    if length is not None and len(raw) != length:
        raise ValidationError(f"{what} must be {length} bytes, not {len(raw)}")
    if not empty and not raw:
        raise ValidationError(f"{what} must not be empty")
    if len(raw) > MAX_VALUE:
        raise ValidationError(f"{what} is {len(raw)} bytes; the limit is {MAX_VALUE}")
    return raw


def key_bytes(value: object, what: str) -> bytes:
    """Bytes used as the last component of a key: 1-255 bytes, any content."""
    raw = blob(value, what, empty=False)
    if len(raw) > MAX_KEY_PART:
        raise ValidationError(f"{what} is {len(raw)} bytes long; the limit is {MAX_KEY_PART}")
    return raw


def _integer(value: object, what: str, low: int, high: int) -> int:
    # bool is an int subclass, and True as an id is always a caller's mistake.
    if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValidationError(f"{what} must be int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValidationError(f"{what} = {value} is outside {low}..{high}")
    return value


def u32(value: object, what: str) -> int:
    """An unsigned 32-bit integer (ids)."""
    return _integer(value, what, 0, U32_MAX)


def i64(value: object, what: str) -> int:
    """A signed 64-bit integer (times, versions, counters)."""
    return _integer(value, what, I64_MIN, I64_MAX)


def u64(value: object, what: str) -> int:
    """A non-negative 64-bit integer (collection versions)."""
    return _integer(value, what, 0, I64_MAX)


def limits(value: object) -> Limits:
    """The ``limits=`` of an open: a `Limits` whose caps are each ``None`` or an int of
    at least 1 (a cap of 0 would evict every record as soon as it is written)."""
    found = instance(value, Limits, "limits")
    for field in ("sent_messages", "msg_secrets"):
        optional(getattr(found, field), f"limits.{field}", lambda v, w: _integer(v, w, 1, U32_MAX))
    return found


def flag(value: object, what: str) -> bool:
    """A real ``bool``."""
    if not isinstance(value, bool):
        raise ValidationError(f"{what} must be bool, not {type(value).__name__}")
    return value


def items(value: object, what: str) -> Sequence[object]:
    """A list or tuple of items (a str or bytes is refused: it is never meant as a batch)."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes | bytearray):
        raise ValidationError(f"{what} must be a list or tuple, not {type(value).__name__}")
    return value


def pair(value: object, what: str) -> tuple[object, object]:
    """A two-element list or tuple."""
    if type(value) is tuple and len(value) == 2:  # the common case, without a copy
        return value[0], value[1]
    first, second = tuple_of(value, 2, what)
    return first, second


def tuple_of(value: object, size: int, what: str) -> tuple[object, ...]:
    """A list or tuple of exactly ``size`` elements."""
    if not isinstance(value, tuple | list) or len(value) != size:
        raise ValidationError(f"{what} must be a tuple of {size}")
    return tuple(value)


def key_fits(parts: Iterable[bytes], what: str) -> None:
    """Refuse a composite key that would exceed LMDB's 511-byte key limit.

    ``parts`` are the encoded components (NUL terminators included). Every backend calls
    this, so all of them accept exactly the same keys.
    """
    size = KEY_OVERHEAD + sum(len(p) for p in parts)
    if size > MAX_KEY:
        raise ValidationError(f"{what} makes a {size}-byte key; the limit is {MAX_KEY}")


def instance(value: object, cls: type[_T], what: str) -> _T:
    """``value`` if it is a ``cls``."""
    if not isinstance(value, cls):
        raise ValidationError(f"{what} must be {cls.__name__}, not {type(value).__name__}")
    return value


_A = TypeVar("_A")
_B = TypeVar("_B")


def _checked_items(value: object, what: str, check: Callable[[object, str, bool], _A]) -> list[_A]:
    """``check(item, where, placed)`` of each item of a batch: first with ``what`` as it
    is, and only when an item fails again with its place (``items[3]``, ``placed``), for
    the message. Formatting the places of every item cost more than the checks themselves
    (measured: 1.6 of 2 µs per pre-key)."""
    out = []
    for index, item in enumerate(items(value, what)):
        try:
            out.append(check(item, what, False))
        except ValidationError:
            out.append(check(item, f"{what}[{index}]", True))
    return out


def _ints_within(column: Sequence[object], low: int, high: int) -> bool:
    if set(map(type, column)) != {int}:
        return False
    ints = cast("Sequence[int]", column)
    return low <= min(ints) and max(ints) <= high


def _plain_blobs(column: Sequence[object]) -> bool:
    if set(map(type, column)) != {bytes}:
        return False
    return max(map(len, cast("Sequence[bytes]", column))) <= MAX_VALUE


_COLUMN_CHECKS: dict[Callable[[object, str], object], Callable[[Sequence[object]], bool]] = {
    u32: lambda column: _ints_within(column, 0, U32_MAX),
    i64: lambda column: _ints_within(column, I64_MIN, I64_MAX),
    u64: lambda column: _ints_within(column, 0, I64_MAX),
    blob: _plain_blobs,
}
"""Whole-column forms of checks, for batches: whether every value of a column passes the
check and is already what it returns (an ``int``, not a bool or subclass; ``bytes``), in a
few C loops over the column (a pre-key batch of 812: 0.09 against 0.19 ms). When one says
no, the batch is checked item by item, which finds and names the culprit."""


def pairs(
    value: object,
    what: str,
    left: Callable[[object, str], _A],
    right: Callable[[object, str], _B],
) -> list[tuple[_A, _B]]:
    """A batch of pairs, each side checked by ``left`` and ``right``."""
    batch = items(value, what)
    left_column, right_column = _COLUMN_CHECKS.get(left), _COLUMN_CHECKS.get(right)
    if left_column is not None and right_column is not None and set(map(type, batch)) == {tuple}:
        tuples = cast("Sequence[tuple[object, ...]]", batch)
        if (
            set(map(len, tuples)) == {2}
            and left_column(list(map(itemgetter(0), tuples)))
            and right_column(list(map(itemgetter(1), tuples)))
        ):
            return cast("list[tuple[_A, _B]]", list(tuples))

    def checked(item: object, where: str, placed: bool) -> tuple[_A, _B]:
        a, b = pair(item, where)
        if placed:
            return left(a, f"{where}[0]"), right(b, f"{where}[1]")
        return left(a, where), right(b, where)

    return _checked_items(batch, what, checked)


def tuples(
    value: object, what: str, *checks: Callable[[object, str], object]
) -> list[tuple[Any, ...]]:
    """A batch of tuples of ``len(checks)`` items, each item checked by its check."""

    def checked(item: object, where: str, placed: bool) -> tuple[Any, ...]:
        parts = tuple_of(item, len(checks), where)
        return tuple(
            check(p, f"{where}[{i}]" if placed else where)
            for i, (check, p) in enumerate(zip(checks, parts, strict=True))
        )

    return _checked_items(value, what, checked)


def each(value: object, what: str, check: Callable[[object, str], _A]) -> list[_A]:
    """A batch of single values, each checked by ``check``."""
    batch = items(value, what)
    column = _COLUMN_CHECKS.get(check)
    if column is not None and column(batch):
        return cast("list[_A]", list(batch))
    return _checked_items(batch, what, lambda item, where, _placed: check(item, where))


def identity_key(value: object, what: str) -> bytes:
    """A Signal identity public key: exactly 32 bytes."""
    return blob(value, what, length=32)


# -- records handed to the app-state methods ------------------------------------------------


def sync_key(key: object) -> AppStateSyncKey:
    """A sync key with fields of the right types (shared by every backend)."""
    key = instance(key, AppStateSyncKey, "key")
    blob(key.key_data, "key.key_data")
    blob(key.fingerprint, "key.fingerprint")
    i64(key.timestamp, "key.timestamp")
    return AppStateSyncKey(bytes(key.key_data), bytes(key.fingerprint), key.timestamp)


def hash_state(state: object) -> HashState:
    """A hash state with fields of the right types and a 128-byte hash (shared)."""
    state = instance(state, HashState, "state")
    u64(state.version, "state.version")
    blob(state.hash, "state.hash", length=128)
    mapping = instance(state.index_value_map, dict, "state.index_value_map")
    checked = {
        plain_text(k, "state.index_value_map key", max_len=MAX_VALUE): (
            blob(v, "state.index_value_map value")
        )
        for k, v in mapping.items()
    }
    flag(state.mac_mismatch_fatal, "state.mac_mismatch_fatal")
    return HashState(state.version, bytes(state.hash), checked, state.mac_mismatch_fatal)


def mutations(name: bytes, value: object) -> list[tuple[bytes, bytes]]:
    """(index_mac, value_mac) pairs of a patch, each key within the limit (shared)."""
    out = []
    for index, item in enumerate(items(value, "mutations")):
        mac = instance(item, AppStateMutationMAC, f"mutations[{index}]")
        index_mac = key_bytes(mac.index_mac, f"mutations[{index}].index_mac")
        key_fits((name + b"\x00", index_mac), f"mutations[{index}].index_mac")
        out.append((index_mac, blob(mac.value_mac, f"mutations[{index}].value_mac")))
    return out


def index_macs(name: bytes, value: object) -> list[bytes]:
    """Index MACs to look up or delete, each key within the limit (shared)."""
    macs = each(value, "index_macs", key_bytes)
    for mac in macs:
        key_fits((name + b"\x00", mac), "index_macs")
    return macs


# -- records handed to the protocol, message-secret and device methods ------------------------


def optional(value: object, what: str, check: Callable[[object, str], _A]) -> _A | None:
    """``None``, or a value that passes ``check``."""
    return None if value is None else check(value, what)


def lid_mapping(entry: object, what: str = "entry") -> LidPnMappingEntry:
    """A LID mapping with usable fields; returned as a private copy."""
    entry = instance(entry, LidPnMappingEntry, what)
    text(entry.lid, f"{what}.lid")
    text(entry.phone_number, f"{what}.phone_number")
    return LidPnMappingEntry(
        entry.lid,
        entry.phone_number,
        i64(entry.created_at, f"{what}.created_at"),
        i64(entry.updated_at, f"{what}.updated_at"),
        plain_text(entry.learning_source, f"{what}.learning_source", column=True),
    )


def tc_cutoffs(cutoff: object, sender_cutoff: object) -> tuple[int, int]:
    """The token and sender cutoffs of tc-token expiry; the sender's defaults to the token's."""
    token_cutoff = i64(cutoff, "cutoff")
    return token_cutoff, token_cutoff if sender_cutoff is None else i64(
        sender_cutoff, "sender_cutoff"
    )


def tc_token(entry: object) -> TcTokenEntry:
    """A trusted-contact token entry; returned as a private copy."""
    entry = instance(entry, TcTokenEntry, "entry")
    return TcTokenEntry(
        blob(entry.token, "entry.token"),
        i64(entry.token_timestamp, "entry.token_timestamp"),
        optional(entry.sender_timestamp, "entry.sender_timestamp", i64),
    )


def device_list(record: object, what: str = "record") -> DeviceListRecord:
    """A device list with usable fields; returned as a private copy."""
    record = instance(record, DeviceListRecord, what)
    text(record.user, f"{what}.user")
    devices = []
    for index, item in enumerate(items(record.devices, f"{what}.devices")):
        info = instance(item, DeviceInfo, f"{what}.devices[{index}]")
        devices.append(
            DeviceInfo(
                u32(info.device_id, f"{what}.devices[{index}].device_id"),
                optional(info.key_index, f"{what}.devices[{index}].key_index", u32),
                flag(info.is_hosted, f"{what}.devices[{index}].is_hosted"),
            )
        )
    return DeviceListRecord(
        record.user,
        devices,
        i64(record.timestamp, f"{what}.timestamp"),
        optional(record.phash, f"{what}.phash", plain_text),
        optional(record.raw_id, f"{what}.raw_id", i64),
    )


def key_strings(named: Sequence[tuple[object, str]], *, index_bytes: int = 0) -> tuple[bytes, ...]:
    """Strings that together name one record, as UTF-8: each a valid key string, and the
    composite key within the limit, counting ``index_bytes`` of time that the record's index
    key puts in front of the same strings."""
    parts = tuple(text(value, what) for value, what in named)
    what = " and ".join(what for _, what in named)
    key_fits([p + b"\x00" for p in parts] + [bytes(index_bytes)], what)
    return parts


def message_key(chat: object, sender: object, msg_id: object) -> tuple[bytes, bytes, bytes]:
    """(chat, sender, message id) as key strings whose composite (time-indexed) key fits."""
    chat_raw, sender_raw, id_raw = key_strings(
        ((chat, "chat"), (sender, "sender"), (msg_id, "msg_id")), index_bytes=8
    )
    return chat_raw, sender_raw, id_raw


def chat_message(chat: object, message_id: object) -> tuple[bytes, bytes]:
    """(chat, message id) as key strings whose composite (time-indexed) key fits: a sent
    message's, an outgoing event's."""
    chat_raw, id_raw = key_strings(((chat, "chat"), (message_id, "message_id")), index_bytes=8)
    return chat_raw, id_raw


def namespace(value: object, what: str = "ns") -> str:
    """A cache namespace: a key string without ``:``."""
    checked = text(value, what).decode()
    if ":" in checked:
        raise ValidationError(f"{what} must not contain ':': {value!r}")
    return checked


def event_hash(value: object, what: str = "hash") -> bytes:
    """The hash of an inbound ciphertext (the key of a buffered event): 32 bytes."""
    return blob(value, what, length=32)


def pending_messages(value: object) -> list[tuple[tuple[bytes, bytes, bytes], bytes]]:
    """A batch of (chat, sender, id, message) to buffer: (key strings, message) each."""
    rows = []
    for index, item in enumerate(items(value, "items")):
        chat, sender, message_id, message = tuple_of(item, 4, f"items[{index}]")
        rows.append((message_key(chat, sender, message_id), blob(message, f"items[{index}][3]")))
    return rows


def pending_keys(value: object) -> list[tuple[bytes, bytes, bytes]]:
    """A batch of (chat, sender, id) to drop, as key strings."""
    return [
        message_key(*tuple_of(item, 3, f"items[{index}]"))
        for index, item in enumerate(items(value, "items"))
    ]


NAME_LIMIT = 4096
"""The most UTF-8 bytes of a contact's name or redacted phone, and of an event format."""


def name(value: object, what: str) -> str:
    """A stored name (of a contact, of an event format): a str of at most `NAME_LIMIT`
    UTF-8 bytes, without NUL; empty is allowed."""
    return plain_text(value, what, max_len=NAME_LIMIT, column=True)


def contact_names(value: object) -> list[tuple[bytes, str, str]]:
    """A batch of (jid, first_name, full_name): (key string, name, name) each."""
    return tuples(value, "items", text, name, name)


def muted_until(value: object, what: str) -> int:
    """A chat's mute time: Unix seconds, 0 (not muted) or -1 (muted forever)."""
    until = i64(value, what)
    if until < -1:
        raise ValidationError(f"{what} must be a time, 0 or -1 (forever), not {until}")
    return until


def received_tc_tokens(value: object) -> list[tuple[bytes, bytes, int]]:
    """A batch of (jid, token, ts) received: (key string, token, i64) each."""
    return tuples(value, "items", text, blob, i64)


def sender_key_devices(group: object, devices: object) -> tuple[bytes, list[tuple[bytes, bool]]]:
    """A group and its (device_jid, has_key) rows, every (group, jid) key within the limit."""
    raw_group = text(group, "group")
    rows = pairs(devices, "devices", text, flag)
    for jid, _ in rows:
        key_fits((raw_group + b"\x00", jid + b"\x00"), "group and device_jid")
    return raw_group, rows


def msg_secret(entry: object, what: str = "entry") -> MsgSecretEntry:
    """A message-secret entry with usable fields; returned as a private copy."""
    entry = instance(entry, MsgSecretEntry, what)
    message_key(entry.chat, entry.sender, entry.msg_id)
    return MsgSecretEntry(
        entry.chat,
        entry.sender,
        entry.msg_id,
        blob(entry.secret, f"{what}.secret", length=32),
        i64(entry.expires_at, f"{what}.expires_at"),
        i64(entry.message_ts, f"{what}.message_ts"),
    )


def _app_version(value: object, what: str) -> tuple[int, int, int]:
    if not isinstance(value, tuple | list) or len(value) != 3:
        raise ValidationError(f"{what} must be three ints")
    return (u32(value[0], what), u32(value[1], what), u32(value[2], what))


def _noise_cert(value: object, what: str) -> NoiseCert:
    cert = instance(value, NoiseCert, what)
    return NoiseCert(
        blob(cert.key, f"{what}.key", length=32),
        i64(cert.not_before, f"{what}.not_before"),
        i64(cert.not_after, f"{what}.not_after"),
    )


def _cert_chain(value: object, what: str) -> ServerCertChain:
    """A server certificate chain, stored as given (validity is not checked)."""
    chain = instance(value, ServerCertChain, what)
    return ServerCertChain(
        _noise_cert(chain.intermediate, f"{what}.intermediate"),
        _noise_cert(chain.leaf, f"{what}.leaf"),
    )


_DEVICE_KINDS: dict[str, Callable[[object, str], object]] = {
    "str": plain_text,
    "str?": lambda v, w: optional(v, w, plain_text),
    "u32": u32,
    "int": i64,
    "int?": lambda v, w: optional(v, w, i64),
    "key64": lambda v, w: blob(v, w, length=64),
    "key32": lambda v, w: blob(v, w, length=32),
    "bytes?": lambda v, w: optional(v, w, blob),
    "bool": flag,
    "version": _app_version,
    "certs?": lambda v, w: optional(v, w, _cert_chain),
}


def device(value: object) -> Device:
    """A device record with every field of the right type and length; a private copy."""
    record = instance(value, Device, "device")
    checked = {
        attr: _DEVICE_KINDS[kind](getattr(record, attr), f"device.{attr}")
        for attr, _, kind in DEVICE_FIELDS
    }
    return Device(**checked)  # type: ignore[arg-type]


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def snapshot_name(value: object) -> str:
    """A snapshot name made safe as a file name: characters outside ``[A-Za-z0-9_.-]``
    become ``_``, dot-segments (``..``) and leading or trailing dots are dropped, and 1-100
    characters must remain."""
    if not isinstance(value, str):
        raise ValidationError(f"name must be str, not {type(value).__name__}")
    name = _UNSAFE_NAME_CHARS.sub("_", value)
    while ".." in name:
        name = name.replace("..", ".")
    name = name.strip(".")
    if not 1 <= len(name) <= 100:
        raise ValidationError(
            f"snapshot name {value!r} leaves {len(name)} usable characters (1-100)"
        )
    return name


URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def store_path(path: object, scheme: str, kind: Literal["directory", "file"]) -> str:
    """The file system path named by ``path``: a str or path-like, or ``scheme`` + path
    (``lmdb://``, ``sqlite://``), with ``~`` expanded. A URL of another scheme, SQLite's
    ``:memory:``, or an existing path of the other ``kind`` (a file where a directory is
    wanted, or the reverse) is a `StoreConnectionError` naming what was found; the
    check touches nothing."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise ValidationError(f"path must be a non-empty str or path, not {path!r}")
    other = URL_SCHEME.match(path)
    if other is not None and other.group(0) != scheme:
        raise StoreConnectionError(
            f"{path!r} is a {other.group(0)} URL, and this backend opens {scheme} URLs or"
            " plain paths (lmdbstore.open picks the backend by scheme)"
        )
    path = path.removeprefix(scheme)
    if URL_SCHEME.match(path):
        raise StoreConnectionError(f"{scheme}{path!r} names a URL inside a URL, not a path")
    if not path or "\x00" in path:
        raise ValidationError(f"path {path!r} is not a usable file name")
    if path == ":memory:":
        raise StoreConnectionError(
            "':memory:' is refused: each SQLite connection of the store would get its own"
            " empty database; use MemoryStore (memory://) for a store in memory"
        )
    path = os.path.expanduser(path)
    if kind == "directory" and os.path.isfile(path):
        raise StoreConnectionError(
            f"{path!r} is a file, and an LMDB store is a directory (a SQLite store? open"
            f" sqlite://{path})"
        )
    if kind == "file" and os.path.isdir(path):
        raise StoreConnectionError(
            f"{path!r} is a directory, and a SQLite store is a file (an LMDB store? open"
            f" lmdb://{path})"
        )
    return path
