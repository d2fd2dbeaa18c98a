"""The oracle: an independent model of the contract, in plain dicts per device.

MemoryStore runs the same domain layer as LmdbStore, so a model check of one against the
other would compare the code with itself. This is the older, separate implementation of
every rule, kept as the state machine's model (``tests/test_state_machine.py``) so that the
check still compares two implementations. Not a backend: use MemoryStore.
"""

from lmdbstore.testing.oracle.store import OracleStore

__all__ = ["OracleStore"]
