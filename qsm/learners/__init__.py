"""What the torch learners are built from: the seed-batched agent base, networks, the diffusion
process (schedule, denoiser, sampler, score target) and the diffusion actor-critic that QSM
(qsm/agent.py) and dql (baselines/dql.py) extend.
"""
