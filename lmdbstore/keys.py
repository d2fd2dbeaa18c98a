"""Composite LMDB keys whose byte order is the order of their components.

A key is ``device_id (u32 big-endian) · tag (1 byte) · components``:

- a string is its UTF-8 bytes followed by ``0x00``; UTF-8 preserves code-point order and the
  terminator sorts before every other byte, so a prefix scan on ``"abc\\0"`` never meets
  ``"abcd"`` and ``("ab", x) < ("abc", y)`` as in Python;
- an unsigned id is 4 bytes big-endian; a signed integer is 8 bytes big-endian with the sign
  bit flipped, so negative numbers sort before positive ones;
- opaque bytes may only be the last component (they carry no terminator).

Callers pass components already validated by `lmdbstore.validate`; the string encoder
here takes the UTF-8 bytes that validation returned. The record tags of every sub-database
are declared here, in one place, so that no two kinds of record can share a tag.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import TYPE_CHECKING

from lmdbstore.errors import SerializationError, ValidationError
from lmdbstore.types import REPORT_DOMAINS
from lmdbstore.validate import MAX_KEY

if TYPE_CHECKING:
    from collections.abc import Callable

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_SIGN = 1 << 63


class SignalTag(IntEnum):
    """Record kinds of the ``signal`` sub-database."""

    IDENTITY = 0x01
    SESSION = 0x02
    PREKEY = 0x03
    SIGNED_PREKEY = 0x04
    SENDER_KEY = 0x05


class AppSyncTag(IntEnum):
    """Record kinds of the ``appsync`` sub-database."""

    SYNC_KEY = 0x01
    LATEST_SYNC_KEY = 0x02
    VERSION = 0x03
    MUTATION_MAC = 0x04


DOMAINS = (*REPORT_DOMAINS, "meta")
"""The named sub-databases: one per domain, plus ``cache`` and ``meta`` (the domains are
the keys of a resource report, `lmdbstore.types.REPORT_DOMAINS`)."""

FORMAT_VERSION = 5
"""On-disk format written by this version; another value at open is a MigrationError,
but for `MIGRATED_FORMATS`."""

MIGRATED_FORMATS = tuple(range(1, FORMAT_VERSION))
"""Older formats that a writable open migrates, in its first transaction: format 1 lacks
the sub-databases ``contact``, ``chat`` and ``eventbuf``, which opening creates (empty);
formats 1 and 2 lack the tallies (`TALLY`), which opening counts. A format that only adds
record kinds (`lmdbstore.kinds.Kind.since`) needs nothing more: their records are new keys
(format 4 adds the device lease). Format 5 adds encryption at rest
(`lmdbstore.storage.sealed`): an encrypted store is one of format 5, which an older
lmdbstore refuses rather than misreading its hashed keys (a plain store gains nothing but
the number, and on SQL the empty ``sealed`` table)."""

FORMAT_KEY = b"format_version"
LAST_DEVICE_KEY = b"last_device_id"
"""``meta`` keys: the on-disk format, and the last device id ``create()`` handed out."""

TAG_LIMIT = 0x10
"""Every record tag of every sub-database is below this."""

TALLY = 0x0F
"""The tag of a tally in any sub-database: ``device · TALLY · index tag`` holds how many
entries the device has in that counted index (`lmdbstore.kinds.Kind.counted`), a u64.
No record kind uses it: a tally is bookkeeping, not a record."""


def device_prefix(device_id: int) -> bytes:
    """The 4 bytes every key of ``device_id`` starts with."""
    return _U32.pack(device_id)


def prefix(device: bytes, tag: int) -> bytes:
    """The prefix shared by every record of one kind of one device."""
    return device + bytes((tag,))


def s(raw: bytes) -> bytes:
    """A string component from its validated UTF-8 bytes."""
    return raw + b"\x00"


def u32(value: int) -> bytes:
    """An unsigned 32-bit component."""
    return _U32.pack(value)


pack_u32: Callable[[int], bytes] = _U32.pack
"""`u32` without its Python frame, for the loops of batches."""


def u64(value: int) -> bytes:
    """An unsigned 64-bit value (a tally)."""
    return _U64.pack(value)


def write_seq(device: bytes) -> bytes:
    """The key of ``device``'s write sequence of LID mappings (``ProtocolTag.WRITE_SEQ``, a
    counter rather than a record)."""
    return device + bytes((ProtocolTag.WRITE_SEQ,))


def is_write_seq(db: str, key: bytes) -> bool:
    """Whether ``key`` is a device's write sequence of LID mappings."""
    return db == "protocol" and len(key) == 5 and key[4] == ProtocolTag.WRITE_SEQ


def tally(device: bytes, index_tag: int) -> bytes:
    """The key of ``device``'s tally of the counted index ``index_tag`` (see `TALLY`)."""
    return device + bytes((TALLY, index_tag))


def read_tally(db: str, key: bytes, raw: bytes) -> int:
    """The count a tally stores; SerializationError when ``raw`` is not one."""
    if len(raw) != 8:
        raise SerializationError(db, key, "a tally is not 8 bytes")
    return int(_U64.unpack(raw)[0])


def added_to_tally(db: str, key: bytes, raw: bytes | None, delta: int) -> int:
    """The count of the tally stored as ``raw`` (``None``: absent, 0) plus ``delta``, never
    below 0."""
    return max(0, delta + (0 if raw is None else read_tally(db, key, raw)))


def i64(value: int) -> bytes:
    """A signed 64-bit component, sign bit flipped so byte order is numeric order."""
    return _U64.pack(value ^ _SIGN if value >= 0 else value + _SIGN)


def make(device: bytes, tag: int, *parts: bytes) -> bytes:
    """Join a key and refuse one over LMDB's limit (a last line of defence: the validators
    of `lmdbstore.validate` already bound every component)."""
    key = b"".join((device, bytes((tag,)), *parts))
    if len(key) > MAX_KEY:
        raise ValidationError(f"key of {len(key)} bytes exceeds the {MAX_KEY}-byte limit")
    return key


def read_str(key: bytes, offset: int) -> tuple[str, int]:
    """Decode the string component at ``offset``; returns it and the next offset."""
    end = key.index(b"\x00", offset)
    return key[offset:end].decode("utf-8"), end + 1


def read_u32(key: bytes, offset: int) -> tuple[int, int]:
    """Decode the u32 component at ``offset``; returns it and the next offset."""
    return _U32.unpack_from(key, offset)[0], offset + 4


def read_i64(key: bytes, offset: int) -> tuple[int, int]:
    """Decode the i64 component at ``offset``; returns it and the next offset."""
    raw: int = _U64.unpack_from(key, offset)[0]
    return (raw ^ _SIGN if raw >= _SIGN else raw - _SIGN), offset + 8


def prefix_end(key_prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``key_prefix`` (``None`` when
    there is none, i.e. the prefix is all ``0xff``)."""
    trimmed = key_prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes((trimmed[-1] + 1,))


class ProtocolTag(IntEnum):
    """Record kinds of the ``protocol`` sub-database (``*_BY_*``: secondary indexes)."""

    SENDER_KEY_DEVICE = 0x01  # group · device_jid -> has_key
    SENDER_KEY_DEVICE_BY_JID = 0x02  # device_jid · group -> ()
    LID_MAPPING = 0x03  # lid -> entry
    LID_BY_PHONE = 0x04  # phone · updated_at · write seq · lid -> ()
    WRITE_SEQ = 0x05  # () -> last write sequence number of LID mappings
    BASE_KEY = 0x06  # address · message_id -> key
    DEVICE_LIST = 0x07  # user -> record
    GROUP_METADATA = 0x08  # group -> blob
    TC_TOKEN = 0x09  # jid -> entry
    TC_TOKEN_BY_TIME = 0x0A  # token_timestamp (empty token: minimum) · jid -> ()
    SENT_MESSAGE = 0x0B  # chat · id -> payload, created_at
    SENT_MESSAGE_BY_TIME = 0x0C  # created_at · chat · id -> ()
    PENDING_INBOUND = 0x0D  # chat · sender · id -> message, inserted_at
    PENDING_INBOUND_BY_TIME = 0x0E  # inserted_at · chat · sender · id -> ()


class MsgSecretTag(IntEnum):
    """Record kinds of the ``msgsecret`` sub-database."""

    SECRET = 0x01  # chat · sender · msg_id -> secret, expires_at, message_ts
    SECRET_BY_EXPIRY = 0x02  # expires_at (non-zero only) · chat · sender · msg_id -> ()


class CacheTag(IntEnum):
    """Record kinds of the ``cache`` sub-database (LmdbCacheStore)."""

    ENTRY = 0x01  # namespace · key -> value, expires_at (ms)
    ENTRY_BY_EXPIRY = 0x02  # expires_at (ms) · namespace · key -> ()


class DeviceTag(IntEnum):
    """Record kinds of the ``device`` sub-database."""

    DEVICE = 0x01  # () -> Device
    LEASE = 0x02  # () -> the device's lease (format 4)


class ContactTag(IntEnum):
    """Record kinds of the ``contact`` sub-database."""

    CONTACT = 0x01  # jid -> names and redacted phone


class ChatTag(IntEnum):
    """Record kinds of the ``chat`` sub-database."""

    SETTINGS = 0x01  # chat -> muted_until, pinned, archived


class EventBufferTag(IntEnum):
    """Record kinds of the ``eventbuf`` sub-database."""

    BUFFERED = 0x01  # ciphertext hash -> plaintext, server_ts, insert_ts
    BUFFERED_BY_TIME = 0x02  # insert_ts · hash -> ()
    OUTGOING = 0x03  # chat · message_id -> format, plaintext, timestamp
    OUTGOING_BY_TIME = 0x04  # timestamp · chat · message_id -> ()


def load_device_counter(raw: bytes) -> int:
    """The device counter of ``meta`` (the last device id handed out, a big-endian u32);
    SerializationError when ``raw`` is not one."""
    if len(raw) != 4:
        raise SerializationError("meta", LAST_DEVICE_KEY, "the device counter is not 4 bytes")
    return int.from_bytes(raw, "big")
