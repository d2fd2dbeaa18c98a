"""The ``lmdbstore`` command, run as the installed console script in a subprocess."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import cbor2
import lmdb
import pytest

from lmdbstore import LmdbCacheStore, LmdbStore, SqliteStore, keys
from lmdbstore.sqlite_store import schema
from lmdbstore.testing.protocol import fill_every_kind
from lmdbstore.transfer.records import KINDS

SCRIPT = Path(sys.executable).parent / "lmdbstore"


def lmdbstore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )


def make_store(path: Path, backend: Any) -> None:
    async def fill() -> None:
        async with await backend.open(path) as store:
            await fill_every_kind(store)
            other = store.for_device(3)
            await fill_every_kind(other)
            await other.close()

    anyio.run(fill)


@pytest.fixture(params=[("lmdb", LmdbStore, "store"), ("sqlite", SqliteStore, "store.sqlite")])
def store_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    _, backend, name = request.param
    path = tmp_path / name
    make_store(path, backend)
    return path


def test_help_of_the_script_and_of_the_module() -> None:
    assert lmdbstore("--help").returncode == 0
    module = subprocess.run(
        [sys.executable, "-m", "lmdbstore", "--help"], capture_output=True, text=True, check=False
    )
    assert module.returncode == 0
    assert "verify" in module.stdout


def test_info(store_path: Path) -> None:
    done = lmdbstore("info", str(store_path), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["devices"] == [1, 3]
    # LMDB's format, or SQLite's schema version (SQLite derives the tallies of format 3).
    sqlite = store_path.suffix == ".sqlite"
    assert report["format_version"] == (len(schema.MIGRATIONS) if sqlite else keys.FORMAT_VERSION)
    assert report["records"]["session"] == 2
    assert report["records"]["msg_secret"] == 4
    assert report["entries"]["signal"] > 0
    assert report["bytes_on_disk"] > 0
    text = lmdbstore("info", str(store_path))
    assert text.returncode == 0
    assert "devices     1, 3" in text.stdout
    assert "{" not in text.stdout  # no dict reprs
    assert "KiB" in text.stdout or "MiB" in text.stdout
    assert f"store       {store_path}" in text.stdout  # one path form, absolute


def test_verify_ok_then_problems(tmp_path: Path) -> None:
    path = tmp_path / "store"
    make_store(path, LmdbStore)
    done = lmdbstore("verify", f"lmdb://{path}")
    assert (done.returncode, done.stdout.strip()) == (0, "ok")
    env = lmdb.Environment(str(path), max_dbs=10)
    broken = keys.make(
        keys.device_prefix(3), keys.SignalTag.SESSION, b"5511:7@s.whatsapp.net.0\x00"
    )
    with env.begin(write=True) as txn:
        txn.put(broken, b"\xff", db=env.open_db(b"signal", txn=txn))
    env.close()
    done = lmdbstore("verify", str(path))
    assert done.returncode == 1
    assert broken.hex() in done.stdout
    assert "1 problem" in done.stderr


def test_snapshot(store_path: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    done = lmdbstore("snapshot", str(store_path), str(dest))
    assert done.returncode == 0, done.stderr
    backend = LmdbStore if store_path.is_dir() else SqliteStore

    async def check() -> None:
        async with await backend.open(dest, device_id=3) as copy:
            assert await copy.get_session("5511:7@s.whatsapp.net.0") == b"session"
            assert await copy.verify() == []

    anyio.run(check)
    again = lmdbstore("snapshot", str(store_path), str(dest))
    assert again.returncode == 7  # as for import and migrate
    assert "exists" in again.stderr
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "target")
    assert lmdbstore("snapshot", str(store_path), str(dangling)).returncode == 7
    assert not (tmp_path / "target").exists()


def test_exit_codes_for_missing_unopenable_and_newer(tmp_path: Path) -> None:
    missing = lmdbstore("info", str(tmp_path / "nothing"))
    assert missing.returncode == 3
    assert "no store" in missing.stderr
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert lmdbstore("verify", str(empty_dir)).returncode == 3
    assert list(empty_dir.iterdir()) == []  # nothing created
    wrong_kind = lmdbstore("info", f"sqlite://{empty_dir}")
    assert wrong_kind.returncode == 4
    assert "is a directory" in wrong_kind.stderr
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("not a database " * 100)
    assert lmdbstore("verify", str(not_a_db)).returncode == 4
    path = tmp_path / "newer"
    make_store(path, LmdbStore)
    env = lmdb.Environment(str(path), max_dbs=10)
    with env.begin(write=True) as txn:
        txn.put(keys.FORMAT_KEY, cbor2.dumps(99), db=env.open_db(b"meta", txn=txn))
    env.close()
    newer = lmdbstore("info", str(path))
    assert newer.returncode == 6
    assert "format" in newer.stderr
    assert lmdbstore("frobnicate").returncode == 2


def make_full_store(path: Path, backend: Any) -> None:
    """Every record kind on 3 devices, a device counter, and (LMDB) a cache entry."""

    async def fill() -> None:
        async with await backend.open(path) as store:
            for device in (1, 2, 3):
                handle = store.for_device(device)
                await fill_every_kind(handle)
                await handle.close()
            await store.create()
            if backend is LmdbStore:
                await LmdbCacheStore(store).set("group", "g@g.us", b"cached", 3600)

    anyio.run(fill)


def export_lines(path: str, tmp_path: Path) -> list[str]:
    out = tmp_path / f"export-{len(list(tmp_path.iterdir()))}.jsonl"
    done = lmdbstore("export", path, "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out.read_text().splitlines()


def test_export_then_import_is_exact(tmp_path: Path) -> None:
    make_full_store(tmp_path / "src", LmdbStore)
    lines = export_lines(str(tmp_path / "src"), tmp_path)
    kinds = {json.loads(line)["kind"] for line in lines[1:-1]}  # between header and trailer
    assert kinds == set(KINDS)  # every kind is exercised
    dump = tmp_path / "dump.jsonl"
    dump.write_text("\n".join(lines) + "\n")
    done = lmdbstore("import", str(dump), f"lmdb://{tmp_path / 'dst'}")
    assert done.returncode == 0, done.stderr
    assert export_lines(str(tmp_path / "dst"), tmp_path) == lines
    assert lmdbstore("verify", str(tmp_path / "dst")).returncode == 0
    again = lmdbstore("import", str(dump), f"lmdb://{tmp_path / 'dst'}")
    assert again.returncode == 7  # never into an existing store
    one = export_lines(str(tmp_path / "src"), tmp_path)
    device_two = lmdbstore("export", str(tmp_path / "src"), "--device", "2")
    assert {json.loads(line)["device"] for line in device_two.stdout.splitlines()[1:-1]} == {2}
    assert len(one) > len(device_two.stdout.splitlines())


def test_sqlite_to_lmdb_to_sqlite_is_exact(tmp_path: Path) -> None:
    make_full_store(tmp_path / "a.sqlite", SqliteStore)
    first = export_lines(str(tmp_path / "a.sqlite"), tmp_path)
    assert (
        lmdbstore("migrate", str(tmp_path / "a.sqlite"), "lmdb://" + str(tmp_path / "b")).returncode
        == 0
    )
    assert lmdbstore("migrate", str(tmp_path / "b"), str(tmp_path / "c.sqlite")).returncode == 0
    assert export_lines(str(tmp_path / "c.sqlite"), tmp_path) == first
    middle = export_lines(str(tmp_path / "b"), tmp_path)
    assert sorted(middle[1:-1]) == sorted(first[1:-1])  # LMDB holds the same records
    assert lmdbstore("verify", str(tmp_path / "b")).returncode == 0


def test_lmdb_to_sqlite_leaves_only_the_cache_behind(tmp_path: Path) -> None:
    make_full_store(tmp_path / "a", LmdbStore)
    first = export_lines(str(tmp_path / "a"), tmp_path)
    assert (
        lmdbstore("migrate", str(tmp_path / "a"), "sqlite://" + str(tmp_path / "b")).returncode == 0
    )
    second = export_lines(str(tmp_path / "b"), tmp_path)
    assert sorted(second[1:-1]) == sorted(line for line in first[1:-1] if "cache_entry" not in line)


def with_trailer(text: str) -> str:
    """``text`` (header and record lines) with the trailer that makes it a whole export."""
    import hashlib

    from lmdbstore.transfer.records import trailer

    count = text.count("\n") - 1
    return text + trailer(count, hashlib.sha256(text.encode()).hexdigest()) + "\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "header"),
        ('{"format": "lmdbstore-export", "version": 4}\n', "header"),
        ('{"format": "lmdbstore-export", "version": true}\n', "header"),
        ('{"format": "lmdbstore-export", "version": 2}\n', "without its trailer"),
        ('{"format": "lmdbstore-export", "version": 2}\n{"kind": [], "device": 1}\n', "line 2"),
        ('{"format": "lmdbstore-export", "version": 2}\n' + "[" * 100_000 + "\n", "line 2"),
        ('{"format": "lmdbstore-export", "version": 2}\n{"device": ' + "9" * 5000, "line 2"),
        (
            '{"format": "lmdbstore-export", "version": 2}\n{"kind": "session", "device": -1}\n',
            "2**32",
        ),
        ('{"format": "lmdbstore-export", "version": 2}\n\xff\n', "line 2"),
        ('{"format": "lmdbstore-export", "version": 2}\nnot json\n', "line 2"),
        ('{"format": "lmdbstore-export", "version": 2}\n{"kind": "nope", "device": 1}\n', "line 2"),
        (
            '{"format": "lmdbstore-export", "version": 2}\n'
            '{"kind":"session","device":1,"address":"a@lid","record":"!!"}\n',
            "base64",
        ),
        (
            with_trailer(
                '{"format": "lmdbstore-export", "version": 2}\n'
                '{"kind":"session","device":1,"address":"a@lid","record":"eA=="}\n'
                '{"kind":"session","device":1,"address":"","record":"eA=="}\n'
            ),
            "empty",
        ),
        ('{"format": "lmdbstore-export", "version": 1}\n', "--accept-unverified"),
        # Kinds written as stored, checked by their declarations (`Kind.checked`).
        (
            with_trailer(
                '{"format": "lmdbstore-export", "version": 3}\n'
                '{"kind":"chat_settings","device":1,"chat":"c@g.us","muted_until":-5,'
                '"pinned":false,"archived":false}\n'
            ),
            "muted_until",
        ),
        (
            with_trailer(
                '{"format": "lmdbstore-export", "version": 3}\n'
                '{"kind":"buffered_event","device":1,"hash":"AAAA","plaintext":null,'
                '"server_ts":1,"insert_ts":1}\n'
            ),
            "hash",
        ),
        (  # each string fits, the record's key fits, its time-index entry does not
            with_trailer(
                '{"format": "lmdbstore-export", "version": 3}\n'
                f'{{"kind":"sent_message","device":1,"chat":"{"c" * 250}",'
                f'"message_id":"{"m" * 250}","payload":"eA==","created_at":1}}\n'
            ),
            "index key of 515 bytes exceeds",
        ),
    ],
)
def test_a_bad_import_writes_nothing(tmp_path: Path, content: str, message: str) -> None:
    dump = tmp_path / "bad.jsonl"
    dump.write_text(content)
    done = lmdbstore("import", str(dump), f"sqlite://{tmp_path / 'dst.sqlite'}")
    assert done.returncode == 5, done.stderr
    assert message in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]  # nothing written


def test_a_version_1_export_imports_only_when_accepted_unverified(tmp_path: Path) -> None:
    make_full_store(tmp_path / "src", LmdbStore)
    lines = export_lines(str(tmp_path / "src"), tmp_path)
    old = tmp_path / "old.jsonl"
    old.write_text("\n".join([lines[0].replace('"version": 3', '"version": 1'), *lines[1:-1]]))
    refused = lmdbstore("import", str(old), f"lmdb://{tmp_path / 'dst'}")
    assert refused.returncode == 5
    assert "--accept-unverified" in refused.stderr
    assert not (tmp_path / "dst").exists()
    done = lmdbstore("import", "--accept-unverified", str(old), f"lmdb://{tmp_path / 'dst'}")
    assert done.returncode == 0, done.stderr
    assert export_lines(str(tmp_path / "dst"), tmp_path) == lines


def test_a_truncated_or_altered_export_is_refused(tmp_path: Path) -> None:
    """The trailer (record count and SHA-256 of the bytes before it) makes a cut or edited
    file a clear exit 5 that writes nothing, instead of a smaller "successful" import."""
    make_full_store(tmp_path / "src", LmdbStore)
    lines = export_lines(str(tmp_path / "src"), tmp_path)
    assert json.loads(lines[-1])["records"] == len(lines) - 2
    altered = lines[:]
    altered[3] = altered[3].replace('"device":', '"device": ')  # same record, other bytes
    assert altered != lines
    for content, message in (
        (lines[:-1], "without its trailer"),
        (lines[:5], "without its trailer"),
        (lines[:5] + lines[-1:], "does not match"),
        (altered, "does not match"),
        ([*lines, lines[2]], "after the trailer"),
    ):
        dump = tmp_path / "dump.jsonl"
        dump.write_text("\n".join(content) + "\n")
        done = lmdbstore("import", str(dump), f"lmdb://{tmp_path / 'dst'}")
        assert done.returncode == 5, done.stderr
        assert message in done.stderr
        assert not (tmp_path / "dst").exists()


def test_a_failed_export_leaves_the_existing_file_and_a_link_is_never_followed(
    tmp_path: Path,
) -> None:
    make_store(tmp_path / "store", LmdbStore)
    output = tmp_path / "out.jsonl"
    output.write_text("the previous export\n")
    done = lmdbstore("export", str(tmp_path / "missing"), "-o", str(output))
    assert done.returncode == 3
    assert output.read_text() == "the previous export\n"
    target = tmp_path / "target"
    target.write_text("not to be written through\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert lmdbstore("export", str(tmp_path / "store"), "-o", str(link)).returncode == 0
    assert target.read_text() == "not to be written through\n"
    assert not link.is_symlink()
    assert link.read_text().startswith('{"format": "lmdbstore-export"')
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "link.jsonl",
        "out.jsonl",
        "store",
        "target",
    ]


def test_migrate_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty

    make_full_store(tmp_path / "a", LmdbStore)
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [str(SCRIPT), "migrate", str(tmp_path / "a"), str(tmp_path / "b.sqlite")],
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(leader, 4096):
            output += chunk
    os.close(leader)
    assert child.wait(timeout=60) == 0
    assert b"records" in output
    assert b"100%" in output


def test_a_locked_sqlite_database_is_a_clear_error(tmp_path: Path) -> None:
    import sqlite3

    make_store(tmp_path / "db.sqlite", SqliteStore)
    holder = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a writer: the read-only inspection goes on (WAL)
    try:
        assert lmdbstore("info", str(tmp_path / "db.sqlite")).returncode == 0
    finally:
        holder.execute("ROLLBACK")
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")  # keeps every other connection out
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("DELETE FROM sessions")
    try:
        done = lmdbstore("info", str(tmp_path / "db.sqlite"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 4, done.stderr
    assert "locked" in done.stderr


def one_line_failure(done: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    assert done.returncode == code, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("lmdbstore: ")
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_every_misuse_is_one_line_and_its_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "store"
    make_store(path, LmdbStore)
    one_line_failure(lmdbstore("export", "--device", "-1", str(path)), 2, "--device")
    one_line_failure(lmdbstore("export", "--device", "x", str(path)), 2, "--device")
    one_line_failure(lmdbstore("export", "--device", str(2**32), str(path)), 2, "--device")
    one_line_failure(lmdbstore("export", "--device", "7", str(path)), 3, "no device 7")
    one_line_failure(lmdbstore("frobnicate"), 2, "No such command")
    one_line_failure(lmdbstore("info"), 2, "PATH")
    sqlite_file = tmp_path / "x.sqlite"
    make_store(sqlite_file, SqliteStore)
    one_line_failure(lmdbstore("info", f"lmdb://{sqlite_file}"), 4, "is a file")
    one_line_failure(lmdbstore("snapshot", str(path), str(sqlite_file)), 7, "already exists")
    one_line_failure(lmdbstore("import", str(tmp_path / "none.jsonl"), "x"), 2, "does not exist")


def test_import_says_what_it_left_out_and_why(tmp_path: Path) -> None:
    make_full_store(tmp_path / "a", LmdbStore)
    exported = tmp_path / "a.jsonl"
    assert lmdbstore("export", str(tmp_path / "a"), "-o", str(exported)).returncode == 0
    done = lmdbstore("import", str(exported), "sqlite://" + str(tmp_path / "b"))
    assert done.returncode == 0, done.stderr
    assert "cache_entry records left out: a SQLite store keeps no cache" in done.stderr
    whole = lmdbstore("import", str(exported), str(tmp_path / "c"))
    assert "left out" not in whole.stderr


def test_a_store_held_at_full_by_another_process_can_be_inspected(tmp_path: Path) -> None:
    path = tmp_path / "store"
    make_store(path, LmdbStore)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, anyio\n"
            "from lmdbstore import LmdbStore\n"
            "async def main():\n"
            "    store = await LmdbStore.open(sys.argv[1], durability='full')\n"
            "    print('open', flush=True)\n"
            "    time.sleep(60)\n"
            "anyio.run(main)\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"open\n"
        done = lmdbstore("verify", str(path))
        assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
        assert "durability full" in lmdbstore("info", str(path)).stdout
    finally:
        holder.kill()
        holder.wait()


EXPORT_WHILE_WRITING = """
import sys, anyio
from lmdbstore import LmdbStore, SqliteStore

async def main():
    opener = LmdbStore if sys.argv[2] == "lmdb" else SqliteStore
    async with await opener.open(sys.argv[1]) as store:
        print("writing", flush=True)
        n = 0
        while True:
            n += 1
            # One transaction writes two kinds, which an export reads with two walks (two
            # statements on SQLite): from one snapshot, it sees the same n in both.
            async with store.transaction() as tx:
                await tx.put_identity("a@lid", n.to_bytes(32, "big"))
                await tx.put_session("zzz@lid", n.to_bytes(32, "big"))

anyio.run(main)
"""


@pytest.mark.parametrize(("backend", "name"), [("lmdb", "store"), ("sqlite", "store.sqlite")])
def test_an_export_taken_while_another_process_writes_comes_from_one_snapshot(
    tmp_path: Path, backend: str, name: str
) -> None:
    import base64

    path = tmp_path / name

    async def fill() -> None:
        opener = LmdbStore if backend == "lmdb" else SqliteStore
        async with await opener.open(path) as store:
            # Between the two records the walk reads 20,000 others (the other identities).
            await store.put_identities_batch([(f"m{i:05d}@lid", bytes(32)) for i in range(20_000)])

    anyio.run(fill)
    writer = subprocess.Popen(
        [sys.executable, "-c", EXPORT_WHILE_WRITING, str(path), backend], stdout=subprocess.PIPE
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == b"writing\n"
        seen = set()
        for _ in range(3):
            done = lmdbstore("export", str(path))
            assert done.returncode == 0, done.stderr
            values = {}
            for line in done.stdout.splitlines()[1:-1]:
                record = json.loads(line)
                if record["kind"] == "identity" and record["address"] == "a@lid":
                    values["identity"] = base64.b64decode(record["key"])
                if record["kind"] == "session" and record["address"] == "zzz@lid":
                    values["session"] = base64.b64decode(record["record"])
            assert values["identity"] == values["session"], values
            seen.add(values["session"])
        assert len(seen) > 1  # the writer went on between the exports
    finally:
        writer.kill()
        writer.wait()


# -- PostgreSQL: the commands on postgresql:// URLs (the session's server) ------------------


def _schemas(url: str, prefix: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
            (prefix + "%",),
        )
        return sorted(name for (name,) in rows)


def test_migrate_lmdb_to_postgresql_and_back_is_exact(
    tmp_path: Path, postgres_url: str, postgres_schema: str
) -> None:
    make_full_store(tmp_path / "src", LmdbStore)
    first = export_lines(str(tmp_path / "src"), tmp_path)
    pg = f"{postgres_url}#{postgres_schema}"
    done = lmdbstore("migrate", str(tmp_path / "src"), pg)
    assert done.returncode == 0, done.stderr
    assert "cache_entry records left out" in done.stderr  # PostgreSQL keeps no cache
    assert lmdbstore("verify", pg).returncode == 0
    info = lmdbstore("info", pg, "--json")
    assert info.returncode == 0, info.stderr
    report = json.loads(info.stdout)
    assert report["backend"] == "postgres" and report["devices"] == [1, 2, 3, 4]
    assert report["path"] == pg and report["records"]["session"] == 3
    middle = export_lines(pg, tmp_path)
    assert sorted(middle[1:-1]) == sorted(line for line in first[1:-1] if "cache_entry" not in line)
    done = lmdbstore("migrate", pg, f"lmdb://{tmp_path / 'back'}")
    assert done.returncode == 0, done.stderr
    assert sorted(export_lines(str(tmp_path / "back"), tmp_path)[1:-1]) == sorted(middle[1:-1])
    # Nothing was left behind of the schemas the store was built in.
    assert _schemas(postgres_url, "lmdbstore_build_") == []


def test_import_and_snapshot_on_postgresql(
    tmp_path: Path, postgres_url: str, postgres_schema: str
) -> None:
    make_full_store(tmp_path / "src", LmdbStore)
    lines = export_lines(str(tmp_path / "src"), tmp_path)
    dump = tmp_path / "dump.jsonl"
    dump.write_text("\n".join(lines) + "\n")
    pg = f"{postgres_url}#{postgres_schema}"
    assert lmdbstore("import", str(dump), pg).returncode == 0
    again = lmdbstore("import", str(dump), pg)
    assert again.returncode == 7 and "already exists" in again.stderr
    copy = f"{postgres_schema}_copy"
    done = lmdbstore("snapshot", pg, copy)
    assert done.returncode == 0, done.stderr
    assert lmdbstore("verify", f"{postgres_url}#{copy}").returncode == 0
    assert lmdbstore("snapshot", pg, copy).returncode == 7
    assert _schemas(postgres_url, "lmdbstore_build_") == []


def test_bad_postgresql_paths(tmp_path: Path, postgres_url: str, postgres_schema: str) -> None:
    missing = lmdbstore("info", f"{postgres_url}#{postgres_schema}")
    assert missing.returncode == 3 and "no lmdbstore store" in missing.stderr
    assert _schemas(postgres_url, postgres_schema) == []  # reading creates nothing
    down = lmdbstore("verify", "postgresql://u:secret@127.0.0.1:1/db")
    assert down.returncode == 4 and "secret" not in down.stderr
    bad = lmdbstore("export", f"{postgres_url}#1-bad")
    assert bad.returncode == 2, bad.stderr
    dump = tmp_path / "bad.jsonl"
    dump.write_text('{"format": "lmdbstore-export", "version": 3}\nnot json\n')
    refused = lmdbstore("import", str(dump), f"{postgres_url}#{postgres_schema}")
    assert refused.returncode == 5
    assert _schemas(postgres_url, postgres_schema) == []
    assert _schemas(postgres_url, "lmdbstore_build_") == []
