"""Conformance tests of ``transaction()`` and ``run_transaction()``. Needs a ``store``
fixture, like the other suites."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import pytest

from lmdbstore.errors import StoreClosedError, TransactionConflictError, ValidationError
from lmdbstore.types import LidPnMappingEntry

KEY = bytes(range(32))


class Boom(Exception):
    """Raised inside a transaction to roll it back."""


class TransactionConformance:
    """Transaction semantics (DESIGN.md "Transactions"). Needs a ``store`` fixture."""

    pytestmark = pytest.mark.anyio

    async def test_transaction_sees_its_writes_and_commits_them_together(self, store: Any) -> None:
        await store.store_prekey(7, b"prekey")
        await store.put_session("a@lid", b"old")
        async with store.transaction() as tx:
            await tx.put_session("a@lid", await tx.get_session("a@lid") + b"+1")
            await tx.remove_prekey(7)
            await tx.put_identity("a@lid", KEY)
            assert await tx.get_session("a@lid") == b"old+1"
            assert await tx.load_prekey(7) is None
            assert await tx.get_max_prekey_id() == 0
            assert await store.get_session("a@lid") == b"old"  # not before the commit
            assert await store.load_prekey(7) == b"prekey"
        assert await store.get_session("a@lid") == b"old+1"
        assert await store.load_prekey(7) is None
        assert await store.load_identity("a@lid") == KEY
        with pytest.raises(StoreClosedError):
            await tx.get_session("a@lid")

    async def test_exception_discards_every_write(self, store: Any) -> None:
        await store.put_session("a@lid", b"kept")
        with pytest.raises(Boom):
            async with store.transaction() as tx:
                await tx.put_session("a@lid", b"lost")
                await tx.put_sessions_batch([("b@lid", b"lost")])
                await tx.store_sent_message("g@g.us", "m1", b"lost")
                raise Boom
        assert await store.get_session("a@lid") == b"kept"
        assert await store.get_session("b@lid") is None
        assert await store.take_sent_message("g@g.us", "m1") is None

    async def test_a_refused_call_inside_writes_nothing_and_the_rest_commits(
        self, store: Any
    ) -> None:
        async with store.transaction() as tx:
            await tx.put_session("a@lid", b"in")
            with pytest.raises(ValidationError):
                await tx.put_sessions_batch([("b@lid", b"x"), ("", b"y")])
        assert await store.get_session("a@lid") == b"in"
        assert await store.get_session("b@lid") is None

    async def test_a_nested_block_joins_the_outermost_which_alone_commits(self, store: Any) -> None:
        async with store.transaction() as tx:
            async with tx.transaction() as inner:
                assert inner is tx
                await inner.put_session("a@lid", b"inner")
            assert await store.get_session("a@lid") is None  # not committed by the inner block
            with contextlib.suppress(Boom):
                async with tx.transaction() as inner:
                    await inner.put_session("b@lid", b"caught inside")
                    raise Boom

            async def add(joined: Any) -> str:
                assert joined is tx
                await joined.put_session("c@lid", b"run")
                return "once"

            assert await tx.run_transaction(add) == "once"
        assert await store.get_sessions_batch(["a@lid", "b@lid", "c@lid"]) == {
            "a@lid": b"inner",
            "b@lid": b"caught inside",
            "c@lid": b"run",
        }
        with pytest.raises(Boom):
            async with store.transaction() as tx:
                await tx.put_session("d@lid", b"lost")
                async with tx.transaction() as inner:
                    await inner.put_session("e@lid", b"lost")
                    raise Boom
        assert await store.get_sessions_batch(["d@lid", "e@lid"]) == {}

    async def test_changed_read_is_a_conflict_and_writes_nothing(self, store: Any) -> None:
        await store.put_session("a@lid", b"1")
        with pytest.raises(TransactionConflictError):
            async with store.transaction() as tx:
                seen = await tx.get_session("a@lid")
                await store.put_session("a@lid", b"changed by another writer")
                await tx.put_session("a@lid", seen + b"!")
                await tx.put_session("b@lid", b"also not written")
        assert await store.get_session("a@lid") == b"changed by another writer"
        assert await store.get_session("b@lid") is None

    async def test_a_change_elsewhere_is_no_conflict(self, store: Any) -> None:
        # Conflicts follow the read set exactly: other keys of the same device, other
        # kinds and other devices may change meanwhile.
        await store.put_session("a@lid", b"1")
        other = store.for_device(store.device_id + 1)
        try:
            async with store.transaction() as tx:
                seen = await tx.get_session("a@lid")
                await store.put_session("b@lid", b"another key")
                await store.put_identity("a@lid", KEY)
                await store.store_prekey(1, b"another kind")
                await other.put_session("a@lid", b"another device")
                await tx.put_session("a@lid", seen + b"!")
        finally:
            await other.close()
        assert await store.get_session("a@lid") == b"1!"

    @pytest.mark.parametrize("scan", ["max_prekey_id", "pn_mapping", "sender_key_devices"])
    async def test_a_scanned_range_that_changed_is_a_conflict(self, store: Any, scan: str) -> None:
        # What a scan found (or did not find) is part of the read set: a pre-key id
        # allocated from get_max_prekey_id must never overwrite a concurrent writer's key.
        await store.store_prekey(4, b"four")
        await store.put_lid_mapping(LidPnMappingEntry("1@lid", "5511", 1, 1, "test"))
        await store.set_sender_key_status("g@g.us", [("a@lid", True)])
        with pytest.raises(TransactionConflictError):
            async with store.transaction() as tx:
                if scan == "max_prekey_id":
                    new_id = await tx.get_max_prekey_id() + 1
                    await store.store_prekey(new_id, b"the other writer's")
                    await tx.store_prekey(new_id, b"mine")
                elif scan == "pn_mapping":
                    assert (await tx.get_pn_mapping("5511")).lid == "1@lid"
                    await store.put_lid_mapping(LidPnMappingEntry("2@lid", "5511", 1, 2, "test"))
                    await tx.put_session("1@lid", b"for the stale mapping")
                else:
                    assert await tx.get_sender_key_devices("g@g.us") == [("a@lid", True)]
                    await store.set_sender_key_status("g@g.us", [("b@lid", False)])
                    await tx.set_sender_key_status("g@g.us", [("a@lid", False)])
        assert await store.load_prekey(5) == (
            b"the other writer's" if scan == "max_prekey_id" else None
        )
        assert await store.get_session("1@lid") is None
        others = [("b@lid", False)] if scan == "sender_key_devices" else []
        assert await store.get_sender_key_devices("g@g.us") == [("a@lid", True), *others]

    async def test_a_take_that_found_nothing_conflicts_when_the_record_appears(
        self, store: Any
    ) -> None:
        with pytest.raises(TransactionConflictError):
            async with store.transaction() as tx:
                assert await tx.take_sent_message("g@g.us", "m1") is None
                await store.store_sent_message("g@g.us", "m1", b"arrived meanwhile")
                await tx.put_session("a@lid", b"acted on 'no such message'")
        assert await store.get_session("a@lid") is None
        assert await store.take_sent_message("g@g.us", "m1") == b"arrived meanwhile"

    async def test_concurrent_takes_in_transactions_have_one_winner(self, store: Any) -> None:
        await store.store_sent_message("g@g.us", "m1", b"payload")
        won: list[bytes] = []

        async def take(tx: Any) -> bytes | None:
            return await tx.take_sent_message("g@g.us", "m1")  # type: ignore[no-any-return]

        async def attempt() -> None:
            with contextlib.suppress(TransactionConflictError):  # lost the race
                payload = await store.run_transaction(take, retries=0)
                if payload is not None:  # committed: only now is the payload ours
                    won.append(payload)

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(attempt)
        assert won == [b"payload"]

    async def test_run_transaction_loses_no_update(self, store: Any) -> None:
        await store.put_group_metadata("counter@g.us", b"0")

        async def increment(tx: Any) -> None:
            value = int(await tx.get_group_metadata("counter@g.us"))
            await anyio.sleep(0)  # let the others interleave
            await tx.put_group_metadata("counter@g.us", str(value + 1).encode())

        async with anyio.create_task_group() as tg:
            for _ in range(40):
                tg.start_soon(store.run_transaction, increment, 10_000)
        assert await store.get_group_metadata("counter@g.us") == b"40"

    async def test_run_transaction_commits_under_a_steady_stream_of_plain_writes(
        self, store: Any
    ) -> None:
        """100 tasks write the key the transactions read, without pause: each
        run_transaction with the default retries still commits (its last attempt holds the
        write gate; before it, most gave up)."""
        await store.put_session("hot@lid", b"0")
        writing = True

        async def writer() -> None:
            n = 0
            while writing:
                n += 1
                await store.put_session("hot@lid", str(n).encode())
                await anyio.sleep(0)

        async def copy_hot(tx: Any) -> None:
            value = await tx.get_session("hot@lid")
            await anyio.sleep(0.001)  # the writers overtake it
            await tx.put_session("copy@lid", value)

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(writer)
            await anyio.sleep(0.05)
            for _ in range(10):
                await store.run_transaction(copy_hot)
            writing = False
        assert await store.get_session("copy@lid") is not None

    async def test_run_transaction_gives_up_after_its_retries(self, store: Any) -> None:
        await store.put_session("a@lid", b"0")
        attempts = 0

        async def always_overtaken(tx: Any) -> None:
            nonlocal attempts
            attempts += 1
            await tx.get_session("a@lid")
            await store.put_session("a@lid", str(attempts).encode())
            await tx.put_session("a@lid", b"never")

        with pytest.raises(TransactionConflictError):
            await store.run_transaction(always_overtaken, retries=2)
        assert attempts == 3
        with pytest.raises(ValidationError):
            await store.run_transaction(always_overtaken, retries=-1)
