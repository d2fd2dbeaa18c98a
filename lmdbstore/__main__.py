"""``python -m lmdbstore``: the ``lmdbstore`` command."""

from lmdbstore.cli import main

main()
