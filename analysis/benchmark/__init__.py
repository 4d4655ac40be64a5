"""The benchmark: final scores collected from runs, their rliable statistics, the benchmark's
figures, and the published reference curves they are compared with.
"""
