"""The records the store keeps, as plain dataclasses.

They carry no behaviour: validation happens when a record is handed to a store method, and
the byte form of each is defined by :mod:`lmdbstore.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class AppStateSyncKey:
    """An app-state sync key as received in a key share."""

    key_data: bytes
    fingerprint: bytes
    timestamp: int


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


@dataclass(slots=True)
class Device:
    """The device record of one account.

    Key fields are 64-byte private-then-public pairs. The defaults are the empty record a
    store persists for :meth:`DeviceStore.create`; the client fills the keys in.
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


__all__ = [
    "AppStateMutationMAC",
    "AppStateSyncKey",
    "Device",
    "DeviceInfo",
    "DeviceListRecord",
    "HashState",
    "LidPnMappingEntry",
    "MsgSecretEntry",
    "TcTokenEntry",
]
