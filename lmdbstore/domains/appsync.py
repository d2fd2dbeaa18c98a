"""AppSyncStore: sub-database ``appsync``.

Keys (after ``device · tag``): sync keys by their id (raw bytes, the last component), one
pointer record to the latest sync key id, collection versions by name, and mutation MACs by
``name · index_mac`` so that one collection's MACs form one prefix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import codec, validate
from lmdbstore.domains.handle import DomainHandle
from lmdbstore.types import AppStateSyncKey, HashState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lmdbstore.storage.view import ReadView, WriteView
    from lmdbstore.types import AppStateMutationMAC

_DB = "appsync"


class AppSyncDomain(DomainHandle):
    """The `AppSyncStore` methods of every store."""

    def _macs_start(self, name: bytes) -> bytes:
        """The prefix of every MAC of collection ``name``."""
        return self._records("mutation_mac").key((name,))

    def _mac_key(self, name: bytes, index_mac: bytes) -> bytes:
        return self._macs_start(name) + index_mac

    def _mac_keys(self, name: bytes, index_macs: Sequence[bytes]) -> list[tuple[bytes, bytes]]:
        """(index MAC, key) of each of ``index_macs``, checked."""
        return [(mac, self._mac_key(name, mac)) for mac in validate.index_macs(name, index_macs)]

    async def get_sync_key(self, key_id: bytes) -> AppStateSyncKey | None:
        k = self._records("sync_key").key((validate.key_bytes(key_id, "key_id"),))
        return await self._load(_DB, k, codec.read_sync_key)

    async def set_sync_key(self, key_id: bytes, key: AppStateSyncKey) -> None:
        raw_id = validate.key_bytes(key_id, "key_id")
        value = codec.dump_sync_key(validate.sync_key(key))
        await self._put_many(
            _DB,
            [
                (self._records("sync_key").key((raw_id,)), value),
                (self._records("latest_sync_key").key(()), codec.dump_key_id(raw_id)),
            ],
        )

    async def get_latest_sync_key_id(self) -> bytes | None:
        k = self._records("latest_sync_key").key(())
        return await self._load(_DB, k, codec.read_key_id)

    async def get_all_sync_keys(self) -> list[tuple[bytes, AppStateSyncKey]]:
        records = self._records("sync_key")

        def read(view: ReadView) -> list[tuple[bytes, AppStateSyncKey]]:
            found = [(key_id, AppStateSyncKey(*fields)) for (key_id,), fields in records.scan(view)]
            found.sort(key=lambda item: -item[1].timestamp)  # stable: ties keep key_id order
            return found

        return await self._read_in_thread(read)

    async def get_version(self, name: str) -> HashState:
        k = self._records("app_state_version").key((validate.text(name, "name"),))
        found = await self._load(_DB, k, codec.read_hash_state)
        return HashState() if found is None else found

    async def set_version(self, name: str, state: HashState) -> None:
        k = self._records("app_state_version").key((validate.text(name, "name"),))
        await self._put(_DB, k, codec.dump_hash_state(validate.hash_state(state)))

    async def put_mutation_macs(
        self, name: str, version: int, mutations: Sequence[AppStateMutationMAC]
    ) -> None:
        raw = validate.text(name, "name")
        number = validate.u64(version, "version")
        pairs = await self._batch(
            mutations,
            lambda: [
                (self._mac_key(raw, index_mac), codec.dump_mutation_mac(value_mac, number))
                for index_mac, value_mac in validate.mutations(raw, mutations)
            ],
        )
        await self._put_many(_DB, pairs)

    async def get_mutation_mac(self, name: str, index_mac: bytes) -> bytes | None:
        raw = validate.text(name, "name")
        (mac,) = validate.index_macs(raw, [index_mac])
        return await self._load(_DB, self._mac_key(raw, mac), codec.read_mutation_mac)

    async def get_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> dict[bytes, bytes]:
        raw = validate.text(name, "name")
        wanted = await self._batch(index_macs, lambda: self._mac_keys(raw, index_macs))

        def read(view: ReadView) -> dict[bytes, bytes]:
            found = {}
            for mac, k in wanted:
                value = view.get(_DB, k)
                if value is not None:
                    found[mac] = codec.load(_DB, k, value, codec.read_mutation_mac)
            return found

        return await self._read_batch(wanted, read)

    async def delete_mutation_macs(self, name: str, index_macs: Sequence[bytes]) -> None:
        raw = validate.text(name, "name")
        doomed = await self._batch(index_macs, lambda: self._mac_keys(raw, index_macs))
        await self._delete(_DB, *(k for _, k in doomed))

    async def clear_mutation_macs(self, name: str) -> None:
        start = self._macs_start(validate.text(name, "name"))
        await self._write(lambda view: self._clear_macs(view, start))

    @staticmethod
    def _clear_macs(view: WriteView, start: bytes) -> None:
        for k, _ in view.scan_prefix(_DB, start):
            view.delete(_DB, k)

    async def delete_version(self, name: str) -> None:
        raw = validate.text(name, "name")
        version = self._records("app_state_version").key((raw,))
        macs = self._macs_start(raw)

        def op(view: WriteView) -> None:
            view.delete(_DB, version)
            self._clear_macs(view, macs)

        await self._write(op)
