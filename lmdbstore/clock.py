"""The store's notion of "now", in Unix seconds.

Every backend reads the time through `now`, so a test or a benchmark can replace it
(``monkeypatch.setattr(lmdbstore.clock, "now", ...)``) to place records in time.
"""

from __future__ import annotations

import time


def now() -> int:
    """The current time in whole Unix seconds."""
    return int(time.time())


def now_ms() -> int:
    """The current time in Unix milliseconds (cache expiry, which is finer than seconds)."""
    return int(time.time() * 1000)
