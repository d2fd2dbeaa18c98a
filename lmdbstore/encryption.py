"""Encryption at rest: the key a store is opened with (``open(..., encryption=...)``).

An encrypted store seals every record's value with AES-256-GCM and keeps the strings of its
keys as keyed hashes (`lmdbstore.storage.sealed` says how): no identity key, session,
phone number, JID or name is in its files, snapshots or compacted copies. Its key is 32
bytes, given as an `EncryptionKey` or by a *key provider*, a function that returns one
(called once per open, on a worker thread: it may block, e.g. on the OS keyring).
`keyring_key` keeps the key in the OS keyring (the optional ``keyring`` extra).

The key is never stored. A store remembers a random salt and a check sealed with keys
derived from it, so a wrong key is refused at open (`StoreConnectionError`), not
discovered as garbage later. Lose the key and the store is lost: keep a copy where the
OS keyring cannot lose it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import TypeAlias

from lmdbstore.errors import StoreConnectionError, ValidationError

KEY_BYTES = 32


class EncryptionKey:
    """A 32-byte key of an encrypted store. Its ``repr`` does not show it."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise ValidationError(f"an encryption key is bytes, not {type(key).__name__}")
        if len(key) != KEY_BYTES:
            raise ValidationError(f"an encryption key is {KEY_BYTES} bytes, not {len(key)}")
        self._key = bytes(key)

    @classmethod
    def generate(cls) -> EncryptionKey:
        """A new random key (`secrets.token_bytes`)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_hex(cls, text: str) -> EncryptionKey:
        """The key written as 64 hexadecimal digits (`hex`)."""
        try:
            return cls(bytes.fromhex(text.strip()))
        except ValueError:
            raise ValidationError(
                f"an encryption key in hex is {2 * KEY_BYTES} hexadecimal digits"
            ) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> EncryptionKey:
        """The key in the file at ``path``: 32 raw bytes, or 64 hexadecimal digits."""
        try:
            with open(path, "rb") as file:
                raw = file.read(4 * KEY_BYTES + 1)
        except OSError as exc:
            raise ValidationError(f"cannot read the key file {os.fspath(path)!r}: {exc}") from None
        if len(raw) == KEY_BYTES:
            return cls(raw)
        try:
            return cls.from_hex(raw.decode("ascii"))
        except (UnicodeDecodeError, ValidationError):
            raise ValidationError(
                f"the key file {os.fspath(path)!r} holds neither {KEY_BYTES} bytes nor"
                f" {2 * KEY_BYTES} hexadecimal digits"
            ) from None

    def hex(self) -> str:
        """The key as 64 hexadecimal digits (to write down or keep in a secret manager)."""
        return self._key.hex()

    @property
    def raw(self) -> bytes:
        """The key's 32 bytes."""
        return self._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EncryptionKey) and secrets.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return "EncryptionKey(<32 bytes>)"


KeyProvider: TypeAlias = Callable[[], "EncryptionKey | bytes"]
"""A function that gives the key (called once per open, on a worker thread)."""

Encryption: TypeAlias = "EncryptionKey | KeyProvider"
"""What ``open(..., encryption=...)`` takes: the key, or a function that gives it."""


def check_encryption(encryption: object) -> EncryptionKey | KeyProvider | None:
    """``encryption`` as an open takes it, before anything is opened: `ValidationError`
    for anything but ``None``, an `EncryptionKey` or a callable. (Raw ``bytes`` are
    refused: a key passed by mistake where another option goes would be shown in an
    error.)"""
    if encryption is None or isinstance(encryption, EncryptionKey) or callable(encryption):
        return encryption
    raise ValidationError(
        "encryption must be an lmdbstore.EncryptionKey or a function that returns one,"
        f" not {type(encryption).__name__}"
    )


def resolve_key(encryption: EncryptionKey | KeyProvider | None) -> EncryptionKey | None:
    """The key of a checked ``encryption``: a provider is called (blocking). A provider
    that fails or gives something else than a key is a `StoreConnectionError`."""
    if encryption is None or isinstance(encryption, EncryptionKey):
        return encryption
    try:
        found = encryption()
    except StoreConnectionError:
        raise
    except Exception as exc:  # the provider's own failure (a locked keyring, say)
        raise StoreConnectionError(
            f"the encryption key provider failed: {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(found, EncryptionKey):
        return found
    try:
        return EncryptionKey(found)
    except ValidationError as exc:
        raise StoreConnectionError(f"the encryption key provider gave no key: {exc}") from None


def keyring_key(service: str, username: str, *, create: bool = False) -> KeyProvider:
    """A key provider that reads the key from the OS keyring (`keyring`, the optional
    ``keyring`` extra: ``pip install 'lmdbstore[keyring]'``) under ``service`` and
    ``username``, stored as 64 hexadecimal digits. ``create=True``: when there is none yet,
    a new random key is stored there first (for the first open of a new store).

    A missing key (without ``create``), a keyring that fails or is locked, and a missing
    ``keyring`` package are a `StoreConnectionError` at open."""
    for name, value in (("service", service), ("username", username)):
        if not isinstance(value, str) or not value:
            raise ValidationError(f"keyring_key's {name} must be a non-empty string")

    def provide() -> EncryptionKey:
        try:
            import keyring  # an optional dependency
        except ImportError:
            raise StoreConnectionError(
                "keyring_key needs the keyring package: pip install 'lmdbstore[keyring]'"
            ) from None
        stored = keyring.get_password(service, username)
        if stored is None:
            if not create:
                raise StoreConnectionError(
                    f"the OS keyring holds no key for service {service!r}, user {username!r}"
                )
            key = EncryptionKey.generate()
            keyring.set_password(service, username, key.hex())
            return key
        try:
            return EncryptionKey.from_hex(stored)
        except ValidationError:
            raise StoreConnectionError(
                f"the OS keyring's entry for service {service!r}, user {username!r} is not"
                " a key of 64 hexadecimal digits"
            ) from None

    return provide
