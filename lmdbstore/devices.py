"""The device handles of one database in this process.

Every handle is bound to one device id. The handles of one database (all the ``for_device``
handles, transactions included, of every open of one LMDB path or SQLite file in this
process) share one `Devices`: how many handles of each device are open, so that
``create()`` never hands out the id of an open handle, and each device's current `Life`,
which ``delete_device`` ends: every handle bound to the device before then refuses every
call but ``close`` and ``delete_device``, and a handle opened afterwards starts a new
life on an empty device. Other processes are not told.
"""

from __future__ import annotations

from collections import Counter


class Life:
    """One life of a device id in this process; ``deleted`` once ``delete_device`` ended
    it. A handle keeps the life it was bound in, so checking it costs one attribute."""

    __slots__ = ("deleted",)

    def __init__(self) -> None:
        self.deleted = False


class Devices:
    """The open handles and current lives of every device of one database."""

    __slots__ = ("_lives", "open")

    def __init__(self) -> None:
        self.open: Counter[int] = Counter()
        self._lives: dict[int, Life] = {}

    def bind(self, device: int) -> Life:
        """Count a new handle of ``device``; the life it is bound in."""
        self.open[device] += 1
        life = self._lives.get(device)
        if life is None:
            life = self._lives[device] = Life()
        return life

    def release(self, device: int) -> None:
        """At close: the handle no longer counts; a device that no handle holds leaves the
        count (which would otherwise grow with every handle ever opened), and its life
        with it (nothing holds it)."""
        self.open[device] -= 1
        if self.open[device] <= 0:
            del self.open[device]
            self._lives.pop(device, None)

    def busy(self) -> set[int]:
        """The devices with an open handle."""
        return {device for device, count in self.open.items() if count > 0}

    def renew(self, device: int) -> None:
        """After ``delete_device`` (which marked the old life deleted): handles bound
        from now on start a new life."""
        self._lives.pop(device, None)
