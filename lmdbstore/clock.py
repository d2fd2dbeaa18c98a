"""The store's notion of "now", in Unix seconds.

Every backend reads the time through :func:`now`, so a test or a benchmark can replace it
(``monkeypatch.setattr(lmdbstore.clock, "now", ...)``) to place records in time.
"""

from __future__ import annotations

import time


def now() -> int:
    """The current time in whole Unix seconds."""
    return int(time.time())
