"""The peer-parity stores where they sit on a hot path: the event buffer inside each
decrypt's transaction, a batch LID lookup, deleting a whole account (with the event
loop's worst lag while it runs), and sent messages under a size cap."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from benchmarks.workloads import (
    RECORD,
    Row,
    address,
    fill_sessions,
    on_both,
    open_pair,
    seed_senders,
    timed,
)
from lmdbstore import LidPnMappingEntry, Limits
from lmdbstore.testing.loop_lag import worst_lag

if TYPE_CHECKING:
    from pathlib import Path


async def buffered_decrypts(tmp: Path, messages: int, pair: tuple[str, str, str]) -> list[Row]:
    """whatsmeow's decrypt: in one transaction, look the ciphertext's hash up in the event
    buffer, load the identity, get and put the session, buffer the plaintext; one message
    at a time, each awaited. Ops are messages."""
    label, durability, synchronous = pair
    workload = f"decrypt transaction with the event buffer, {label}"
    ours, theirs = await open_pair(tmp, f"buffer-{durability}", durability, synchronous)
    senders = 64
    hashes = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(messages)]
    for store in (ours, theirs):
        await seed_senders(store, senders)

    async def run(store: Any) -> None:
        for i, ciphertext in enumerate(hashes):
            sender = address(i % senders)
            async with store.transaction() as tx:
                if await tx.get_buffered_event(ciphertext) is None:
                    await tx.load_identity(sender)
                    session = await tx.get_session(sender)
                    await tx.put_session(sender, session)
                    await tx.put_buffered_event(ciphertext, RECORD[:200], i)

    return await on_both(workload, messages, ours, theirs, run)


async def sent_messages(tmp: Path, messages: int, cap: int | None) -> list[Row]:
    """``store_sent_message``, one at a time and awaited, into stores opened with
    ``Limits(sent_messages=cap)`` (``None``: unbounded): with a cap, every write keeps the
    count, and one write in ``cap // 4`` evicts a quarter of the cap. Ops are messages."""
    bound = "unbounded" if cap is None else f"capped at {cap:,}"
    workload = f"store_sent_message, {bound}"
    ours, theirs = await open_pair(tmp, f"sent-{cap}", "normal", "NORMAL", limits=Limits(cap))

    async def run(store: Any) -> None:
        for i in range(messages):
            await store.store_sent_message("120363@g.us", f"3EB0{i:016X}", RECORD[:300])

    return await on_both(workload, messages, ours, theirs, run)


async def lids_for_pns(tmp: Path, calls: int, mapped: int) -> list[Row]:
    """``get_lids_for_pns`` of 1,000 phones (900 mapped) among ``mapped`` mappings. Ops
    are calls."""
    workload = f"get_lids_for_pns of 1,000 phones, {mapped:,} mapped"
    ours, theirs = await open_pair(tmp, "lids", "normal", "NORMAL")
    entries = [LidPnMappingEntry(f"{i}", f"55{i:09d}", 1, 1, "bench") for i in range(mapped)]
    phones = [f"55{i:09d}" for i in range(0, 900 * (mapped // 900), mapped // 900)]
    phones += [f"44{i:09d}" for i in range(1_000 - len(phones))]
    rows = []
    for engine, store in (("LmdbStore", ours), ("SqliteStore", theirs)):
        try:
            await store.put_lid_mappings(entries)
            assert len(await store.get_lids_for_pns(phones)) == 900

            async def run(s: Any = store) -> None:
                for _ in range(calls):
                    await s.get_lids_for_pns(phones)

            rows.append(await timed(workload, engine, calls, run, rounds=3))
        finally:
            await store.close()
    return rows


async def delete_device(tmp: Path, records: int) -> list[Row]:
    """``delete_device`` of an account holding ``records`` sessions (among another
    account's): how long it takes, and the worst lag of the event loop meanwhile."""
    workload = f"delete_device of {records:,} records"
    ours, theirs = await open_pair(tmp, "delete", "normal", "NORMAL")
    rows = []
    for engine, store in (("LmdbStore", ours), ("SqliteStore", theirs)):
        account = store.for_device(2)
        try:
            await fill_sessions(account, records, RECORD[:200])
            await fill_sessions(store, 1_000, RECORD[:200])
            took = 0.0

            async def delete(a: Any = account) -> None:
                nonlocal took
                start = time.perf_counter()
                assert await a.delete_device() == records
                took = time.perf_counter() - start

            lag = await worst_lag(delete)
            rows.append(Row(workload, engine, took * 1000, "ms"))
            rows.append(Row(f"{workload}: worst loop lag", engine, lag * 1000, "ms"))
        finally:
            await account.close()
            await store.close()
    return rows
