"""The analysis: tables from runs, figures from tables, findings from tables.

    findings.py     the findings, written from the tables
    plotting.py     the plotting kit every figure uses (no statistics)
    records/        the run manifest, the archive, the catalogue of outputs, provenance, writing
    estimators/     the bootstrap engine, mode counter, KL and mixed distributions (known truths)
    benchmark/      scores, rliable statistics, the benchmark's figures, published curves
    audit/          the multimodality audit and the ideal-denoiser oracle
    training/       wall-clock profiles, training diagnostics, fidelity to the official code

docs/architecture.md draws the layers; docs/outputs.md lists every table and figure.
"""
