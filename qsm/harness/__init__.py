"""The harness every learner trains under: the training loop, environments (in this process or in
workers), replay, the evaluation schedule, probe states, per-seed random streams, training
diagnostics, and the authors' official implementation as a learner of the loop.
"""
