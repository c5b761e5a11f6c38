"""The runctl benchmark (issue 8): run `python bench/bench.py`; see bench/README.md."""
