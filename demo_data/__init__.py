"""The demo-data generator behind `cdp generate`: a realistic, messy landing zone and its truth.

Kept apart from `ingestion/` (the loader), which never imports it: only the CLI, the tests
and the benchmarks do. `generate.py` is the entry point; the word lists it draws from are
data files in `data/`.
"""
