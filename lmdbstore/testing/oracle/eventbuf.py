"""EventBufferStore in memory: the reference model of the LMDB and SQLite backends."""

from __future__ import annotations

import dataclasses

from lmdbstore import clock, validate
from lmdbstore.testing.oracle.state import MemoryHandle
from lmdbstore.types import BufferedEvent


def _cutoff(cutoff: object, days: int) -> int:
    return clock.now() - days * 86_400 if cutoff is None else validate.i64(cutoff, "cutoff")


def _outgoing(chat: object, message_id: object) -> tuple[str, str]:
    chat_raw, id_raw = validate.chat_message(chat, message_id)
    return chat_raw.decode(), id_raw.decode()


class MemoryEventBufferStore(MemoryHandle):
    """The `EventBufferStore` methods of `OracleStore`."""

    async def get_buffered_event(self, hash: bytes) -> BufferedEvent | None:
        found = self._d.buffered_events.get(validate.event_hash(hash))
        return None if found is None else dataclasses.replace(found)

    async def put_buffered_event(
        self, hash: bytes, plaintext: bytes | None, server_ts: int
    ) -> bool:
        key = validate.event_hash(hash)
        value = validate.optional(plaintext, "plaintext", validate.blob)
        at = validate.i64(server_ts, "server_ts")
        if key in self._d.buffered_events:
            return False
        self._d.buffered_events[key] = BufferedEvent(value, at, clock.now())
        return True

    async def clear_buffered_event_plaintext(self, hash: bytes) -> None:
        found = self._d.buffered_events.get(validate.event_hash(hash))
        if found is not None:
            found.plaintext = None

    async def delete_old_buffered_hashes(self, cutoff: int | None = None) -> int:
        below = _cutoff(cutoff, 14)
        events = self._d.buffered_events
        doomed = [k for k, e in events.items() if e.insert_ts < below]
        for k in doomed:
            del events[k]
        return len(doomed)

    async def add_outgoing_event(
        self, chat: str, message_id: str, format: str, plaintext: bytes
    ) -> None:
        key = _outgoing(chat, message_id)
        value = (validate.name(format, "format"), validate.blob(plaintext, "plaintext"))
        self._d.outgoing_events[key] = (*value, clock.now())

    async def get_outgoing_event(
        self, chat: str, message_id: str, alt_chat: str | None = None
    ) -> tuple[str, bytes] | None:
        keys = [_outgoing(chat, message_id)]
        if alt_chat is not None:
            keys.append(_outgoing(alt_chat, message_id))
        for key in keys:
            found = self._d.outgoing_events.get(key)
            if found is not None:
                return found[0], found[1]
        return None

    async def delete_old_outgoing_events(self, cutoff: int | None = None) -> int:
        below = _cutoff(cutoff, 7)
        events = self._d.outgoing_events
        doomed = [k for k, (_, _, at) in events.items() if at < below]
        for k in doomed:
            del events[k]
        return len(doomed)
