"""lmdbstore: the persistent state of a WhatsApp multi-device client, on LMDB.

Import everything public from here: the backends (:class:`LmdbStore`, :class:`SqliteStore`,
:class:`MemoryStore`), the domain protocols, the record types and the errors.
"""

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
from lmdbstore.errors import (
    DatabaseError,
    MigrationError,
    NotFoundError,
    SerializationError,
    StoreClosedError,
    StoreConnectionError,
    StoreError,
    TransactionConflictError,
    ValidationError,
)
from lmdbstore.lmdb_store import LmdbStore
from lmdbstore.memory_store import MemoryStore
from lmdbstore.protocols import (
    AppSyncStore,
    Backend,
    DeviceStore,
    MsgSecretStore,
    ProtocolStore,
    SignalStore,
)
from lmdbstore.sqlite_store import SqliteStore
from lmdbstore.types import (
    AppStateMutationMAC,
    AppStateSyncKey,
    Device,
    DeviceInfo,
    DeviceListRecord,
    HashState,
    LidPnMappingEntry,
    MsgSecretEntry,
    TcTokenEntry,
)

__all__ = [
    "AppStateMutationMAC",
    "AppStateSyncKey",
    "AppSyncStore",
    "Backend",
    "CacheConfig",
    "CacheStore",
    "CacheStores",
    "Caches",
    "DatabaseError",
    "Device",
    "DeviceInfo",
    "DeviceListRecord",
    "DeviceStore",
    "HashState",
    "LidPnMappingEntry",
    "LmdbCacheStore",
    "LmdbStore",
    "MemoryCacheStore",
    "MemoryStore",
    "MigrationError",
    "MsgSecretEntry",
    "MsgSecretStore",
    "NotFoundError",
    "ProtocolStore",
    "RedisCacheStore",
    "SerializationError",
    "SignalStore",
    "SqliteStore",
    "StoreClosedError",
    "StoreConnectionError",
    "StoreError",
    "TcTokenEntry",
    "TransactionConflictError",
    "TypedCache",
    "ValidationError",
]
