"""How the runs trained: wall-clock per-step profiles, training diagnostics (metrics.csv),
and the fidelity of the suite's agents to the official implementation under one protocol.
"""
