"""Conformance tests of device leases (`acquire_device_lease`) within one process: two
handles of one device stand for two holders. (Leases across processes, a holder killed, and
holders that never overlap are tested with real processes in lmdbstore's own suite.)"""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest

from lmdbstore.errors import DeviceLeaseError, ValidationError

TTL = 0.5
"""A short lease: what the tests wait for to see one expire."""


class LeaseConformance:
    """Device leases. Needs a ``store`` fixture (see the package docstring)."""

    @pytest.mark.anyio
    async def test_one_holder_at_a_time(self, store: Any) -> None:
        other = store.for_device(store.device_id)
        try:
            lease = await store.acquire_device_lease(30)
            assert not lease.lost
            with pytest.raises(DeviceLeaseError, match="another holder"):
                await other.acquire_device_lease(30)
            with pytest.raises(DeviceLeaseError, match="already holds"):
                await store.acquire_device_lease(30)
            await lease.release()
            await lease.release()  # idempotent
            async with await other.acquire_device_lease(30) as taken:
                assert not taken.lost
                with pytest.raises(DeviceLeaseError):
                    await store.acquire_device_lease(30)
            # released by the block: the first handle takes it again
            again = await store.acquire_device_lease(30)
            await again.release()
        finally:
            await other.close()

    @pytest.mark.anyio
    async def test_devices_have_leases_of_their_own(self, store: Any) -> None:
        second = store.for_device(store.device_id + 1)
        try:
            async with await store.acquire_device_lease(30), await second.acquire_device_lease(30):
                await store.put_session("a@lid", b"s")
                await second.put_session("a@lid", b"t")
        finally:
            await second.close()

    @pytest.mark.anyio
    async def test_a_lease_renews_itself(self, store: Any) -> None:
        other = store.for_device(store.device_id)
        try:
            async with await store.acquire_device_lease(TTL) as lease:
                await anyio.sleep(TTL * 3)  # renewed every third of its ttl meanwhile
                assert not lease.lost
                with pytest.raises(DeviceLeaseError):
                    await other.acquire_device_lease(TTL)
                await store.put_session("a@lid", b"written while held")
        finally:
            await other.close()

    @pytest.mark.anyio
    async def test_a_holder_that_stops_renewing_loses_it_and_its_writes_are_refused(
        self, store: Any
    ) -> None:
        other = store.for_device(store.device_id)
        try:
            lease = await store.acquire_device_lease(TTL)
            lease._stop.set()  # its renewals stop: a holder stalled, or cut off
            await anyio.sleep(TTL * 1.2)
            assert lease.lost
            with pytest.raises(DeviceLeaseError, match="lost"):
                lease.check()
            with pytest.raises(DeviceLeaseError, match="lost"):
                await store.put_session("a@lid", b"late")
            with pytest.raises(DeviceLeaseError, match="lost"):
                async with store.transaction() as tx:
                    await tx.put_session("a@lid", b"late")
            assert await store.get_session("a@lid") is None  # reads go on
            async with await other.acquire_device_lease(30):
                await other.put_session("a@lid", b"new holder")
            assert await store.get_session("a@lid") == b"new holder"
        finally:
            await other.close()

    @pytest.mark.anyio
    async def test_a_holder_paused_past_its_ttl_is_fenced_out_at_the_commit(
        self, store: Any
    ) -> None:
        """A holder that still believes it holds the lease (paused between its own check and
        its commit, or its clock wrong) writes nothing once its record has expired or
        another holder has taken it: the record is checked inside the write itself."""
        other = store.for_device(store.device_id)
        try:
            await store.put_session("a@lid", b"before")
            lease = await store.acquire_device_lease(TTL)
            lease._stop.set()  # no more renewals ...
            lease._deadline = math.inf  # ... and the holder never notices by its own clock
            await anyio.sleep(TTL * 1.2)
            with pytest.raises(DeviceLeaseError, match="at the write's commit"):
                await store.put_session("a@lid", b"expired")  # expired, nobody else yet
            lease._lost = False
            async with await other.acquire_device_lease(30):
                with pytest.raises(DeviceLeaseError, match="at the write's commit"):
                    await store.put_session("a@lid", b"late")
                assert lease.lost
                lease._lost = False
                with pytest.raises(DeviceLeaseError, match="at the write's commit"):
                    async with store.transaction() as tx:
                        await tx.put_session("a@lid", b"late in a transaction")
                assert await store.get_session("a@lid") == b"before"
                await other.put_session("a@lid", b"new holder")
            assert await store.get_session("a@lid") == b"new holder"
        finally:
            await other.close()

    @pytest.mark.anyio
    async def test_a_closed_holder_leaves_its_lease_to_expire(self, store: Any) -> None:
        holder = store.for_device(store.device_id)
        await holder.acquire_device_lease(TTL)
        await holder.close()  # no release: as if the holder had died
        with pytest.raises(DeviceLeaseError, match="s more"):
            await store.acquire_device_lease(30)
        await anyio.sleep(TTL * 1.2)
        lease = await store.acquire_device_lease(30)
        await lease.release()

    @pytest.mark.anyio
    async def test_delete_device_drops_the_lease_and_does_not_count_it(self, store: Any) -> None:
        neighbour = store.for_device(store.device_id + 1)  # to open the device again after
        try:
            await store.put_session("a@lid", b"s")
            lease = await store.acquire_device_lease(30)
            assert await store.delete_device() == 1
            lease.abandon()
            again = neighbour.for_device(store.device_id)
            try:
                async with await again.acquire_device_lease(30):  # the record went too
                    pass
            finally:
                await again.close()
        finally:
            await neighbour.close()

    @pytest.mark.anyio
    @pytest.mark.parametrize("ttl", [0, 0.05, -1, 86_401, math.inf, math.nan, "30", True, None])
    async def test_bad_ttl_is_refused_and_takes_nothing(self, store: Any, ttl: object) -> None:
        with pytest.raises(ValidationError, match="ttl"):
            await store.acquire_device_lease(ttl)
        lease = await store.acquire_device_lease(30)  # nothing was taken
        await lease.release()

    @pytest.mark.anyio
    async def test_not_in_a_transaction(self, store: Any) -> None:
        with pytest.raises(ValidationError, match="transaction"):
            async with store.transaction() as tx:
                await tx.acquire_device_lease(30)
