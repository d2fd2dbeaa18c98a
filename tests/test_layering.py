"""Each contract method is implemented in one place: the domain layer, shared by every
store on a storage (`lmdbstore.domains`), or the derivations every store shares
(`lmdbstore.derived`). Only what a store has of its own (opening, closing, copies, reports)
is written per store.

``pytest tests/test_layering.py -s`` prints where each method of each store lives.
"""

from __future__ import annotations

import inspect

from lmdbstore import Backend, LmdbStore, MemoryStore, PostgresStore, SqliteStore
from lmdbstore.protocols import vars_of

STORE_OWN = {"close", "for_device", "path", "copy_to", "resource_report", "snapshot_db"}
"""Methods each store writes for itself: they are about its files or its memory."""

SHARED_MODULES = ("lmdbstore.domains.", "lmdbstore.derived")


def where(store: type, name: str) -> str:
    """The module and class that define ``store``'s method ``name``."""
    for klass in store.__mro__:
        if name in vars(klass):
            return f"{klass.__module__}.{klass.__qualname__}"
    raise AssertionError(f"{store.__name__} has no {name}")


def implementations() -> dict[str, dict[str, str]]:
    """For each contract method, where each store implements it."""
    stores = (LmdbStore, MemoryStore, SqliteStore, PostgresStore)
    return {name: {s.__name__: where(s, name) for s in stores} for name in vars_of(Backend)}


def test_every_contract_method_is_written_once_for_every_store() -> None:
    table = implementations()
    for name, found in sorted(table.items()):
        print(f"{name:40} " + "  ".join(f"{s}: {w}" for s, w in found.items()))
    shared = [LmdbStore, MemoryStore, SqliteStore, PostgresStore]
    for name in table:
        if name in STORE_OWN:
            continue
        defined = {inspect.getattr_static(s, name) for s in shared}
        assert len(defined) == 1, f"{name} has {len(defined)} copies"
        place = where(LmdbStore, name)
        assert place.startswith(SHARED_MODULES), f"{name} is implemented in {place}"


def test_no_store_on_the_domain_layer_defines_a_domain_method_of_its_own() -> None:
    domain_methods = set(vars_of(Backend)) - STORE_OWN
    for store in (LmdbStore, MemoryStore, SqliteStore, PostgresStore):
        own = domain_methods & set(vars(store))
        assert own == set(), f"{store.__name__} defines {sorted(own)} itself"


def test_every_kind_is_declared_once_and_every_user_of_the_declarations_covers_it() -> None:
    from lmdbstore import keys
    from lmdbstore.domains.verify import KINDS as VERIFIED
    from lmdbstore.kinds import ALL, BY_TAG
    from lmdbstore.storage.sql import TABLES
    from lmdbstore.transfer.records import KINDS as EXPORTED
    from lmdbstore.transfer.source import RECORD_READERS, STRUCTURED

    tags = {
        (db, int(tag))
        for db, enum in (
            ("signal", keys.SignalTag),
            ("appsync", keys.AppSyncTag),
            ("protocol", keys.ProtocolTag),
            ("msgsecret", keys.MsgSecretTag),
            ("device", keys.DeviceTag),
            ("contact", keys.ContactTag),
            ("chat", keys.ChatTag),
            ("eventbuf", keys.EventBufferTag),
            ("cache", keys.CacheTag),
        )
        for tag in enum
    } - {("protocol", int(keys.ProtocolTag.WRITE_SEQ))}  # a counter, not a record
    assert set(BY_TAG) == tags and len(ALL) == len(tags)
    assert {(db, tag) for db, kinds in VERIFIED.items() for tag in kinds} == tags
    assert set(TABLES) == {t for t in tags if t[0] != "cache"}  # SQLite keeps no cache
    records = {k.name for k in ALL if not k.is_index}
    exported = {k.name for k in ALL if not k.is_index and k.exported}
    assert {name for name, _ in RECORD_READERS.values()} == exported
    assert exported <= set(EXPORTED)
    for kind in ALL:  # a kind exported as its fields names each export field once
        if kind.name in exported and kind.name not in STRUCTURED:
            assert sorted(kind.export_names) == sorted(EXPORTED[kind.name]), kind.name
    for kind in ALL:
        assert 1 <= kind.since <= keys.FORMAT_VERSION, kind.name
        if kind.is_index:
            assert kind.index_of in records and kind.dump is None, kind.name
            assert not kind.table and not kind.values, kind.name
        else:
            assert kind.dump and kind.fields and kind.read and kind.values, kind.name


def test_no_module_builds_a_key_by_hand() -> None:
    """Record keys and index entries come from their kind's declaration (`lmdbstore.kinds`,
    `lmdbstore.domains.records`): no module but the declarations names a record tag."""
    import enum
    import pathlib

    from lmdbstore import keys

    tag_enums = [
        value
        for value in vars(keys).values()
        if isinstance(value, type)
        and issubclass(value, enum.IntEnum)
        and value.__name__.endswith("Tag")
    ]
    assert len(tag_enums) == 9
    tags = {f"{found.__name__}.{tag.name}" for found in tag_enums for tag in found}
    root = pathlib.Path(__file__).parent.parent / "lmdbstore"
    for path in root.rglob("*.py"):
        if path.name in ("keys.py", "kinds.py"):
            continue
        text = path.read_text()
        named = sorted(tag for tag in tags if tag in text)
        assert named == [], f"{path.relative_to(root)} builds {named} by hand"
