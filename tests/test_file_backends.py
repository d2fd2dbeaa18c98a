"""What every backend that keeps its data in files promises alike (LmdbStore, SqliteStore):
reopening, closing, paths, snapshots, the resource report, concurrent writers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from lmdbstore import (
    AppStateMutationMAC,
    AppStateSyncKey,
    DatabaseError,
    HashState,
    LmdbStore,
    SqliteStore,
    StoreClosedError,
    StoreConnectionError,
    ValidationError,
    clock,
)
from lmdbstore.types import REPORT_DOMAINS

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

KEY = bytes(32)


@dataclass
class FileBackend:
    store: Any
    scheme: str
    file_name: str

    async def open(self, path: Path | str, **kwargs: Any) -> Any:
        return await self.store.open(path, **kwargs)


@pytest.fixture(
    params=[
        FileBackend(LmdbStore, "lmdb://", "db"),
        FileBackend(SqliteStore, "sqlite://", "db.sqlite"),
    ],
    ids=["lmdb", "sqlite"],
)
def backend(request: pytest.FixtureRequest) -> FileBackend:
    return request.param  # type: ignore[no-any-return]


async def test_data_survives_close_and_reopen(tmp_path: Path, backend: FileBackend) -> None:
    path = tmp_path / backend.file_name
    async with await backend.open(path) as store:
        await store.put_identity("a@s.whatsapp.net", KEY)
        await store.put_session("a@s.whatsapp.net", b"session")
        await store.store_prekeys_batch([(1, b"p1"), (2, b"p2")], uploaded=True)
        await store.store_signed_prekey(3, b"s3")
        await store.put_sender_key("g@g.us:a@s.whatsapp.net", b"sk")
        await store.set_sync_key(b"k", AppStateSyncKey(b"d", b"f", 5))
        await store.set_version("regular", HashState(version=4, index_value_map={"i": b"v"}))
        await store.put_mutation_macs("regular", 4, [AppStateMutationMAC(b"i", b"v")])
    assert store.closed
    async with await backend.open(f"{backend.scheme}{path}") as store:
        assert await store.load_identity("a@s.whatsapp.net") == KEY
        assert await store.get_session("a@s.whatsapp.net") == b"session"
        assert await store.load_prekeys_batch([1, 2]) == [(1, b"p1"), (2, b"p2")]
        assert await store.load_all_signed_prekeys() == [(3, b"s3")]
        assert await store.get_sender_key("g@g.us:a@s.whatsapp.net") == b"sk"
        assert await store.get_latest_sync_key_id() == b"k"
        assert await store.get_version("regular") == HashState(4, index_value_map={"i": b"v"})
        assert await store.get_mutation_mac("regular", b"i") == b"v"


async def test_closed_store_refuses_every_call(tmp_path: Path, backend: FileBackend) -> None:
    store = await backend.open(tmp_path / backend.file_name)
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreClosedError):
        await store.get_session("a@lid")
    with pytest.raises(StoreClosedError):
        await store.put_session("a@lid", b"x")
    with pytest.raises(StoreClosedError):
        await store.get_max_prekey_id()
    with pytest.raises(StoreClosedError):
        store.for_device(2)
    with pytest.raises(StoreClosedError):
        async with store:
            pass


async def test_device_handles_outlive_the_first(tmp_path: Path, backend: FileBackend) -> None:
    first = await backend.open(tmp_path / backend.file_name)
    second = first.for_device(2)
    assert second.device_id == 2
    await first.close()
    await second.put_session("a@lid", b"still open")
    assert await second.get_session("a@lid") == b"still open"
    await second.close()
    async with await backend.open(tmp_path / backend.file_name, device_id=2) as again:
        assert await again.get_session("a@lid") == b"still open"


@pytest.mark.parametrize("device_id", [-1, 2**32, "1", None])
async def test_bad_device_id(tmp_path: Path, backend: FileBackend, device_id: object) -> None:
    with pytest.raises(ValidationError):
        await backend.open(tmp_path / backend.file_name, device_id=device_id)
    assert not (tmp_path / backend.file_name).exists()


@pytest.mark.parametrize("path", ["", "scheme", 42, None, "bad\x00name"])
async def test_bad_paths(backend: FileBackend, path: object) -> None:
    with pytest.raises(ValidationError):
        await backend.open(backend.scheme if path == "scheme" else path)


async def test_unopenable_path_is_a_connection_error(tmp_path: Path, backend: FileBackend) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"neither a directory nor a database" * 100)
    with pytest.raises(StoreConnectionError):
        await backend.open(blocker)
    with pytest.raises(StoreConnectionError):
        await backend.open(blocker / "below")
    assert blocker.read_bytes().startswith(b"neither")


async def test_snapshot_is_a_store_that_opens(
    tmp_path: Path, backend: FileBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_000)
    async with await backend.open(tmp_path / backend.file_name) as store:
        await store.put_session("a@lid", b"before")
        await store.snapshot_db("nightly/../x y", extra_content=b"extra")
        await store.put_session("a@lid", b"after")
        with pytest.raises(DatabaseError, match="exists"):
            await store.snapshot_db("nightly/../x y")  # same second, same name
    snapshot = tmp_path / f"{backend.file_name}.snapshot-1700000000-nightly_._x_y"
    assert snapshot.exists()
    assert (tmp_path / f"{snapshot.name}.extra").read_bytes() == b"extra"
    async with await backend.open(snapshot) as copy:
        assert await copy.get_session("a@lid") == b"before"


async def test_resource_report(tmp_path: Path, backend: FileBackend) -> None:
    async with await backend.open(tmp_path / backend.file_name) as store:
        await store.put_sessions_batch([(f"{i}@lid", b"x") for i in range(10)])
        await store.put_msg_secret("g@g.us", "a@lid", "m1", bytes(32))
        report = await store.resource_report()
    assert report.entries["signal"] == 10
    assert report.entries["msgsecret"] == 1
    assert report.bytes_on_disk > 0
    assert report.path == store.path
    assert set(report.entries) == set(REPORT_DOMAINS)
    assert report.readers_in_use >= 0


async def test_concurrent_writers_all_land(tmp_path: Path, backend: FileBackend) -> None:
    async with await backend.open(tmp_path / backend.file_name) as store:
        async with anyio.create_task_group() as tg:
            for i in range(300):
                tg.start_soon(store.put_session, f"{i}@lid", str(i).encode())
        got = await store.get_sessions_batch([f"{i}@lid" for i in range(300)])
        assert got == {f"{i}@lid": str(i).encode() for i in range(300)}


async def test_failing_operation_fails_alone(tmp_path: Path, backend: FileBackend) -> None:
    async with await backend.open(tmp_path / backend.file_name) as store:
        await store.put_session("5511@s.whatsapp.net", b"pn")
        outcome: dict[str, object] = {}

        async def doomed() -> None:
            # The migrated name would exceed 255 bytes: refused inside the write.
            try:
                await store.migrate_pn_to_lid("5511", "8" * 252)
            except ValidationError as exc:
                outcome["error"] = exc

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(store.put_session, f"{i}@lid", b"ok")
                if i == 50:
                    tg.start_soon(doomed)
        assert isinstance(outcome["error"], ValidationError)
        assert len(await store.get_sessions_batch([f"{i}@lid" for i in range(100)])) == 100
        assert await store.get_session("5511@s.whatsapp.net") == b"pn"


async def test_copy_to_makes_a_store_and_refuses_bad_targets(
    tmp_path: Path, backend: FileBackend
) -> None:
    async with await backend.open(tmp_path / backend.file_name) as store:
        await store.put_session("a@lid", b"copied")
        target = tmp_path / "copy"
        await store.copy_to(str(target))
        with pytest.raises(DatabaseError, match="exists"):
            await store.copy_to(str(target))
        for bad in (None, "", 42, "bad\x00name"):
            with pytest.raises(ValidationError):
                await store.copy_to(bad)
        assert await store.device_ids() == [1]
    async with await backend.open(target) as copy:
        assert await copy.get_session("a@lid") == b"copied"
