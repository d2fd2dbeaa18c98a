"""The ``lmdbstore`` command (also ``python -m lmdbstore``): look inside a store, check it,
copy it. See `lmdbstore.cli.main`."""

from lmdbstore.cli.main import main

__all__ = ["main"]
