"""EventBufferStore: sub-database ``eventbuf``.

Buffered events are keyed by the 32-byte hash of their ciphertext and indexed by the time
they were buffered; outgoing events by ``chat · message_id`` and indexed by their time: both
expire by walking their index (`lmdbstore.domains.records`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmdbstore import clock, validate
from lmdbstore.domains.handle import DomainHandle
from lmdbstore.types import BufferedEvent

if TYPE_CHECKING:
    from lmdbstore.storage.view import ReadView, WriteView

BUFFER_DAYS = 14
"""`delete_old_buffered_hashes`' default age: how long the servers keep an event."""
OUTGOING_DAYS = 7
"""`delete_old_outgoing_events`' default age."""
_DAY = 86_400


def _cutoff(cutoff: object, days: int) -> int:
    return clock.now() - days * _DAY if cutoff is None else validate.i64(cutoff, "cutoff")


class EventBufferDomain(DomainHandle):
    """The `EventBufferStore` methods of every store."""

    async def get_buffered_event(self, hash: bytes) -> BufferedEvent | None:
        key = (validate.event_hash(hash),)
        records = self._records("buffered_event")
        found = await self._read(lambda view: records.get(view, key))
        return None if found is None else BufferedEvent(*found)

    async def put_buffered_event(
        self,
        hash: bytes,
        plaintext: bytes | None,
        server_ts: int,
    ) -> bool:
        key = (validate.event_hash(hash),)
        value = validate.optional(plaintext, "plaintext", validate.blob)
        at = validate.i64(server_ts, "server_ts")
        now = clock.now()
        records = self._records("buffered_event")

        def op(view: WriteView) -> bool:
            if records.get(view, key) is not None:
                return False  # kept: overwriting could revive a cleared plaintext
            records.put(view, key, (value, at, now), None)
            return True

        return await self._write(op, 1)

    async def clear_buffered_event_plaintext(self, hash: bytes) -> None:
        key = (validate.event_hash(hash),)
        records = self._records("buffered_event")

        def op(view: WriteView) -> None:
            old = records.get(view, key)
            if old is not None and old[0] is not None:
                records.put(view, key, (None, *old[1:]), old)

        await self._write(op, 1)

    async def delete_old_buffered_hashes(self, cutoff: int | None = None) -> int:
        below = _cutoff(cutoff, BUFFER_DAYS)
        records = self._records("buffered_event")
        return await self._write(lambda view: records.expire(view, "buffered_event_by_time", below))

    async def add_outgoing_event(
        self,
        chat: str,
        message_id: str,
        format: str,
        plaintext: bytes,
    ) -> None:
        key = validate.chat_message(chat, message_id)
        fields = (validate.name(format, "format"), validate.blob(plaintext, "plaintext"))
        now = clock.now()
        records = self._records("outgoing_event")
        await self._write(lambda view: records.put(view, key, (*fields, now)), 1)

    async def get_outgoing_event(
        self, chat: str, message_id: str, alt_chat: str | None = None
    ) -> tuple[str, bytes] | None:
        keys = [validate.chat_message(chat, message_id)]
        if alt_chat is not None:
            keys.append(validate.chat_message(alt_chat, message_id))
        records = self._records("outgoing_event")

        def read(view: ReadView) -> tuple[str, bytes] | None:
            for key in keys:
                found = records.get(view, key)
                if found is not None:
                    return found[0], found[1]
            return None

        return await self._read(read)

    async def delete_old_outgoing_events(self, cutoff: int | None = None) -> int:
        below = _cutoff(cutoff, OUTGOING_DAYS)
        records = self._records("outgoing_event")
        return await self._write(lambda view: records.expire(view, "outgoing_event_by_time", below))
