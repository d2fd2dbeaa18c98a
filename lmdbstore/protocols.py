"""The store contract: one `typing.Protocol` per domain, and `Backend` for all.

Every domain method is ``async``, and these rules hold for all of them:

- **Arguments are checked before anything is written.** A bad argument raises
  `ValidationError` (also a ``ValueError``) and the store is
  unchanged. Strings used as keys (addresses, JIDs, names, ids) are 1-255 UTF-8 bytes
  without NUL; integer ids are unsigned 32-bit; opaque values are at most 8 MiB.
- **Times are Unix seconds** (``int``), never milliseconds: a cutoff in milliseconds is a
  time thousands of years ahead and deletes everything before it.
- **Absent is not an error.** A read of something absent returns ``None`` (or an empty
  collection, or the documented default); deleting something absent does nothing.
- **A write returns after its commit**, durable to the store's level, and cancellation
  never leaves its outcome unknown. On LmdbStore a plain write cancelled before the writer
  takes it into a transaction is withdrawn and the cancellation propagates at once (so it
  was not applied); one already taken completes and returns, the cancellation striking at
  the next await. On SqliteStore, and for a transaction's commit on every backend, the
  write, once begun, completes before the cancellation propagates.
- **Errors every method may raise**, besides those it names:
  `StoreClosedError` (this handle is closed),
  `SerializationError` (a stored record cannot be decoded; the
  message names domain and key), `DatabaseError` (the engine
  failed: I/O error, disk full, map full beyond ``max_size``). A call that raises has
  written nothing. No ``lmdb``, ``sqlite3`` or ``cbor2`` exception escapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Self, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType

    from lmdbstore.domains.lease import DeviceLease
    from lmdbstore.types import (
        AppStateMutationMAC,
        AppStateSyncKey,
        BufferedEvent,
        ChatSettings,
        ContactInfo,
        Device,
        DeviceListRecord,
        HashState,
        LidPnMappingEntry,
        MsgSecretEntry,
        MsgSecretHit,
        ResourceReport,
        TcTokenEntry,
    )

R = TypeVar("R")
T = TypeVar("T")


@runtime_checkable
class SignalStore(Protocol):
    """Signal protocol state: identities, sessions, pre-keys, signed pre-keys, sender keys.

    Addresses are ``user@server`` (device 0) or ``user:device@server``, possibly followed by
    ``.N``; sender-key names are ``group_jid:address``. Records are opaque bytes.
    """

    async def put_identity(self, address: str, key: bytes) -> None:
        """Store the identity key of ``address``, replacing any.

        Raises:
            ValidationError: ``address`` is not a key string, or ``key`` is not 32 bytes.
        """

    async def put_identities_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store many ``(address, key)`` identities in one commit; for a repeated address
        the last wins.

        Raises:
            ValidationError: any item is bad (then none is stored).
        """

    async def load_identity(self, address: str) -> bytes | None:
        """The 32-byte identity key of ``address``, or ``None`` when none is stored.

        Raises:
            ValidationError: ``address`` is not a key string.
        """

    async def delete_identity(self, address: str) -> None:
        """Remove the identity of ``address``; nothing happens when there is none.

        Raises:
            ValidationError: ``address`` is not a key string.
        """

    async def get_session(self, address: str) -> bytes | None:
        """The session record of ``address``, or ``None`` when there is none.

        Raises:
            ValidationError: ``address`` is not a key string.
        """

    async def get_sessions_batch(self, addresses: Sequence[str]) -> dict[str, bytes]:
        """``{address: record}`` for the sessions that exist among ``addresses`` (absent
        ones are left out), read from one consistent view.

        Raises:
            ValidationError: any address is not a key string.
        """

    async def put_session(self, address: str, record: bytes) -> None:
        """Store the session record of ``address``, replacing any.

        Raises:
            ValidationError: ``address`` is not a key string, or ``record`` is not bytes
                of at most 8 MiB.
        """

    async def put_sessions_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store many ``(address, record)`` sessions in one commit; for a repeated address
        the last wins.

        Raises:
            ValidationError: any item is bad (then none is stored).
        """

    async def delete_session(self, address: str) -> None:
        """Remove the session of ``address``; nothing happens when there is none.

        Raises:
            ValidationError: ``address`` is not a key string.
        """

    async def has_session(self, address: str) -> bool:
        """Whether a session is stored for ``address``.

        Raises:
            ValidationError: ``address`` is not a key string.
        """

    async def has_signal_state_for_user(self, user: str) -> bool:
        """Whether an identity or a session is stored whose address is ``user@...`` or
        ``user:...`` (any device, any server); a user that is only a string prefix of
        another (``5511`` of ``55112``) does not match.

        Raises:
            ValidationError: ``user`` is not a key string.
        """

    async def get_session_addresses(self, user: str) -> list[str]:
        """The address of every session of ``user``, by the rule of
        `has_signal_state_for_user` (every device, every server), sorted: what
        libsignal's ``getSubDeviceSessions`` needs.

        Raises:
            ValidationError: ``user`` is not a key string, or holds ``@`` or ``:``.
        """

    async def delete_all_sessions(self, user: str) -> int:
        """Delete every session of ``user`` (the rule of `has_signal_state_for_user`:
        ``user@...`` or ``user:...``, any device and server; ``%`` and ``_`` are no
        wildcards) in one commit, and return how many. Sender keys are left alone: what
        a client does after the user's identity changed.

        Raises:
            ValidationError: ``user`` is not a key string, or holds ``@`` or ``:``.
        """

    async def delete_all_identities(self, user: str) -> int:
        """Delete every identity of ``user`` (the rule of `delete_all_sessions`) in one
        commit, and return how many.

        Raises:
            ValidationError: ``user`` is not a key string, or holds ``@`` or ``:``.
        """

    async def is_trusted_identity(self, address: str, key: bytes) -> bool:
        """Whether ``key`` may be trusted for ``address``: ``True`` when no identity is
        stored (trust on first use; nothing is written), else whether the stored one is
        ``key``.

        Raises:
            ValidationError: ``address`` is not a key string, or ``key`` is not 32 bytes.
        """

    async def store_prekey(self, prekey_id: int, record: bytes, uploaded: bool = False) -> None:
        """Store one pre-key, replacing any with that id; ``uploaded`` flags it as already
        on the server.

        Raises:
            ValidationError: ``prekey_id`` is not a u32, or ``record`` is not bytes.
        """

    async def store_prekeys_batch(
        self, items: Sequence[tuple[int, bytes]], uploaded: bool = False
    ) -> None:
        """Store many ``(id, record)`` pre-keys in one commit (a client generates them by
        the hundred before an upload).

        Raises:
            ValidationError: any item is bad (then none is stored).
        """

    async def load_prekey(self, prekey_id: int) -> bytes | None:
        """The pre-key record with ``prekey_id``, or ``None`` when there is none.

        Raises:
            ValidationError: ``prekey_id`` is not a u32.
        """

    async def load_prekeys_batch(self, prekey_ids: Sequence[int]) -> list[tuple[int, bytes]]:
        """``(id, record)`` for the pre-keys that exist among ``prekey_ids``, in request
        order (an id requested twice comes twice; absent ids are left out).

        Raises:
            ValidationError: any id is not a u32.
        """

    async def mark_prekeys_uploaded(self, prekey_ids: Sequence[int]) -> None:
        """Flag the pre-keys ``prekey_ids`` as uploaded; ids that do not exist are ignored,
        never created (a removed key is not resurrected).

        Raises:
            ValidationError: any id is not a u32.
        """

    async def remove_prekey(self, prekey_id: int) -> None:
        """Remove a pre-key (after it was used); nothing happens when there is none.

        Raises:
            ValidationError: ``prekey_id`` is not a u32.
        """

    async def get_max_prekey_id(self) -> int:
        """The greatest stored pre-key id, or 0 when none is stored.

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def store_signed_prekey(self, signed_prekey_id: int, record: bytes) -> None:
        """Store a signed pre-key, replacing any with that id.

        Raises:
            ValidationError: ``signed_prekey_id`` is not a u32, or ``record`` not bytes.
        """

    async def load_signed_prekey(self, signed_prekey_id: int) -> bytes | None:
        """The signed pre-key record, or ``None`` when there is none.

        Raises:
            ValidationError: ``signed_prekey_id`` is not a u32.
        """

    async def load_all_signed_prekeys(self) -> list[tuple[int, bytes]]:
        """Every signed pre-key as ``(id, record)``, by ascending id (empty when none).

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def remove_signed_prekey(self, signed_prekey_id: int) -> None:
        """Remove a signed pre-key; nothing happens when there is none.

        Raises:
            ValidationError: ``signed_prekey_id`` is not a u32.
        """

    async def put_sender_key(self, name: str, record: bytes) -> None:
        """Store the sender key named ``group_jid:address``, replacing any.

        Raises:
            ValidationError: ``name`` is not a key string, or ``record`` is not bytes.
        """

    async def put_sender_keys_batch(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store many ``(name, record)`` sender keys in one commit; for a repeated name the
        last wins.

        Raises:
            ValidationError: any item is bad (then none is stored).
        """

    async def get_sender_key(self, name: str) -> bytes | None:
        """The sender key record named ``name``, or ``None`` when there is none.

        Raises:
            ValidationError: ``name`` is not a key string.
        """

    async def delete_sender_key(self, name: str) -> None:
        """Remove a sender key; nothing happens when there is none.

        Raises:
            ValidationError: ``name`` is not a key string.
        """

    async def migrate_pn_to_lid(self, pn_user: str, lid_user: str) -> int:
        """Move every session, identity and sender key of the phone-number user
        ``pn_user`` to the LID user ``lid_user``, in one commit, and return how many PN
        records were migrated (0 when there were none).

        ``5511@s.whatsapp.net`` becomes ``8888@lid`` and ``5511:7@s.whatsapp.net.0``
        becomes ``8888:7@lid.0``; ``55112@...`` is another user and is left alone. Every PN
        record is removed; a LID record that already exists is kept (it is the newer one).

        Raises:
            ValidationError: either user is not a bare user string, or a migrated name
                would exceed 255 bytes (then nothing moves).
        """


@runtime_checkable
class AppSyncStore(Protocol):
    """App-state sync: keys, collection versions and mutation MACs.

    A collection ``name`` is an app-state patch name such as ``regular_high``; MACs are
    bytes.
    """

    async def get_sync_key(self, key_id: bytes) -> AppStateSyncKey | None:
        """The sync key with ``key_id``, or ``None`` when there is none.

        Raises:
            ValidationError: ``key_id`` is not non-empty bytes.
        """

    async def set_sync_key(self, key_id: bytes, key: AppStateSyncKey) -> None:
        """Store a sync key (an unconditional upsert); ``key_id`` becomes the latest id.

        Raises:
            ValidationError: ``key_id`` or a field of ``key`` is bad (``timestamp`` is
                Unix seconds).
        """

    async def get_latest_sync_key_id(self) -> bytes | None:
        """The key id most recently passed to `set_sync_key`, or ``None`` before the
        first.

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def get_all_sync_keys(self) -> list[tuple[bytes, AppStateSyncKey]]:
        """Every sync key as ``(key_id, key)``, newest ``timestamp`` first, ties by
        ``key_id`` ascending: the first is the one whatsmeow would pick as the latest.

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def get_version(self, name: str) -> HashState:
        """The hash state of collection ``name``; an unknown name gives ``HashState()``
        (version 0, 128 zero bytes, no index values). The result is a copy.

        Raises:
            ValidationError: ``name`` is not a key string.
        """

    async def set_version(self, name: str, state: HashState) -> None:
        """Store the hash state of collection ``name``, replacing the previous one.

        Raises:
            ValidationError: ``name`` or a field of ``state`` is bad (``hash`` is 128 bytes,
                ``version`` a u64).
        """

    async def put_mutation_macs(
        self, name: str, version: int, mutations: Sequence[AppStateMutationMAC]
    ) -> None:
        """Store the value MAC of each index MAC of a patch (``version`` is the patch's
        collection version) of collection ``name``, replacing MACs of the same index.

        Raises:
            ValidationError: ``name``, ``version`` (u64) or a mutation is bad, or a
                collection name plus index MAC exceeds the 511-byte key limit.
        """

    async def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None:
        """The value MAC stored for ``index_mac`` in collection ``name``, or ``None``.

        Raises:
            ValidationError: ``name`` or ``index_mac`` is bad.
        """

    async def get_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> dict[bytes, bytes]:
        """``{index_mac: value_mac}`` for the ``index_macs`` stored in collection ``name``
        (absent ones are left out).

        Raises:
            ValidationError: ``name`` or an index MAC is bad.
        """

    async def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None:
        """Remove the MACs of ``index_macs`` from collection ``name`` (absent ones: no-op).

        Raises:
            ValidationError: ``name`` or an index MAC is bad.
        """

    async def clear_mutation_macs(self, name: str) -> None:
        """Remove every MAC of collection ``name``; other collections and the version keep
        theirs.

        Raises:
            ValidationError: ``name`` is not a key string.
        """

    async def delete_version(self, name: str) -> None:
        """Delete the hash state and every MAC of collection ``name`` in one commit (a full
        resync of it starts over): then `get_version` gives ``HashState()`` and every
        MAC of it is gone; other collections are untouched; an unknown name: no-op.

        Raises:
            ValidationError: ``name`` is not a key string.
        """


@runtime_checkable
class ProtocolStore(Protocol):
    """Protocol bookkeeping: sender-key distribution, LID<->PN, base keys, device lists,
    group metadata, trusted-contact tokens, sent messages and the pending-inbound buffer."""

    async def get_sender_key_devices(self, group: str) -> list[tuple[str, bool]]:
        """``(device_jid, has_key)`` for every device recorded for ``group``, sorted by
        device JID; empty when none.

        Raises:
            ValidationError: ``group`` is not a key string.
        """

    async def set_sender_key_status(self, group: str, devices: Sequence[tuple[str, bool]]) -> None:
        """Record whether each device of ``group`` has our sender key (upsert per device;
        other devices of the group keep their rows).

        Raises:
            ValidationError: ``group`` or an item is bad (then nothing is written).
        """

    async def clear_sender_key_devices(self, group: str) -> None:
        """Remove every device row of ``group`` (after a sender-key rotation).

        Raises:
            ValidationError: ``group`` is not a key string.
        """

    async def delete_sender_key_device_rows(self, device_jids: Sequence[str]) -> None:
        """Remove the rows of ``device_jids`` in every group (devices that left).

        Raises:
            ValidationError: a JID is not a key string.
        """

    async def clear_all_sender_key_devices(self) -> None:
        """Remove every sender-key distribution row of this device, in every group.

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def get_lid_mapping(self, lid: str) -> LidPnMappingEntry | None:
        """The mapping of the LID user ``lid``, or ``None`` when it is unmapped.

        Raises:
            ValidationError: ``lid`` is not a key string.
        """

    async def get_pn_mapping(self, phone: str) -> LidPnMappingEntry | None:
        """Of the LIDs mapped to ``phone``, the entry with the greatest ``updated_at``
        (ties: the one written last); ``None`` when none is.

        Raises:
            ValidationError: ``phone`` is not a key string.
        """

    async def get_lids_for_pns(self, phones: Sequence[str]) -> dict[str, str]:
        """``{phone: lid}`` for each of ``phones`` that is mapped, the LID
        `get_pn_mapping` gives, all read in one snapshot; unmapped phones are left out.

        Raises:
            ValidationError: ``phones`` is not a sequence of key strings.
        """

    async def put_lid_mapping(self, entry: LidPnMappingEntry) -> None:
        """Store the mapping of ``entry.lid`` (upsert). A stored ``created_at`` is kept; a
        LID remapped to a new phone leaves the old phone's lookup. Times are Unix seconds.

        Raises:
            ValidationError: a field of ``entry`` is bad.
        """

    async def put_lid_mappings(self, entries: Sequence[LidPnMappingEntry]) -> None:
        """`put_lid_mapping` for each entry, in order, in one commit.

        Raises:
            ValidationError: any entry is bad (then none is stored).
        """

    async def get_all_lid_mappings(self) -> list[LidPnMappingEntry]:
        """Every mapping of this device, sorted by LID (empty when none).

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def save_base_key(self, address: str, message_id: str, key: bytes) -> None:
        """Remember the base key of a message from ``address`` (to detect a retried
        pre-key message), replacing any.

        Raises:
            ValidationError: ``address`` or ``message_id`` is not a key string, or ``key``
                is not bytes.
        """

    async def has_same_base_key(self, address: str, message_id: str, key: bytes) -> bool:
        """Whether the saved base key of that message equals ``key``; ``False`` when
        nothing is saved.

        Raises:
            ValidationError: as for `save_base_key`.
        """

    async def delete_base_key(self, address: str, message_id: str) -> None:
        """Forget the base key of that message; nothing happens when there is none.

        Raises:
            ValidationError: ``address`` or ``message_id`` is not a key string.
        """

    async def update_device_list(self, record: DeviceListRecord) -> None:
        """Store ``record`` as the whole device list of ``record.user``, replacing the
        previous one. ``timestamp`` is Unix seconds.

        Raises:
            ValidationError: a field of ``record`` is bad.
        """

    async def update_device_lists(self, records: Sequence[DeviceListRecord]) -> None:
        """`update_device_list` for each record, in one commit.

        Raises:
            ValidationError: any record is bad (then none is stored).
        """

    async def get_devices(self, user: str) -> DeviceListRecord | None:
        """The device list of ``user``, or ``None`` when none is stored.

        Raises:
            ValidationError: ``user`` is not a key string.
        """

    async def delete_devices(self, user: str) -> None:
        """Remove the device list of ``user``; nothing happens when there is none.

        Raises:
            ValidationError: ``user`` is not a key string.
        """

    async def get_group_metadata(self, group: str) -> bytes | None:
        """The metadata blob stored for ``group``, or ``None``.

        Raises:
            ValidationError: ``group`` is not a key string.
        """

    async def put_group_metadata(self, group: str, blob: bytes) -> None:
        """Store the metadata blob of ``group``, replacing any.

        Raises:
            ValidationError: ``group`` is not a key string, or ``blob`` not bytes.
        """

    async def delete_group_metadata(self, group: str) -> None:
        """Remove the metadata of ``group``; nothing happens when there is none.

        Raises:
            ValidationError: ``group`` is not a key string.
        """

    async def get_tc_token(self, jid: str) -> TcTokenEntry | None:
        """The trusted-contact token row of ``jid``, or ``None``.

        Raises:
            ValidationError: ``jid`` is not a key string.
        """

    async def find_tc_token(self, jid: str) -> tuple[str, TcTokenEntry] | None:
        """``(stored_jid, entry)``: of the tokens of ``jid`` and of its alias (the LID of a
        ``...@s.whatsapp.net`` JID by `get_pn_mapping`, the phone JID of a ``...@lid``
        one by `get_lid_mapping`), the one with the greatest ``token_timestamp``, ties
        to ``jid``'s; ``None`` when neither has one. One snapshot. `get_tc_token` stays
        exact.

        Raises:
            ValidationError: ``jid`` is not a key string.
        """

    async def put_tc_token(self, jid: str, entry: TcTokenEntry) -> None:
        """Store the token row of ``jid`` as given, replacing any. Times are Unix seconds.

        Raises:
            ValidationError: ``jid`` or a field of ``entry`` is bad.
        """

    async def delete_tc_token(self, jid: str) -> None:
        """Remove the token row of ``jid``; nothing happens when there is none.

        Raises:
            ValidationError: ``jid`` is not a key string.
        """

    async def get_all_tc_token_jids(self) -> list[str]:
        """The JIDs that have a token row, sorted (empty when none).

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def delete_expired_tc_tokens(self, cutoff: int, sender_cutoff: int | None = None) -> int:
        """Delete every row whose token is empty or older than ``cutoff``
        (``token_timestamp < cutoff``) and whose ``sender_timestamp`` is ``None`` or older
        than ``sender_cutoff`` (default: ``cutoff``); return how many were deleted. Both
        cutoffs are Unix seconds.

        Raises:
            ValidationError: a cutoff is not an int in the i64 range.
        """

    async def touch_tc_token_sender_timestamp(self, jid: str, ts: int) -> None:
        """Record that we sent our token to ``jid`` at ``ts`` (Unix seconds): the sender
        time only advances. With no row, a placeholder is written (empty token,
        ``token_timestamp = sender_timestamp = ts``).

        Raises:
            ValidationError: ``jid`` or ``ts`` is bad.
        """

    async def store_received_tc_token(self, jid: str, token: bytes, ts: int) -> None:
        """Store a token received from ``jid`` at ``ts`` (Unix seconds) when there is no
        row, the stored token is empty, or ``ts`` is not older than the stored one; the
        sender time is kept. Otherwise nothing changes.

        Raises:
            ValidationError: ``jid``, ``token`` or ``ts`` is bad.
        """

    async def store_received_tc_tokens(self, items: Sequence[tuple[str, bytes, int]]) -> int:
        """`store_received_tc_token` for each ``(jid, token, ts)``, in order, in one
        commit; how many rows were written (a token older than the stored one writes
        none).

        Raises:
            ValidationError: any item is bad (then none is stored).
        """

    async def store_sent_message(self, chat: str, message_id: str, payload: bytes) -> None:
        """Keep a sent message for retries (upsert), stamped with the current time.

        Raises:
            ValidationError: ``chat`` or ``message_id`` is not a key string, or ``payload``
                is not bytes.
        """

    async def take_sent_message(self, chat: str, message_id: str) -> bytes | None:
        """Remove the sent message and return its payload, atomically: of concurrent
        takers exactly one gets it. ``None`` when there is none.

        Raises:
            ValidationError: ``chat`` or ``message_id`` is not a key string.
        """

    async def peek_sent_message(self, chat: str, message_id: str) -> bytes | None:
        """The payload stored for that message, or ``None``; unlike `take_sent_message`
        nothing is deleted (a retry that may fail looks first). No alias is tried: a
        caller that also tries the other namespace knows which one matched.

        Raises:
            ValidationError: a key string is bad.
        """

    async def delete_expired_sent_messages(self, cutoff: int) -> int:
        """Delete the sent messages stored before ``cutoff`` (Unix seconds; strictly
        earlier) and return how many were deleted. The cost follows what is deleted, not
        what is stored.

        Raises:
            ValidationError: ``cutoff`` is not an int in the i64 range.
        """

    async def store_pending_inbound(
        self, chat: str, sender: str, message_id: str, message: bytes
    ) -> None:
        """Buffer one inbound message that cannot be handled yet (upsert), stamped with
        the current time.

        Raises:
            ValidationError: a key string is bad, or ``message`` is not bytes.
        """

    async def store_pending_inbound_batch(
        self, items: Sequence[tuple[str, str, str, bytes]]
    ) -> None:
        """`store_pending_inbound` for each ``(chat, sender, message_id, message)``,
        in one commit.

        Raises:
            ValidationError: any item is bad (then none is stored).
        """

    async def get_pending_inbound(self, chat: str, sender: str, message_id: str) -> bytes | None:
        """The buffered message, or ``None``.

        Raises:
            ValidationError: a key string is bad.
        """

    async def delete_pending_inbound(self, chat: str, sender: str, message_id: str) -> None:
        """Drop one buffered message; nothing happens when there is none.

        Raises:
            ValidationError: a key string is bad.
        """

    async def delete_pending_inbound_batch(self, items: Sequence[tuple[str, str, str]]) -> None:
        """`delete_pending_inbound` for each ``(chat, sender, message_id)``, in one
        commit.

        Raises:
            ValidationError: any item is bad (then none is deleted).
        """

    async def delete_expired_pending_inbound(self, cutoff: int) -> int:
        """Delete the buffered messages stored before ``cutoff`` (Unix seconds; strictly
        earlier) and return how many were deleted.

        Raises:
            ValidationError: ``cutoff`` is not an int in the i64 range.
        """


@runtime_checkable
class MsgSecretStore(Protocol):
    """Message secrets (32 bytes), for reactions, polls and edits."""

    async def put_msg_secret(
        self,
        chat: str,
        sender: str,
        msg_id: str,
        secret: bytes,
        expires_at: int = 0,
        message_ts: int = 0,
    ) -> None:
        """Store the secret of one message, with the merge rules of
        `put_msg_secrets`. ``expires_at`` (0 = never) and ``message_ts`` are Unix
        seconds.

        Raises:
            ValidationError: a key string is bad, ``secret`` is not 32 bytes, or a time is
                not an int in the i64 range.
        """

    async def put_msg_secrets(self, entries: Sequence[MsgSecretEntry]) -> int:
        """Store many secrets in one commit and return how many entries were written (all
        of them: each is an upsert). Over a stored one, the new secret replaces the old,
        ``expires_at`` keeps the later value (0 = never wins) and ``message_ts`` the
        greater.

        Raises:
            ValidationError: any entry is bad (then none is stored).
        """

    async def get_msg_secret(self, chat: str, sender: str, msg_id: str) -> bytes | None:
        """The secret of that message, or ``None``.

        Raises:
            ValidationError: a key string is bad.
        """

    async def get_msg_secret_with_ts(
        self, chat: str, sender: str, msg_id: str
    ) -> tuple[bytes, int] | None:
        """``(secret, message_ts)`` of that message, or ``None``.

        Raises:
            ValidationError: a key string is bad.
        """

    async def find_msg_secret(self, chat: str, sender: str, msg_id: str) -> MsgSecretHit | None:
        """The secret of that message stored under ``chat`` and ``sender`` or under their
        aliases (as `find_tc_token` resolves them), trying ``(chat, sender)``, ``(chat,
        alias sender)``, ``(alias chat, sender)``, ``(alias chat, alias sender)``, and the
        first hit with the chat and sender it is stored under (key derivation needs them);
        ``None`` when none holds it. One snapshot.

        Raises:
            ValidationError: a key string is bad.
        """

    async def delete_expired_msg_secrets(self, cutoff: int) -> int:
        """Delete the secrets with ``expires_at != 0 and expires_at <= cutoff`` (Unix
        seconds) and return how many were deleted.

        Raises:
            ValidationError: ``cutoff`` is not an int in the i64 range.
        """


@runtime_checkable
class ContactStore(Protocol):
    """Contacts and their names (whatsmeow's ContactStore), by JID as given (pass the
    non-device form). Names are strings of at most 4,096 UTF-8 bytes, ``""`` allowed;
    writing one field of an absent contact creates it, the others ``""``."""

    async def put_push_name(self, jid: str, name: str) -> tuple[bool, str]:
        """Set the contact's push name if it differs from the stored one (``""`` when
        absent), atomically: ``(changed, previous)``, ``previous`` being the stored name
        before the call. Of concurrent identical calls exactly one gets ``changed``.

        Raises:
            ValidationError: ``jid`` is not a key string, or ``name`` not a name.
        """

    async def put_business_name(self, jid: str, name: str) -> tuple[bool, str]:
        """`put_push_name`, for the verified business name.

        Raises:
            ValidationError: ``jid`` is not a key string, or ``name`` not a name.
        """

    async def put_contact_name(self, jid: str, *, first_name: str, full_name: str) -> None:
        """Set the first and full name from the address book (keyword-only: whatsmeow's
        interface and implementation disagree on their order).

        Raises:
            ValidationError: ``jid`` is not a key string, or a name is bad.
        """

    async def put_all_contact_names(self, items: Sequence[tuple[str, str, str]]) -> None:
        """`put_contact_name` for each ``(jid, first_name, full_name)``, in one commit (a
        full address-book sync); a JID listed twice takes its last names.

        Raises:
            ValidationError: any item is bad (then nothing is written).
        """

    async def put_redacted_phones(self, items: Sequence[tuple[str, str]]) -> None:
        """Set the redacted phone of each ``(jid, phone)``, in one commit; a JID listed
        twice takes its last phone; contacts not listed keep theirs.

        Raises:
            ValidationError: any item is bad (then nothing is written).
        """

    async def get_contact(self, jid: str) -> ContactInfo:
        """What is known of ``jid``; ``ContactInfo()`` (``found`` false) when nothing.

        Raises:
            ValidationError: ``jid`` is not a key string.
        """

    async def get_all_contacts(self) -> dict[str, ContactInfo]:
        """Every contact of the device, by JID.

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """


@runtime_checkable
class EventBufferStore(Protocol):
    """Decrypted events kept by ciphertext hash, so that a decrypt happens exactly once
    across crashes and retries, and outgoing events kept for retry receipts (whatsmeow's
    EventBuffer). A client hashes each inbound ciphertext (32 bytes): a known hash with a
    plaintext is answered from the buffer (the ratchet already moved), a cleared one is
    acknowledged as done. Decrypt and `put_buffered_event` share one transaction, so the
    session update and the plaintext commit together; once the event is handled,
    `clear_buffered_event_plaintext`."""

    async def get_buffered_event(self, hash: bytes) -> BufferedEvent | None:
        """The event buffered under the ciphertext hash ``hash``, or ``None``.

        Raises:
            ValidationError: ``hash`` is not 32 bytes.
        """

    async def put_buffered_event(
        self, hash: bytes, plaintext: bytes | None, server_ts: int
    ) -> bool:
        """Buffer an event (its ``insert_ts`` is now): ``True``; when the hash is already
        buffered, the stored event is kept and ``False`` returned (overwriting could revive
        a cleared plaintext). In a transaction the check joins its reads: of two concurrent
        decrypts of one ciphertext, one commits and the other gets
        `TransactionConflictError`.

        Raises:
            ValidationError: ``hash`` is not 32 bytes, ``plaintext`` not bytes or ``None``,
                or ``server_ts`` not an i64.
        """

    async def clear_buffered_event_plaintext(self, hash: bytes) -> None:
        """Drop the plaintext of a buffered event and keep its row (the event was handled);
        absent: nothing.

        Raises:
            ValidationError: ``hash`` is not 32 bytes.
        """

    async def delete_old_buffered_hashes(self, cutoff: int | None = None) -> int:
        """Delete the events buffered before ``cutoff`` (``insert_ts < cutoff``; default now
        minus 14 days, as long as the servers keep theirs) and return how many. This device
        only.

        Raises:
            ValidationError: ``cutoff`` is not an i64 or ``None``.
        """

    async def add_outgoing_event(
        self, chat: str, message_id: str, format: str, plaintext: bytes
    ) -> None:
        """Keep an outgoing event for retries, replacing one of the same id (its time is
        now). ``format`` is opaque (whatsmeow: ``"wa"``, ``"fb"``).

        Raises:
            ValidationError: a key string, ``format`` or ``plaintext`` is bad.
        """

    async def get_outgoing_event(
        self, chat: str, message_id: str, alt_chat: str | None = None
    ) -> tuple[str, bytes] | None:
        """``(format, plaintext)`` of the event kept under ``chat``, else under
        ``alt_chat`` (the chat's other JID); ``None`` when neither. Not consumed.

        Raises:
            ValidationError: a key string is bad.
        """

    async def delete_old_outgoing_events(self, cutoff: int | None = None) -> int:
        """Delete the outgoing events kept before ``cutoff`` (default now minus 7 days) and
        return how many.

        Raises:
            ValidationError: ``cutoff`` is not an i64 or ``None``.
        """


@runtime_checkable
class ChatSettingsStore(Protocol):
    """Per-chat settings (whatsmeow's ChatSettingsStore): mute, pin, archive. Each write
    sets its one field; the others keep their value, or their default for a new chat."""

    async def put_muted_until(self, chat: str, until: int) -> None:
        """Mute ``chat`` until ``until`` (Unix seconds), or: ``0`` unmuted,
        ``MUTED_FOREVER`` (-1) until unmuted. The time is not compared with the clock.

        Raises:
            ValidationError: ``chat`` is not a key string, or ``until`` is not an i64 of at
                least -1.
        """

    async def put_pinned(self, chat: str, pinned: bool) -> None:
        """Pin or unpin ``chat``.

        Raises:
            ValidationError: ``chat`` is not a key string, or ``pinned`` not a bool.
        """

    async def put_archived(self, chat: str, archived: bool) -> None:
        """Archive or unarchive ``chat``.

        Raises:
            ValidationError: ``chat`` is not a key string, or ``archived`` not a bool.
        """

    async def get_chat_settings(self, chat: str) -> ChatSettings:
        """The settings of ``chat``; ``ChatSettings()`` (``found`` false, defaults) when
        none is stored.

        Raises:
            ValidationError: ``chat`` is not a key string.
        """


@runtime_checkable
class DeviceStore(Protocol):
    """The device record, device allocation, snapshots and reports."""

    async def save(self, device: Device) -> None:
        """Store the device record of this handle's device, replacing any.

        Raises:
            ValidationError: a field of ``device`` is bad (key pairs are 64 bytes).
        """

    async def load(self) -> Device | None:
        """The device record of this handle's device, or ``None`` when none is saved. A
        record saved by an older version with fewer fields loads with defaults.

        Raises:
            SerializationError: the stored record cannot be decoded.
        """

    async def exists(self) -> bool:
        """Whether a device record is saved for this handle's device.

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def create(self) -> int:
        """Allocate a device id that no record and no open handle of this database uses,
        save a default `Device` for it, and return the id (open a handle
        with `Backend.for_device`).

        Raises:
            DatabaseError: every u32 id is taken.
        """

    async def snapshot_db(self, name: str, extra_content: bytes | None = None) -> None:
        """Copy the whole database (every device), hot and consistent, to
        ``<store path>.snapshot-<unix seconds>-<name>``, which the same backend opens;
        ``extra_content`` goes to that path plus ``.extra``. ``name`` is sanitised like a
        file name (characters outside ``[A-Za-z0-9_.-]`` become ``_``).

        Raises:
            ValidationError: ``name`` is empty or over 100 characters once sanitised.
            DatabaseError: a snapshot of that name was taken in the same second (never
                overwritten), or the copy cannot be written.
        """

    async def resource_report(self) -> ResourceReport:
        """What the store holds and uses: bytes on disk, entries per domain, map size
        and use, readers (see `ResourceReport`).

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def device_ids(self) -> list[int]:
        """The devices that hold records in this database, ascending.

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def delete_device(self) -> int:
        """Delete every record of this handle's device, in every domain (LID mappings and
        tc tokens included; `LmdbCacheStore` entries are not device records), in one
        write transaction, and return how many records there were (what the API can read
        back: not index entries or bookkeeping). Then every handle of this process bound
        to the device, this one and its transactions included, raises
        `DeviceDeletedError` on every call but ``close()`` and ``delete_device()`` (which
        returns 0); an open transaction of the device writes nothing and raises it when
        its block exits. A handle opened on the id afterwards sees an empty device. Other
        processes are not told. Not available on a transaction's handle.

        Raises:
            ValidationError: called on a transaction's handle.
        """

    async def verify(self) -> list[str]:
        """Walk every record and index of the database (all devices) and describe each
        problem found, one string each; empty when sound. Reads only.

        Raises:
            StoreClosedError: this handle is closed (as for every method).
        """

    async def acquire_device_lease(self, ttl: float = 30.0) -> DeviceLease:
        """Take the lease of this handle's device for ``ttl`` seconds (0.1 to 86,400),
        renewed on a thread every third of it, so that one holder at a time (one process
        of a host, one host of a fleet on PostgresStore) runs the account. Use the result
        as ``async with`` (``with`` in the blocking API) or call its ``release``. A lease
        that is not renewed in time, or that another holder took, is lost: its ``lost``
        says so, and every later write of this handle (and of its transactions) raises
        `DeviceLeaseError`. A holder that dies leaves it to expire ``ttl`` later; closing
        the handle stops the renewals. Holders compare times by their clocks: on hosts
        whose clocks differ by more than a small part of ``ttl``, keep ``ttl`` long.

        Raises:
            DeviceLeaseError: another live holder has the lease (the message says for how
                long more), or this handle already holds it.
            ValidationError: ``ttl`` is not a number of seconds from 0.1 to 86,400, or
                this is a transaction's handle.
        """


@runtime_checkable
class Backend(
    SignalStore,
    AppSyncStore,
    ProtocolStore,
    MsgSecretStore,
    ContactStore,
    ChatSettingsStore,
    EventBufferStore,
    DeviceStore,
    Protocol,
):
    """Every domain of the store, and what every store offers beside them: transactions,
    handles on other devices, closing. `LmdbStore`,
    `SqliteStore` and `MemoryStore` all are one; code
    typed against ``Backend`` works with each."""

    @property
    def device_id(self) -> int:
        """The device whose records this handle reads and writes."""

    @property
    def closed(self) -> bool:
        """Whether this handle is closed."""

    def for_device(self, device_id: int) -> Self:
        """A handle on the same database bound to device ``device_id`` (many accounts, one
        database, no row shared). Close it like the store; the database closes with its
        last handle.

        Raises:
            ValidationError: ``device_id`` is not a u32.
            StoreClosedError: this handle is closed.
        """

    def transaction(self) -> AbstractAsyncContextManager[Self]:
        """``async with store.transaction() as tx:`` gives a handle with every method of the
        store. Its reads see its own writes; leaving the block commits every write at once,
        or none of them; an exception inside discards them all. Nothing is locked while the
        block awaits (isolation is optimistic).

        On a transaction's handle, ``tx.transaction()`` yields ``tx`` itself: the same
        writes and reads, committed once, when the outermost block exits. An exception
        leaving an inner block undoes nothing by itself (reaching the outermost block, it
        discards everything; caught inside, the inner writes commit with the rest).

        Raises:
            TransactionConflictError: at the end of the block, when another writer changed
                something the transaction read; nothing was written. Run the block again
                (`run_transaction` does).
            StoreClosedError: this handle is closed.
        """

    async def run_transaction(self, fn: Callable[[Self], Awaitable[R]], retries: int = 3) -> R:
        """``await fn(tx)`` in a `transaction` and return its result; on a conflict,
        wait a short random time (growing with each attempt) and run it again, at most
        ``retries`` more times. On a transaction's handle, ``await fn(tx)`` once, in that
        transaction (no retry: a conflict is its outermost block's).

        Raises:
            TransactionConflictError: the last attempt conflicted too.
            ValidationError: ``retries`` is not an int >= 0, or ``fn`` is not callable.
        """

    async def close(self) -> None:
        """Close this handle (idempotent). Writes already acknowledged are committed; the
        database closes with its last handle. Any later call raises
        `StoreClosedError`. Never raises itself."""

    async def __aenter__(self) -> Self:
        """``async with store:`` closes the store when the block ends."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""


def with_docs_of(protocol: type) -> Callable[[type[T]], type[T]]:
    """A class decorator: every public method of the class that has no docstring of its own
    gets the one of ``protocol``, so that ``help(LmdbStore.put_session)`` shows the
    contract (written once, on the protocol) rather than nothing."""

    def document(cls: type[T]) -> type[T]:
        for name, contract in vars_of(protocol).items():
            method = getattr(cls, name, None)
            function = getattr(method, "__func__", method)
            if function is not None and not getattr(function, "__doc__", None):
                function.__doc__ = contract.__doc__
        return cls

    return document


def vars_of(protocol: type) -> dict[str, object]:
    """The public methods a protocol declares, its bases' included, by name."""
    found: dict[str, object] = {}
    for klass in reversed(protocol.__mro__):
        if issubclass(klass, Protocol) and klass is not Protocol:
            found.update((k, v) for k, v in vars(klass).items() if not k.startswith("_"))
    return found


__all__ = [
    "AppSyncStore",
    "Backend",
    "ChatSettingsStore",
    "ContactStore",
    "DeviceStore",
    "EventBufferStore",
    "MsgSecretStore",
    "ProtocolStore",
    "SignalStore",
]
