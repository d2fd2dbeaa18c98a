"""The store contract: one :class:`typing.Protocol` per domain, and :class:`Backend` for all.

Every method is ``async``. Arguments are validated before anything is written: a bad
argument raises :class:`~lmdbstore.errors.ValidationError` and the store is unchanged.
Strings used as keys (addresses, JIDs, names, ids) are 1-255 UTF-8 bytes without NUL;
integer ids are unsigned 32-bit; times are Unix seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lmdbstore.types import (
        AppStateMutationMAC,
        AppStateSyncKey,
        Device,
        DeviceListRecord,
        HashState,
        LidPnMappingEntry,
        MsgSecretEntry,
        TcTokenEntry,
    )


@runtime_checkable
class SignalStore(Protocol):
    """Signal protocol state: identities, sessions, pre-keys, signed pre-keys, sender keys."""

    async def put_identity(self, address: str, key: bytes) -> None:
        """Store the 32-byte identity key of ``address``."""

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store many identities at once; for a repeated address the last value wins."""

    async def load_identity(self, address: str) -> bytes | None:
        """The identity key of ``address``, or ``None``."""

    async def delete_identity(self, address: str) -> None:
        """Remove the identity of ``address`` (no error when absent)."""

    async def get_session(self, address: str) -> bytes | None:
        """The session record of ``address``, or ``None``."""

    async def get_sessions_batch(self, addresses: Sequence[str]) -> dict[str, bytes]:
        """The sessions that exist among ``addresses``."""

    async def put_session(self, address: str, record: bytes) -> None:
        """Store the session record of ``address``."""

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store many sessions at once; for a repeated address the last value wins."""

    async def delete_session(self, address: str) -> None:
        """Remove the session of ``address`` (no error when absent)."""

    async def has_session(self, address: str) -> bool:
        """Whether a session exists for ``address``."""

    async def has_signal_state_for_user(self, user: str) -> bool:
        """Whether an identity or session exists whose address is ``user@...`` or
        ``user:...``; a user that is only a string prefix of another does not match."""

    async def store_prekey(self, prekey_id: int, record: bytes, uploaded: bool = False) -> None:
        """Store one pre-key."""

    async def store_prekeys_batch(
        self, items: Sequence[tuple[int, bytes]], uploaded: bool = False
    ) -> None:
        """Store many pre-keys in one write."""

    async def load_prekey(self, prekey_id: int) -> bytes | None:
        """The pre-key record, or ``None``."""

    async def load_prekeys_batch(self, prekey_ids: Sequence[int]) -> list[tuple[int, bytes]]:
        """The pre-keys that exist among ``prekey_ids``, in request order."""

    async def mark_prekeys_uploaded(self, prekey_ids: Sequence[int]) -> None:
        """Flag pre-keys as uploaded; ids that do not exist are ignored, never created."""

    async def remove_prekey(self, prekey_id: int) -> None:
        """Remove a pre-key (no error when absent)."""

    async def get_max_prekey_id(self) -> int:
        """The greatest stored pre-key id, 0 when there is none."""

    async def store_signed_prekey(self, signed_prekey_id: int, record: bytes) -> None:
        """Store a signed pre-key."""

    async def load_signed_prekey(self, signed_prekey_id: int) -> bytes | None:
        """The signed pre-key record, or ``None``."""

    async def load_all_signed_prekeys(self) -> list[tuple[int, bytes]]:
        """Every signed pre-key, by ascending id."""

    async def remove_signed_prekey(self, signed_prekey_id: int) -> None:
        """Remove a signed pre-key (no error when absent)."""

    async def put_sender_key(self, name: str, record: bytes) -> None:
        """Store the sender key named ``group_jid:address``."""

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store many sender keys at once; for a repeated name the last value wins."""

    async def get_sender_key(self, name: str) -> bytes | None:
        """The sender key record, or ``None``."""

    async def delete_sender_key(self, name: str) -> None:
        """Remove a sender key (no error when absent)."""

    async def migrate_pn_to_lid(self, pn_user: str, lid_user: str) -> int:
        """Move every session, identity and sender key of ``pn_user`` to ``lid_user`` in one
        transaction and return how many PN records were migrated."""


@runtime_checkable
class AppSyncStore(Protocol):
    """App-state sync: keys, collection versions and mutation MACs."""

    async def get_sync_key(self, key_id: bytes) -> AppStateSyncKey | None:
        """The sync key with ``key_id``, or ``None``."""

    async def set_sync_key(self, key_id: bytes, key: AppStateSyncKey) -> None:
        """Store a sync key; it becomes the latest one."""

    async def get_latest_sync_key_id(self) -> bytes | None:
        """The key id most recently passed to :meth:`set_sync_key`, or ``None``."""

    async def get_version(self, name: str) -> HashState:
        """The hash state of collection ``name``; an unknown name gives ``HashState()``."""

    async def set_version(self, name: str, state: HashState) -> None:
        """Store the hash state of collection ``name``."""

    async def put_mutation_macs(
        self, name: str, version: int, mutations: Sequence[AppStateMutationMAC]
    ) -> None:
        """Store the value MACs of a patch of collection ``name``."""

    async def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None:
        """The value MAC stored for ``index_mac``, or ``None``."""

    async def get_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> dict[bytes, bytes]:
        """The value MACs of those ``index_macs`` that exist."""

    async def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None:
        """Remove the MACs of ``index_macs`` from collection ``name``."""

    async def clear_mutation_macs(self, name: str) -> None:
        """Remove every MAC of collection ``name`` (that collection only)."""


@runtime_checkable
class ProtocolStore(Protocol):
    """Protocol bookkeeping: sender-key distribution, LID<->PN, base keys, device lists,
    group metadata, trusted-contact tokens, sent messages and the pending-inbound buffer."""

    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]: ...
    async def set_sender_key_status(
        self, group: str, devices: Sequence[tuple[str, bool]]
    ) -> None: ...
    async def clear_sender_key_devices(self, group: str) -> None: ...
    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None: ...
    async def clear_all_sender_key_devices(self) -> None: ...

    async def get_lid_mapping(self, lid: str) -> LidPnMappingEntry | None: ...
    async def get_pn_mapping(self, phone: str) -> LidPnMappingEntry | None: ...
    async def put_lid_mapping(self, entry: LidPnMappingEntry) -> None: ...
    async def put_lid_mappings(self, entries: Sequence[LidPnMappingEntry]) -> None: ...
    async def get_all_lid_mappings(self) -> list[LidPnMappingEntry]: ...

    async def save_base_key(self, address: str, message_id: str, key: bytes) -> None: ...
    async def has_same_base_key(self, address: str, message_id: str, key: bytes) -> bool: ...
    async def delete_base_key(self, address: str, message_id: str) -> None: ...

    async def update_device_list(self, record: DeviceListRecord) -> None: ...
    async def update_device_lists(self, records: Sequence[DeviceListRecord]) -> None: ...
    async def get_devices(self, user: str) -> DeviceListRecord | None: ...
    async def delete_devices(self, user: str) -> None: ...

    async def get_group_metadata(self, group: str) -> bytes | None: ...
    async def put_group_metadata(self, group: str, blob: bytes) -> None: ...
    async def delete_group_metadata(self, group: str) -> None: ...

    async def get_tc_token(self, jid: str) -> TcTokenEntry | None: ...
    async def put_tc_token(self, jid: str, entry: TcTokenEntry) -> None: ...
    async def delete_tc_token(self, jid: str) -> None: ...
    async def get_all_tc_token_jids(self) -> list[str]: ...
    async def delete_expired_tc_tokens(
        self, cutoff: int, sender_cutoff: int | None = None
    ) -> int: ...
    async def touch_tc_token_sender_timestamp(self, jid: str, ts: int) -> None: ...
    async def store_received_tc_token(self, jid: str, token: bytes, ts: int) -> None: ...

    async def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None: ...
    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None: ...
    async def delete_expired_sent_messages(self, cutoff: int) -> int: ...

    async def store_pending_inbound(
        self, chat: str, sender: str, message_id: str, message: bytes
    ) -> None: ...
    async def store_pending_inbound_batch(
        self, items: Sequence[tuple[str, str, str, bytes]]
    ) -> None: ...
    async def get_pending_inbound(
        self, chat: str, sender: str, message_id: str
    ) -> bytes | None: ...
    async def delete_pending_inbound(self, chat: str, sender: str, message_id: str) -> None: ...
    async def delete_pending_inbound_batch(self, items: Sequence[tuple[str, str, str]]) -> None: ...
    async def delete_expired_pending_inbound(self, cutoff: int) -> int: ...


@runtime_checkable
class MsgSecretStore(Protocol):
    """Message secrets, for reactions, polls and edits."""

    async def put_msg_secret(
        self,
        chat: str,
        sender: str,
        msg_id: str,
        secret: bytes,
        expires_at: int = 0,
        message_ts: int = 0,
    ) -> None: ...
    async def put_msg_secrets(self, entries: Sequence[MsgSecretEntry]) -> int: ...
    async def get_msg_secret(self, chat: str, sender: str, msg_id: str) -> bytes | None: ...
    async def get_msg_secret_with_ts(
        self, chat: str, sender: str, msg_id: str
    ) -> tuple[bytes, int] | None: ...
    async def delete_expired_msg_secrets(self, cutoff: int) -> int: ...


@runtime_checkable
class DeviceStore(Protocol):
    """The device record, device allocation, snapshots and resource reports."""

    async def save(self, device: Device) -> None: ...
    async def load(self) -> Device | None: ...
    async def exists(self) -> bool: ...
    async def create(self) -> int: ...
    async def snapshot_db(self, name: str, extra_content: bytes | None = None) -> None: ...
    async def resource_report(self) -> dict[str, object]: ...
    async def device_ids(self) -> list[int]:
        """The devices that hold records in this database, ascending."""

    async def verify(self) -> list[str]:
        """Walk every record and index of the database (all devices) and describe each
        problem found; empty when sound. Reads only."""


@runtime_checkable
class Backend(SignalStore, AppSyncStore, ProtocolStore, MsgSecretStore, DeviceStore, Protocol):
    """Every domain of the store."""


__all__ = [
    "AppSyncStore",
    "Backend",
    "DeviceStore",
    "MsgSecretStore",
    "ProtocolStore",
    "SignalStore",
]
