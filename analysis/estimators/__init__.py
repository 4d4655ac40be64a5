"""Estimators, pure functions of arrays or samples, each tested against a known truth: the
bootstrap engine, the mode counter, KL, mixed distributions with atoms on the bounds, and the
synthetic distributions they are checked on.
"""
