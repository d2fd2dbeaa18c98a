"""A raw-layer fuzzer: hostile bytes below the library may only ever be refused.

Each round copies a valid store (every record kind on two devices, written through the
API), mutates a few of its stored keys and values below the library — raw LMDB puts, or
SQL updates of the table rows — and then drives the result: every read method, writes that
read what is stored (size caps' evictions among them), a transaction, ``verify()``, and
every CLI command (``info``, ``verify``, ``export``, ``import`` of that export,
``migrate``, ``snapshot``, ``compact`` and ``verify`` again), in process.
Only lmdbstore errors (`StoreError`) and the CLI's exit codes may come out; anything else
is a finding, reported with the seed that reproduces it.

Mutations: bit flips, truncation, extension, random bytes; a field of a CBOR record set to
another type, a huge or negative integer, a tagged value (shared references, dates,
bignums), deep nesting or a lying length; keys cut, extended, bit-flipped, given an
unknown kind or a stray device; records deleted behind their indexes; on SQLite, bad UTF-8
text, extreme integers and NULLs in any column, keys included (what ``STRICT`` tables
refuse is tried again otherwise). Pages are not mutated: LMDB has no page checksums, and
a torn page is what `lmdbstore.testing.power_loss` covers.

With ``--encrypted``, the store is an encrypted one (`lmdbstore.encryption`): the mutations
hit its hashed keys and sealed values (on SQLite, the rows of its ``sealed`` table), every
command gets its key, and ``rekey`` and ``decrypt`` run too.

Run it as ``python -m lmdbstore.testing.raw_fuzz --backend lmdb --seconds 60`` (``--help``
for more; it needs the ``testing`` extra, as the conformance suites do). A hang is reported
by `faulthandler` after ``--hang-seconds``, which ends the process; memory is bounded with
``RLIMIT_DATA`` and the peak is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import os
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import cbor2
import lmdb
from click.testing import CliRunner

from lmdbstore import EncryptionKey, Limits, LmdbStore, SqliteStore, StoreError
from lmdbstore.cli.main import main as cli
from lmdbstore.keys import DOMAINS
from lmdbstore.testing.protocol import SECRET, G, fill_every_kind, lid_entry

if TYPE_CHECKING:
    from collections.abc import Callable

SENDER = f"{G}:5511@s.whatsapp.net"
SESSION = "5511:7@s.whatsapp.net.0"

CALLS: list[tuple[str, tuple[object, ...]]] = [
    # Reads of every kind, as fill_every_kind wrote them.
    ("load_identity", ("5511@s.whatsapp.net",)),
    ("get_session", (SESSION,)),
    ("get_sessions_batch", ([SESSION, "x@lid"],)),
    ("has_session", (SESSION,)),
    ("has_signal_state_for_user", ("5511",)),
    ("get_session_addresses", ("5511",)),
    ("is_trusted_identity", ("5511@s.whatsapp.net", SECRET)),
    ("load_prekey", (1,)),
    ("load_prekeys_batch", ([1, 2, 3],)),
    ("get_max_prekey_id", ()),
    ("load_signed_prekey", (3,)),
    ("load_all_signed_prekeys", ()),
    ("get_sender_key", (SENDER,)),
    ("get_sync_key", (b"key-1",)),
    ("get_latest_sync_key_id", ()),
    ("get_all_sync_keys", ()),
    ("get_version", ("regular",)),
    ("get_mutation_mac", ("regular", b"im")),
    ("get_mutation_macs", ("regular", [b"im", b"x"])),
    ("get_sender_key_devices", (G,)),
    ("get_lid_mapping", ("9@lid",)),
    ("get_pn_mapping", ("5511",)),
    ("get_all_lid_mappings", ()),
    ("get_lids_for_pns", (["5511", "5512"],)),
    ("has_same_base_key", ("a@lid", "m1", b"base")),
    ("get_devices", ("5511",)),
    ("get_group_metadata", (G,)),
    ("get_tc_token", ("a@lid",)),
    ("get_tc_token", ("b@lid",)),
    ("get_all_tc_token_jids", ()),
    ("find_tc_token", ("5511@s.whatsapp.net",)),
    ("peek_sent_message", (G, "m1")),
    ("get_pending_inbound", (G, "a@lid", "m2")),
    ("get_msg_secret", (G, "a@lid", "m1")),
    ("get_msg_secret_with_ts", (G, "a@lid", "m2")),
    ("find_msg_secret", (G, "5511@s.whatsapp.net", "m1")),
    ("get_chat_settings", ("120363@g.us",)),
    ("get_contact", ("5511@s.whatsapp.net",)),
    ("get_all_contacts", ()),
    ("get_buffered_event", (bytes(range(32)),)),
    ("get_outgoing_event", (G, "m1", "5511@s.whatsapp.net")),
    ("load", ()),
    ("device_ids", ()),
    ("exists", ()),
    ("resource_report", ()),
    # Writes that read what is stored (indexes, conflicts, expiry, migration).
    ("mark_prekeys_uploaded", ([1, 2],)),
    ("put_lid_mapping", (lid_entry("9@lid", "5512", 3, 4),)),
    ("put_msg_secret", (G, "a@lid", "m1", SECRET)),
    ("put_msg_secret", (G, "b@lid", "m3", SECRET, 60)),  # over its cap: an eviction
    ("store_sent_message", (G, "m4", b"sent")),  # over its cap: an eviction
    ("touch_tc_token_sender_timestamp", ("a@lid", 9)),
    ("store_received_tc_tokens", ([("a@lid", b"t", 9), ("b@lid", b"t", 9)],)),
    ("set_sender_key_status", (G, [("a@lid", False)])),
    ("take_sent_message", (G, "m1")),
    ("migrate_pn_to_lid", ("5511", "77")),
    ("delete_all_sessions", ("5511",)),
    ("delete_all_identities", ("5511",)),
    ("delete_version", ("regular",)),
    ("delete_expired_sent_messages", (2**40,)),
    ("delete_expired_pending_inbound", (2**40,)),
    ("delete_expired_msg_secrets", (2**40,)),
    ("delete_expired_tc_tokens", (2**40, 2**40)),
    ("delete_devices", ("5511",)),
    ("clear_mutation_macs", ("regular",)),
    ("clear_all_sender_key_devices", ()),
    ("put_pinned", ("120363@g.us", True)),
    ("put_push_name", ("5511@s.whatsapp.net", "Ana M")),
    ("put_redacted_phones", ([("4477@s.whatsapp.net", "+44")],)),
    ("put_buffered_event", (bytes(range(32)), b"again", 1)),
    ("clear_buffered_event_plaintext", (bytes(range(32)),)),
    ("delete_old_buffered_hashes", (2**40,)),
    ("add_outgoing_event", (G, "m1", "wa", b"again")),
    ("delete_old_outgoing_events", (2**40,)),
    ("create", ()),
    ("verify", ()),
]
"""Every method that meets stored records, with arguments naming what `fill_every_kind`
wrote."""

DEVICES = (1, 3)


@dataclass
class Finding:
    """A non-lmdbstore exception (or a CLI crash) and how to reproduce it."""

    seed: int
    mutations: list[str]
    where: str
    error: str


@dataclass
class Tally:
    """What a run did."""

    stores: int = 0
    mutations: int = 0
    refused_mutations: int = 0
    store_errors: int = 0
    exit_codes: dict[int, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


# -- the template --------------------------------------------------------------------------


KEY = EncryptionKey(bytes(range(32)))
"""The key of an ``--encrypted`` round's store."""
NEW_KEY = EncryptionKey(bytes(range(32, 64)))
"""The key its ``rekey`` gives it."""


def _options(encrypted: bool) -> dict[str, object]:
    return {"encryption": KEY} if encrypted else {}


def build_template(backend: str, directory: str, encrypted: bool = False) -> str:
    """A valid store with every kind on `DEVICES`, written through the API; its path."""
    path = os.path.join(directory, "template" if backend == "lmdb" else "template.sqlite")
    options = _options(encrypted)

    async def fill() -> None:
        opening = (
            LmdbStore.open(path, durability="full", **options)  # type: ignore[arg-type]
            if backend == "lmdb"
            else SqliteStore.open(path, **options)  # type: ignore[arg-type]
        )
        async with await opening as store:
            for device in DEVICES:
                handle = store.for_device(device)
                await fill_every_kind(handle)
                await handle.close()

    anyio.run(fill)
    return path


def copy_store(template: str, path: str) -> None:
    if os.path.isdir(template):
        os.mkdir(path, 0o700)
        shutil.copyfile(os.path.join(template, "data.mdb"), os.path.join(path, "data.mdb"))
    else:
        shutil.copyfile(template, path)


# -- values --------------------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b"\x81" * depth + b"\x01"


HOSTILE_ITEMS: list[object] = [
    2**64,
    -(2**64),
    10**5000,
    2**63,
    -1,
    1.5,
    float("nan"),
    None,
    True,
    "",
    "x" * 300,
    "\udcff",
    b"",
    b"\x00" * 70,
    [],
    [[1]] * 3,
    {},
    {"r": b"x"},
    cbor2.CBORTag(28, [1, 2]),
    cbor2.CBORTag(1, 10**20),
    cbor2.CBORTag(35, "(a+)+$"),
    cbor2.CBORTag(258, [1, 1]),
    cbor2.CBORTag(9999, b"x"),
    cbor2.undefined,
]
"""What a CBOR field may be set to."""

RAW_VALUES: list[bytes] = [
    b"",
    b"\xff",
    b"\xa0",
    b"\x80",
    b"\xf6",
    _nested(10_000),
    b"\x5b" + b"\xff" * 8,  # a byte string claiming 2**64 - 1 bytes
    b"\xbb\x00\x00\x00\x01\x00\x00\x00\x00",  # a map claiming 2**32 pairs
    b"\xbf\x61r\x41x\xff",  # an indefinite-length map
    b"\xa2\x61r\x41x\x61r\x41y",  # a duplicate key
    cbor2.dumps([[b"a" * 1024] * 1000] * 1000, value_sharing=True),
]
"""Whole values that are not records."""


def _encode(item: object) -> bytes:
    try:
        return cbor2.dumps(item)
    except (cbor2.CBOREncodeError, ValueError, TypeError):
        return b"\xf7"


def mutate_value(rng: random.Random, value: bytes) -> tuple[bytes, str]:
    """A mutated ``value`` and what was done."""
    choice = rng.randrange(8)
    if choice == 0 and value:
        bit = rng.randrange(len(value) * 8)
        flipped = bytearray(value)
        flipped[bit // 8] ^= 1 << (bit % 8)
        return bytes(flipped), f"flip bit {bit}"
    if choice == 1 and value:
        cut = rng.randrange(len(value))
        return value[:cut], f"truncate to {cut}"
    if choice == 2:
        extra = rng.randbytes(rng.randrange(1, 16))
        return value + extra, f"append {extra.hex()}"
    if choice == 3:
        raw = rng.choice(RAW_VALUES)
        return raw, f"replace with {raw[:16].hex()}"
    if choice == 4:
        return rng.randbytes(rng.randrange(0, 40)), "random bytes"
    try:
        fields = cbor2.loads(value)
    except Exception:
        fields = None
    if not isinstance(fields, dict) or not fields:
        return mutate_value(rng, value) if value else (b"\x00", "a zero byte")
    name = rng.choice(sorted(fields, key=repr))
    if choice == 5:
        del fields[name]
        return cbor2.dumps(fields), f"drop field {name!r}"
    item = rng.choice(HOSTILE_ITEMS)
    fields[name] = item
    try:
        raw = cbor2.dumps(fields, value_sharing=choice == 6)
    except (cbor2.CBOREncodeError, ValueError, TypeError):
        raw = _encode({name: None})
    shown = "a 5,000-digit int" if item == 10**5000 else f"{item!r:.40}"
    return raw, f"field {name!r} = {shown}"


def mutate_key(rng: random.Random, key: bytes) -> tuple[bytes, str]:
    """A mutated LMDB key (never empty: LMDB refuses those) and what was done."""
    choice = rng.randrange(6)
    if choice == 0:
        bit = rng.randrange(len(key) * 8)
        flipped = bytearray(key)
        flipped[bit // 8] ^= 1 << (bit % 8)
        return bytes(flipped), f"key bit {bit}"
    if choice == 1 and len(key) > 1:
        cut = rng.randrange(1, len(key))
        return key[:cut], f"key cut to {cut}"
    if choice == 2:
        return key + rng.randbytes(rng.randrange(1, 6)), "key extended"
    if choice == 3 and len(key) > 4:
        return key[:4] + bytes((rng.randrange(256),)) + key[5:], "key kind changed"
    if choice == 4 and len(key) > 4:
        return rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"]) + key[4:], "key device"
    return key.replace(b"\x00", b"", 1) or b"\x01", "key NUL dropped"


# -- mutating below the library ------------------------------------------------------------


def mutate_lmdb(rng: random.Random, path: str, count: int) -> tuple[list[str], int]:
    """``count`` raw mutations of the environment at ``path``: what was done, and how many
    LMDB refused."""
    done: list[str] = []
    refused = 0
    env = lmdb.Environment(path, max_dbs=len(DOMAINS) + 1, map_size=64 << 20)
    try:
        with env.begin(write=True) as txn:
            dbs = {name: env.open_db(name.encode(), txn=txn) for name in DOMAINS}
            items = [
                (name, key, value)
                for name, db in dbs.items()
                for key, value in txn.cursor(db=db).iternext()
            ]
            for _ in range(count):
                name, key, value = rng.choice(items)
                db = dbs[name]
                action = rng.randrange(10)
                try:
                    if action < 6:
                        new, what = mutate_value(rng, value)
                        txn.put(key, new, db=db)
                    elif action < 9:
                        new_key, what = mutate_key(rng, key)
                        txn.delete(key, db=db)
                        txn.put(new_key, value, db=db)
                    else:
                        txn.delete(key, db=db)
                        what = "deleted"
                except lmdb.Error as exc:
                    refused += 1
                    what = f"refused by LMDB: {exc}"
                done.append(f"{name} {key.hex()}: {what}")
    finally:
        env.close()
    return done, refused


def _sqlite_columns(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str, bool]]]:
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {
        table: [
            (row[1], row[2].upper(), bool(row[5]))
            for row in conn.execute(f'PRAGMA table_info("{table}")')
        ]
        for table in tables
    }


def _sqlite_value(rng: random.Random, kind: str, value: object) -> tuple[str, object, str]:
    """An SQL expression with one parameter, its parameter, and what it is."""
    choice = rng.randrange(5)
    if choice == 0:
        return "?", None, "NULL"
    if choice == 1:
        raw = rng.choice([b"\xff\xfe", b"a\x00b", b"\xc3", b"x" * 300])
        return "CAST(? AS TEXT)", raw, f"text {raw[:8]!r}"
    if choice == 2:
        number = rng.choice([2**63 - 1, -(2**63), -1, 0, 2**32, 2**31])
        return "?", number, f"int {number}"
    if kind == "BLOB" and isinstance(value, bytes):
        new, what = mutate_value(rng, value)
        return "?", new, what
    if kind == "TEXT" and isinstance(value, bytes):  # read with text_factory=bytes
        new, what = mutate_value(rng, value)
        return "CAST(? AS TEXT)", new, what
    return "?", rng.randbytes(rng.randrange(0, 12)), "random blob"


def mutate_sqlite(rng: random.Random, path: str, count: int) -> tuple[list[str], int]:
    """``count`` mutations of rows of the database at ``path``: what was done, and how many
    SQLite refused (a STRICT column, NOT NULL, a primary key already taken)."""
    done: list[str] = []
    refused = 0
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        columns = _sqlite_columns(conn)
        conn.text_factory = bytes  # text mutated before may no longer be UTF-8
        # The tables with rows (an encrypted store's are one: sealed).
        populated = [t for t in sorted(columns) if conn.execute(f'SELECT 1 FROM "{t}"').fetchone()]
        for _ in range(count):
            table = rng.choice(populated)
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            if not rows:
                continue
            row = rng.choice(rows)
            names = [name for name, _, _ in columns[table]]
            keys = [(n, t, v) for (n, t, pk), v in zip(columns[table], row, strict=True) if pk]
            where = (
                " AND ".join(
                    f'"{n}" IS CAST(? AS TEXT)' if t == "TEXT" else f'"{n}" IS ?'
                    for n, t, _ in keys
                )
                or "1"
            )
            params = [v for _, _, v in keys]
            if rng.randrange(10) == 0:
                sql, what = f'DELETE FROM "{table}" WHERE {where}', "deleted"
                args: list[object] = params
            else:
                column = rng.randrange(len(names))
                kind = columns[table][column][1]
                expression, value, what = _sqlite_value(rng, kind, row[column])
                sql = f'UPDATE "{table}" SET "{names[column]}" = {expression} WHERE {where}'
                args = [value, *params]
                what = f"{names[column]} = {what}"
            try:
                conn.execute(sql, args)
            except sqlite3.Error as exc:
                refused += 1
                what = f"refused by SQLite: {exc}"
            done.append(f"{table}: {what}")
    finally:
        conn.close()
    return done, refused


# -- driving the result --------------------------------------------------------------------


async def drive_api(
    backend: str, path: str, report: Callable[[str, BaseException], None], encrypted: bool = False
) -> int:
    """Every call of `CALLS` on each device, a transaction and ``delete_device``; exceptions other
    than `StoreError` go to ``report``. The number of StoreErrors. The store is capped at one
    sent message and one expiring secret, so that writing either evicts (walking the
    tallies and the time indexes that the mutations may have broken)."""
    opener = LmdbStore if backend == "lmdb" else SqliteStore
    errors = 0
    try:
        store = await opener.open(
            path,
            limits=Limits(sent_messages=1, msg_secrets=1),
            **_options(encrypted),  # type: ignore[arg-type]
        )
    except StoreError:
        return 1
    except Exception as exc:
        report("open", exc)
        return 0
    try:
        # Every handle first: deleting device 1 ends the store handle's life too.
        handles = [(device, store.for_device(device)) for device in DEVICES]
        for device, handle in handles:
            for name, args in CALLS:
                try:
                    await getattr(handle, name)(*args)
                except StoreError:
                    errors += 1
                except Exception as exc:
                    report(f"device {device}: {name}{args!r:.60}", exc)
            try:
                async with handle.transaction() as tx:
                    await tx.get_session(SESSION)
                    await tx.get_all_lid_mappings()
                    await tx.get_all_tc_token_jids()
                    await tx.put_session(SESSION, b"again")
            except StoreError:
                errors += 1
            except Exception as exc:
                report(f"device {device}: transaction", exc)
            try:
                await handle.delete_device()  # last: the handle refuses every call then
            except StoreError:
                errors += 1
            except Exception as exc:
                report(f"device {device}: delete_device", exc)
            await handle.close()
    finally:
        with contextlib.suppress(StoreError):
            await store.close()
    return errors


def drive_cli(
    path: str,
    work: str,
    tally: Tally,
    report: Callable[[str, BaseException], None],
    encrypted: bool = False,
) -> None:
    """Every CLI command on ``path``, in process (of an encrypted store, with its key, and
    ``rekey`` and ``decrypt`` too); an exception other than SystemExit from one of them is
    a finding."""
    runner = CliRunner()
    export = os.path.join(work, "export.jsonl")
    other = "lmdb://" if path.endswith(".sqlite") else "sqlite://"
    key: list[str] = []
    if encrypted:
        for name, value in (("key", KEY), ("new.key", NEW_KEY)):
            with open(os.path.join(work, name), "w") as file:
                file.write(value.hex())
        key = ["--key-file", os.path.join(work, "key")]
    commands = [
        ["info", *key, path],
        ["info", "--json", *key, path],
        ["verify", *key, path],
        ["export", "-o", export, *key, path],
        ["import", export, "lmdb://" + os.path.join(work, "imported")],
        ["migrate", *key, path, other + os.path.join(work, "migrated")],
        ["snapshot", *key, path, os.path.join(work, "snapshot")],
        ["compact", *key, path],
        ["verify", *key, path],  # what compact left
    ]
    if encrypted:
        new_key = ["--key-file", os.path.join(work, "new.key")]
        commands += [
            ["rekey", *key, "--new-key-file", new_key[1], path],
            ["decrypt", *new_key, path],
            ["verify", path],  # what decrypt left, or the store as it was
        ]
    for command in commands:
        if command[0] == "import" and not os.path.exists(export):
            continue
        result = runner.invoke(cli, command)
        tally.exit_codes[result.exit_code] = tally.exit_codes.get(result.exit_code, 0) + 1
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            report(f"lmdbstore {' '.join(command[:1])}", result.exception)


def one_store(
    backend: str, template: str, seed: int, work: str, tally: Tally, encrypted: bool = False
) -> None:
    """A round: copy, mutate, drive."""
    rng = random.Random(seed)
    path = os.path.join(work, "store" if backend == "lmdb" else "store.sqlite")
    copy_store(template, path)
    mutate = mutate_lmdb if backend == "lmdb" else mutate_sqlite
    mutations, refused = mutate(rng, path, rng.randrange(1, 4))
    tally.mutations += len(mutations)
    tally.refused_mutations += refused

    def report(where: str, exc: BaseException) -> None:
        error = "".join(traceback.format_exception(exc)[-3:])
        tally.findings.append(Finding(seed, mutations, where, error))

    tally.store_errors += anyio.run(drive_api, backend, path, report, encrypted)
    drive_cli(path, work, tally, report, encrypted)
    tally.stores += 1


def run(
    backend: str,
    seconds: float,
    stores: int | None,
    seed: int,
    hang_seconds: float,
    encrypted: bool = False,
) -> Tally:
    """Rounds until ``seconds`` have passed (or ``stores`` rounds), seeds from ``seed``."""
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="lmdbstore-fuzz-") as directory:
        template = build_template(backend, directory, encrypted)
        deadline = time.monotonic() + seconds
        index = 0
        while (stores is None and time.monotonic() < deadline) or (
            stores is not None and index < stores
        ):
            work = tempfile.mkdtemp(dir=directory)
            faulthandler.dump_traceback_later(hang_seconds, exit=True)
            try:
                one_store(backend, template, seed + index, work, tally, encrypted)
            finally:
                faulthandler.cancel_dump_traceback_later()
            shutil.rmtree(work, ignore_errors=True)
            index += 1
    return tally


def peak_memory_mib() -> float:
    """This process's peak resident memory: ``VmHWM`` (Linux), which starts afresh at
    ``exec``, unlike ``ru_maxrss``, which keeps the peak of the process that forked it."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmdbstore.testing.raw_fuzz")
    parser.add_argument("--backend", choices=["lmdb", "sqlite"], required=True)
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget")
    parser.add_argument("--stores", type=int, default=None, help="rounds (instead of time)")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: random)")
    parser.add_argument("--hang-seconds", type=float, default=60.0)
    parser.add_argument("--memory-mib", type=int, default=2048, help="RLIMIT_DATA")
    parser.add_argument("--encrypted", action="store_true", help="an encrypted store")
    options = parser.parse_args(argv)
    limit = options.memory_mib << 20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    seed = options.seed if options.seed is not None else random.randrange(2**32)
    started = time.monotonic()
    tally = run(
        options.backend,
        options.seconds,
        options.stores,
        seed,
        options.hang_seconds,
        options.encrypted,
    )
    peak_mib = peak_memory_mib()
    print(
        f"{options.backend}{' encrypted' if options.encrypted else ''}:"
        f" {tally.stores} stores from seed {seed} in"
        f" {time.monotonic() - started:.0f} s, {tally.mutations} mutations"
        f" ({tally.refused_mutations} refused by the engine), {tally.store_errors} StoreErrors,"
        f" CLI exit codes {dict(sorted(tally.exit_codes.items()))},"
        f" peak memory {peak_mib:.0f} MiB, {len(tally.findings)} findings"
    )
    for finding in tally.findings[:20]:
        print(f"\nseed {finding.seed}: {finding.where}")
        for mutation in finding.mutations:
            print(f"  {mutation}")
        print("  " + finding.error.replace("\n", "\n  "))
    return 1 if tally.findings else 0


if __name__ == "__main__":
    sys.exit(main())
