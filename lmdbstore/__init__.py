"""lmdbstore: the persistent state of a WhatsApp multi-device client, on LMDB.

Import everything public from here: `open`, the backends (`LmdbStore`,
`SqliteStore`, `PostgresStore`, `MemoryStore`), the domain protocols, the record types and
the errors. The modules beneath are internal. `PostgresStore` needs the ``postgres`` extra
(psycopg 3), and is imported when first asked for.
"""

__version__ = "0.1.0"

from lmdbstore.cache import (
    CacheConfig,
    Caches,
    CacheStore,
    CacheStores,
    LmdbCacheStore,
    MemoryCacheStore,
    RedisCacheStore,
    TypedCache,
)
from lmdbstore.derived import Transaction
from lmdbstore.domains.lease import DeviceLease
from lmdbstore.encryption import EncryptionKey, keyring_key
from lmdbstore.errors import (
    DatabaseError,
    DeviceDeletedError,
    DeviceLeaseError,
    MigrationError,
    NotFoundError,
    ReadOnlyError,
    SerializationError,
    StoreClosedError,
    StoreConnectionError,
    StoreError,
    TransactionConflictError,
    ValidationError,
)
from lmdbstore.lmdb_store import LmdbStore
from lmdbstore.memory_store import MemoryStore
from lmdbstore.opener import open
from lmdbstore.protocols import (
    AppSyncStore,
    Backend,
    ChatSettingsStore,
    ContactStore,
    DeviceStore,
    EventBufferStore,
    MsgSecretStore,
    ProtocolStore,
    SignalStore,
)
from lmdbstore.sqlite_store import SqliteStore
from lmdbstore.types import (
    MUTED_FOREVER,
    AppStateMutationMAC,
    AppStateSyncKey,
    BufferedEvent,
    ChatSettings,
    ContactInfo,
    Device,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMappingEntry,
    Limits,
    MsgSecretEntry,
    MsgSecretHit,
    NoiseCert,
    ResourceReport,
    ServerCertChain,
    TcTokenEntry,
)

__all__ = [
    "MUTED_FOREVER",
    "AppStateMutationMAC",
    "AppStateSyncKey",
    "AppSyncStore",
    "Backend",
    "BufferedEvent",
    "CacheConfig",
    "CacheStore",
    "CacheStores",
    "Caches",
    "ChatSettings",
    "ChatSettingsStore",
    "ContactInfo",
    "ContactStore",
    "DatabaseError",
    "Device",
    "DeviceDeletedError",
    "DeviceInfo",
    "DeviceLease",
    "DeviceLeaseError",
    "DeviceListRecord",
    "DeviceStore",
    "EncryptionKey",
    "EventBufferStore",
    "HashState",
    "LidPnMappingEntry",
    "Limits",
    "LmdbCacheStore",
    "LmdbStore",
    "MemoryCacheStore",
    "MemoryStore",
    "MigrationError",
    "MsgSecretEntry",
    "MsgSecretHit",
    "MsgSecretStore",
    "NoiseCert",
    "NotFoundError",
    "PostgresStore",
    "ProtocolStore",
    "ReadOnlyError",
    "RedisCacheStore",
    "ResourceReport",
    "SerializationError",
    "ServerCertChain",
    "SignalStore",
    "SqliteStore",
    "StoreClosedError",
    "StoreConnectionError",
    "StoreError",
    "TcTokenEntry",
    "Transaction",
    "TransactionConflictError",
    "TypedCache",
    "ValidationError",
    "__version__",
    "keyring_key",
    "open",
]


def __getattr__(name: str) -> object:
    # PostgresStore imports psycopg, an optional dependency: only when asked for.
    if name == "PostgresStore":
        from lmdbstore.opener import postgres_store

        return postgres_store()
    raise AttributeError(f"module 'lmdbstore' has no attribute {name!r}")
