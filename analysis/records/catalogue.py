"""Every table and figure the pipeline writes, once: its files, the rule that writes them, the
report category it is shown under and what it shows.

The rules take their outputs from here (workflow/rules/common.smk: ``table``, ``figures``, ...;
rule ``all``: :func:`expected_files`), the HTML report its categories and the captions of the
tables (:func:`report_caption`), docs/outputs.md its table (:func:`markdown`, checked by the
tests), and the analysis writes no figure whose name is not here (``analysis.records.outputs``). A
figure's report caption is the figure's own caption: ``analysis.records.outputs.write_figure``
writes it beside the image (``<name>.caption.rst``), so that it is composed once, in the code that
knows the seeds and budget behind the figure.

Names: a table is named by its file (``modes.csv``), a figure by its stem (``mode_counts``; PNG,
PDF and the caption file). ``{sweep}`` stands for each entry of the configuration's ``sweeps:``,
``{task}`` for each task of its benchmark and audit grids. An output ``when="fidelity"`` exists
only with a ``fidelity:`` section.

Imports nothing heavy: the pipeline reads it when it builds the DAG.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

TABLES = "results/tables"
FIGURES = "results/figures"
FIGURE_EXTENSIONS = ("png", "pdf")
CAPTION_SUFFIX = ".caption.rst"
PROVENANCE_SUFFIX = ".provenance.json"  # analysis.records.provenance.SIDECAR_SUFFIX
                                        # (imports pandas)
#: The report caption of every provenance sidecar.
SIDECAR_CAPTION = (
    "Provenance of a table: the configuration hash, the run manifest read (path and digest), the "
    "analysis module and its code version, the training code versions by algorithm, the number "
    "of runs read (by status) and used, and every run with its run id, status, whether it "
    "entered the table, and its run directory.")


@dataclass(frozen=True)
class Output:
    """One row of the catalogue: tables and figures that show one thing."""
    rule: str
    category: str
    shows: str
    tables: tuple = ()
    figures: tuple = ()
    reported: tuple = ()  # the tables shown in the report (every figure is)
    when: str | None = None
    figure_rule: str | None = None  # where another rule draws the figures from the tables
    sidecars: bool = True  # whether its tables have provenance sidecars

    @property
    def drawn_by(self) -> str:
        return self.figure_rule or self.rule


OUTPUTS = (
    # -- runs ----------------------------------------------------------------------------------
    Output("run_manifest", "Runs", tables=("run_manifest.json",), sidecars=False, shows=(
        "exactly the runs the configuration asks for, by identity (`run_id`, code version, "
        "path): what every analysis reads")),
    Output("aggregate", "Runs", tables=("scores.csv",), shows=(
        "every evaluation of every run: `algo, task, seed, role, step, return, normalized, "
        "status`")),
    Output("aggregate", "Runs", tables=("run_status.csv",), reported=("run_status.csv",), shows=(
        "every run the configuration asked for: complete, diverged (non-finite loss; other seeds "
        "of its block went on), running, failed, missing (no directory) or invalid (the contract "
        "validator's message names the bad file); runs that are not complete are counted in "
        "every figure's legend, none is dropped silently. Run directories of other "
        "configurations found on disk follow, as `not in config`; they never enter a table or "
        "figure")),
    # -- benchmark -----------------------------------------------------------------------------
    Output("stats", "Benchmark", tables=("aggregate.csv",), figures=("aggregate_metrics",), figure_rule="figures",
           reported=("aggregate.csv",), shows=(
               "IQM, mean, median and optimality gap (lower is better) of the final normalised "
               "scores of the benchmark runs over the shared tasks, each with a 95% "
               "stratified-bootstrap interval (rliable, fixed seed)")),
    Output("stats", "Benchmark", tables=("performance_profile.csv",),
           figures=("performance_profile",), figure_rule="figures", shows=(
               "fraction of runs whose final normalised score exceeds each threshold, with "
               "95% bootstrap bands")),
    Output("stats", "Benchmark", tables=("probability_of_improvement.csv",),
           figures=("probability_of_improvement",), figure_rule="figures", shows=(
               "P(reference > other) on a randomly chosen shared task (rliable's "
               "Mann-Whitney-based estimate), with 95% bootstrap intervals")),
    Output("stats", "Benchmark", tables=("iqm_curve.csv",), figures=("iqm_sample_efficiency",), figure_rule="figures",
           shows="IQM of the normalised return against environment steps, with 95% bands"),
    Output("stats", "Benchmark", tables=("learning_curves.csv",), figures=("learning_curves",), figure_rule="figures",
           shows=("per task (benchmark and audit tasks) and algorithm, the mean evaluation "
                  "return over seeds against environment steps with a 95% bootstrap band")),
    Output("stats", "Benchmark", tables=("final_scores.md", "final_scores.csv"),
           reported=("final_scores.md",), shows=(
               "final score per task and algorithm (mean ± std over seeds, per seed, counts of "
               "runs per status; the audit's tasks listed, marked as outside the aggregates); "
               "the csv: one row per run")),
    # -- fidelity ------------------------------------------------------------------------------
    Output("fidelity", "Fidelity", when="fidelity",
           tables=("fidelity.csv", "fidelity.md", "fidelity_curves.csv"), figures=("fidelity",),
           reported=("fidelity.csv",), shows=(
               "agreement of two implementations of one algorithm (config `fidelity`: candidate "
               "and reference): the IQM difference and P(candidate > reference) with 95% "
               "intervals against margins stated up front (equivalent, different or "
               "inconclusive), pooled learning curves and both audits")),
    # -- multimodality audit -------------------------------------------------------------------
    Output("audit", "Multimodality audit", tables=("modes.csv", "modes_summary.csv"),
           figures=("mode_counts",), reported=("modes.csv",), shows=(
               "per run, distribution (policy, behaviour) and probe state: the mass on the "
               "action bounds, the modes of the interior part of the action distribution and "
               "of every part holding at least 5%, and the interior part's KL to a Gaussian "
               "fit; runs not audited are listed with the reason. `modes_summary.csv` per "
               "algorithm, task and distribution, with 95% bootstrap intervals over seeds, the "
               "final return and how many seeds learned tasks with known optima")),
    Output("audit", "Multimodality audit", tables=("bound_mass.csv",), figures=("bound_mass",),
           shows=("probability mass on the action bounds per dimension and side, on faces and "
                  "in corners, and each coordinate's balance between -1 and +1")),
    Output("audit", "Multimodality audit", tables=("kl.csv",), figures=("kl_divergence",),
           reported=("kl.csv",), shows=(
               "KL estimates with atoms treated as atoms: the interior part's KL to its "
               "Gaussian fit, and KL between algorithms at the same probe states and seed by "
               "the chain rule over bound patterns (with the share of mass covered: below 1, a "
               "lower bound), 95% bootstrap intervals over seeds")),
    Output("audit", "Multimodality audit", figures=("action_histograms",), shows=(
        "per-dimension histograms of the sampled actions at the first probe states, policy and "
        "behaviour")),
    Output("audit", "Multimodality audit", tables=("toy_optima.csv",), figures=("toy_optima",),
           shows=("tasks with known optima (the toy bandits): where the samples land beside the "
                  "optima, each run's return and whether it learned the task (return at least "
                  "0.8 of the optimum's)")),
    Output("audit", "Multimodality audit", tables=("audit_runs.csv",), shows=(
        "one row per audited run and distribution (benchmark, audit and sweep runs): its "
        "status, whether it learned a task with known optima, its final return and "
        "score-target scale, and each audit measure as its mean over the probe states: the "
        "per-seed values the audit's figures mark")),
    Output("audit", "Multimodality audit", tables=("bound_patterns.csv",),
           figures=("bound_patterns",), shows=(
               "multimodality over the faces of the action box: per run, distribution and "
               "probe state, every bound pattern (each coordinate at -1, inside or at +1) "
               "holding at least 5% of the samples; the figure: heavy patterns per state, mean "
               "over seeds with 95% intervals (their number and entropy also in "
               "`modes_summary.csv`)")),
    Output("audit", "Multimodality audit", tables=("initial_state.csv",), shows=(
        "per run, distribution and action dimension, the mass at -1, at +1 and inside at probe "
        "state 0, the task's initial state (where the paper pictures its QSM policy on "
        "cartpole_swingup)")),
    Output("audit", "Multimodality audit", tables=("scale_match.csv",), shows=(
        "per toy task and benchmark task, the M_q at which the toy's score-target RMS equals "
        "the benchmark task's, and the toy's verdict at the nearest audited M_q")),
    Output("oracle", "Multimodality audit", tables=("oracle.csv",), figures=("oracle",),
           reported=("oracle.csv",), shows=(
               "the ideal-denoiser oracle (`analysis/audit/oracle.py`): QSM's sampler with the "
               "denoiser replaced by the exact value of its regression target, at the setting "
               "of every audited QSM run on a toy task (M_q, T, score target form), beside what "
               "the runs learned (return over the optimum's, mass on a bound, mass within 0.15 "
               "of an optimum) and whether they agree (same majority 'learned' flag, returns "
               "within 0.1); the oracle's return at 0.8 to 1.2 times M_q and its chain's mass "
               "on a bound before the last step")),
    Output("oracle", "Multimodality audit", tables=("oracle_steps.csv",),
           reported=("oracle_steps.csv",), shows=(
               "per QSM setting on a toy task, which sampler step makes the runs differ from "
               "the oracle: at each run's probe states and with the same noise, the return over "
               "the optimum's of the chain with the exact denoiser, with the run's learned one, "
               "and with the learned one at a single step t, mean over seeds with 95% "
               "intervals")),
    Output("oracle", "Multimodality audit", tables=("no_denoiser.csv",),
           reported=("no_denoiser.csv",), shows=(
               "per audited QSM-like run on any task, its probe states beside its sampler with "
               "no denoiser at all (eps_theta = 0, at the run's T): how many states hold, "
               "coordinate by coordinate, what that sampler draws (shares at -1, inside and at "
               "+1 within 0.1 in total variation), and the shares on a bound, the run's and the "
               "sampler's: where they match, the mass on the bounds is the sampler's own")),
    Output("audit", "Sweeps", tables=("{sweep}.csv",), figures=("{sweep}",),
           reported=("{sweep}.csv",), shows=(
               "one per entry of `sweeps:` (e.g. `mq_sweep`): per algorithm, task, swept value "
               "and distribution, the final return, interior modes, mass on the bounds and in "
               "the corners, optima covered and the score-target scale, means over seeds with "
               "95% intervals (docs/audit.md, Sweeps)")),
    # -- diagnostics ---------------------------------------------------------------------------
    Output("diagnostics", "Diagnostics", tables=("diagnostics.csv",),
           figures=("training_diagnostics_{task}",), reported=("diagnostics.csv",), shows=(
               "what every learner logged while training (its `metrics.csv`): per run the "
               "end-of-training value of each column (mean over its last 10% of rows, "
               "non-finite values left out and counted; runs without metrics listed with the "
               "reason); per task critic loss, mean Q, QSM's score target M_q·dQ/da beside its "
               "predicted-noise RMS and the sampler's share of actions on a bound, against "
               "environment steps")),
    # -- wall-clock ----------------------------------------------------------------------------
    Output("step_profile", "Wall-clock", tables=("step_profile.csv",), figures=("step_profile",),
           reported=("step_profile.csv",), shows=(
               "wall-clock per learning step and seed, by phase (environment step, acting, "
               "replay, critic update, actor update), measured inside every benchmark run")),
    Output("tsweep_profile", "Wall-clock", tables=("tsweep_profile.csv",),
           figures=("tsweep_profile",), reported=("tsweep_profile.csv",), shows=(
               "acting and update cost against the number of diffusion steps T")),
    Output("batch_profile", "Wall-clock", tables=("batch_profile.csv",),
           figures=("batch_profile",), reported=("batch_profile.csv",), shows=(
               "acting and update cost against the replay batch size (config "
               "`profile.batch_sweep`)")),
    Output("run_cost", "Wall-clock", tables=("run_cost.csv", "cost_summary.csv"),
           figures=("run_cost",), reported=("run_cost.csv", "cost_summary.csv"), shows=(
               "what training the configuration costs: per run (every role; a run listed under "
               "two roles once) its seed's share of the wall-clock of its timed phases in hours "
               "and its steps per second, and the megabytes of the files it keeps (what an "
               "archive copies of it); per role, task and algorithm the hours and megabytes "
               "measured, the fastest and slowest run, and a projection of both for the whole "
               "group (measured hours "
               "plus, per run not finished, the median of the finished runs of the same "
               "algorithm, task, budget and hyperparameters, less runs under half of their "
               "peers' median speed; none for a configuration none of whose seeds has "
               "finished, whose hours are instead guessed from the same algorithm's finished "
               "runs of the same role on other tasks). "
               "Time a "
               "process spent stopped inside a phase counts; start-up and the final probe are "
               "not timed")),
    # -- findings ------------------------------------------------------------------------------
    Output("references", "Benchmark", tables=("references.csv",), shows=(
        "our benchmark runs' final returns beside published learning curves of the same "
        "algorithm and task at our budget's step (`results/archive/references`: provenance and "
        "protocol per source; a source of another protocol is labelled, never compared)")),
    Output("findings", "Findings", tables=("seed_plan.csv",), shows=(
        "the seed-count planner of the findings: per number of seeds per task, the expected "
        "width of the stratified interval of the fidelity pair's IQM difference, and of the "
        "reference's against every other algorithm, with how often it would exclude zero")),
)


def _expand(names, sweeps, tasks):
    for name in names:
        if "{sweep}" in name:
            yield from (name.format(sweep=s) for s in sweeps)
        elif "{task}" in name:
            yield from (name.format(task=t) for t in tasks)
        else:
            yield name


def outputs(config: dict | None = None):
    """The catalogue's rows that exist in this configuration (every row without one)."""
    return [o for o in OUTPUTS if config is None or not o.when or config.get(o.when)]


def _context(config):
    sweeps = [s["name"] for s in (config or {}).get("sweeps") or []]
    tasks = list(dict.fromkeys((config or {}).get("tasks", [])
                               + ((config or {}).get("audit") or {}).get("tasks", [])))
    return sweeps, tasks


def tables_of(rule: str, config: dict) -> list[str]:
    """The table files (names under results/tables) this rule writes in this configuration."""
    sweeps, tasks = _context(config)
    return [t for o in outputs(config) if o.rule == rule for t in _expand(o.tables, sweeps, tasks)]


def figures_of(rule: str, config: dict) -> list[str]:
    """The figure names (stems under results/figures) this rule draws in this configuration."""
    sweeps, tasks = _context(config)
    return [f for o in outputs(config) if o.drawn_by == rule
            for f in _expand(o.figures, sweeps, tasks)]


def expected_files(config: dict) -> list[str]:
    """Every table (with its provenance sidecar) and figure (PNG, PDF, caption) of a
    configuration: the pipeline's rule `all`, less the findings' Markdown."""
    sweeps, tasks = _context(config)
    files = []
    for o in outputs(config):
        for t in _expand(o.tables, sweeps, tasks):
            files += [f"{TABLES}/{t}"] + ([f"{TABLES}/{t}{PROVENANCE_SUFFIX}"] if o.sidecars
                                          else [])
        for f in _expand(o.figures, sweeps, tasks):
            files += [f"{FIGURES}/{f}.{ext}" for ext in FIGURE_EXTENSIONS]
            files.append(f"{FIGURES}/{f}{CAPTION_SUFFIX}")
    return files


def _pattern(name: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{(sweep|task)\\\}", ".+", re.escape(name)) + "$")


def row_of(name: str, kind: str, config: dict | None = None) -> Output:
    """The row that lists this table (kind 'table') or figure ('figure'). With a configuration,
    ``{sweep}`` and ``{task}`` stand for its sweeps and tasks; without one, a templated output is
    asked for by its template (``"{sweep}"``)."""
    sweeps, tasks = _context(config)
    for o in OUTPUTS:
        names = o.tables if kind == "table" else o.figures
        if name in (_expand(names, sweeps, tasks) if config is not None else names):
            return o
    raise KeyError(f"{kind} {name!r} is not in the catalogue of outputs "
                   "(analysis/records/catalogue.py)"
                   + (" for this configuration" if config is not None else "")
                   + "; add a row for it there")


def check_figure(name: str, entry: str | None = None) -> Output:
    """The row of a figure the analysis draws: the catalogue's `entry` (by default `name`); an
    entry drawn once per sweep or task (``"{sweep}"``, ``"training_diagnostics_{task}"``) must
    be what `name` instantiates."""
    row = row_of(entry or name, "figure")
    if entry and "{" in entry and not _pattern(entry).match(name):
        raise KeyError(f"figure {name!r} is not an instance of {entry!r}")
    return row


def table_path(name: str, config: dict | None = None) -> str:
    """The path of a table of the catalogue (KeyError for a name it does not list)."""
    row_of(name, "table", config)
    return f"{TABLES}/{name}"


def is_reported(table: str, config: dict | None = None) -> bool:
    o = row_of(table, "table", config)
    return any(_pattern(n).match(table) for n in o.reported)


def report_caption(table: str, config: dict | None = None) -> str:
    """The HTML report's caption of a table: what its row shows, then the provenance line (a
    Jinja template: Snakemake fills in the rule's `provenance` param)."""
    shows = row_of(table, "table", config).shows
    return (f"{rst_escape(shows[0].upper() + shows[1:])}.\n\n"
            "Provenance: {{ snakemake.params.provenance }} (config hash, runs read, training code "
            "versions by algorithm, analysis code version). The tables' provenance sidecars "
            "(category Provenance) list every run with its run id, status and directory.\n")


def rst_escape(text: str) -> str:
    """Plain text as reStructuredText that shows it as it is (no markup, no Jinja)."""
    text = re.sub(r"([\\*|_\[\]<>])", r"\\\1", text.replace("`", ""))
    return "{% raw %}" + text + "{% endraw %}"


def markdown() -> str:
    """docs/outputs.md's table of every output."""
    lines = ["| output | rule | what it shows |", "|---|---|---|"]
    for o in OUTPUTS:
        files = [f"`tables/{t}`" for t in o.tables] + [f"`figures/{f}`" for f in o.figures]
        when = f" (with `{o.when}:`)" if o.when else ""
        rules = o.rule if o.drawn_by == o.rule or not o.tables else f"{o.rule}, {o.drawn_by}"
        lines.append(f"| {', '.join(files)}{when} | `{rules}` | {o.shows} |")
    return "\n".join(lines) + "\n"


TABLE_BEGIN = ("<!-- catalogue: begin "
               "(python -m analysis.records.catalogue --write docs/outputs.md) -->")
TABLE_END = "<!-- catalogue: end -->"


def with_table(document: str) -> str:
    """`document` with the text between its catalogue markers replaced by :func:`markdown`."""
    head, sep, rest = document.partition(TABLE_BEGIN + "\n")
    _, sep2, tail = rest.partition(TABLE_END)
    if not (sep and sep2):
        raise ValueError(f"the document has no {TABLE_BEGIN!r} ... {TABLE_END!r} markers")
    return head + sep + markdown() + sep2 + tail


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.records.catalogue", description=(
        "Print the catalogue of outputs as Markdown, or write it into a document between its "
        "catalogue markers."))
    ap.add_argument("--write", type=Path, help="the document to update (docs/outputs.md)")
    args = ap.parse_args(argv)
    if args.write:
        args.write.write_text(with_table(args.write.read_text()))
    else:
        sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
