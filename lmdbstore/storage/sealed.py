"""The view of an encrypted store: the domain layer's keys and values, sealed on the way
down (`lmdbstore.encryption` is the public side).

The domain layer builds and reads keys and values as on a plain store (`lmdbstore.kinds`);
`SealedReadView` and `SealedWriteView` stand between it and a storage's own view and
change what is stored:

- **Keys.** Device ids, tags and integer components (pre-key ids, times, sequence
  numbers) stay as they are, so device scans, id ranges and expiry walk the index in
  time order as on a plain store. Every string and raw-bytes component (addresses, JIDs,
  phone numbers, group ids, names, message ids, key ids, MACs) is stored as its keyed
  hash, 16 bytes of BLAKE2b under a key of the store (`NAME_BYTES`): lookups and scans by
  whole components work, and equal names give equal hashes, so a record and its index
  entries still share their stored components (expiry deletes both by key). The one scan
  by part of a string, a user's sessions and identities (``user:`` and ``user@``), works
  because an address of those kinds is stored split as ``hash(user) · separator ·
  hash(rest)``. Stored keys are in hash order, so a scan sorts what it reads of one
  device's records of one kind, and comes in key order as on a plain store (every listing
  of the API is such a scan, and returns a list anyway). A walk of everything (export,
  verify: `ReadView.walk`) comes in stored order and holds nothing.
- **Values.** Every value of a record or index entry is ``nonce · AES-256-GCM(components
  · value)``, the associated data being the sub-database's name and the stored key: a
  value moved to another key, or copied from another store (whose keys derive from
  another salt), fails to open. The plaintext holds the key's components too, so scans
  give back names, not hashes. A value that fails to open is a `SerializationError`
  naming the domain and the stored key (``verify`` reports each and goes on).
- **Nonces never repeat within a `Cipher` and almost surely never across them.** Each
  `Cipher` (one per open store: the handles of an LMDB path in a process share it)
  starts a 96-bit counter at a random point and adds one per seal (under the interpreter
  lock: ``next`` of an `itertools.count`), so two values it seals never share a nonce.
  Two ciphers of one store (two processes, two opens) collide only when their counters'
  runs overlap: for *n* runs of *m* seals each, a probability below
  n²·m / 2⁹⁶ (a thousand opens of a billion seals each: 10⁻¹⁷). Each store and each
  ``rekey`` derives its own AES key, so stores do not share that budget.
- **Not sealed:** ``meta`` (the format version, the device counter, the encryption record:
  salt and key check) and a device's tallies and LID write sequence, which are counts.

AES-256-GCM was picked by measurement (`cryptography`, 600-byte values, this machine):
0.56 µs to seal and 0.58 to open, against 1.0 for ChaCha20-Poly1305 and 2.3 for
AES-GCM-SIV; keyed BLAKE2b hashes a name in 0.3 µs (from a copied keyed state) against
1.26 for HMAC-SHA256.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from typing import TYPE_CHECKING, Any, Final

import cbor2

from lmdbstore import codec
from lmdbstore.errors import SerializationError, StoreConnectionError
from lmdbstore.keys import DOMAINS, prefix_end
from lmdbstore.kinds import ALL, BY_NAME
from lmdbstore.storage.view import PrefixScans

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from lmdbstore.encryption import EncryptionKey
    from lmdbstore.storage.view import ReadView

ENCRYPTION_KEY: Final = b"encryption"
"""The ``meta`` key of an encrypted store's encryption record (salt, cipher, key check)."""
CIPHER_NAME: Final = "aes-256-gcm"
NAME_BYTES: Final = 16
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
SALT_BYTES: Final = 16
REMEMBERED: Final = 16384
"""Keys whose stored form a generation of `Cipher.stored_key`'s memory holds, per
sub-database: at most about 5 MB for a sub-database whose hot set is that large."""
_CHECK: Final = b"lmdbstore key check"
_NONCES: Final = (1 << 96) - 1
"""The nonce counter's mask: it wraps at 2**96."""

_SPLIT: Final = {(BY_NAME[name].db, BY_NAME[name].tag) for name in ("identity", "session")}
"""The kinds whose address is stored split at its user (see the module docstring)."""
_LAYOUTS: Final[dict[tuple[str, int], tuple[str, ...]]] = {
    (kind.db, kind.tag): tuple(
        "a" if i == 0 and (kind.db, kind.tag) in _SPLIT else component
        for i, (_, component) in enumerate(kind.key)
    )
    for kind in ALL
}
"""The stored form of each kind's components: ``a`` (a split address), ``s``, ``b`` (a
keyed hash), ``u32`` and ``i64`` (as they are)."""
_WIDTHS: Final = {"u32": 4, "i64": 8}
_HASHED: Final = frozenset(
    where for where, layout in _LAYOUTS.items() if set(layout) & {"a", "s", "b"}
)
"""The kinds with a hashed component: a scan of theirs is sorted."""
_SEALED_TAGS: Final = {
    db: bytes(sorted(tag for where, tag in _LAYOUTS if where == db and db != "meta"))
    for db in DOMAINS
}
"""The tags of each sub-database whose values are sealed (`Cipher.sealed`)."""
_ONE_STRING: Final = {
    where: layout[0] for where, layout in _LAYOUTS.items() if layout in (("s",), ("a",))
}
"""The kinds whose key is one string (``s``, or ``a``: an address): `Cipher.stored_key`'s
shortcut, since a string in a key holds no NUL."""


class Cipher:
    """The keys of one encrypted store, and what it does with them (see the module).
    Build with `create` (a new store) or `opened` (an existing one's record)."""

    __slots__ = (
        "_ads",
        "_counter",
        "_decrypt",
        "_encrypt",
        "_hasher",
        "_new",
        "_old",
        "_unopened",
        "record",
    )

    def __init__(self, key: EncryptionKey, salt: bytes, record: bytes) -> None:
        # cryptography is the optional "encryption" extra: imported by an encrypted store.
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        except ImportError:
            raise StoreConnectionError(
                "encryption needs the cryptography package: pip install 'lmdbstore[encryption]'"
            ) from None

        derived = HKDF(hashes.SHA256(), 64, salt, b"lmdbstore encryption 1").derive(key.raw)
        aead = AESGCM(derived[:32])
        self._encrypt = aead.encrypt
        self._decrypt = aead.decrypt
        self._hasher = hashlib.blake2b(key=derived[32:], digest_size=NAME_BYTES)
        self._counter = itertools.count(int.from_bytes(os.urandom(NONCE_BYTES), "big"))
        self._ads = {db: db.encode() + b"\x00" for db in DOMAINS}
        self._unopened = (InvalidTag, ValueError)  # ValueError: too short for a nonce
        # The stored form of recent keys, by sub-database, in two generations (stored_key).
        self._new: dict[str, dict[bytes, bytes]] = {db: {} for db in DOMAINS}
        self._old: dict[str, dict[bytes, bytes]] = {db: {} for db in DOMAINS}
        self.record = record
        """The store's encryption record, as stored in ``meta``."""

    @classmethod
    def create(cls, key: EncryptionKey) -> Cipher:
        """The cipher of a new store: a new salt, and the record that `opened` checks."""
        salt = os.urandom(SALT_BYTES)
        cipher = cls(key, salt, b"")
        check = cipher._seal_raw(_CHECK, cipher._ads["meta"] + ENCRYPTION_KEY)
        cipher.record = cbor2.dumps({"v": 1, "c": CIPHER_NAME, "s": salt, "k": check})
        return cipher

    @classmethod
    def opened(cls, key: EncryptionKey, record: bytes, where: str) -> Cipher:
        """The cipher of the store at ``where`` whose encryption record is ``record``: a
        `StoreConnectionError` when ``key`` is not its key or the record is not one."""
        try:
            found = codec.loads(record)
            if not isinstance(found, dict) or found.get("v") != 1:
                raise ValueError("an unknown version")
            if found.get("c") != CIPHER_NAME:
                raise ValueError(f"an unknown cipher {found.get('c')!r}")
            salt, check = found.get("s"), found.get("k")
            if not isinstance(salt, bytes) or len(salt) != SALT_BYTES:
                raise ValueError("no salt")
            if not isinstance(check, bytes):
                raise ValueError("no key check")
        except codec.DECODE_ERRORS as exc:
            raise StoreConnectionError(
                f"{where}: its encryption record is unreadable ({exc}): the store cannot be opened"
            ) from None
        cipher = cls(key, salt, record)
        try:
            ok = cipher._open_raw(check, "meta", ENCRYPTION_KEY) == _CHECK
        except SerializationError:
            ok = False
        if not ok:
            raise StoreConnectionError(f"{where}: wrong encryption key for this store")
        return cipher

    def same_key(self, key: EncryptionKey) -> bool:
        """Whether ``key`` is this store's key."""
        try:
            Cipher.opened(key, self.record, "")
        except StoreConnectionError:
            return False
        return True

    # -- keys ------------------------------------------------------------------------------

    def _name(self, raw: bytes) -> bytes:
        hasher = self._hasher.copy()  # a copy of the keyed state: 0.3 µs against 0.5
        hasher.update(raw)
        return hasher.digest()

    def _address(self, raw: bytes, partial: bool) -> bytes:
        """A split address (see the module), or the ``user`` and separator of a scan."""
        at = raw.find(b":")
        other = raw.find(b"@", 0, None if at < 0 else at)
        if other >= 0:
            at = other
        if at < 0:
            if partial:
                raise ValueError("an encrypted store scans addresses only by user")
            return self._name(raw) + b"\x00"
        if partial:
            if at != len(raw) - 1:
                raise ValueError("an encrypted store scans addresses only by user")
            return self._name(raw[:at]) + raw[at:]
        return self._name(raw[:at]) + raw[at : at + 1] + self._name(raw[at + 1 :])

    def stored_key(self, db: str, key: bytes) -> bytes:
        """The stored form of the key or key prefix ``key`` (itself where nothing is
        hashed). A prefix may end inside a string only where it is a user's addresses.

        The stored forms of the last `REMEMBERED` to 2 x `REMEMBERED` keys of records
        named by one string (sessions, identities, sender keys, ...) of each sub-database
        are remembered: the hot contacts of a client, whose two hashes cost more than the
        read itself. Two generations of a dict each: a key found in the old one moves to
        the new, and the old one is dropped whenever the new one is full."""
        found = self._new[db].get(key)
        return found if found is not None else self._stored_key(db, key)

    def _stored_key(self, db: str, key: bytes) -> bytes:
        if len(key) <= 5 or db == "meta":
            return key
        kind = (db, key[4])
        one = _ONE_STRING.get(kind)
        if one is not None and key.find(b"\x00", 5) == len(key) - 1:  # one whole string
            found = self._old[db].get(key)
            if found is None:
                raw = key[5:-1]
                found = key[:5] + (self._name(raw) if one == "s" else self._address(raw, False))
            new = self._new[db]
            if len(new) >= REMEMBERED:
                self._old[db], new = new, {}
                self._new[db] = new
            new[key] = found
            return found
        layout = _LAYOUTS.get(kind)
        if layout is None:  # a tally, the write sequence: counts, not sealed
            return key
        parts = [key[:5]]
        at = 5
        end = len(key)
        for component in layout:
            if at >= end:
                break
            if component in ("s", "a"):
                stop = key.find(b"\x00", at)
                if stop < 0:
                    if component == "s":
                        raise ValueError("an encrypted store scans by whole strings only")
                    parts.append(self._address(key[at:], True))
                    at = end
                    break
                raw = key[at:stop]
                parts.append(self._name(raw) if component == "s" else self._address(raw, False))
                at = stop + 1
            elif component == "b":
                parts.append(self._name(key[at:]))
                at = end
            else:
                width = _WIDTHS[component]
                if at + width > end:
                    raise ValueError("an encrypted store scans by whole integers only")
                parts.append(key[at : at + width])
                at += width
        if at != end:
            raise ValueError("a key longer than its kind's")
        return b"".join(parts)

    def stored_range(self, db: str, start: bytes, stop: bytes | None) -> tuple[bytes, bytes | None]:
        """The stored bounds of a scan from ``start`` to ``stop`` that meets exactly the
        keys of the logical range: a prefix (``stop`` its end), bounds within the device
        and kind bytes (which are stored as they are), or ``stop`` extending ``start`` by
        an integer (a time index read up to a time, whose integers are stored as they
        are). Any other range (one resumed past a key: `Storage.scans_resume`) has no
        stored form in hash order: `ValueError`."""
        stored = self.stored_key(db, start)
        if stop is None:
            if len(start) > 5:
                raise ValueError("an encrypted store scans to the end only from a kind")
            return stored, None
        if stop == prefix_end(start):
            return stored, prefix_end(stored)
        if len(start) <= 5 and len(stop) <= 5:
            return start, stop
        width = len(stop) - len(start)
        if stop[: len(start)] == start and width in (4, 8) and self._int_after(db, start, width):
            return stored, stored + stop[len(start) :]
        raise ValueError("an encrypted store scans only prefixes and integer ranges")

    def _int_after(self, db: str, prefix: bytes, width: int) -> bool:
        """Whether the component of ``db``'s keys right after the whole components of
        ``prefix`` is an integer of ``width`` bytes."""
        layout = _LAYOUTS.get((db, prefix[4])) if len(prefix) >= 5 else None
        if layout is None:
            return False
        at, index = 5, 0
        while at < len(prefix) and index < len(layout):
            component = layout[index]
            if component in _WIDTHS:
                at += _WIDTHS[component]
            elif component == "b":
                return False
            else:
                end = prefix.find(b"\x00", at)
                if end < 0:
                    return False
                at = end + 1
            index += 1
        return at == len(prefix) and index < len(layout) and _WIDTHS.get(layout[index]) == width

    # -- values ----------------------------------------------------------------------------

    def _seal_raw(self, plain: bytes, ad: bytes) -> bytes:
        nonce = (next(self._counter) & _NONCES).to_bytes(NONCE_BYTES, "big")
        return nonce + self._encrypt(nonce, plain, ad)

    def _open_raw(self, sealed: bytes, db: str, stored: bytes) -> bytes:
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise SerializationError(db, stored, "too short for a sealed value")
        try:
            return self._decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self._ads[db] + stored)
        except self._unopened:
            raise _tampered(db, stored) from None

    def sealed_item(self, db: str, key: bytes, value: bytes) -> tuple[bytes, bytes]:
        """The stored key and value of ``key`` holding ``value``: sealed, or as they are
        where nothing is sealed. On the path of every write: one frame, the stored key
        looked up first."""
        stored = self._new[db].get(key)
        if stored is None:
            stored = self._stored_key(db, key)
            if not self.sealed(db, stored):
                return stored, value
        components = key[5:]
        plain = len(components).to_bytes(2, "big") + components + value
        return stored, self._seal_raw(plain, self._ads[db] + stored)

    def read(self, get: Callable[[str, bytes], bytes | None], db: str, key: bytes) -> bytes | None:
        """``get``'s point read of ``key``'s stored form, opened: the hottest path of an
        encrypted store (`lmdbstore.storage.lmdb.Engine.get`), in as few frames as it
        takes."""
        found = self._new[db].get(key)
        if found is None:
            stored = self._stored_key(db, key)
            raw = get(db, stored)
            return raw if raw is None else self.value(db, stored, raw)
        raw = get(db, found)  # a remembered key: a record's, sealed
        return raw if raw is None else self._opened_value(db, found, raw, self._ads[db] + found)

    def open(self, db: str, stored: bytes, sealed: bytes) -> tuple[bytes, bytes]:
        """The key and value sealed at ``stored``; a `SerializationError` when it does not
        open."""
        plain = self._open_raw(sealed, db, stored)
        width = int.from_bytes(plain[:2], "big")
        if len(plain) < 2 + width:
            raise SerializationError(db, stored, "a sealed value too short for its key")
        return stored[:5] + plain[2 : 2 + width], plain[2 + width :]

    def value(self, db: str, stored: bytes, raw: bytes) -> bytes:
        """The value a point read found at ``stored``: `open`'s value when it is sealed
        (the key is the reader's), else ``raw``."""
        if db == "meta" or stored[4] not in _SEALED_TAGS[db]:  # a point read's key: 5+ bytes
            return raw
        return self._opened_value(db, stored, raw, self._ads[db] + stored)

    def _opened_value(self, db: str, stored: bytes, raw: bytes, ad: bytes) -> bytes:
        """`open`'s value only (``ad``: the associated data of ``stored``), written out
        rather than through `open`: the hottest path of an encrypted store."""
        try:
            plain = self._decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], ad)
        except self._unopened:
            raise _tampered(db, stored) from None
        # Authenticated: as `seal` wrote it, its key's length first.
        return plain[2 + (plain[0] << 8 | plain[1]) :]

    def item(self, db: str, stored: bytes, value: bytes) -> tuple[bytes, bytes]:
        """A stored item as the domain layer sees it (one that is not sealed as it is)."""
        return self.open(db, stored, value) if self.sealed(db, stored) else (stored, value)

    @staticmethod
    def in_hash_order(db: str, key: bytes) -> bool:
        """Whether the records of the kind of ``key`` are stored in another order than
        their keys'."""
        return len(key) >= 5 and (db, key[4]) in _HASHED

    @staticmethod
    def sealed(db: str, key: bytes) -> bool:
        """Whether the value at the stored ``key`` of ``db`` is sealed."""
        return len(key) >= 5 and key[4] in _SEALED_TAGS[db]


def _tampered(db: str, stored: bytes) -> SerializationError:
    return SerializationError(
        db,
        stored,
        "fails authentication: altered, moved from another key, or sealed with another key",
    )


def cipher_for(
    where: str,
    record: bytes | None,
    key: EncryptionKey | None,
    holds_records: Callable[[], bool] | None = None,
) -> Cipher | None:
    """The cipher of the store ``where`` whose encryption record is ``record`` (``None``:
    it has none), opened with ``key``: ``None`` for a plain store; for a new store opened
    with a key, a new cipher, whose record the caller writes. An encrypted store without
    its key, a wrong key, or a plain store opened with a key is a `StoreConnectionError`:
    one that holds records (``holds_records()``), or any when the open creates nothing
    (``holds_records`` not given: a read-only open, a conversion)."""
    if record is not None:
        if key is None:
            raise StoreConnectionError(
                f"{where} is encrypted: open it with its key (encryption=...; on the command"
                " line, --key-file or --keyring)"
            )
        return Cipher.opened(key, record, where)
    if key is None:
        return None
    if holds_records is None:
        raise StoreConnectionError(f"{where} is not encrypted: open it without a key")
    if holds_records():
        raise StoreConnectionError(
            f"{where} is not encrypted and holds records: convert it with lmdbstore encrypt"
            " (a PostgreSQL schema: migrate it with --dest-key-file) rather than opening it"
            " with a key"
        )
    return Cipher.create(key)


class Recoding:
    """What ``lmdbstore encrypt``, ``decrypt`` and ``rekey`` do to each stored item: open it
    with the store's cipher (``old``; ``None``: a plain store) and seal it with ``new``
    (``None``: store it plain), whose encryption record replaces the old one in ``meta``.
    A value that does not open is a `SerializationError`: nothing is converted."""

    __slots__ = ("_new", "_old")

    def __init__(self, old: Cipher | None, new: Cipher | None) -> None:
        self._old = old
        self._new = new

    def items(self, db: str, items: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
        """``items`` of ``db`` as stored, recoded."""
        old, new = self._old, self._new
        if db == "meta":
            yield from ((key, value) for key, value in items if key != ENCRYPTION_KEY)
            if new is not None:
                yield ENCRYPTION_KEY, new.record
            return
        for stored, value in items:
            key, plain = (stored, value) if old is None else old.item(db, stored, value)
            yield (key, plain) if new is None else new.sealed_item(db, key, plain)


class SealedReadView(PrefixScans):
    """A `lmdbstore.storage.view.ReadView` over ``inner`` (a storage's own view) that
    shows the records of an encrypted store as the domain layer wrote them."""

    __slots__ = ("_cipher", "_inner")

    def __init__(self, inner: Any, cipher: Cipher) -> None:
        self._inner = inner
        self._cipher = cipher

    def get(self, db: str, key: bytes) -> bytes | None:
        cipher = self._cipher
        stored = cipher.stored_key(db, key)
        raw: bytes | None = self._inner.get(db, stored)
        return raw if raw is None else cipher.value(db, stored, raw)

    def _in_key_order(
        self, db: str, items: Iterator[tuple[bytes, bytes]], reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        """``items`` opened, each run of one device's records of a kind in hash order
        sorted (see the module docstring)."""
        cipher = self._cipher
        run: list[tuple[bytes, bytes]] = []
        head = b""
        for stored, value in items:
            item = cipher.item(db, stored, value)
            if cipher.in_hash_order(db, stored):
                if stored[:5] != head:
                    yield from sorted(run, reverse=reverse)
                    run, head = [], stored[:5]
                run.append(item)
                continue
            if run:
                yield from sorted(run, reverse=reverse)
                run, head = [], b""
            yield item
        yield from sorted(run, reverse=reverse)

    def scan(
        self, db: str, start: bytes, stop: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        first, last = self._cipher.stored_range(db, start, stop)
        return self._in_key_order(db, self._inner.scan(db, first, last, reverse=reverse), reverse)

    def scan_prefix(self, db: str, key_prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        stored = self._cipher.stored_key(db, key_prefix)
        return self._in_key_order(db, self._inner.scan_prefix(db, stored), False)

    def walk(self, db: str, key_prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        cipher = self._cipher
        for stored, value in self._inner.scan_prefix(db, cipher.stored_key(db, key_prefix)):
            yield cipher.item(db, stored, value)

    def last(self, db: str, key_prefix: bytes) -> tuple[bytes, bytes] | None:
        if self._cipher.in_hash_order(db, key_prefix):
            return max(self.scan_prefix(db, key_prefix), default=None)
        found = self._inner.last(db, self._cipher.stored_key(db, key_prefix))
        return None if found is None else self._cipher.item(db, *found)

    def first_device(self, db: str, at: int) -> int | None:
        found: int | None = self._inner.first_device(db, at)
        return found

    def entries(self, db: str) -> int:
        """How many keys ``db`` holds (`lmdbstore.storage.lmdb.LmdbReadView.entries`)."""
        count: int = self._inner.entries(db)
        return count

    def audit(
        self, db: str, key_prefix: bytes
    ) -> Iterator[tuple[bytes, bytes] | SerializationError]:
        cipher = self._cipher
        for stored, value in self._inner.scan_prefix(db, cipher.stored_key(db, key_prefix)):
            try:
                yield cipher.item(db, stored, value)
            except SerializationError as exc:
                yield exc


class SealedWriteView(SealedReadView):
    """`SealedReadView` of a write: a `lmdbstore.storage.view.WriteView`."""

    __slots__ = ()

    def put(self, db: str, key: bytes, value: bytes) -> None:
        self._inner.put(db, *self._cipher.sealed_item(db, key, value))

    def put_many(self, db: str, items: Iterable[tuple[bytes, bytes]]) -> None:
        # In stored order: a B-tree fills best, and a bulk load may append (LMDB).
        sealed_item = self._cipher.sealed_item
        self._inner.put_many(db, sorted(sealed_item(db, key, value) for key, value in items))

    def delete(self, db: str, key: bytes) -> bool:
        deleted: bool = self._inner.delete(db, self._cipher.stored_key(db, key))
        return deleted

    def pop(self, db: str, key: bytes) -> bytes | None:
        cipher = self._cipher
        stored = cipher.stored_key(db, key)
        raw: bytes | None = self._inner.pop(db, stored)
        return raw if raw is None else cipher.value(db, stored, raw)

    def tally(self, db: str, key: bytes, delta: int) -> None:
        self._inner.tally(db, key, delta)

    def delete_indexed(
        self,
        db: str,
        index_start: bytes,
        stop: bytes | None,
        record_start: bytes,
        skip: int,
        limit: int | None = None,
    ) -> int:
        # A record and its entry hash their names alike: the record's stored key is still
        # the stored entry's past its time.
        cipher = self._cipher
        first, last = cipher.stored_range(db, index_start, stop)
        deleted: int = self._inner.delete_indexed(
            db, first, last, cipher.stored_key(db, record_start), skip, limit
        )
        return deleted


def sealed_view(view: ReadView, cipher: Cipher | None) -> Any:
    """``view`` as the domain layer sees it: itself on a plain store."""
    return view if cipher is None else SealedWriteView(view, cipher)


__all__ = ["Cipher", "Recoding", "SealedReadView", "SealedWriteView", "sealed_view"]
