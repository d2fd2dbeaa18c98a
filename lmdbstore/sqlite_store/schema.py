"""The SQLite schema of SqliteStore, and its forward migrations.

A table per record kind, ``device_id`` first in every primary key (one database, many
accounts, no row shared). Tables are ``STRICT`` (SQLite refuses a value of the wrong type, so
a row always reads back with the declared types) and, where the key is composite,
``WITHOUT ROWID`` (the row lives in the primary-key b-tree: one lookup per point read).
Indexes exist for the queries that are not primary-key lookups: the phone lookup of LID
mappings, each expiry column, and sender-key rows by device JID.

Values that are structures rather than scalars (a device list, a hash state's index-value
map, the device record) are CBOR, in the same form the LMDB backend stores.

``schema_version`` holds one row. `MIGRATIONS` ``[n]`` takes a database from version
``n`` to ``n + 1``; opening runs the missing steps in one transaction. A version above
``len(MIGRATIONS)`` was written by a newer lmdbstore and is refused (MigrationError).
"""

from __future__ import annotations

from lmdbstore.kinds import BY_NAME

_KEYED = "STRICT, WITHOUT ROWID"

VERSION_1: tuple[str, ...] = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) " + _KEYED,
    # -- SignalStore
    """CREATE TABLE identities (device_id INTEGER NOT NULL, address TEXT NOT NULL,
        identity_key BLOB NOT NULL, PRIMARY KEY (device_id, address)) """
    + _KEYED,
    """CREATE TABLE sessions (device_id INTEGER NOT NULL, address TEXT NOT NULL,
        record BLOB NOT NULL, PRIMARY KEY (device_id, address)) """
    + _KEYED,
    """CREATE TABLE prekeys (device_id INTEGER NOT NULL, prekey_id INTEGER NOT NULL,
        record BLOB NOT NULL, uploaded INTEGER NOT NULL,
        PRIMARY KEY (device_id, prekey_id)) """
    + _KEYED,
    """CREATE TABLE signed_prekeys (device_id INTEGER NOT NULL,
        signed_prekey_id INTEGER NOT NULL, record BLOB NOT NULL,
        PRIMARY KEY (device_id, signed_prekey_id)) """
    + _KEYED,
    """CREATE TABLE sender_keys (device_id INTEGER NOT NULL, name TEXT NOT NULL,
        record BLOB NOT NULL, PRIMARY KEY (device_id, name)) """
    + _KEYED,
    # -- AppSyncStore
    """CREATE TABLE sync_keys (device_id INTEGER NOT NULL, key_id BLOB NOT NULL,
        key_data BLOB NOT NULL, fingerprint BLOB NOT NULL, timestamp INTEGER NOT NULL,
        PRIMARY KEY (device_id, key_id)) """
    + _KEYED,
    """CREATE TABLE latest_sync_key (device_id INTEGER PRIMARY KEY,
        key_id BLOB NOT NULL) STRICT""",
    """CREATE TABLE app_state_versions (device_id INTEGER NOT NULL, name TEXT NOT NULL,
        version INTEGER NOT NULL, hash BLOB NOT NULL, value_map BLOB NOT NULL,
        mac_mismatch_fatal INTEGER NOT NULL, PRIMARY KEY (device_id, name)) """
    + _KEYED,
    """CREATE TABLE mutation_macs (device_id INTEGER NOT NULL, name TEXT NOT NULL,
        index_mac BLOB NOT NULL, value_mac BLOB NOT NULL, version INTEGER NOT NULL,
        PRIMARY KEY (device_id, name, index_mac)) """
    + _KEYED,
    # -- ProtocolStore
    """CREATE TABLE sender_key_devices (device_id INTEGER NOT NULL, group_jid TEXT NOT NULL,
        device_jid TEXT NOT NULL, has_key INTEGER NOT NULL,
        PRIMARY KEY (device_id, group_jid, device_jid)) """
    + _KEYED,
    "CREATE INDEX sender_key_devices_by_jid ON sender_key_devices (device_id, device_jid)",
    """CREATE TABLE lid_mappings (device_id INTEGER NOT NULL, lid TEXT NOT NULL,
        phone_number TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        learning_source TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (device_id, lid)) """
    + _KEYED,
    # get_pn_mapping: greatest updated_at for a phone, ties to the mapping written last.
    """CREATE INDEX lid_mappings_by_phone
        ON lid_mappings (device_id, phone_number, updated_at, seq)""",
    "CREATE INDEX lid_mappings_by_seq ON lid_mappings (device_id, seq)",
    """CREATE TABLE base_keys (device_id INTEGER NOT NULL, address TEXT NOT NULL,
        message_id TEXT NOT NULL, base_key BLOB NOT NULL,
        PRIMARY KEY (device_id, address, message_id)) """
    + _KEYED,
    """CREATE TABLE device_lists (device_id INTEGER NOT NULL, user TEXT NOT NULL,
        record BLOB NOT NULL, PRIMARY KEY (device_id, user)) """
    + _KEYED,
    """CREATE TABLE group_metadata (device_id INTEGER NOT NULL, group_jid TEXT NOT NULL,
        metadata BLOB NOT NULL, PRIMARY KEY (device_id, group_jid)) """
    + _KEYED,
    """CREATE TABLE tc_tokens (device_id INTEGER NOT NULL, jid TEXT NOT NULL,
        token BLOB NOT NULL, token_timestamp INTEGER NOT NULL, sender_timestamp INTEGER,
        PRIMARY KEY (device_id, jid)) """
    + _KEYED,
    # Expiry's token side: an empty token always qualifies, so it is indexed at the minimum.
    """CREATE INDEX tc_tokens_by_time ON tc_tokens (device_id,
        (CASE WHEN length(token) = 0 THEN -9223372036854775808 ELSE token_timestamp END))""",
    """CREATE TABLE sent_messages (device_id INTEGER NOT NULL, chat TEXT NOT NULL,
        message_id TEXT NOT NULL, payload BLOB NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (device_id, chat, message_id)) """
    + _KEYED,
    "CREATE INDEX sent_messages_by_time ON sent_messages (device_id, created_at)",
    """CREATE TABLE pending_inbound (device_id INTEGER NOT NULL, chat TEXT NOT NULL,
        sender TEXT NOT NULL, message_id TEXT NOT NULL, message BLOB NOT NULL,
        inserted_at INTEGER NOT NULL,
        PRIMARY KEY (device_id, chat, sender, message_id)) """
    + _KEYED,
    "CREATE INDEX pending_inbound_by_time ON pending_inbound (device_id, inserted_at)",
    # -- MsgSecretStore
    """CREATE TABLE msg_secrets (device_id INTEGER NOT NULL, chat TEXT NOT NULL,
        sender TEXT NOT NULL, msg_id TEXT NOT NULL, secret BLOB NOT NULL,
        expires_at INTEGER NOT NULL, message_ts INTEGER NOT NULL,
        PRIMARY KEY (device_id, chat, sender, msg_id)) """
    + _KEYED,
    """CREATE INDEX msg_secrets_by_expiry ON msg_secrets (device_id, expires_at)
        WHERE expires_at != 0""",
    # -- DeviceStore
    "CREATE TABLE devices (device_id INTEGER PRIMARY KEY, record BLOB NOT NULL) STRICT",
)

VERSION_2: tuple[str, ...] = (
    # -- ContactStore
    """CREATE TABLE contacts (device_id INTEGER NOT NULL, jid TEXT NOT NULL,
        first_name TEXT NOT NULL, full_name TEXT NOT NULL, push_name TEXT NOT NULL,
        business_name TEXT NOT NULL, redacted_phone TEXT NOT NULL,
        PRIMARY KEY (device_id, jid)) """
    + _KEYED,
    # -- ChatSettingsStore
    """CREATE TABLE chat_settings (device_id INTEGER NOT NULL, chat TEXT NOT NULL,
        muted_until INTEGER NOT NULL, pinned INTEGER NOT NULL, archived INTEGER NOT NULL,
        PRIMARY KEY (device_id, chat)) """
    + _KEYED,
    # -- EventBufferStore
    """CREATE TABLE buffered_events (device_id INTEGER NOT NULL, hash BLOB NOT NULL,
        plaintext BLOB, server_ts INTEGER NOT NULL, insert_ts INTEGER NOT NULL,
        PRIMARY KEY (device_id, hash)) """
    + _KEYED,
    "CREATE INDEX buffered_events_by_time ON buffered_events (device_id, insert_ts)",
    """CREATE TABLE outgoing_events (device_id INTEGER NOT NULL, chat TEXT NOT NULL,
        message_id TEXT NOT NULL, format TEXT NOT NULL, plaintext BLOB NOT NULL,
        timestamp INTEGER NOT NULL, PRIMARY KEY (device_id, chat, message_id)) """
    + _KEYED,
    "CREATE INDEX outgoing_events_by_time ON outgoing_events (device_id, timestamp)",
)
"""Version 1 to 2: the tables of the stores whatsmeow has and version 1 lacked (issue
18): contacts, chat settings, the event buffer."""

_SENT, _SECRETS = BY_NAME["sent_message_by_time"].tag, BY_NAME["msg_secret_by_expiry"].tag

VERSION_3: tuple[str, ...] = (
    """CREATE TABLE tallies (device_id INTEGER NOT NULL, db TEXT NOT NULL,
        tag INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (device_id, db, tag)) """
    + _KEYED,
    f"""INSERT INTO tallies SELECT device_id, 'protocol', {_SENT}, count(*)
        FROM sent_messages GROUP BY device_id""",
    f"""INSERT INTO tallies SELECT device_id, 'msgsecret', {_SECRETS}, count(*)
        FROM msg_secrets WHERE expires_at != 0 GROUP BY device_id""",
)
"""Version 2 to 3: each device's tally of its sent messages and of its expiring message
secrets (``db`` and ``tag``: the counted index, `lmdbstore.keys.TALLY`), counted from the
rows once, then kept by every write: what a size cap reads."""

VERSION_TABLE = "CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT"
"""The table of the one row that says which version the schema is at."""

MIGRATIONS: list[tuple[str, ...]] = [VERSION_1, VERSION_2, VERSION_3]
"""``MIGRATIONS[n]``: the statements that take the schema from version ``n`` to ``n + 1``."""

LAST_DEVICE_NAME = "last_device_id"
"""The ``meta`` row of the last device id ``create()`` handed out."""
