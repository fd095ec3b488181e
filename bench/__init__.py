"""The benchmark behind `make bench` (see benchmark.py)."""
