"""The public surface a user leans on: names, docstrings, types, the one opener, and reprs
that keep secrets out of logs."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import lmdbstore
from lmdbstore import (
    AppStateSyncKey,
    Backend,
    Device,
    LmdbStore,
    MemoryStore,
    MsgSecretEntry,
    SqliteStore,
    StoreConnectionError,
    ValidationError,
)
from lmdbstore.protocols import vars_of

ROOT = Path(__file__).resolve().parent.parent
STORES = (LmdbStore, SqliteStore, MemoryStore, lmdbstore.PostgresStore)


def test_the_public_names_are_exactly_all() -> None:
    public = {
        name
        for name, value in vars(lmdbstore).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    # PostgresStore is imported when first asked for (psycopg is an optional dependency).
    assert public == set(lmdbstore.__all__) - {"__version__", "PostgresStore"}
    assert lmdbstore.PostgresStore.__name__ == "PostgresStore"
    assert lmdbstore.__version__ == "0.1.0"


@pytest.mark.parametrize("name", sorted(vars_of(Backend)))
def test_every_contract_method_says_what_it_does_and_raises(name: str) -> None:
    member = vars_of(Backend)[name]
    doc = inspect.getdoc(member)
    assert doc is not None
    assert len(doc.splitlines()[0]) > 15, name
    if callable(member):
        says = "\nRaises:\n" in doc or "Never raises" in doc
        assert says, f"{name} does not say what it raises"


@pytest.mark.parametrize("store", STORES, ids=lambda s: s.__name__)
def test_the_store_classes_show_the_docstrings(store: type) -> None:
    missing = [
        name
        for name, member in inspect.getmembers(store)
        if not name.startswith("_") and not inspect.getdoc(member)
    ]
    assert missing == []
    assert "Raises:" in (inspect.getdoc(store.put_session) or "")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "cache",
    [
        lmdbstore.MemoryCacheStore,
        lmdbstore.LmdbCacheStore,
        lmdbstore.RedisCacheStore,
        lmdbstore.TypedCache,
        lmdbstore.CacheStore,
    ],
    ids=lambda c: c.__name__,
)
def test_the_cache_classes_document_every_method(cache: type) -> None:
    missing = [
        name
        for name, member in inspect.getmembers(cache, callable)
        if not name.startswith("_") and not inspect.getdoc(member)
    ]
    assert missing == []


def test_every_backend_is_a_backend() -> None:
    for store in STORES:
        missing = [name for name in vars_of(Backend) if not hasattr(store, name)]
        assert missing == [], store.__name__
    assert isinstance(MemoryStore(), Backend)


def test_a_user_script_typed_against_backend_passes_mypy_strict(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(
        """
from lmdbstore import Backend, ResourceReport, Transaction, TypedCache, open


async def decrypt(store: Backend, sender: str) -> bytes | None:
    async with store.transaction() as tx:
        session = await tx.get_session(sender)
        await tx.remove_prekey(7)
    other: Backend = store.for_device(2)
    async with other:
        report: ResourceReport = await other.resource_report()
        print(report.entries["signal"], report.map_size)

    async def step(tx: Backend) -> int:
        return await tx.get_max_prekey_id()

    highest: int = await store.run_transaction(step)
    print(highest, Transaction)
    return session


async def main() -> None:
    async with await open("lmdb://state") as store:
        await decrypt(store, "5511@s.whatsapp.net")
    groups = TypedCache[str, dict[str, str]].from_memory("group", ttl=60)
    await groups.insert("g@g.us", {"subject": "x"})
    meta: dict[str, str] | None = await groups.get("g@g.us")
    print(meta)
"""
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- lmdbstore.open ----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "backend"),
    [("lmdb://{}/a", LmdbStore), ("{}/b", LmdbStore), ("sqlite://{}/c.db", SqliteStore)],
)
async def test_open_picks_the_backend_by_scheme(tmp_path: Path, url: str, backend: type) -> None:
    async with await lmdbstore.open(url.format(tmp_path), device_id=3) as store:
        assert type(store) is backend
        assert store.device_id == 3
        await store.put_session("1@lid", b"x")
    async with await lmdbstore.open(url.format(tmp_path), device_id=3) as store:
        assert await store.get_session("1@lid") == b"x"


@pytest.mark.anyio
async def test_open_memory_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with await lmdbstore.open("memory://") as store:
        assert type(store) is MemoryStore
    monkeypatch.setenv("HOME", str(tmp_path))
    async with await lmdbstore.open("lmdb://~/home.lmdb"):
        pass
    assert (tmp_path / "home.lmdb" / "data.mdb").is_file()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("opener", "url", "says"),
    [
        (lmdbstore.open, "postgresql://u@127.0.0.1:1/db", "cannot connect to PostgreSQL"),
        (lmdbstore.open, "ftp://x", "no backend for ftp://"),
        (lmdbstore.open, "memory://x", "names nothing more"),
        (lmdbstore.open, "sqlite://:memory:", ":memory:"),
        (LmdbStore.open, "sqlite://{}/x.sqlite", "sqlite:// URL"),
        (SqliteStore.open, "lmdb://{}/x", "lmdb:// URL"),
        (LmdbStore.open, "{}/file", "is a file"),
        (lmdbstore.open, "lmdb://{}/file", "is a file"),
        (SqliteStore.open, "{}/dir", "is a directory"),
        (lmdbstore.open, "sqlite://{}/dir", "is a directory"),
    ],
)
async def test_open_refuses_the_wrong_scheme_or_kind_and_creates_nothing(
    tmp_path: Path, opener: object, url: str, says: str
) -> None:
    (tmp_path / "file").write_bytes(b"not a store")
    (tmp_path / "dir").mkdir()
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(StoreConnectionError, match=says):
        await opener(url.format(tmp_path))  # type: ignore[operator]
    assert sorted(os.listdir(tmp_path)) == before
    assert not Path("sqlite:").exists()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "options", "error"),
    [
        ("{}/a", {"synchronous": "FULL"}, "unknown option"),
        ("sqlite://{}/a.db", {"durability": "full"}, "unknown option"),
        ("memory://", {"map_size": 1}, "unknown option"),
        ("{}/a", {"durability": "fast"}, "durability"),
        ("", {}, "non-empty"),
        (b"{}/a", {}, "non-empty"),
    ],
)
async def test_open_refuses_bad_options_and_creates_nothing(
    tmp_path: Path, url: str | bytes, options: dict[str, object], error: str
) -> None:
    if isinstance(url, str):
        url = url.format(tmp_path)
    with pytest.raises(ValidationError, match=error):
        await lmdbstore.open(url, **options)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


# -- secrets stay out of logs ------------------------------------------------------------


def test_reprs_hide_key_material() -> None:
    secret = bytes(range(1, 33))
    device = Device(
        noise_key=secret * 2,
        identity_key=secret * 2,
        signed_pre_key=secret * 2,
        adv_secret_key=secret,
        account=secret,
        nct_salt=secret,
        push_name="Ana",
    )
    shown = [
        repr(device),
        str(device),
        repr(AppStateSyncKey(secret, b"fp", 5)),
        repr(MsgSecretEntry("c@g.us", "s@lid", "m", secret)),
    ]
    for text in shown:
        assert repr(secret)[2:20] not in text
        assert "bytes hidden>" in text
    assert "push_name='Ana'" in shown[0]
    assert "timestamp=5" in shown[2]
    # A repr never fails, whatever was put in a secret field (hostile input found this).
    assert "secret=<bool hidden>" in repr(MsgSecretEntry("c", "s", "m", False))  # type: ignore[arg-type]
    assert "identity_key=<str hidden>" in repr(Device(identity_key="x"))  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["lmdb", "sqlite", "memory"])
async def test_handle_bookkeeping_does_not_grow_with_handles(tmp_path: Path, backend: str) -> None:
    url = {"lmdb": f"lmdb://{tmp_path}/a", "sqlite": f"sqlite://{tmp_path}/a.db"}.get(
        backend, "memory://"
    )
    async with await lmdbstore.open(url) as store:
        for device in range(2, 2002):
            handle = store.for_device(device)
            async with handle.transaction() as tx:
                await tx.put_session("a@lid", b"x")
            await handle.close()
        counts = store._devices.open  # type: ignore[attr-defined]
        assert dict(counts) == {1: 1}
