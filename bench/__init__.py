"""Benchmarks of offload against peer job systems, run with `python -m bench run` (see README)."""
