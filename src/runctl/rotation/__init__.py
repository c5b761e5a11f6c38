"""Secret rotation: read a new value, add it as a version exactly once, roll it to consumers.

`value` reads or generates the value and keeps it out of every message; `versions` speaks to
Secret Manager (idempotent AddSecretVersion, disabling); `consumers` reads who references a
secret; `plan` is the pure planner; `execute` is the only code that mutates; `report` renders.
"""
