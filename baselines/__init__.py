"""Baseline agents. Every module here is imported by `qsm.registry`, so an agent class decorated
with `@register("name")` in a new file is found by `--algo name` with no other edit."""
