"""How a job runs on its machine, none of which changes a number it computes: phase timing,
memory allocation, GPU slots, progress reports and the fingerprint of the CPU's float kernels.
"""
