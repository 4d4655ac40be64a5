"""Baseline agents. Each is a learner `<name>.py` (torch) and its declaration `<name>_config.py`
(torch-free: name, learner, hyperparameters; see `qsm.declare.catalog`). Every `*_config.py` here is
read when agents are listed or looked up, so a new pair of files is found by `--algo name` with no
other edit."""
