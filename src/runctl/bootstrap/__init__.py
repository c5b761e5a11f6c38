"""`runctl bootstrap`: read the project's live state, plan what is missing, then create it.

`desired` derives what a deploy-ready project needs from the config, `read` collects the live
state in one concurrent wave, `plan` is the pure planner (typed frozen steps in `steps`, with
their dependencies), `execute` is the only code that mutates, and `report` renders both.
"""
