"""Q-score matching reproducibility suite: agents, environments and the seed-batched trainer."""
__version__ = "0.1.0"
