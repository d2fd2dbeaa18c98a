"""The domain layer: every method of the contract, written once over a
`lmdbstore.storage.Storage`.

Each module holds one domain's methods as a mixin of `DomainHandle`: validation, the key
layout (`lmdbstore.keys`), the encoding (`lmdbstore.codec`) and every rule of the
contract, as synchronous operations on a view run by the storage. A store class is these
mixins over its storage (`LmdbStore`, `MemoryStore`), plus what only it has (opening,
copies, resource reports).
"""

from lmdbstore.domains.appsync import AppSyncDomain
from lmdbstore.domains.chat import ChatSettingsDomain
from lmdbstore.domains.contact import ContactDomain
from lmdbstore.domains.device import DeviceDomain
from lmdbstore.domains.eventbuf import EventBufferDomain
from lmdbstore.domains.lease import LeaseDomain
from lmdbstore.domains.msgsecret import MsgSecretDomain
from lmdbstore.domains.protocol import ProtocolDomain
from lmdbstore.domains.signal import SignalDomain


class AllDomains(
    SignalDomain,
    AppSyncDomain,
    ProtocolDomain,
    MsgSecretDomain,
    ContactDomain,
    ChatSettingsDomain,
    EventBufferDomain,
    DeviceDomain,
    LeaseDomain,
):
    """Every domain's methods, as one base of a store class."""


__all__ = ["AllDomains"]
