"""AppSyncStore in memory: the reference model of the LMDB and SQLite backends."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from lmdbstore import validate
from lmdbstore.testing.oracle.state import MemoryHandle
from lmdbstore.types import HashState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lmdbstore.types import AppStateMutationMAC, AppStateSyncKey


class MemoryAppSyncStore(MemoryHandle):
    """The `AppSyncStore` methods of `OracleStore`."""

    async def get_sync_key(self, key_id: bytes) -> AppStateSyncKey | None:
        found = self._d.sync_keys.get(validate.key_bytes(key_id, "key_id"))
        return copy.copy(found)

    async def set_sync_key(self, key_id: bytes, key: AppStateSyncKey) -> None:
        raw_id = validate.key_bytes(key_id, "key_id")
        checked = validate.sync_key(key)
        d = self._d
        d.sync_keys[raw_id] = checked
        d.latest_sync_key_id = raw_id

    async def get_latest_sync_key_id(self) -> bytes | None:
        return self._d.latest_sync_key_id

    async def get_all_sync_keys(self) -> list[tuple[bytes, AppStateSyncKey]]:
        ordered = sorted(self._d.sync_keys.items(), key=lambda item: (-item[1].timestamp, item[0]))
        return [(key_id, copy.copy(key)) for key_id, key in ordered]

    async def get_version(self, name: str) -> HashState:
        found = self._d.versions.get(validate.text(name, "name").decode())
        return HashState() if found is None else copy.deepcopy(found)

    async def set_version(self, name: str, state: HashState) -> None:
        key = validate.text(name, "name").decode()
        self._d.versions[key] = validate.hash_state(state)

    async def put_mutation_macs(
        self, name: str, version: int, mutations: Sequence[AppStateMutationMAC]
    ) -> None:
        raw = validate.text(name, "name")
        validate.u64(version, "version")
        checked = validate.mutations(raw, mutations)
        self._d.mutation_macs.setdefault(raw.decode(), {}).update(checked)

    async def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None:
        raw = validate.text(name, "name")
        (mac,) = validate.index_macs(raw, [index_mac])
        return self._d.mutation_macs.get(raw.decode(), {}).get(mac)

    async def get_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> dict[bytes, bytes]:
        raw = validate.text(name, "name")
        macs = validate.index_macs(raw, index_macs)
        stored = self._d.mutation_macs.get(raw.decode(), {})
        return {mac: stored[mac] for mac in macs if mac in stored}

    async def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None:
        raw = validate.text(name, "name")
        macs = validate.index_macs(raw, index_macs)
        stored = self._d.mutation_macs.get(raw.decode(), {})
        for mac in macs:
            stored.pop(mac, None)

    async def clear_mutation_macs(self, name: str) -> None:
        self._d.mutation_macs.pop(validate.text(name, "name").decode(), None)

    async def delete_version(self, name: str) -> None:
        collection = validate.text(name, "name").decode()
        self._d.versions.pop(collection, None)
        self._d.mutation_macs.pop(collection, None)
