"""A run as the rest of the suite sees it: the run-directory contract with its validator, and
the run's identity (configuration, budget, code version, package versions).
"""
