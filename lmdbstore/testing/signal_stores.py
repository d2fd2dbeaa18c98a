"""The store interfaces of a synchronous Signal library, and how such a library uses them.

python-axolotl (and the ports of libsignal-protocol-java it follows) asks its user for five
stores, called synchronously: identities, sessions, pre-keys, signed pre-keys and sender
keys. This module restates those interfaces (names and arguments as python-axolotl has
them) with records reduced to their serialized bytes, and `receive_message` replays what
the library's session cipher does with them for one incoming message, without the
cryptography. The docs' "Blocking API and Signal libraries" page backs these interfaces
with `lmdbstore.sync`, and the test suite runs it: no dependency on an unmaintained
library.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """A Signal record as a store sees it: what ``serialize()`` returns."""

    serialized: bytes = b""

    def serialize(self) -> bytes:
        return self.serialized

    def is_fresh(self) -> bool:
        """Whether this is the empty record a store returns when it has none."""
        return not self.serialized


@dataclass(frozen=True)
class IdentityKeyPair:
    public: bytes  # 32 bytes
    private: bytes  # 32 bytes


@dataclass(frozen=True)
class SenderKeyName:
    """A group's sender key of one sender device."""

    group_id: str
    sender_name: str
    sender_device_id: int


class InvalidKeyIdError(Exception):
    """No pre-key (or signed pre-key) has this id (python-axolotl's InvalidKeyIdException)."""


class IdentityKeyStore(abc.ABC):
    @abc.abstractmethod
    def getIdentityKeyPair(self) -> IdentityKeyPair: ...

    @abc.abstractmethod
    def getLocalRegistrationId(self) -> int: ...

    @abc.abstractmethod
    def saveIdentity(self, recipientId: str, identityKey: bytes) -> None: ...

    @abc.abstractmethod
    def isTrustedIdentity(self, recipientId: str, identityKey: bytes) -> bool: ...


class SessionStore(abc.ABC):
    @abc.abstractmethod
    def loadSession(self, recipientId: str, deviceId: int) -> Record: ...

    @abc.abstractmethod
    def storeSession(self, recipientId: str, deviceId: int, sessionRecord: Record) -> None: ...

    @abc.abstractmethod
    def containsSession(self, recipientId: str, deviceId: int) -> bool: ...

    @abc.abstractmethod
    def deleteSession(self, recipientId: str, deviceId: int) -> None: ...


class PreKeyStore(abc.ABC):
    @abc.abstractmethod
    def loadPreKey(self, preKeyId: int) -> Record: ...

    @abc.abstractmethod
    def storePreKey(self, preKeyId: int, preKeyRecord: Record) -> None: ...

    @abc.abstractmethod
    def containsPreKey(self, preKeyId: int) -> bool: ...

    @abc.abstractmethod
    def removePreKey(self, preKeyId: int) -> None: ...


class SignedPreKeyStore(abc.ABC):
    @abc.abstractmethod
    def loadSignedPreKey(self, signedPreKeyId: int) -> Record: ...

    @abc.abstractmethod
    def storeSignedPreKey(self, signedPreKeyId: int, signedPreKeyRecord: Record) -> None: ...

    @abc.abstractmethod
    def containsSignedPreKey(self, signedPreKeyId: int) -> bool: ...

    @abc.abstractmethod
    def removeSignedPreKey(self, signedPreKeyId: int) -> None: ...


class SenderKeyStore(abc.ABC):
    @abc.abstractmethod
    def storeSenderKey(self, senderKeyName: SenderKeyName, senderKeyRecord: Record) -> None: ...

    @abc.abstractmethod
    def loadSenderKey(self, senderKeyName: SenderKeyName) -> Record: ...


class AxolotlStore(IdentityKeyStore, SessionStore, PreKeyStore, SignedPreKeyStore, SenderKeyStore):
    """All five, as python-axolotl's ``AxolotlStore``."""


class UntrustedIdentityError(Exception):
    """The sender's identity key changed (python-axolotl's UntrustedIdentityException)."""


def receive_message(
    store: AxolotlStore,
    sender: str,
    device_id: int,
    identity_key: bytes,
    prekey_id: int | None,
    ratchet: bytes,
) -> bytes:
    """What a session cipher does with the stores to decrypt one message from ``sender``'s
    device ``device_id``: a pre-key message (``prekey_id`` given) builds a session from
    our pre-key and signed pre-key and uses the pre-key up; every message checks the
    sender's identity, advances the session by ``ratchet`` and stores it. Returns the
    session as stored."""
    if not store.isTrustedIdentity(sender, identity_key):
        raise UntrustedIdentityError(sender)
    if prekey_id is not None:
        prekey = store.loadPreKey(prekey_id)  # InvalidKeyIdError when used up
        signed = store.loadSignedPreKey(1)
        pair = store.getIdentityKeyPair()
        session = Record(pair.public + prekey.serialize() + signed.serialize())
        store.removePreKey(prekey_id)
    else:
        session = store.loadSession(sender, device_id)
        if session.is_fresh():
            raise LookupError(f"no session with {sender}.{device_id}")
    store.saveIdentity(sender, identity_key)
    advanced = Record(session.serialize() + ratchet)
    store.storeSession(sender, device_id, advanced)
    return advanced.serialize()
