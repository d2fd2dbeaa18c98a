"""Benchmarks of lmdbstore against SQLite and the raw engines (``python -m benchmarks``)."""
