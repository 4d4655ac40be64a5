"""The Snakemake pipeline's Python side: ``workflow.plan`` (what a configuration asks the pipeline
to train and read). Not installed with the suite's packages and not part of any run's code version
(qsm.contract.identity follows imports of qsm, baselines and analysis only); import it from the
repository root, as workflow/rules/common.smk does."""
