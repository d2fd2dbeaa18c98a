"""Encryption at rest (`lmdbstore.encryption`, `lmdbstore.storage.sealed`), checked on the
raw bytes of real LMDB files: what an encrypted store writes, what tampering does, what
a wrong key does, and the commands that convert a store."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import keyring
import keyring.backend
import lmdb
import psycopg
import pytest

from lmdbstore import (
    AppStateMutationMAC,
    AppStateSyncKey,
    Device,
    DeviceInfo,
    DeviceListRecord,
    EncryptionKey,
    HashState,
    LidPnMappingEntry,
    LmdbCacheStore,
    LmdbStore,
    SerializationError,
    SqliteStore,
    StoreConnectionError,
    TcTokenEntry,
    ValidationError,
    keyring_key,
    sync,
)
from lmdbstore.postgres_store import PostgresStore
from lmdbstore.storage.sealed import ENCRYPTION_KEY, Cipher
from lmdbstore.testing.postgres_server import PostgresServer

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.anyio

SCRIPT = Path(sys.executable).parent / "lmdbstore"
KEY = EncryptionKey(bytes(range(32)))
OTHER_KEY = EncryptionKey(bytes(range(1, 33)))

PHONE = "5599123456789"
LID = "170000123456789"
GROUP = "120363999888777666@g.us"
NAME = "Zebediah Quixote"
MESSAGE_ID = "3EB0C0FFEE1234567890"
IDENTITY_KEY = bytes.fromhex("5e" * 16) + os.urandom(16)
SESSION = os.urandom(300)
NOISE_KEY = os.urandom(64)
SYNC_KEY = os.urandom(32)
MSG_SECRET = os.urandom(32)
SENDER_KEY = os.urandom(120)

NAMES = [
    PHONE,
    LID,
    GROUP.removesuffix("@g.us"),
    NAME,
    "Zebediah",
    "Quixote",
    MESSAGE_ID,
    "sync-key-17",
]
KEYS = [IDENTITY_KEY, SESSION, NOISE_KEY, SYNC_KEY, MSG_SECRET, SENDER_KEY]


def forms(secret: bytes) -> list[bytes]:
    """``secret`` in every encoding lmdbstore writes anything in: raw (and UTF-8, and so
    CBOR's text and bytes), hex either case, base64 (exports), and a 12-byte piece of
    each (a partial leak)."""
    found = [secret, secret.hex().encode(), secret.hex().upper().encode()]
    found.append(base64.b64encode(secret).rstrip(b"="))
    found += [secret[:12], secret[-12:]]
    return [form for form in found if len(form) >= 8]


SECRET_FORMS = [form for secret in [*(n.encode() for n in NAMES), *KEYS] for form in forms(secret)]


async def fill_with_secrets(store: Any) -> None:
    """A record of every kind holding the names and keys above."""
    jid = f"{PHONE}@s.whatsapp.net"
    lid = f"{LID}@lid"
    await store.put_identity(jid, IDENTITY_KEY)
    await store.put_session(f"{PHONE}:3@s.whatsapp.net", SESSION)
    await store.store_prekeys_batch([(1, SESSION), (2, SESSION)], uploaded=True)
    await store.store_signed_prekey(3, SESSION)
    await store.put_sender_key(f"{GROUP}:{jid}", SENDER_KEY)
    await store.set_sync_key(b"sync-key-17", AppStateSyncKey(SYNC_KEY, b"fp", 5))
    await store.set_version(NAME, HashState(version=3, index_value_map={PHONE: SYNC_KEY}))
    await store.put_mutation_macs(NAME, 3, [AppStateMutationMAC(MSG_SECRET, SYNC_KEY)])
    await store.set_sender_key_status(GROUP, [(lid, True), (jid, False)])
    await store.put_lid_mapping(LidPnMappingEntry(lid, PHONE, 1, 2, NAME))
    await store.save_base_key(lid, MESSAGE_ID, IDENTITY_KEY)
    await store.update_device_list(DeviceListRecord(PHONE, [DeviceInfo(0), DeviceInfo(7)], 9))
    await store.put_group_metadata(GROUP, NAME.encode() + SENDER_KEY)
    await store.put_tc_token(lid, TcTokenEntry(MSG_SECRET, 5, 6))
    await store.store_sent_message(GROUP, MESSAGE_ID, SESSION)
    await store.store_pending_inbound(GROUP, lid, MESSAGE_ID, SESSION)
    await store.put_msg_secret(GROUP, lid, MESSAGE_ID, MSG_SECRET, expires_at=50, message_ts=4)
    await store.save(Device(pn=jid, lid=lid, noise_key=NOISE_KEY, push_name=NAME))
    await store.put_contact_name(jid, first_name="Zebediah", full_name=NAME)
    await store.put_push_name(lid, NAME)
    await store.put_muted_until(GROUP, 99)
    await store.put_buffered_event(SYNC_KEY, SESSION, 1_700_000_000)
    await store.add_outgoing_event(GROUP, MESSAGE_ID, "wa", SESSION)
    if isinstance(store, LmdbStore):
        await LmdbCacheStore(store).set("group", GROUP, NAME.encode(), 3600)


def leaks(store: Path) -> list[str]:
    """Each secret form found in a file of the store at ``store`` (an LMDB directory, or a
    SQLite file alone in its directory: its WAL and shared memory too), with the file."""
    found = []
    home = store if store.is_dir() else store.parent
    for path in sorted(home.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {form!r}" for form in SECRET_FORMS if form in data]
    return found


def lmdbstore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "store.key"
    path.write_text(KEY.hex() + "\n")
    return path


@pytest.fixture
def other_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "other.key"
    path.write_bytes(OTHER_KEY.raw)
    return path


class Backend:
    """An encrypted store's backend in the tests: where its stores go, and its raw items
    (LMDB's sub-databases, or the ``sealed`` table of SQLite or of a PostgreSQL schema)."""

    def __init__(
        self, name: str, store_class: Any, tmp_path: Path, postgres: tuple[str, str] = ("", "")
    ) -> None:
        self.name = name
        self.store_class = store_class
        self.tmp_path = tmp_path
        self._server, self._schema = postgres  # the server's URL, the test's schema

    def path(self, name: str) -> Any:
        """A new store's path: an LMDB directory, a SQLite file alone in its directory,
        or a PostgreSQL URL naming a schema of this test's own."""
        if self.store_class is PostgresStore:
            return f"{self._server}#{self._schema}_{name}"
        if self.store_class is LmdbStore:
            return self.tmp_path / name
        (self.tmp_path / name).mkdir(exist_ok=True)
        return self.tmp_path / name / "store.db"

    async def open(self, path: Any, **options: Any) -> Any:
        return await self.store_class.open(path, **options)

    def items(self, path: Any, db: str = "signal") -> list[tuple[bytes, bytes]]:
        if self.store_class is PostgresStore:
            server, schema = path.split("#")
            with psycopg.connect(server) as conn:
                rows = conn.execute(
                    f'SELECT k, v FROM "{schema}".sealed WHERE db = %s ORDER BY k', (db,)
                )
                return [(bytes(k), bytes(v)) for k, v in rows]
        if self.store_class is SqliteStore:
            with contextlib.closing(sqlite3.connect(path)) as conn:
                rows = conn.execute("SELECT k, v FROM sealed WHERE db = ? ORDER BY k", (db,))
                return [(bytes(k), bytes(v)) for k, v in rows]
        env = lmdb.open(str(path), max_dbs=16)
        try:
            with env.begin() as txn:
                return list(txn.cursor(db=env.open_db(db.encode(), txn=txn)))
        finally:
            env.close()

    def put(self, path: Any, items: list[tuple[bytes, bytes]], db: str = "signal") -> None:
        if self.store_class is PostgresStore:
            server, schema = path.split("#")
            with psycopg.connect(server) as conn:
                conn.cursor().executemany(
                    f'INSERT INTO "{schema}".sealed VALUES (%s, %s, %s)'
                    " ON CONFLICT (db, k) DO UPDATE SET v = excluded.v",
                    [(db, k, v) for k, v in items],
                )
            return
        if self.store_class is SqliteStore:
            with contextlib.closing(sqlite3.connect(path)) as conn, conn:
                conn.executemany(
                    "REPLACE INTO sealed VALUES (?, ?, ?)", [(db, k, v) for k, v in items]
                )
            return
        env = lmdb.open(str(path), max_dbs=16)
        try:
            with env.begin(write=True) as txn:
                for k, v in items:
                    txn.put(k, v, db=env.open_db(db.encode(), txn=txn))
        finally:
            env.close()


FILE_CLASSES = {"lmdb": LmdbStore, "sqlite": SqliteStore}


@pytest.fixture(params=["lmdb", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backend that encrypts."""
    if request.param == "postgres":
        where = (
            request.getfixturevalue("postgres_url"),
            request.getfixturevalue("postgres_schema"),
        )
        return Backend("postgres", PostgresStore, tmp_path, where)
    return Backend(request.param, FILE_CLASSES[request.param], tmp_path)


@pytest.fixture(params=list(FILE_CLASSES))
def file_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The backends of a file: for the tests that read a store's files, or convert it
    with the command line (a PostgreSQL schema is converted by migrate: its own test)."""
    return Backend(request.param, FILE_CLASSES[request.param], tmp_path)


async def test_no_file_of_an_encrypted_store_holds_a_name_or_a_key(file_backend: Backend) -> None:
    path = file_backend.path("store")
    store = await file_backend.open(path, encryption=KEY)
    await fill_with_secrets(store)
    other = store.for_device(3)
    await fill_with_secrets(other)
    await other.close()
    snapshot = file_backend.path("snapshot")
    await store.copy_to(str(snapshot))
    assert await store.verify() == []
    # The plain store, as the control: the test finds what is there.
    plain = await file_backend.open(file_backend.path("plain"))
    await fill_with_secrets(plain)
    assert len(leaks(file_backend.path("plain"))) >= len(NAMES) + len(KEYS)
    await plain.close()
    assert leaks(path) == []  # open: data and lock files, checkpoints, WAL, shared memory
    await store.close()
    assert leaks(path) == []
    assert leaks(snapshot) == []


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of this test's own (fsyncs on), whose every file it reads."""
    if not PostgresServer.available():
        pytest.skip("PostgreSQL is not installed (.ci/run installs it)")
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


def _checkpoint(url: str) -> None:
    """Have the server write every changed page to its table files."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


async def test_no_file_of_a_postgresql_cluster_or_its_dump_holds_a_name_or_a_key(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    url = own_postgres.url
    store = await PostgresStore.open(url, schema="sealed", encryption=KEY)
    await fill_with_secrets(store)
    other = store.for_device(3)
    await fill_with_secrets(other)
    await other.close()
    await store.copy_to("sealed_copy")
    await store.snapshot_db("before")
    assert await store.verify() == []
    await store.close()
    dump = tmp_path / "dump.sql"
    command = [own_postgres.program("pg_dump"), "--dbname", url, "--file", str(dump)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert b"sealed_copy" in dump.read_bytes()  # the whole database was dumped
    _checkpoint(url)
    cluster = Path(own_postgres.directory)
    assert leaks(cluster) == []  # tables, indexes, WAL, the server's log
    assert leaks(dump) == []
    # The control: a plain schema in the same cluster is found by the same search.
    async with await PostgresStore.open(url, schema="plain") as plain:
        await fill_with_secrets(plain)
    _checkpoint(url)
    assert len(leaks(cluster)) >= len(NAMES) + len(KEYS)


def test_nor_does_it_after_compact_rekey_or_a_cli_snapshot(
    file_backend: Backend, key_file: Path, other_key_file: Path
) -> None:
    path = file_backend.path("store")

    async def fill() -> None:
        async with await file_backend.open(path, encryption=KEY) as store:
            await fill_with_secrets(store)

    anyio.run(fill)
    done = lmdbstore("compact", str(path), "--key-file", str(key_file))
    assert done.returncode == 0, done.stderr
    snap = file_backend.path("snap")
    done = lmdbstore("snapshot", str(path), str(snap), "--key-file", str(key_file))
    assert done.returncode == 0, done.stderr
    args = ("--key-file", str(key_file), "--new-key-file", str(other_key_file))
    done = lmdbstore("rekey", str(path), *args)
    assert done.returncode == 0, done.stderr
    assert leaks(path) == []
    assert leaks(snap) == []
    assert lmdbstore("verify", str(path), "--key-file", str(other_key_file)).stdout == "ok\n"


async def test_a_reopened_store_reads_back_everything(backend: Backend) -> None:
    path = backend.path("store")
    async with await backend.open(path, encryption=KEY) as store:
        await fill_with_secrets(store)
    async with await backend.open(path, encryption=lambda: KEY) as store:
        assert store.encrypted
        assert await store.load_identity(f"{PHONE}@s.whatsapp.net") == IDENTITY_KEY
        assert await store.get_session_addresses(PHONE) == [f"{PHONE}:3@s.whatsapp.net"]
        assert [m.phone_number for m in await store.get_all_lid_mappings()] == [PHONE]
        assert (await store.get_pn_mapping(PHONE)).lid == f"{LID}@lid"
        assert (await store.load()).noise_key == NOISE_KEY
        assert await store.get_max_prekey_id() == 2
        assert await store.verify() == []
        report = await store.resource_report()
        assert report.entries["signal"] >= 6


def test_the_blocking_api_opens_an_encrypted_store(file_backend: Backend) -> None:
    path = file_backend.path("store")
    scheme = "lmdb" if file_backend.name == "lmdb" else "sqlite"
    with sync.open(f"{scheme}://{path}", encryption=KEY) as store:
        store.put_session("a@lid", SESSION)
        with store.transaction() as tx:
            tx.put_identity("a@lid", IDENTITY_KEY)
    blocking = sync.SyncLmdbStore if file_backend.name == "lmdb" else sync.SyncSqliteStore
    with blocking.open(path, encryption=KEY) as store:
        assert store.encrypted
        assert store.get_session("a@lid") == SESSION
        assert store.load_identity("a@lid") == IDENTITY_KEY
    assert leaks(path) == []


# -- keys: wrong, missing, bad ----------------------------------------------------------------


async def test_a_wrong_or_missing_key_is_refused_at_open(backend: Backend) -> None:
    path = backend.path("store")
    async with await backend.open(path, encryption=KEY) as store:
        await store.put_session("a@lid", SESSION)
    with pytest.raises(StoreConnectionError, match="wrong encryption key"):
        await backend.open(path, encryption=OTHER_KEY)
    with pytest.raises(StoreConnectionError, match="wrong encryption key"):
        await backend.open(path, encryption=OTHER_KEY, readonly=True)
    with pytest.raises(StoreConnectionError, match="is encrypted"):
        await backend.open(path)
    with pytest.raises(StoreConnectionError, match="is encrypted"):
        await backend.open(path, readonly=True)
    async with await backend.open(path, encryption=KEY, readonly=True) as store:
        assert await store.get_session("a@lid") == SESSION


async def test_a_second_open_in_the_process_brings_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "store"
    async with await LmdbStore.open(path, encryption=KEY) as store:
        with pytest.raises(StoreConnectionError, match="another key"):
            await LmdbStore.open(path, encryption=OTHER_KEY)
        with pytest.raises(StoreConnectionError, match="open it with its key"):
            await LmdbStore.open(path)
        async with await LmdbStore.open(path, encryption=KEY) as again:
            await again.put_session("a@lid", SESSION)
        assert await store.get_session("a@lid") == SESSION
    async with await LmdbStore.open(tmp_path / "plain") as store:
        with pytest.raises(StoreConnectionError, match="without encryption"):
            await LmdbStore.open(tmp_path / "plain", encryption=KEY)


async def test_a_plain_store_with_records_is_not_opened_with_a_key(backend: Backend) -> None:
    path = backend.path("store")
    async with await backend.open(path) as store:
        await store.put_session("a@lid", SESSION)
    with pytest.raises(StoreConnectionError, match="lmdbstore encrypt"):
        await backend.open(path, encryption=KEY)
    with pytest.raises(StoreConnectionError, match="not encrypted"):
        await backend.open(path, encryption=KEY, readonly=True)
    async with await backend.open(path) as store:
        assert await store.get_session("a@lid") == SESSION  # as it was
        assert not store.encrypted


def _fails() -> bytes:
    raise OSError("the keyring is locked")


@pytest.mark.parametrize(
    ("encryption", "error", "message"),
    [
        (KEY.raw, ValidationError, "EncryptionKey"),
        ("00" * 32, ValidationError, "EncryptionKey"),
        (42, ValidationError, "EncryptionKey"),
        (_fails, StoreConnectionError, "provider failed: OSError: the keyring is locked"),
        (lambda: b"short", StoreConnectionError, "gave no key: an encryption key is 32 bytes"),
        (lambda: None, StoreConnectionError, "gave no key"),
    ],
)
async def test_bad_encryption_options(
    backend: Backend, encryption: object, error: type[Exception], message: str
) -> None:
    path = backend.path("store")
    with pytest.raises(error, match=message):
        await backend.open(path, encryption=encryption)
    if backend.name != "postgres":  # a schema: nothing to read but rows
        assert not path.exists() or leaks(path) == []


@pytest.mark.parametrize("raw", [b"", bytes(31), bytes(33), "x" * 32, None])
def test_an_encryption_key_is_32_bytes(raw: Any) -> None:
    with pytest.raises(ValidationError):
        EncryptionKey(raw)


def test_a_key_is_never_shown_and_reads_from_files(tmp_path: Path) -> None:
    assert KEY.hex() not in repr(KEY) and "32 bytes" in repr(KEY)
    assert EncryptionKey.from_hex(KEY.hex()) == KEY != OTHER_KEY
    (tmp_path / "raw").write_bytes(KEY.raw)
    (tmp_path / "hex").write_text(KEY.hex().upper() + "\n")
    assert EncryptionKey.from_file(tmp_path / "raw") == EncryptionKey.from_file(tmp_path / "hex")
    for content in (b"", b"zz" * 32, KEY.raw + b"\n", b"\xff" * 64):
        (tmp_path / "bad").write_bytes(content)
        with pytest.raises(ValidationError, match="neither 32 bytes"):
            EncryptionKey.from_file(tmp_path / "bad")
    with pytest.raises(ValidationError, match="cannot read the key file"):
        EncryptionKey.from_file(tmp_path / "missing")
    for text in ("", "zz" * 32, KEY.hex()[:-2], KEY.hex() + "00"):
        with pytest.raises(ValidationError, match="64 hexadecimal digits"):
            EncryptionKey.from_hex(text)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend of this process (no OS keyring runs here): the `keyring`
    package's own API, with its passwords in a dict."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[service, username] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.passwords[service, username]


@pytest.fixture
def memory_keyring() -> Any:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


async def test_keyring_key(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    path = tmp_path / "store"
    with pytest.raises(StoreConnectionError, match="holds no key"):
        await LmdbStore.open(path, encryption=keyring_key("app", "bot"))
    provider = keyring_key("app", "bot", create=True)
    async with await LmdbStore.open(path, encryption=provider) as store:
        await store.put_session("a@lid", SESSION)
    stored = memory_keyring.passwords["app", "bot"]
    assert len(stored) == 64
    async with await LmdbStore.open(path, encryption=keyring_key("app", "bot")) as store:
        assert await store.get_session("a@lid") == SESSION
    memory_keyring.passwords["app", "bot"] = "not hex"
    with pytest.raises(StoreConnectionError, match="not a key of 64"):
        await LmdbStore.open(path, encryption=keyring_key("app", "bot"))
    for service, user in (("", "bot"), ("app", ""), (None, "bot")):
        with pytest.raises(ValidationError):
            keyring_key(service, user)  # type: ignore[arg-type]


# -- tampering ------------------------------------------------------------------------------


async def _filled(backend: Backend, path: Path, key: EncryptionKey = KEY) -> None:
    options: dict[str, Any] = {"durability": "full"} if backend.name == "lmdb" else {}
    async with await backend.open(path, encryption=key, **options) as store:
        await store.put_session("a@lid", b"session of a")
        await store.put_session("b@lid", b"session of b")
        await store.put_identity("a@lid", IDENTITY_KEY)


async def _problems(backend: Backend, path: Path) -> list[str]:
    async with await backend.open(path, encryption=KEY) as store:
        return list(await store.verify())


def _flipped(value: bytes, at: int) -> bytes:
    return value[:at] + bytes((value[at] ^ 1,)) + value[at + 1 :]


async def test_a_flipped_bit_is_detected(backend: Backend) -> None:
    path = backend.path("store")
    await _filled(backend, path)
    key, value = backend.items(path)[0]
    backend.put(path, [(key, _flipped(value, 20))])
    problems = await _problems(backend, path)
    assert len(problems) == 1 and "signal" in problems[0] and key.hex() in problems[0]
    assert "fails authentication" in problems[0]


async def test_values_swapped_between_keys_are_detected(backend: Backend) -> None:
    path = backend.path("store")
    await _filled(backend, path)
    (ka, va), (kb, vb) = [(k, v) for k, v in backend.items(path) if k[4] == 2]
    backend.put(path, [(ka, vb), (kb, va)])
    problems = await _problems(backend, path)
    assert len(problems) == 2 and all("fails authentication" in p for p in problems)
    async with await backend.open(path, encryption=KEY) as store:
        with pytest.raises(SerializationError, match="fails authentication"):
            await store.get_session("a@lid")
        with pytest.raises(SerializationError):
            await store.get_session_addresses("a")


async def test_a_record_copied_from_another_store_is_detected(backend: Backend) -> None:
    # The same key, another store: another salt, so other keys and hashes.
    one, two = backend.path("one"), backend.path("two")
    await _filled(backend, one)
    await _filled(backend, two)
    backend.put(one, backend.items(two))
    problems = await _problems(backend, one)
    assert len(problems) == 3 and all("fails authentication" in p for p in problems)


async def test_a_changed_encryption_record_is_refused(backend: Backend) -> None:
    path = backend.path("store")
    await _filled(backend, path)
    (name, record), *_ = [(k, v) for k, v in backend.items(path, "meta") if k == ENCRYPTION_KEY]
    backend.put(path, [(name, _flipped(record, len(record) - 1))], "meta")
    with pytest.raises(StoreConnectionError, match="wrong encryption key"):
        await backend.open(path, encryption=KEY)
    backend.put(path, [(name, b"\xa1\x61v\x02")], "meta")
    with pytest.raises(StoreConnectionError, match="encryption record is unreadable"):
        await backend.open(path, encryption=KEY)


def test_two_seals_of_one_value_differ() -> None:
    cipher = Cipher.create(KEY)
    key = b"\x00\x00\x00\x01\x02a@lid\x00"
    stored = cipher.stored_key("signal", key)
    (one, first), (two, second) = (cipher.sealed_item("signal", key, b"v") for _ in range(2))
    assert one == two == stored and first != second
    assert int.from_bytes(second[:12], "big") - int.from_bytes(first[:12], "big") in (1, 1 - 2**96)
    assert cipher.open("signal", stored, first) == cipher.open("signal", stored, second)
    assert stored.startswith(key[:5]) and b"a@lid" not in stored


# -- the commands ---------------------------------------------------------------------------


def _export(path: Path, *key: str) -> list[str]:
    """The records of an export, sorted (an encrypted store's come in another order)."""
    done = lmdbstore("export", str(path), *key)
    assert done.returncode == 0, done.stderr
    return sorted(line for line in done.stdout.splitlines() if line.startswith('{"kind"'))


def test_encrypt_rekey_decrypt_keep_every_record(
    file_backend: Backend, key_file: Path, other_key_file: Path
) -> None:
    path = file_backend.path("store")

    async def fill() -> None:
        async with await file_backend.open(path) as store:
            await fill_with_secrets(store)

    anyio.run(fill)
    before = _export(path)
    done = lmdbstore("encrypt", str(path), "--key-file", str(key_file))
    assert (done.returncode, done.stdout) == (0, f"{path}: encrypted\n"), done.stderr
    assert leaks(path) == []
    assert lmdbstore("verify", str(path)).returncode == 4
    assert _export(path, "--key-file", str(key_file)) == before
    done = lmdbstore("export", str(path), "--key-file", str(key_file))
    assert "its export is not" in done.stderr
    args = ("--key-file", str(key_file), "--new-key-file", str(other_key_file))
    assert lmdbstore("rekey", str(path), *args).returncode == 0
    assert leaks(path) == []
    assert lmdbstore("verify", str(path), "--key-file", str(key_file)).returncode == 4
    assert _export(path, "--key-file", str(other_key_file)) == before
    info = lmdbstore("info", str(path), "--key-file", str(other_key_file))
    assert "encrypted (AES-256-GCM)" in info.stdout
    assert lmdbstore("decrypt", str(path), "--key-file", str(other_key_file)).returncode == 0
    assert _export(path) == before
    assert lmdbstore("verify", str(path)).stdout == "ok\n"


def test_import_and_migrate_into_encrypted_stores(tmp_path: Path, key_file: Path) -> None:
    async def fill() -> None:
        async with await SqliteStore.open(tmp_path / "plain.db") as store:
            await fill_with_secrets(store)

    anyio.run(fill)
    before = _export(tmp_path / "plain.db")
    exported = lmdbstore("export", str(tmp_path / "plain.db"), "-o", str(tmp_path / "x.jsonl"))
    assert exported.returncode == 0, exported.stderr
    key = ("--key-file", str(key_file))
    for copy in ("imported", "imported.db"):
        done = lmdbstore("import", str(tmp_path / "x.jsonl"), str(tmp_path / copy), *key)
        assert done.returncode == 0, done.stderr
    for copy in ("migrated", "migrated.db"):
        done = lmdbstore(
            "migrate", str(tmp_path / "plain.db"), str(tmp_path / copy), "--dest-key-file", key[1]
        )
        assert done.returncode == 0, done.stderr
    for copy in ("imported", "imported.db", "migrated", "migrated.db"):
        assert _export(tmp_path / copy, *key) == before, copy
    for copy in ("imported", "migrated"):
        assert leaks(tmp_path / copy) == []
    done = lmdbstore("migrate", str(tmp_path / "migrated"), str(tmp_path / "back.db"), *key)
    assert done.returncode == 0, done.stderr
    assert _export(tmp_path / "back.db") == before


def test_a_postgresql_schema_is_encrypted_by_migrate_and_import(
    tmp_path: Path, key_file: Path, postgres_url: str, postgres_schema: str
) -> None:
    """A schema is not converted in place (`CONVERTED_BY_MIGRATE`): migrate copies it into
    a new, encrypted one; import writes an export into one."""
    plain, sealed, imported = (
        f"{postgres_url}#{postgres_schema}_{name}" for name in ("plain", "sealed", "imported")
    )

    async def fill() -> None:
        async with await PostgresStore.open(plain) as store:
            await fill_with_secrets(store)

    anyio.run(fill)
    before = _export(plain)
    key = ("--key-file", str(key_file))
    done = lmdbstore("migrate", plain, sealed, "--dest-key-file", key[1])
    assert done.returncode == 0, done.stderr
    exported = lmdbstore("export", plain, "-o", str(tmp_path / "x.jsonl"))
    assert exported.returncode == 0, exported.stderr
    done = lmdbstore("import", str(tmp_path / "x.jsonl"), imported, *key)
    assert done.returncode == 0, done.stderr
    for copy in (sealed, imported):
        assert _export(copy, *key) == before
        assert "encrypted (AES-256-GCM)" in lmdbstore("info", copy, *key).stdout
        assert lmdbstore("verify", copy, *key).stdout == "ok\n"
        refused = lmdbstore("export", copy)
        assert refused.returncode == 4 and "is encrypted" in refused.stderr
    done = lmdbstore("migrate", sealed, str(tmp_path / "back.db"), *key)
    assert done.returncode == 0, done.stderr
    assert _export(tmp_path / "back.db") == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("encrypt", "{store}"), 2, "give the key to encrypt with"),
        (("decrypt", "{store}"), 2, "give the store's key"),
        (("rekey", "{store}", "--key-file", "{key}"), 2, "and the new one"),
        (("encrypt", "{store}", "--key-file", "{key}"), 4, "is encrypted"),
        (("decrypt", "{store}", "--key-file", "{other}"), 4, "wrong encryption key"),
        (("rekey", "{store}", "--key-file", "{other}", "--new-key-file", "{key}"), 4, "wrong"),
        (("verify", "{store}", "--key-file", "{key}", "--keyring", "s", "u"), 2, "not both"),
        (("verify", "{store}", "--key-file", "{dir}"), 2, "is a directory"),
        (("verify", "{store}", "--key-file", "{missing}"), 2, "cannot read the key file"),
        (("verify", "{store}", "--key-file", "{garbage}"), 2, "neither 32 bytes"),
        (("verify", "{store}", "--keyring", "s"), 2, "requires 2 arguments"),
        (("verify", "{store}", "--keyring", "", "u"), 2, "non-empty string"),
        (("encrypt", "postgresql://u@h/d", "--key-file", "{key}"), 2, "migrate it into a new"),
        (
            ("rekey", "postgresql://u@h/d", "--key-file", "{key}", "--new-key-file", "{other}"),
            2,
            "not converted in place",
        ),
        (("encrypt", "{missing}", "--key-file", "{key}"), 3, "no store"),
        (("keygen", "{key}"), 7, "already exists"),
        (("keygen", "{missing}/new.key"), 2, "cannot write"),
    ],
)
def test_bad_key_arguments_change_nothing(
    file_backend: Backend,
    key_file: Path,
    other_key_file: Path,
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    path = file_backend.path("store")
    anyio.run(_filled, file_backend, path)
    tmp_path = file_backend.tmp_path
    (tmp_path / "garbage").write_text("not a key")
    names = {
        "store": path,
        "key": key_file,
        "other": other_key_file,
        "garbage": tmp_path / "garbage",
        "dir": tmp_path,
        "missing": tmp_path / "missing",
    }
    before = _file_bytes(path)
    done = lmdbstore(*(arg.format(**names) for arg in args))
    assert done.returncode == code, done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1
    assert _file_bytes(path) == before
    assert key_file.read_text() == KEY.hex() + "\n"


def _file_bytes(path: Path) -> bytes:
    """The store's data: LMDB's data file, or the SQLite file checkpointed."""
    if path.is_dir():
        return (path / "data.mdb").read_bytes()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


async def test_a_tampered_store_is_not_converted(file_backend: Backend, key_file: Path) -> None:
    path = file_backend.path("store")
    await _filled(file_backend, path)
    key, value = file_backend.items(path)[0]
    file_backend.put(path, [(key, _flipped(value, len(value) - 1))])
    before = _file_bytes(path)
    done = lmdbstore("decrypt", str(path), "--key-file", str(key_file))
    assert done.returncode == 5 and "fails authentication" in done.stderr
    assert _file_bytes(path) == before
    home = path if path.is_dir() else path.parent
    assert [p.name for p in home.iterdir() if p.name.startswith(".lmdbstore")] == []


def test_keygen_writes_an_owner_only_key(tmp_path: Path) -> None:
    done = lmdbstore("keygen", str(tmp_path / "new.key"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new.key").stat().st_mode & 0o777 == 0o600
    assert lmdbstore("keygen", str(tmp_path / "second.key")).returncode == 0
    first = EncryptionKey.from_file(tmp_path / "new.key")
    assert first != EncryptionKey.from_file(tmp_path / "second.key")


def test_a_conversion_killed_midway_leaves_the_store_under_one_key(
    file_backend: Backend, key_file: Path, other_key_file: Path
) -> None:
    """SIGKILL at increasing moments of a rekey of 20,000 sessions: after each, the store
    opens under exactly one of the two keys, verifies, and holds every record."""
    path = file_backend.path("store")

    async def fill() -> None:
        async with await file_backend.open(path, encryption=KEY) as store:
            await fill_with_secrets(store)
            for first in range(0, 20_000, 5_000):
                batch = [(f"{i}@lid", SESSION) for i in range(first, first + 5_000)]
                await store.put_sessions_batch(batch)

    anyio.run(fill)
    keys = {KEY: str(key_file), OTHER_KEY: str(other_key_file)}
    before = _export(path, "--key-file", keys[KEY])

    def current() -> EncryptionKey:
        opens = [
            k
            for k, file in keys.items()
            if lmdbstore("verify", str(path), "--key-file", file).stdout == "ok\n"
        ]
        assert len(opens) == 1, opens
        return opens[0]

    start = time.perf_counter()
    assert (
        lmdbstore(
            "rekey", str(path), "--key-file", keys[KEY], "--new-key-file", keys[OTHER_KEY]
        ).returncode
        == 0
    )
    whole = time.perf_counter() - start
    killed = 0
    for share in (0.3, 0.5, 0.7, 0.9):
        old = current()
        new = OTHER_KEY if old == KEY else KEY
        args = ["rekey", str(path), "--key-file", keys[old], "--new-key-file", keys[new]]
        running = subprocess.Popen([str(SCRIPT), *args], stderr=subprocess.DEVNULL)
        time.sleep(share * whole)
        if running.poll() is None:
            killed += 1
            running.send_signal(signal.SIGKILL)
        running.wait()
        assert _export(path, "--key-file", keys[current()]) == before
    assert killed >= 2


async def test_scans_in_a_transaction_read_every_record(backend: Backend) -> None:
    """A transaction reads a scan in chunks; an encrypted store's scans come sorted from
    hashed keys, and must come whole and in order there too."""
    async with await backend.open(backend.path("store"), encryption=KEY) as store:
        mappings = [LidPnMappingEntry(f"{i}@lid", f"55{i:05d}", 1, 1, "x") for i in range(300)]
        await store.put_lid_mappings(mappings)
        members = [(f"{i}@lid", i % 2 == 0) for i in range(100)]
        await store.set_sender_key_status(GROUP, members)
        async with store.transaction() as tx:
            found = await tx.get_all_lid_mappings()
            devices = await tx.get_sender_key_devices(GROUP)
            await tx.put_session("a@lid", SESSION)
        assert [m.lid for m in found] == sorted(m.lid for m in mappings)
        assert devices == sorted(members)
        assert await store.get_all_lid_mappings() == found


async def test_an_encrypted_store_answers_as_a_plain_one_at_volume(backend: Backend) -> None:
    """Thousands of records (past every chunk and page size), the same calls on a plain and
    an encrypted store: the same answers, listings in the same order."""

    async def run(store: Any) -> list[object]:
        answers: list[object] = []
        mappings = [
            LidPnMappingEntry(f"{i}@lid", f"55{i % 700:05d}", 1, i, "x") for i in range(2_000)
        ]
        await store.put_lid_mappings(mappings)
        users = [f"55{u:05d}" for u in range(60)]
        await store.put_sessions_batch(
            [(f"{u}:{d}@s.whatsapp.net", SESSION) for u in users for d in range(5)]
        )
        await store.put_identities_batch([(f"{u}@s.whatsapp.net", IDENTITY_KEY) for u in users])
        await store.set_sender_key_status(GROUP, [(f"{i}@lid", i % 3 == 0) for i in range(400)])
        for i in range(1_500):
            await store.store_sent_message(GROUP, f"m{i}", SESSION[:50])
        answers.append(await store.get_all_lid_mappings())
        answers.append([await store.get_pn_mapping(f"55{p:05d}") for p in range(0, 700, 7)])
        answers.append(await store.get_session_addresses(users[3]))
        answers.append(await store.delete_all_sessions(users[4]))
        answers.append(await store.get_session_addresses(users[4]))
        answers.append(await store.migrate_pn_to_lid(users[5], "99999"))
        answers.append(await store.get_session_addresses("99999"))
        answers.append(await store.get_sender_key_devices(GROUP))
        answers.append(await store.get_lids_for_pns([f"55{p:05d}" for p in range(0, 700, 3)]))
        async with store.transaction() as tx:
            answers.append(await tx.get_all_lid_mappings())
            answers.append(await tx.get_sender_key_devices(GROUP))
            answers.append(await tx.get_session_addresses(users[6]))
            await tx.delete_all_sessions(users[7])
        answers.append(await store.get_session_addresses(users[7]))
        answers.append(await store.delete_expired_sent_messages(2**62))
        answers.append(await store.peek_sent_message(GROUP, "m1"))
        answers.append(await store.verify())
        return answers

    plain = await backend.open(backend.path("plain"))
    encrypted = await backend.open(backend.path("encrypted"), encryption=KEY)
    try:
        assert await run(encrypted) == await run(plain)
    finally:
        await plain.close()
        await encrypted.close()
