"""Benchmarks, each run as `python bench/NAME.py` (its module docstring says how)."""
