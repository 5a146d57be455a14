"""Benchmarks that print JSON; each runs as ``python -m bench.NAME`` from the repository root."""
