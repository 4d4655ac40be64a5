"""The pipeline's glue to its plan (workflow/plan.py): one Plan of this configuration, and what the
rules need from it in the forms Snakemake calls (wildcards, threads, resources, report()).

The plan holds the logic (the configuration's checks, the training jobs and their run identities,
the archive lookup, the run manifest, the command lines); this file only turns its errors into
WorkflowErrors and hands its answers to the rules. Import names from workflow.plan with `from
workflow.plan import ...`: `import workflow.plan` would rebind Snakemake's `workflow` object.
"""
import functools
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

REPO = Path(workflow.current_basedir).parent.parent
sys.path.insert(0, str(REPO))
from qsm.contract.identity import OFFICIAL_PACKAGES, code_version, hash_of  # noqa: E402
from analysis.records import catalogue  # noqa: E402
from analysis.records.provenance import (SIDECAR_SUFFIX, footer_of_manifest,  # noqa: E402
                                         sidecar_path)
from qsm.contract.rundir import atomic_write_text  # noqa: E402
from workflow.plan import (CHECKPOINTS, FIGURES, LOGS, MANIFEST, OFFICIAL_CLONE, RUNS,  # noqa: E402
                           TABLES, Plan, PlanError, describe)


def _workflow_errors(fn):
    """The plan's errors (config key ..., no such job) as Snakemake's WorkflowError."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PlanError as e:
            raise WorkflowError(str(e)) from None
    return wrapped


PLAN = _workflow_errors(Plan)(config, REPO)  # checks the configuration, lists the agents' jobs
CATALOG = PLAN.catalog
TRAIN_RES = PLAN.train_res
# external.smk registers its rules' programs here (source: code version), and where a program
# runs foreign code, that code's identity and the packages of its run identity, by baseline name.
EXTERNAL_PROGRAMS = PLAN.external_programs
EXTERNAL_CODE = PLAN.external_code
EXTERNAL_PACKAGES = PLAN.external_packages
OFFICIAL = PLAN.official
ARCHIVE = PLAN.archive
official_checkout = PLAN.official_checkout


@_workflow_errors
def job_for(wc, algo=None):
    """The job whose flag file these wildcards name (`algo` for rules of one baseline)."""
    return PLAN.job_for(algo or wc.algo, wc.task, wc.run_id, wc.seeds)


def flags_of(*roles):
    """An input function: the flag files of every job of these roles (evaluated after parsing,
    once every rule and external program is known). None when the runs come from an archive."""
    return _workflow_errors(lambda wc: PLAN.flags(*roles))


@functools.cache
@_workflow_errors
def run_manifest() -> dict:
    """Exactly the runs this configuration asks for; the analysis reads these and no others."""
    manifest = PLAN.run_manifest()
    summary = PLAN.archive_summary(manifest)
    if summary:
        print(summary, file=sys.stderr)
    return manifest


def archive_input(wc):
    """The run_manifest rule's input: the archive's manifest, when the runs come from one."""
    return [f"{PLAN.archive_dir()}/MANIFEST.json"] if ARCHIVE else []


def write_manifest(path, log):
    manifest = run_manifest()
    PLAN.write_manifest(path)
    Path(log).write_text(f"{len(manifest['runs'])} runs, config {manifest['config_hash']}\n")


def analysis_code(module: str) -> str:
    """Code version of an analysis command: a param, so that editing it reruns the rule."""
    return code_version([module])


def provenance_footer(module: str, *roles):
    """A param: the provenance line (config, runs, code versions) that every figure of the rule
    ends its caption with, for the report's captions (`{{ snakemake.params.provenance }}`). It
    depends only on the configuration and the code, so it is known before the rule runs."""
    return lambda wc: footer_of_manifest(run_manifest(), roles, module, MANIFEST)


# -- the outputs, from their catalogue (analysis/records/catalogue.py) -------------------------
# A table's report caption is written from the catalogue when the workflow is parsed (the report
# reads captions from files); a figure's is the caption file its rule writes beside it.
CAPTIONS = Path(".snakemake/captions").absolute()


def _caption_file(name, text):
    path = CAPTIONS / f"{name}.rst"
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    return str(path)


def table_path(name):
    """A table's path under results/tables (an error for a name the catalogue does not list)."""
    return catalogue.table_path(name, config)


def table(name):
    """A table's path, marked for the report where the catalogue says so."""
    path = table_path(name)
    if not catalogue.is_reported(name, config):
        return path
    return report(path, category=catalogue.row_of(name, "table", config).category,
                  caption=_caption_file(name, catalogue.report_caption(name, config)))


def tables_of(rule):
    """The tables this rule writes (catalogue)."""
    return [table(name) for name in catalogue.tables_of(rule, config)]


def figures_of(rule):
    """The figures this rule draws, as their PNGs marked for the report under their own
    captions; figure_files(rule) are the PDFs and caption files beside them."""
    return [report(f"{FIGURES}/{name}.png", category=catalogue.row_of(name, "figure", config).category,
                   caption=os.path.abspath(f"{FIGURES}/{name}{catalogue.CAPTION_SUFFIX}"))
            for name in catalogue.figures_of(rule, config)]


def figure_files(rule):
    return [f"{FIGURES}/{name}{suffix}" for name in catalogue.figures_of(rule, config)
            for suffix in (".pdf", catalogue.CAPTION_SUFFIX)]


def sidecars_of(rule):
    """The provenance sidecars of the tables this rule writes (analysis/records/provenance.py),
    shown in the report."""
    caption = _caption_file("provenance", catalogue.rst_escape(catalogue.SIDECAR_CAPTION) + "\n")
    return [report(str(sidecar_path(table_path(name))), category="Provenance",
                   caption=caption) for name in catalogue.tables_of(rule, config)]


def train_args(wc):
    """The trainer's arguments for the job these wildcards name."""
    return PLAN.train_args(job_for(wc))


def external_args(wc, algo, learner=False):
    """The contract arguments every external program takes (Plan.external_args)."""
    return PLAN.external_args(job_for(wc, algo), learner)


# Runs a training command on a GPU of its own (qsm/runtime/gpu_slots.py): Snakemake's gpu resource
# only limits how many GPU jobs run at once, it does not say which GPU each one gets.
GPU_SLOT_WRAPPER = "python -m qsm.runtime.gpu_slots run -- "


def gpu_slot(wildcards, resources):
    """A param: the GPU slot wrapper for a job that asks for a GPU and runs on this machine;
    nothing for CPU jobs, and nothing for cluster jobs, whose scheduler sets
    CUDA_VISIBLE_DEVICES itself (also inside the job, where Snakemake runs in remote mode)."""
    on_this_machine = workflow.local_exec and not workflow.remote_exec
    return GPU_SLOT_WRAPPER if on_this_machine and resources.get("gpu", 0) > 0 else ""


def torch_threads(wildcards, threads):
    """A training job's threads are its cores: env_workers of them step environments, torch gets
    the rest (threads may come from a profile's set-threads)."""
    return PLAN.torch_threads(threads)
