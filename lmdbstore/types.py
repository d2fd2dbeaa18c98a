"""The records the store keeps, as plain dataclasses.

They carry no behaviour: validation happens when a record is handed to a store method, and
the byte form of each is defined by `lmdbstore.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


def _hidden(value: object) -> str:
    """How a secret shows in a ``repr``: its length, never its bytes (and never an error,
    whatever a caller put there)."""
    if value is None:
        return "None"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes hidden>"
    return f"<{type(value).__name__} hidden>"


@dataclass(slots=True)
class AppStateSyncKey:
    """An app-state sync key as received in a key share."""

    key_data: bytes
    fingerprint: bytes
    timestamp: int

    def __repr__(self) -> str:
        return (
            f"AppStateSyncKey(key_data={_hidden(self.key_data)}, fingerprint={self.fingerprint!r},"
            f" timestamp={self.timestamp!r})"
        )


@dataclass(slots=True)
class HashState:
    """The LT-hash state of one app-state collection.

    ``index_value_map`` maps the base64 index MAC to the value MAC, as the client needs it to
    subtract old values from the hash.
    """

    version: int = 0
    hash: bytes = bytes(128)
    index_value_map: dict[str, bytes] = field(default_factory=dict)
    mac_mismatch_fatal: bool = False


@dataclass(slots=True)
class AppStateMutationMAC:
    """The value MAC stored for one index MAC of a collection."""

    index_mac: bytes
    value_mac: bytes


@dataclass(slots=True)
class LidPnMappingEntry:
    """A LID <-> phone-number mapping; times are Unix seconds."""

    lid: str
    phone_number: str
    created_at: int
    updated_at: int
    learning_source: str


@dataclass(slots=True)
class TcTokenEntry:
    """A trusted-contact privacy token and the times it was received and last sent."""

    token: bytes
    token_timestamp: int
    sender_timestamp: int | None = None


@dataclass(slots=True)
class ContactInfo:
    """What is known of one contact; ``found`` is false when nothing is stored (then every
    name is ``""``)."""

    found: bool = False
    first_name: str = ""
    full_name: str = ""
    push_name: str = ""
    business_name: str = ""
    redacted_phone: str = ""


@dataclass(slots=True)
class BufferedEvent:
    """A decrypted inbound event kept by the hash of its ciphertext: its ``plaintext``
    (``None`` once cleared: the event was handled), the server's time and the time it was
    buffered (Unix seconds)."""

    plaintext: bytes | None
    server_ts: int
    insert_ts: int

    def __repr__(self) -> str:
        shown = None if self.plaintext is None else _hidden(self.plaintext)
        return (
            f"BufferedEvent(plaintext={shown}, server_ts={self.server_ts!r},"
            f" insert_ts={self.insert_ts!r})"
        )


MUTED_FOREVER = -1
"""`ChatSettings.muted_until` of a chat muted until it is unmuted."""


@dataclass(slots=True)
class ChatSettings:
    """The settings of one chat: ``muted_until`` (Unix seconds; 0 not muted,
    `MUTED_FOREVER`), ``pinned``, ``archived``; ``found`` is false for a chat with none
    stored (then every field has its default)."""

    found: bool = False
    muted_until: int = 0
    pinned: bool = False
    archived: bool = False


@dataclass(slots=True)
class DeviceInfo:
    """One device of a user's device list."""

    device_id: int
    key_index: int | None = None
    is_hosted: bool = False


@dataclass(slots=True)
class DeviceListRecord:
    """The whole device list of one user."""

    user: str
    devices: list[DeviceInfo]
    timestamp: int
    phash: str | None = None
    raw_id: int | None = None


@dataclass(slots=True)
class MsgSecretEntry:
    """A message secret (32 bytes) of one message, for reactions, polls and edits."""

    chat: str
    sender: str
    msg_id: str
    secret: bytes
    expires_at: int = 0
    message_ts: int = 0

    def __repr__(self) -> str:
        return (
            f"MsgSecretEntry(chat={self.chat!r}, sender={self.sender!r}, msg_id={self.msg_id!r},"
            f" secret={_hidden(self.secret)}, expires_at={self.expires_at!r},"
            f" message_ts={self.message_ts!r})"
        )


@dataclass(slots=True)
class MsgSecretHit:
    """What `find_msg_secret` found: the secret, and the chat and sender it is stored
    under (perhaps the aliases of those asked for), which key derivation needs."""

    secret: bytes
    chat: str
    sender: str
    message_ts: int

    def __repr__(self) -> str:
        return (
            f"MsgSecretHit(secret={_hidden(self.secret)}, chat={self.chat!r},"
            f" sender={self.sender!r}, message_ts={self.message_ts!r})"
        )


@dataclass(frozen=True, slots=True)
class Limits:
    """Size caps per device, given at open (``limits=``): at most ``sent_messages`` sent
    messages and ``msg_secrets`` expiring message secrets (``expires_at != 0``; the others
    never count nor go). ``None``: unbounded (the default). A commit that would leave a
    device above a cap also evicts, in the same write and in eviction order, until at
    most ``cap * 3 // 4`` remain; nothing is raised, and records of that commit may go.
    Sent messages go oldest ``created_at`` first, ties by (chat, id); secrets soonest
    ``expires_at`` first, and of one ``expires_at`` whole (chat, msg_id) groups in order,
    so a message's secrets under several sender aliases go together."""

    sent_messages: int | None = None
    msg_secrets: int | None = None


@dataclass(slots=True)
class NoiseCert:
    """One certificate of the server's Noise certificate chain: its public key (32 bytes)
    and validity (Unix seconds)."""

    key: bytes
    not_before: int
    not_after: int


@dataclass(slots=True)
class ServerCertChain:
    """The server's Noise certificate chain, kept from the last handshake (whatsapp-rust
    resumes with it; without it a client does the full XX handshake)."""

    intermediate: NoiseCert
    leaf: NoiseCert


@dataclass(slots=True)
class Device:
    """The device record of one account.

    Key fields are 64-byte private-then-public pairs. The defaults are the empty record a
    store persists for `DeviceStore.create`; the client fills the keys in.
    """

    pn: str | None = None
    lid: str | None = None
    registration_id: int = 0
    noise_key: bytes = bytes(64)
    identity_key: bytes = bytes(64)
    signed_pre_key: bytes = bytes(64)
    signed_pre_key_id: int = 0
    signed_pre_key_signature: bytes = bytes(64)
    adv_secret_key: bytes = bytes(32)
    account: bytes | None = None
    push_name: str = ""
    app_version: tuple[int, int, int] = (0, 0, 0)
    app_version_last_fetched_ms: int = 0
    edge_routing_info: bytes | None = None
    props_hash: str | None = None
    next_pre_key_id: int = 1
    first_unupload_pre_key_id: int = 1
    server_has_prekeys: bool = False
    nct_salt: bytes | None = None
    login_counter: int = 0
    lid_migrated: bool = False
    last_signed_pre_key_rotation_ms: int | None = None
    read_receipts_disabled: bool = False
    server_cert_chain: ServerCertChain | None = None

    def __repr__(self) -> str:
        fields = []
        for name in self.__slots__:
            value = getattr(self, name)
            shown = _hidden(value) if name in _DEVICE_SECRETS else repr(value)
            fields.append(f"{name}={shown}")
        return f"Device({', '.join(fields)})"


# The fields of a Device that hold private key material or secrets; a repr shows their
# lengths only (the public identity key is half of a pair, so the pair is hidden whole).
_DEVICE_SECRETS = frozenset(
    {"noise_key", "identity_key", "signed_pre_key", "adv_secret_key", "account", "nct_salt"}
)


REPORT_DOMAINS = (
    "signal",
    "appsync",
    "protocol",
    "msgsecret",
    "device",
    "contact",
    "chat",
    "eventbuf",
    "cache",
)
"""The keys of `ResourceReport.entries`, on every backend."""


@dataclass(frozen=True, slots=True)
class ResourceReport:
    """What `resource_report` tells of a store: the same
    fields on every backend, ``None`` where a figure has no meaning for it.

    Attributes:
        backend: ``"lmdb"``, ``"sqlite"``, ``"postgres"`` or ``"memory"``.
        path: the environment directory or database file (``None`` in memory).
        bytes_on_disk: the size of the store's files (LMDB ``data.mdb`` and ``lock.mdb``;
            SQLite database, WAL and shared-memory files; 0 in memory).
        entries: entries per domain (``signal``, ``appsync``, ``protocol``, ``msgsecret``,
            ``device``, ``contact``, ``chat``, ``eventbuf``, ``cache``), for all devices
            of the database. LMDB and MemoryStore
            count every key of the domain's sub-database, index entries included; SQLite
            counts rows.
        durability: the durability level the store was opened with (LMDB ``"full"`` or
            ``"normal"``, SQLite ``"FULL"`` or ``"NORMAL"``; in memory ``"memory"``).
        map_size: LMDB's current map size in bytes (it grows by itself); else ``None``.
        map_used: bytes of the map in use (LMDB); else ``None``.
        readers_in_use: reader slots (LMDB, all processes) or reader connections (SQLite)
            in use; 0 in memory.
        max_readers: the size of LMDB's reader table; else ``None``.
        details: further backend-specific figures by name (SQLite: ``page_size``,
            ``page_count``, ``freelist_count`` and ``rows.<table>``); may be empty.
    """

    backend: Literal["lmdb", "sqlite", "postgres", "memory"]
    path: str | None
    bytes_on_disk: int
    entries: dict[str, int]
    durability: str
    map_size: int | None = None
    map_used: int | None = None
    readers_in_use: int = 0
    max_readers: int | None = None
    details: dict[str, int] = field(default_factory=dict)


__all__ = [
    "AppStateMutationMAC",
    "AppStateSyncKey",
    "Device",
    "DeviceInfo",
    "DeviceListRecord",
    "HashState",
    "LidPnMappingEntry",
    "MsgSecretEntry",
    "ResourceReport",
    "TcTokenEntry",
]
