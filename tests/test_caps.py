"""Size caps (``limits=``, DESIGN.md section 1b): on every backend, through the async and
the blocking API, eviction order, transactions, devices and bad input."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

import lmdbstore
from lmdbstore import Limits, MsgSecretEntry, clock, sync
from lmdbstore.errors import ValidationError

if TYPE_CHECKING:
    import pathlib
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.anyio

CHAT = "120363@g.us"
CAPS = Limits(sent_messages=8, msg_secrets=8)


@pytest.fixture(params=["async", "blocking"])
async def store(request: pytest.FixtureRequest, url: str) -> AsyncIterator[Any]:
    if request.param == "async":
        async with await lmdbstore.open(url, limits=CAPS) as opened:
            yield opened
        return
    from tests.test_sync_api import AsyncOverSync  # the blocking API seen as async

    adapter = AsyncOverSync(sync.open(url, limits=CAPS), anyio.CapacityLimiter(40))
    yield adapter
    await adapter.__aexit__()


@pytest.fixture
def ticking(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Sets the store's clock."""
    now = [1_000]
    monkeypatch.setattr(clock, "now", lambda: now[0])

    def set_to(at: int) -> None:
        now[0] = at

    return set_to


async def _sent(store: Any, ids: list[str], chat: str = CHAT) -> list[str]:
    return [i for i in ids if await store.peek_sent_message(chat, i) is not None]


async def test_sent_messages_over_the_cap_go_oldest_first_down_to_three_quarters(
    store: Any, ticking: Callable[[int], None]
) -> None:
    ids = [f"m{n:02d}" for n in range(9)]
    for n, message in enumerate(ids[:8]):
        ticking(1_000 + n)
        await store.store_sent_message(CHAT, message, b"p")
    assert await _sent(store, ids) == ids[:8]  # at the cap: nothing goes
    ticking(2_000)
    await store.store_sent_message(CHAT, ids[8], b"p")
    assert await _sent(store, ids) == ids[3:]  # 9 > 8: down to 6, the oldest three gone
    assert await store.verify() == []


async def test_sent_messages_of_one_time_go_by_chat_then_id(
    store: Any, ticking: Callable[[int], None]
) -> None:
    ticking(5)
    for chat, message in [("b@g.us", "1"), ("a@g.us", "2"), ("a@g.us", "1"), ("c@g.us", "0")]:
        await store.store_sent_message(chat, message, b"p")
    ticking(4)  # an older message, written last
    await store.store_sent_message("z@g.us", "9", b"p")
    for n in range(4):
        await store.store_sent_message("y@g.us", f"{n}", b"p")
    # 9 > 8: three go, of the five of time 4 (the older), in (chat, id) order.
    assert await _sent(store, ["0", "1", "2", "3"], "y@g.us") == ["3"]
    assert await _sent(store, ["9"], "z@g.us") == ["9"]
    assert await _sent(store, ["1", "2"], "a@g.us") == ["1", "2"]


async def test_a_take_or_an_expiry_makes_room(store: Any, ticking: Callable[[int], None]) -> None:
    ids = [f"m{n}" for n in range(10)]
    for n, message in enumerate(ids[:8]):
        ticking(100 + n)
        await store.store_sent_message(CHAT, message, b"p")
    assert await store.take_sent_message(CHAT, "m7") == b"p"
    assert await store.delete_expired_sent_messages(101) == 1  # m0
    await store.store_sent_message(CHAT, "m8", b"p")
    await store.store_sent_message(CHAT, "m9", b"p")
    # Eight again, not nine: the count followed the take and the expiry.
    assert await _sent(store, ids) == ["m1", "m2", "m3", "m4", "m5", "m6", "m8", "m9"]
    assert await store.verify() == []


async def test_only_expiring_secrets_count_and_a_messages_aliases_go_together(
    store: Any,
) -> None:
    never = [MsgSecretEntry(CHAT, "k@lid", f"n{n}", bytes(32)) for n in range(20)]
    expiring = [MsgSecretEntry(CHAT, "a@lid", "a", bytes(32), expires_at=50)] + [
        MsgSecretEntry(CHAT, "a@lid", f"x{n}", bytes(32), expires_at=50 + n) for n in range(1, 6)
    ]
    await store.put_msg_secrets(never + expiring)  # 6 expiring: under the cap
    # One message seen under three sender aliases, expiring at 50 too.
    aliases = ["5511@s.whatsapp.net", "9@lid", "7@lid"]
    await store.put_msg_secrets([MsgSecretEntry(CHAT, s, "w", bytes(32), 50) for s in aliases])
    # 9 > 8: 3 must go, soonest first and of time 50 by (chat, msg_id) groups: "a", then
    # the three rows of "w" together. So 4 went and 5 remain.
    left = [e.msg_id for e in expiring if await store.get_msg_secret(CHAT, "a@lid", e.msg_id)]
    assert left == ["x1", "x2", "x3", "x4", "x5"]
    for sender in aliases:
        assert await store.get_msg_secret(CHAT, sender, "w") is None
    for entry in never:  # never counted, never evicted
        assert await store.get_msg_secret(entry.chat, entry.sender, entry.msg_id) is not None
    assert await store.verify() == []


async def test_a_batch_over_the_cap_keeps_its_latest_rows(store: Any) -> None:
    batch = [MsgSecretEntry(CHAT, "a@lid", f"x{n:02d}", bytes(32), 100 + n) for n in range(20)]
    assert await store.put_msg_secrets(batch) == 20
    left = [e.msg_id for e in batch if await store.get_msg_secret(CHAT, "a@lid", e.msg_id)]
    assert left == [f"x{n}" for n in range(14, 20)]  # 20 > 8: the 14 soonest went


async def test_concurrent_transactions_that_add_never_conflict_over_the_count(
    store: Any, ticking: Callable[[int], None]
) -> None:
    async def add(n: int) -> None:
        async with store.transaction() as tx:
            await tx.store_sent_message(CHAT, f"t{n}", b"p")
            await anyio.sleep(0.01)  # all eight open at once

    async with anyio.create_task_group() as group:
        for n in range(8):
            group.start_soon(add, n)
    assert len(await _sent(store, [f"t{n}" for n in range(8)])) == 8
    async with store.transaction() as tx:  # the ninth evicts, at its commit
        await tx.store_sent_message(CHAT, "t8", b"p")
        assert len(await _sent(tx, [f"t{n}" for n in range(9)])) == 9
    assert await _sent(store, [f"t{n}" for n in range(9)]) == ["t3", "t4", "t5", "t6", "t7", "t8"]
    assert await store.verify() == []


async def test_caps_are_per_device_and_for_device_keeps_them(store: Any) -> None:
    other = store.for_device(2)
    try:
        for n in range(8):
            await store.store_sent_message(CHAT, f"m{n}", b"p")
            await other.store_sent_message(CHAT, f"m{n}", b"p")
        await other.store_sent_message(CHAT, "m8", b"p")
        assert len(await _sent(other, [f"m{n}" for n in range(9)])) == 6
        assert len(await _sent(store, [f"m{n}" for n in range(9)])) == 8
    finally:
        await other.close()


async def test_a_deleted_device_starts_counting_again(store: Any) -> None:
    for n in range(8):
        await store.store_sent_message(CHAT, f"m{n}", b"p")
    other = store.for_device(2)
    assert await store.delete_device() == 8
    again = other.for_device(1)
    try:
        for n in range(8):  # eight again, and none evicted: the old count went with it
            await again.store_sent_message(CHAT, f"n{n}", b"p")
        assert len(await _sent(again, [f"n{n}" for n in range(8)])) == 8
        assert await again.verify() == []
    finally:
        await again.close()
        await other.close()


BAD_LIMITS: list[object] = [
    8,
    None,
    {"sent_messages": 8},
    Limits(sent_messages=0),
    Limits(msg_secrets=-1),
    Limits(sent_messages=True),
    Limits(msg_secrets=2.5),  # type: ignore[arg-type]
    Limits(sent_messages="8"),  # type: ignore[arg-type]
    Limits(sent_messages=2**32),
]


@pytest.mark.parametrize("limits", BAD_LIMITS, ids=[repr(v)[:40] for v in BAD_LIMITS])
async def test_bad_limits_are_refused_and_create_nothing(
    url: str, limits: object, tmp_path: pathlib.Path
) -> None:
    before = sorted(tmp_path.iterdir())
    with pytest.raises(ValidationError, match="limits"):
        await lmdbstore.open(url, limits=limits)
    with pytest.raises(ValidationError, match="limits"):
        sync.open(url, limits=limits)
    assert sorted(tmp_path.iterdir()) == before
