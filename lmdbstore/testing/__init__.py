"""The conformance suite every lmdbstore backend passes, for your own backend too.

Each class holds the tests of one domain. Inherit from the ones your backend implements and
provide a ``store`` fixture that yields an open, empty store (device 1)::

    import pytest
    from lmdbstore.testing import AppSyncConformance, ProtocolConformance, SignalConformance

    class TestMyBackend(SignalConformance, AppSyncConformance, ProtocolConformance):
        @pytest.fixture
        async def store(self, tmp_path):
            store = await MyBackend.open(tmp_path / "db")
            yield store
            await store.close()

`CacheConformance` checks a cache store the same way, from a ``cache_store`` fixture.

The tests are async and run through anyio's pytest plugin (``anyio_backend`` selects the
event loop). They need pytest and hypothesis: ``pip install 'lmdbstore[testing]'``. The
suites are imported on first use, so that the helpers beside them that need neither
(`lmdbstore.testing.redis_server`, `lmdbstore.testing.crash`) import without the
extra: the benchmark uses the first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmdbstore.testing.appsync import AppSyncConformance
    from lmdbstore.testing.cache import CacheConformance
    from lmdbstore.testing.lease import LeaseConformance
    from lmdbstore.testing.peers import PeerConformance
    from lmdbstore.testing.protocol import ProtocolConformance
    from lmdbstore.testing.signal import SignalConformance
    from lmdbstore.testing.transaction import TransactionConformance

_SUITES = {
    "AppSyncConformance": "appsync",
    "CacheConformance": "cache",
    "LeaseConformance": "lease",
    "PeerConformance": "peers",
    "ProtocolConformance": "protocol",
    "SignalConformance": "signal",
    "TransactionConformance": "transaction",
}

__all__ = [
    "AppSyncConformance",
    "CacheConformance",
    "LeaseConformance",
    "PeerConformance",
    "ProtocolConformance",
    "SignalConformance",
    "TransactionConformance",
]


def __getattr__(name: str) -> Any:
    module = _SUITES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
