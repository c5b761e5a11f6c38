"""`runctl preflight`: every check a pipeline needs before it deploys, concurrently, read-only.

model.py (check and result types), catalog.py (the checks and their dependency graph),
runner.py (starts each check as soon as its dependencies finish), checks_*.py (the checks by
area), dockerfile.py and iameval.py (pure helpers), render.py (table and JSON).
"""
