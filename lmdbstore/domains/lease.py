"""Device leases: one holder of an account at a time, across the processes of a host
(LmdbStore, SqliteStore) or the hosts of a fleet (PostgresStore).

A lease is a record of the device (`lmdbstore.kinds`, ``device_lease``): a random holder id
and the time it expires, in Unix milliseconds. Acquiring writes it when there is none, when
it has expired, or when it is the holder's own; another live holder's is a
`DeviceLeaseError` naming how long it has left. The holder's thread renews it every third of
its ``ttl``. The holder counts the lease lost, by its own monotonic clock, ``ttl`` after the
start of its last successful renewal, which is never later than the expiry that renewal
wrote: so two holders never overlap as long as the clocks of the hosts agree to within that
margin (a renewal that finds another holder, or no record, loses it at once). A lost lease
is surfaced to its holder: `DeviceLease.lost`, `DeviceLease.check`, and every later write
of the handle that acquired it (and of its transactions) raises `DeviceLeaseError`.

Each of those writes is also fenced: inside its own write transaction it reads the record
and writes nothing unless the record still names its holder, unexpired
(`DeviceLease.fence`). So a holder paused past its ttl between its own check and its commit
(a stopped VM, a long GC, a clock that jumped) cannot overwrite what the next holder wrote:
its write fails with `DeviceLeaseError` and the lease counts as lost. This costs one point
read inside each write of a lease holder.

Release (``async with`` does it) deletes the record if it is still the holder's. A holder
that dies leaves the record to expire: another process acquires it ``ttl`` later at most.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import TYPE_CHECKING

import anyio

from lmdbstore import clock
from lmdbstore.domains.handle import DomainHandle
from lmdbstore.errors import DeviceLeaseError, StoreError, ValidationError

if TYPE_CHECKING:
    from types import TracebackType

    from lmdbstore.domains.records import Records
    from lmdbstore.storage import Storage
    from lmdbstore.storage.view import WriteView

MAX_TTL = 86_400.0
"""The longest lease, in seconds (a day)."""


def _ttl(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"ttl must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or not 0.1 <= value <= MAX_TTL:
        raise ValidationError(f"ttl must be 0.1 to {MAX_TTL:.0f} seconds, not {value!r}")
    return float(value)


class DeviceLease:
    """A held lease of one device (see the module docstring). Use as ``async with`` (or
    ``with`` in the blocking API), or call `release`."""

    def __init__(self, storage: Storage, records: Records, device: int, ttl: float) -> None:
        self.device = device
        self.ttl = ttl
        self.holder = os.urandom(16)
        self._storage = storage
        self._records = records
        self._deadline = 0.0  # monotonic: when this holder counts the lease lost
        self._lost = False
        self._released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the record's operations (run by the storage) ----------------------------------------

    def _write_expiry(self, view: WriteView, now: int, found: object) -> None:
        """This holder's record, expiring ``ttl`` after ``now`` (ms), over ``found``."""
        self._records.put(view, (), (self.holder, now + int(self.ttl * 1000)), found)

    def _take(self, view: WriteView) -> None:
        """Write this holder's record, unless another live holder has one."""
        now = clock.now_ms()
        found = self._records.get(view, ())
        if found is not None and found[0] != self.holder and found[1] > now:
            left = (found[1] - now) / 1000
            raise DeviceLeaseError(
                f"device {self.device} is leased by another holder for {left:.1f} s more"
            )
        self._write_expiry(view, now, found)

    def _renew(self, view: WriteView) -> bool:
        """Extend this holder's record; False when it is no longer this holder's."""
        found = self._records.get(view, ())
        if found is None or found[0] != self.holder:
            return False
        self._write_expiry(view, clock.now_ms(), found)
        return True

    def fence(self, view: WriteView) -> None:
        """Raise `DeviceLeaseError` unless the record in ``view`` still names this holder,
        unexpired: run inside each write of the holder's handle, in the write's own
        transaction, so that a holder paused past its ttl between its own check and the
        commit writes nothing once another holder may have taken over."""
        found = self._records.get(view, ())
        if found is None or found[0] != self.holder or found[1] <= clock.now_ms():
            self._lost = True
            raise DeviceLeaseError(
                f"the lease of device {self.device} is lost (found so at the write's commit:"
                " its record has expired or is another holder's)"
            )

    def _drop(self, view: WriteView) -> None:
        found = self._records.get(view, ())
        if found is not None and found[0] == self.holder:
            self._records.take(view, ())

    # -- holding ----------------------------------------------------------------------------

    def _held(self, started: float) -> None:
        """Count the lease held until ``ttl`` after ``started`` (a monotonic time taken
        before the write that set its expiry), and renew it on a thread."""
        self._deadline = started + self.ttl
        self._thread = threading.Thread(
            target=self._renewing, name=f"lmdbstore-lease:{self.device}", daemon=True
        )
        self._thread.start()

    def _renewing(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            started = time.monotonic()
            try:
                mine = self._storage.write_blocking(self._renew, 1)
            except StoreError:
                # The store failed, not the lease: try again until the deadline.
                mine = time.monotonic() < self._deadline
            else:
                if mine:
                    self._deadline = started + self.ttl
            if not mine:
                self._lost = True
                return

    @property
    def lost(self) -> bool:
        """Whether the lease is lost: taken by another holder, or not renewed in time."""
        if not self._lost and not self._released and time.monotonic() >= self._deadline:
            self._lost = True
        return self._lost

    @property
    def released(self) -> bool:
        """Whether the lease was released, or abandoned by its closed handle."""
        return self._released

    def check(self) -> None:
        """Raise `DeviceLeaseError` if the lease is lost or released."""
        if self._released:
            raise DeviceLeaseError(f"the lease of device {self.device} was released")
        if self.lost:
            raise DeviceLeaseError(f"the lease of device {self.device} is lost")

    def _stop_renewing(self) -> bool:
        """Stop the renewals (a renewal in flight ends first); whether the lease was still
        held."""
        held = not self._released and not self.lost
        self._released = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        return held

    def abandon(self) -> None:
        """Stop renewing without giving the lease up (its handle closes): it lapses after
        its ttl, as a dead holder's does."""
        self._released = True
        self._stop.set()

    def release_blocking(self) -> None:
        """`release`, for the blocking API."""
        if self._stop_renewing():
            self._storage.write_blocking(self._drop, 1)

    async def release(self) -> None:
        """Give the lease up (idempotent): another holder may take it at once."""
        await anyio.to_thread.run_sync(self.release_blocking)

    async def __aenter__(self) -> DeviceLease:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()

    def __enter__(self) -> DeviceLease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release_blocking()


class LeaseDomain(DomainHandle):
    """`acquire_device_lease`, which every store shares."""

    async def acquire_device_lease(self, ttl: float = 30.0) -> DeviceLease:
        seconds = _ttl(ttl)
        if self._is_transaction:
            raise ValidationError("acquire a lease on a store handle, not in a transaction")
        if self._lease is not None and not self._lease.lost and not self._lease.released:
            raise DeviceLeaseError(f"this handle already holds the lease of {self._device_id}")
        lease = DeviceLease(
            self._storage_open(), self._records("device_lease"), self._device_id, seconds
        )
        # The handle's last lease (lost or released) must not fence the new one's write;
        # if that write fails, a lost one goes on refusing the handle's writes.
        previous, self._lease = self._lease, None
        started = time.monotonic()
        try:
            await self._write(lease._take, 1)
        except BaseException:
            self._lease = previous
            raise
        lease._held(started)
        self._lease = lease
        return lease
