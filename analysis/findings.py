"""The findings of a configuration, written from its tables: every preset's
results/findings.md, the study's committed docs/findings.md, and the seed-count plan.

    python -m analysis.findings --manifest results/tables/run_manifest.json \
        --tables results/tables --out results/findings.md [--margin 0.05] \
        [--command "snakemake --cores all --configfile config/study.yaml"]

Every number in the findings comes from a table of the pipeline (run_status, final_scores,
fidelity, aggregate, probability_of_improvement, modes_summary, every sweep's, and the training
cost's cost_summary and run_cost), and every section states the budget and the seeds behind it
and how many of the runs it asks for were found. The seed-count planner
(analysis.estimators.bootstrap.seed_count_plan) is run on the final scores of the fidelity pair and
written to ``seed_plan.csv`` with its provenance. Nothing here depends on time or host: the same
tables give the same bytes, so a test can check the committed file.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.estimators import bootstrap
from analysis.records.manifest import load_manifest
from analysis.records.outputs import counted
from analysis.records.provenance import Provenance, sidecar_path
from qsm.contract.rundir import FINISHED_STATUSES, atomic_write_json, atomic_write_text
from qsm.declare.cli import HelpFormatter

MODULE = "analysis.findings"
ROLES = ("benchmark", "audit")
PLAN_FILE = "seed_plan.csv"
DEFAULT_COMMAND = "snakemake --cores all"  # the demo preset's
#: The models whose predictions a configuration can commit (config predictions): the oracle's
#: (analysis.audit.oracle predict), the score-scale model's and the sampler-alone rule's
#: (analysis.audit.scale_model predict, predict-alone)
PREDICTION_MODELS = ("oracle", "score_scale", "sampler_alone")
AUDIT_COLUMNS = (("interior_modes", "interior modes"), ("mass_any_bound", "mass on a bound"),
                 ("mass_corner", "mass in corners"), ("score_target_rms", "score-target RMS"),
                 ("final_normalized", "final score"))


def num(x, digits=3) -> str:
    x = float(x)
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}g}"


def with_ci(row, column, digits=3) -> str:
    est = row.get(column, math.nan)
    low, high = row.get(f"{column}_ci_low", math.nan), row.get(f"{column}_ci_high", math.nan)
    if not math.isfinite(float(est)):
        return "n/a"
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return num(est, digits)
    return f"{num(est, digits)} [{num(low, digits)}, {num(high, digits)}]"


def interval(row) -> str:
    """A table row's estimate with its ci_low and ci_high columns."""
    return with_ci({"v": row["estimate"], "v_ci_low": row["ci_low"],
                    "v_ci_high": row["ci_high"]}, "v")


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def read(tables: Path, name: str) -> pd.DataFrame:
    path = tables / name
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


# -- sections -----------------------------------------------------------------------------------

def runs_section(status: pd.DataFrame) -> str:
    """What was asked for and found, with budgets: the basis of every later section."""
    rows = []
    for (role, task, algo), g in status.groupby(["role", "task", "algo"], sort=True):
        budget = g["budget_steps"].dropna()
        rows.append((role, task, algo, f"{(g['status'] == 'complete').sum()} of {len(g)}",
                     f"{int(budget.iloc[0]):,}" if len(budget) else "n/a",
                     ", ".join(f"{s} {n}" for s, n in g["status"].value_counts().sort_index().items())))
    return table(("role", "task", "algorithm", "complete runs", "steps", "statuses"), rows)


def budgets(status: pd.DataFrame, tasks) -> str:
    """The step budgets of these tasks' runs, e.g. 'cheetah_run at 100,000 steps'."""
    by_budget = {}
    for task in tasks:
        steps = status.loc[status["task"] == task, "budget_steps"].dropna()
        label = ", ".join(f"{int(s):,}" for s in sorted(set(steps)))
        by_budget.setdefault(label, []).append(task)
    # tasks without a run read none yet: their budget is in no table until one is trained
    return "; ".join(f"{', '.join(t)} at {label} steps" if label else f"{', '.join(t)}: no run yet"
                     for label, t in sorted(by_budget.items(), key=lambda item: not item[0]))


def fidelity_section(fidelity: pd.DataFrame, plan: pd.DataFrame | None) -> str:
    if fidelity.empty:
        return "No fidelity table (the configuration has no `fidelity:` section)."
    verdict = fidelity[fidelity["quantity"] == "verdict"].iloc[0]
    out = [f"**Verdict: {verdict['inside_band']}** ({verdict['note']})."]
    compared = fidelity[fidelity["quantity"].isin(("iqm", "iqm_difference",
                                                    "probability_of_improvement"))]
    if len(compared):
        out.append(table(("quantity", "algorithms", "task", "estimate [95% CI]", "band", "runs"),
                         [(r["quantity"], r["algo"], r["task"], interval(r),
                           f"[{num(r['band_low'])}, {num(r['band_high'])}]"
                           if pd.notna(r["band_low"]) else "", int(r["n_runs"]))
                          for _, r in compared.iterrows()]))
    if plan is not None:
        needed = bootstrap.seeds_needed(plan)
        margin = plan["margin"].iloc[0]
        out.append(
            "**Seed-count planner** (`analysis.estimators.bootstrap.seed_count_plan`): treating "
            f"each task's observed final scores as its population (seeds per task, "
            f"{', '.join(plan['tasks'].iloc[0].split())}: "
            f"{observed_text(plan['comparison'].iloc[0], plan['observed_seeds'].iloc[0])}), "
            "imagined experiments with n seeds per task and implementation give these widths of "
            f"the stratified 95% interval of the IQM difference; deciding at the margin of "
            f"+-{num(margin)} needs a width of at most {num(2 * margin)}, at that count and every "
            "larger one considered: "
            + (f"**about {needed} seeds per task and implementation**." if needed else
               f"**more than {int(plan['n_seeds'].max())} seeds** (the largest count considered "
               "is not enough).")
            + " At few seeds the widths need not shrink with n: the IQM of 3 scores is their "
            "mean, of 4 the mean of the middle two, and experiments drawn from a few observed "
            "scores repeat them.")
        out.append(table(("seeds", "median width", "10th-90th percentile", "decides"),
                         [(int(r.n_seeds), num(r.width_median),
                           f"{num(r.width_p10)} - {num(r.width_p90)}", "yes" if r.decides else "no")
                          for r in plan.itertuples()]))
    return "\n\n".join(out)


METRICS = (("iqm", "IQM"), ("mean", "mean"), ("median", "median"),
           ("optimality_gap", "optimality gap"))


def per_task_table(final: pd.DataFrame) -> str:
    """Final normalised score per task and algorithm: mean and standard deviation over the
    complete benchmark runs (final_scores.csv), with the seeds behind each."""
    done = final[(final["role"] == "benchmark") & (final["status"] == "complete")]
    if done.empty:
        return "No complete benchmark run yet."
    algos = sorted(set(done["algo"]))
    rows = []
    for task in sorted(set(final.loc[final["role"] == "benchmark", "task"])):
        cells = []
        for algo in algos:
            v = done.loc[(done["task"] == task) & (done["algo"] == algo), "final_normalized"]
            cells.append("" if v.empty else
                         f"{num(v.mean())} ± {num(v.std(ddof=1)) if len(v) > 1 else 'n/a'} "
                         f"({len(v)})")
        rows.append((task, *cells))
    return ("Final normalised score per task (return / 1000; mean ± standard deviation over "
            "seeds, their number in brackets):\n\n" + table(("task", *algos), rows))


def benchmark_section(aggregate: pd.DataFrame, poi: pd.DataFrame,
                      final: pd.DataFrame | None = None) -> str:
    final = pd.DataFrame() if final is None else final
    tasks_text = per_task_table(final) if not final.empty else ""
    if aggregate.empty:
        return "\n\n".join(x for x in (
            "No aggregate yet: the statistics stratify over every aggregated task (config "
            "`stats.tasks`), and no algorithm has a complete run on each of them "
            "(`final_scores.md` lists what is missing).", tasks_text) if x)
    metrics = [(m, label) for m, label in METRICS if (aggregate["metric"] == m).any()]
    algos = list(dict.fromkeys(aggregate["algo"]))
    rows = []
    for algo in algos:
        a = aggregate[aggregate["algo"] == algo]
        first = a.iloc[0]
        single = int(first["runs_per_task"]) < 2  # a bootstrap of one run per task has no spread
        cells = [f"{num(r['estimate'])} (one run per task: no interval)" if single
                 else interval(r) for r in (a[a["metric"] == m].iloc[0] for m, _ in metrics)]
        rows.append((algo, *cells, int(first["n_runs"]), int(first["n_tasks"])))
    per_algo = aggregate.drop_duplicates("algo")
    out = [f"Tasks: {aggregate['tasks'].iloc[0].replace(';', ', ')}; runs per task that enter, "
           "per algorithm: "
           + ", ".join(f"{r.algo} {int(r.runs_per_task)}" for r in per_algo.itertuples())
           + " (rliable needs as many on every task; extra seeds of a task are left out, listed "
           "in `final_scores.md`).",
           table(("algorithm", *(f"{label} [95% CI]" for _, label in metrics), "runs", "tasks"),
                 rows)]
    if not poi.empty:
        out.append(table(("P(X > Y)", "estimate [95% CI]", "runs X / Y"),
                         [(f"{r['algo_x']} > {r['algo_y']}", interval(r),
                           f"{int(r['n_runs_x'])} / {int(r['n_runs_y'])}")
                          for _, r in poi.iterrows()]))
    if tasks_text:
        out.append(tasks_text)
    out.append("Curves: `results/figures/iqm_sample_efficiency.png` and `learning_curves.png`; "
               "performance profiles: `performance_profile.png`.")
    return "\n\n".join(out)


def audit_section(modes: pd.DataFrame, tasks) -> str:
    if modes.empty:
        return "No audit table."
    modes = modes[modes["task"].isin(tasks)].sort_values(["task", "algo", "distribution"])
    found = modes[modes["n_seeds"] > 0]
    rows = [(r["task"], r["algo"], r["distribution"], int(r["n_seeds"]),
             *(with_ci(r, c) for c, _ in AUDIT_COLUMNS),
             str(r["note"]) if pd.notna(r.get("note")) else "") for _, r in found.iterrows()]
    out = [table(("task", "algorithm", "distribution", "seeds",
                  *(label for _, label in AUDIT_COLUMNS), "note"), rows)] if rows else []
    empty = sorted({f"{r['algo']} on {r['task']}" for _, r in modes[modes["n_seeds"] == 0].iterrows()})
    if empty:
        out.append(f"No audited seed yet: {', '.join(empty)}.")
    return "\n\n".join(out)


def sweep_section(sweep: pd.DataFrame, hparam: str) -> str:
    if sweep.empty:
        return "No run of this sweep could be read."
    found = sweep[sweep["n_seeds"] > 0].sort_values(["task", hparam, "distribution"])
    value = num if pd.api.types.is_numeric_dtype(sweep[hparam]) else str
    # the score target's scale beside the bound mass: how hard the actor is pushed, against the
    # sampler's unit noise, at each value of the swept hyperparameter
    rows = [(r["task"], value(r[hparam]), r["distribution"], int(r["n_seeds"]),
             with_ci(r, "final_normalized"), with_ci(r, "interior_modes"),
             with_ci(r, "mass_any_bound"), with_ci(r, "optima_covered"),
             with_ci(r, "score_target_rms"),
             str(r["note"]) if pd.notna(r.get("note")) else "") for _, r in found.iterrows()]
    out = ["Score-target RMS as in the audit: the RMS of M_q dQ/da over training's last tenth "
           "(the sampler's noise has RMS 1).",
           table(("task", hparam, "distribution", "seeds", "final score", "interior modes",
                  "mass on a bound", "optima covered", "score-target RMS", "note"), rows)
           ] if rows else []
    skipped = sweep[sweep["distribution"] == "policy"].groupby("task")["n_skipped"].sum()
    if skipped.sum():
        out.append("Not audited (missing, unfinished or unreadable): "
                   + ", ".join(f"{counted(n, 'run')} on {task}"
                               for task, n in skipped.items() if n)
                   + ".")
    return "\n\n".join(out)


# -- Is QSM multi-modal, and where? ------------------------------------------------------------

#: The paper's claim, in its own words (abstract of arXiv 2312.11752).
PAPER_CLAIM = ("converged policies through Q-score matching are implicitly multi-modal and "
               "explorative in continuous domains")
#: The paper's own picture of multimodality is a QSM policy's actions at the initial state of
#: cartpole swing-up (its Fig. 4). The rule that decides "bimodal at the initial state", fixed
#: before the runs on that task finished and applied to every algorithm alike: at probe state 0
#: (the initial state), at least DEMO_MIN_MASS of the policy's samples on each of -1 and +1, in
#: at least DEMO_MIN_SHARE of the seeds (4 of 5).
DEMO_TASK, DEMO_MIN_MASS, DEMO_MIN_SHARE = "cartpole_swingup", 0.15, 0.8
KIND_INTERIOR = "interior modes"
KIND_PATTERNS = "bound patterns"


def multimodality_kind(row) -> str:
    """The kinds of multimodality a modes_summary row shows: interior modes when the lower end of
    the 95% interval of the interior modes per probe state is above 1, bound patterns when that
    of the heavy bound patterns per state is; 'one mode' when neither; 'n/a' without seeds."""
    if not row.get("n_seeds"):
        return "n/a"
    if row.get("n_seeds") < 2:
        return "undecided (1 seed: no interval)"
    kinds = [kind for kind, column in ((KIND_INTERIOR, "interior_modes"),
                                        (KIND_PATTERNS, "n_heavy_patterns"))
             if float(row.get(f"{column}_ci_low", math.nan)) > 1]
    return " and ".join(kinds) if kinds else "one mode"


def kinds_table(modes: pd.DataFrame, tasks) -> str:
    rows = []
    policy = modes[(modes["distribution"] == "policy") & modes["task"].isin(tasks)
                   & (modes["n_seeds"] > 0)].sort_values(["task", "algo"])
    for _, r in policy.iterrows():
        behaviour = modes[(modes["distribution"] == "behaviour") & (modes["task"] == r["task"])
                          & (modes["algo"] == r["algo"])]
        rows.append((r["task"], r["algo"], int(r["n_seeds"]), multimodality_kind(r),
                     with_ci(r, "interior_modes"), with_ci(r, "n_heavy_patterns"),
                     with_ci(r, "mass_any_bound"),
                     multimodality_kind(behaviour.iloc[0]) if len(behaviour) else "n/a"))
    return table(("task", "algorithm", "seeds", "policy: kind", "interior modes per state",
                  "bound patterns >= 5% per state", "mass on a bound", "behaviour: kind"), rows)


def demonstration_rows(initial: pd.DataFrame, status: pd.DataFrame) -> list[dict]:
    """Per algorithm with a benchmark run of DEMO_TASK: its policy's mass at -1 and at +1 at
    probe state 0, per audited seed, and the rule's verdict: bimodal once enough seeds are,
    not bimodal once the seeds still missing could not make it so, undecided in between."""
    asked = status[(status["task"] == DEMO_TASK) & (status["role"] == "benchmark")]
    demo = initial[(initial["task"] == DEMO_TASK) & (initial["distribution"] == "policy")
                   & (initial["dim"] == 0)] if not initial.empty else initial
    rows = []
    for algo in sorted(set(asked["algo"])):
        g = demo[demo["algo"] == algo] if len(demo) else demo
        n_asked = int((asked["algo"] == algo).sum())
        needed = math.ceil(DEMO_MIN_SHARE * n_asked - 1e-9)
        if g is None or g.empty:
            rows.append({"algo": algo, "n": 0, "n_asked": n_asked, "lower": [], "upper": [],
                         "n_bimodal": 0, "verdict": "no run yet"})
            continue
        n_bimodal = int(((g["lower"] >= DEMO_MIN_MASS) & (g["upper"] >= DEMO_MIN_MASS)).sum())
        n = len(g)
        verdict = ("bimodal" if n_bimodal >= needed
                   else "not bimodal" if n == n_asked or n_bimodal + (n_asked - n) < needed
                   else "undecided")
        rows.append({"algo": algo, "n": n, "n_asked": n_asked, "lower": list(g["lower"]),
                     "upper": list(g["upper"]), "n_bimodal": n_bimodal, "verdict": verdict})
    return rows


def demonstration_section(initial: pd.DataFrame, status: pd.DataFrame) -> str:
    rule = (f"Rule, fixed before these runs finished and applied to every algorithm alike: "
            f"**bimodal at the initial state** when at least {DEMO_MIN_MASS:.0%} of the policy's "
            f"samples at probe state 0 (the task's initial state, where the paper's Fig. 4 "
            f"samples its policy) lie on -1 and at least {DEMO_MIN_MASS:.0%} on +1, in at least "
            f"{DEMO_MIN_SHARE:.0%} of the seeds (4 of 5).")
    rows = demonstration_rows(initial, status)
    if not rows:
        return rule + f" The configuration has no {DEMO_TASK} run."
    cells = [(r["algo"], f"{r['n']} of {r['n_asked']}", "", "", "", r["verdict"]) if not r["n"]
             else (r["algo"], f"{r['n']} of {r['n_asked']}",
                   ", ".join(f"{x:.2f}" for x in r["lower"]),
                   ", ".join(f"{x:.2f}" for x in r["upper"]),
                   f"{r['n_bimodal']} of {r['n']}", r["verdict"]) for r in rows]
    return "\n\n".join([rule, table(("algorithm", "seeds audited", "mass at -1, per seed",
                                       "mass at +1, per seed", "seeds bimodal", "verdict"),
                                      cells)])


def same_setting(df: pd.DataFrame, p) -> pd.DataFrame:
    """The rows of an oracle table (oracle.csv, oracle_steps.csv) at a prediction's setting, of
    qsm at its declared other hyperparameters."""
    if df.empty:
        return df
    return df[(df["task"] == p["task"]) & (df["M_q"] == p["M_q"]) & (df["T"] == p["T"])
              & (df["score_target"] == p["score_target"]) & (df["algo"] == "qsm")
              & (df["other_hparams"].fillna("") == "")]


def diagnosis(p, m, steps: pd.DataFrame) -> str:
    """Why a point's runs differ from its prediction, from oracle.csv (the oracle over 0.8 to 1.2
    times M_q; its chain before the last step) and oracle_steps.csv (the chain with the learned
    denoiser at one step)."""
    from analysis.audit.oracle import AGREEMENT, SCALE_FACTORS
    setting = f"M_q {num(p['M_q'])}, T {int(p['T'])}, {p['score_target']}"
    low, high = m["predicted_return_scale_low"], m["predicted_return_scale_high"]
    text = (f"**{p['task']} at {setting}.** Scale: at {min(SCALE_FACTORS):g} to "
            f"{max(SCALE_FACTORS):g} times M_q the oracle returns {num(low)} to {num(high)} of "
            f"the optimum" + (", so the prediction rests on the score's exact size, which a "
                              "learned critic's dQ/da never has" if high - low > AGREEMENT else
                              ", so the prediction does not rest on the score's exact size")
            + f"; its chain has {num(m['predicted_bound_before_last'])} of its mass on a bound "
            f"before the last step. ")
    s = same_setting(steps, p)
    if s.empty:
        return text + "Steps: no run of this point has a policy to load (`oracle_steps.csv`)."
    ideal = s[s["chain"] == "ideal"].iloc[0]
    full = s[s["chain"] == "learned"].iloc[0]
    one = s[s["chain"] == "learned at one step"].copy()
    one["shift"] = (one["return"] - ideal["return"]).abs()
    top = one.sort_values(["shift", "step"], ascending=[False, True]).iloc[0]
    rest = one[one["step"] != top["step"]]["shift"]
    gap = full["return"] - ideal["return"]
    text += (f"Steps ({counted(ideal['n_seeds'], 'seed')}, the runs' probe states, the same "
             f"noise in every chain): the chain with the exact denoiser returns "
             f"{with_ci(ideal, 'return')}, with the learned one {with_ci(full, 'return')}; the "
             f"learned denoiser at step {int(top['step'])} alone (step 0 is the last) gives "
             f"{with_ci(top, 'return')}" + (f", at any other step alone at most "
                                            f"{num(rest.max())} from the exact chain"
                                            if len(rest) else ""))
    if abs(gap) > 0 and abs(top["return"] - full["return"]) <= 0.2 * abs(gap):
        text += (f": step {int(top['step'])} accounts for the gap, the rest of the chain "
                 f"is as the oracle's.")
    else:
        text += ": no single step accounts for the gap."
    return text


def predictions_section(predictions: pd.DataFrame, oracle: pd.DataFrame,
                        steps: pd.DataFrame, commit: str) -> str:
    """The committed predictions (written before their runs trained) beside what the runs
    learned (the audit's oracle.csv: per QSM setting, the runs' return with its interval), and
    for each point where they disagree, what the oracle's tables say of why."""
    from analysis.audit.oracle import AGREEMENT, SCALE_FACTORS
    out = []
    if not predictions.empty:
        out.append(f"Predictions of the ideal-denoiser oracle, committed at {commit} "
                   f"(`docs/predictions/oracle_predictions.csv`) before the runs they predict "
                   f"trained; the M_q sweep's rows and those of the two original toys predict "
                   f"runs archived before the oracle existed. Agreement: the predicted "
                   f"'learned' (return >= 0.8 of the optimum) is the seeds' majority, and the "
                   f"returns differ by at most {AGREEMENT:g}. The oracle at {min(SCALE_FACTORS):g} "
                   f"to {max(SCALE_FACTORS):g} times M_q (`oracle.csv`, computed with the runs, "
                   f"not a prediction) shows how much a prediction rests on the score's exact "
                   f"size.")
        rows, disagree = [], []
        for _, p in predictions.iterrows():
            match = same_setting(oracle, p)
            setting = f"M_q {num(p['M_q'])}, T {int(p['T'])}, {p['score_target']}"
            if match.empty:
                rows.append((p["role"], p["task"], setting, num(p["return_over_optimum"]), "",
                             "not trained yet", num(p["mass_any_bound"]), "", ""))
                continue
            m = match.iloc[0]
            agrees = (bool(p["predicted_learned"]) == _learns(m)
                      and abs(p["return_over_optimum"] - m["learned_return"]) <= AGREEMENT)
            if not agrees:
                disagree.append((p, m))
            rows.append((p["role"], p["task"], setting, num(p["return_over_optimum"]),
                         f"{num(m['predicted_return_scale_low'])} to "
                         f"{num(m['predicted_return_scale_high'])}",
                         f"{with_ci(m, 'learned_return')} ({counted(m['n_seeds'], 'seed')}, "
                         f"{int(m['n_learned'])} learned)", num(p["mass_any_bound"]),
                         with_ci(m, "learned_bound"), "yes" if agrees else "**no**"))
        out.append(table(("role", "task", "setting", "predicted return / optimum",
                          f"oracle at {min(SCALE_FACTORS):g}-{max(SCALE_FACTORS):g} x M_q",
                          "learned [95% CI]", "predicted mass on a bound",
                          "learned mass on a bound", "agree"), rows))
        if disagree:
            out.append("Points where prediction and runs disagree, each investigated, never "
                       "tuned away (per seed: `audit_runs.csv` and the figure `oracle.png`):")
            out += [diagnosis(p, m, steps) for p, m in disagree]
        else:
            out.append("Points where prediction and runs disagree: none so far.")
    elif not oracle.empty:
        out.append("No committed predictions in this configuration; the oracle's values at the "
                   "settings of its runs (`oracle.csv`):")
        out.append(table(("task", "setting", "predicted return / optimum", "learned [95% CI]",
                          "agree"),
                         [(r["task"], f"M_q {num(r['M_q'])}, T {int(r['T'])}, {r['score_target']}"
                           + (f", {r['other_hparams']}" if pd.notna(r["other_hparams"])
                              and r["other_hparams"] else ""),
                           num(r["predicted_return"]),
                           f"{with_ci(r, 'learned_return')} ({counted(r['n_seeds'], 'seed')})",
                           "yes" if r["agrees"] else "**no**") for _, r in oracle.iterrows()]))
    return "\n\n".join(out) if out else "No QSM run on a toy task: nothing to predict."


def scale_section(scale: pd.DataFrame) -> str:
    if scale.empty:
        return ("No scale match: it needs QSM runs on a benchmark task and on a toy at two M_q "
                "values or more.")
    rows = [(r["task"], r["reference_task"], num(r["reference_rms"]), int(r["n_reference_seeds"]),
             num(r["matched_M_q"]), num(r["nearest_M_q"]),
             f"{with_ci(r, 'final_normalized')} ({counted(r['n_seeds'], 'seed')}, "
             f"{int(r['n_learned'])} learned)", num(r["mass_any_bound"]),
             str(r["note"]) if pd.notna(r["note"]) else "") for _, r in scale.iterrows()]
    return ("M_q is an inverse temperature in units of Q: the same M_q is far hotter on a task "
            "whose dQ/da is larger. Per toy, the M_q at which its score-target RMS (end of "
            "training, T = 5, the paper's target) equals a benchmark task's at the paper's "
            "setting, and the toy's verdict at the nearest audited M_q (`scale_match.csv`):\n\n"
            + table(("toy", "benchmark reference", "its score-target RMS", "its seeds",
                     "matched M_q", "nearest audited M_q", "toy's final score there",
                     "mass on a bound there", "note"), rows))


def scale_predictions_rows(predictions: pd.DataFrame, runs: pd.DataFrame) -> list[dict]:
    """Per task of the committed score-scale predictions: the prediction, and what QSM's
    complete benchmark runs learned (audit_runs.csv, policy distribution): their number, median
    score-target RMS, mean masses on the bounds and whether they agree."""
    from analysis.audit.scale_model import agrees
    mine = (runs[(runs["algo"] == "qsm") & (runs["role"] == "benchmark")
                 & (runs["distribution"] == "policy") & (runs["status"] == "complete")]
            if not runs.empty else runs)
    out = []
    for _, p in predictions.iterrows():
        r = mine[mine["task"] == p["task"]] if not mine.empty else mine
        row = {"p": p, "n": len(r)}
        if len(r):
            row.update(rms=float(r["score_target_rms"].median()),
                       any=float(r["mass_any_bound"].mean()), corner=float(r["mass_corner"].mean()),
                       any_seeds=", ".join(num(v, 2) for v in r.sort_values("seed")["mass_any_bound"]))
            row["agrees"] = agrees(p, row["rms"], row["any"])
        out.append(row)
    return out


def scale_diagnosis(x: dict, diagnostics: pd.DataFrame,
                    no_denoiser: pd.DataFrame | None = None) -> str:
    """Which step of the score-scale model fails where a task disagrees, from the runs' training
    diagnostics (diagnostics.csv): the Q level QSM's critic reached against TD3's, which the
    prediction used (step 1), and QSM's score-target RMS per unit of its own Q against the
    calibrated ratio (step 2); the mass on the bounds as predicted or not (step 3), and where
    not, how many probe states are the no-denoiser sampler's (no_denoiser.csv)."""
    from analysis.audit.scale_model import MASS_TOLERANCE, RMS_FACTOR
    p = x["p"]
    done = (diagnostics[(diagnostics["task"] == p["task"]) & (diagnostics["role"] == "benchmark")
                        & (diagnostics["status"] == "complete")] if not diagnostics.empty
            else diagnostics)

    def q_of(algo):
        v = done.loc[done["algo"] == algo, "q_mean"].dropna() if len(done) else []
        return (float(np.median(v)) if len(v) else math.nan), len(v)

    rms_ok = p["rms_low"] / RMS_FACTOR <= x["rms"] <= p["rms_high"] * RMS_FACTOR
    mass_ok = (p["mass_any_bound_low"] - MASS_TOLERANCE <= x["any"]
               <= p["mass_any_bound_high"] + MASS_TOLERANCE)
    text = (f"**{p['task']}** ({counted(x['n'], 'seed')} of QSM): the score-target RMS "
            f"{'agrees' if rms_ok else 'disagrees'} ({num(x['rms'])} against "
            f"{span(p['rms_low'], p['rms_high'])} predicted), the mass on a bound "
            f"{'agrees' if mass_ok else 'disagrees'} ({num(x['any'], 2)} against "
            f"{span(p['mass_any_bound_low'], p['mass_any_bound_high'], 2)}).")
    q, n_q = q_of("qsm")
    if not math.isfinite(q) or q <= 0:
        return text + " The runs' training diagnostics give no Q level to say which step fails."
    td3_now, n_td3 = q_of("td3")
    level_ok = 1 / RMS_FACTOR <= q / p["td3_q_mean"] <= RMS_FACTOR
    ratio = x["rms"] / q
    ratio_ok = p["ratio_low"] / RMS_FACTOR <= ratio <= p["ratio_high"] * RMS_FACTOR
    text += (f" Step 1, the Q level: QSM's critic ends at a mean Q of {num(q)} ("
             f"{counted(n_q, 'seed')}) against TD3's {num(p['td3_q_mean'])} that the prediction "
             f"used (TD3 now: {num(td3_now)}, {counted(n_td3, 'seed')}): "
             + (f"holds (within a factor of {RMS_FACTOR:g}). " if level_ok else
                f"fails (off by more than a factor of {RMS_FACTOR:g}). ") +
             f"Step 2, the score-target RMS per unit of Q: {num(ratio)} against the calibrated "
             f"{span(p['ratio_low'], p['ratio_high'])}: {'holds' if ratio_ok else 'fails'}"
             + ("" if ratio_ok else
                f", so dQ/da is {'steeper' if ratio > p['ratio_high'] else 'flatter'} "
                f"against the Q level on this task than on the calibration tasks") + ". "
             f"Step 3, the mass on the bounds at that score scale: "
             + ("as the toys' curve says." if mass_ok else "not as the toys' curve says."))
    alone = [g for g in no_denoiser_groups(pd.DataFrame() if no_denoiser is None
                                           else no_denoiser, [p["task"]]) if g["algo"] == "qsm"]
    if not mass_ok and alone:
        g = alone[0]
        text += (f" At {g['matched']} of its {g['states']} probe states the policy is what the "
                 f"sampler draws with no denoiser (a coordinate on a bound: {num(g['coord'], 2)} "
                 f"against that sampler's {num(g['null_coord'], 2)}; below).")
    return text


def span(low, high, digits=3) -> str:
    """A predicted range as the findings print it: one number where both ends print alike."""
    a, b = num(low, digits), num(high, digits)
    return a if a == b else f"{a} to {b}"


def scale_predictions_section(predictions: pd.DataFrame, runs: pd.DataFrame, commit: str,
                              diagnostics: pd.DataFrame | None = None,
                              no_denoiser: pd.DataFrame | None = None) -> str:
    """The score-scale model's committed predictions beside QSM's benchmark runs, and for each
    task that disagrees, which step of the model fails (scale_diagnosis)."""
    from analysis.audit.scale_model import MASS_TOLERANCE, RMS_FACTOR
    if predictions.empty:
        return "No committed score-scale predictions in this configuration."
    rows, disagree = [], []
    for x in scale_predictions_rows(predictions, runs):
        p = x["p"]
        if x["n"] and not x["agrees"]:
            disagree.append(x)
        kind = "in-sample" if p["kind"] == "calibration" else "prediction"
        predicted = (span(p["rms_low"], p["rms_high"]),
                     span(p["mass_any_bound_low"], p["mass_any_bound_high"], 2),
                     span(p["mass_corner_low"], p["mass_corner_high"], 2))
        if not x["n"]:
            rows.append((p["task"], kind, num(p["td3_q_mean"]), predicted[0], "", predicted[1],
                         "", predicted[2], "", "not trained yet"))
            continue
        rows.append((p["task"], kind, num(p["td3_q_mean"]), predicted[0],
                     f"{num(x['rms'])} ({counted(x['n'], 'seed')})", predicted[1],
                     f"{num(x['any'], 2)} ({x['any_seeds']})", predicted[2], num(x["corner"], 2),
                     ("yes" if x["agrees"] else "**no**")
                     + (" (in-sample)" if kind == "in-sample" else "")))
    return (f"Predictions of the score-scale model (`analysis/audit/scale_model.py`), committed "
            f"at {commit} (`docs/predictions/score_scale_predictions.csv`) before the first QSM "
            f"run of the tasks they predict finished. The model: QSM's score-target RMS is "
            f"proportional to the task's Q level, which TD3's critic measures too (the ratio "
            f"calibrated on the tasks marked in-sample, {num(predictions['ratio_low'].iloc[0])} "
            f"to {num(predictions['ratio_high'].iloc[0])}); the toys at the paper's sampler give "
            f"the share of each coordinate on a bound at that RMS; coordinates fall on bounds "
            f"independently. A task agrees when its QSM runs' median score-target RMS lies within "
            f"the predicted range widened by a factor of {RMS_FACTOR:g} each way, and their mean "
            f"mass with a coordinate on a bound within the predicted range +- "
            f"{MASS_TOLERANCE:g}; the corner mass (every coordinate on a bound) is shown, not "
            f"judged. Policy distribution; TD3's Q: median end-of-training mean Q of its seeds "
            f"when the predictions were made.\n\n"
            + table(("task", "kind", "TD3's Q", "predicted score-target RMS", "learned (median)",
                     "predicted mass on a bound", "learned (mean; per seed)",
                     "predicted mass in corners", "learned", "agree"), rows)
            + ("\n\nWhere prediction and runs disagree, which step of the model fails (the runs' "
               "end-of-training Q and score-target RMS: `diagnostics.csv`), reported, never tuned "
               "away:\n\n" + "\n".join(
                   f"- {scale_diagnosis(x, pd.DataFrame() if diagnostics is None else diagnostics, no_denoiser)}"
                   for x in disagree) if disagree else
               "\n\nWhere prediction and runs disagree: nowhere so far."))


def scale_predictions_point(predictions: pd.DataFrame, runs: pd.DataFrame) -> str:
    """The verdict's sentence on the score-scale predictions (empty without predictions)."""
    if predictions.empty:
        return ""
    tested = [x for x in scale_predictions_rows(predictions, runs)
              if x["p"]["kind"] == "prediction"]
    done = [x for x in tested if x["n"]]
    waiting = [x["p"]["task"] for x in tested if not x["n"]]
    text = "**Score scale on the benchmark tasks** (predictions committed before the runs): "
    if not done:
        return text + f"no predicted task has a QSM run yet ({', '.join(waiting)})."
    text += (f"{sum(x['agrees'] for x in done)} of {len(done)} tasks trained so far agree"
             + " (" + "; ".join(
            f"{x['p']['task']}: {'agrees' if x['agrees'] else 'disagrees'}, predicted "
            f"{'on the bounds' if x['p']['predicted_on_bounds'] else 'mostly off the bounds'}, "
            f"mass on a bound {num(x['any'], 2)}, score-target RMS {num(x['rms'])} "
            f"({counted(x['n'], 'seed')})" for x in done) + ")")
    return text + (f"; not trained yet: {', '.join(waiting)}" if waiting else "") + "."


def seeds_in_sample(p) -> set[int]:
    """The seeds a committed prediction row lists as trained when it was made."""
    v = p.get("seeds_in_sample", "")
    if isinstance(v, float):
        return set() if math.isnan(v) else {int(v)}
    return {int(x) for x in str(v).split()}


def alone_rows(predictions: pd.DataFrame, nd: pd.DataFrame,
               status: pd.DataFrame | None = None) -> list[dict]:
    """Per task of the committed sampler-alone predictions: the prediction, whether the
    configuration asks for QSM seeds beyond its sample (run_status.csv; `untested` where not), and
    what QSM's runs at the paper's setting of seeds not in its sample show (no_denoiser.csv):
    their seeds, probe states that are the no-denoiser sampler's, whether that makes the policy the
    sampler's own, and whether it agrees (None where the prediction is undecided)."""
    from analysis.audit.scale_model import OWN, UNDECIDED, at_paper_setting, samplers_own
    mine = at_paper_setting(nd)
    out = []
    for _, p in predictions.iterrows():
        new = (mine[(mine["task"] == p["task"]) & ~mine["seed"].isin(seeds_in_sample(p))]
               if not mine.empty else mine)
        asked = (set(status.loc[(status["algo"] == "qsm") & (status["role"] == "benchmark")
                                & (status["task"] == p["task"]), "seed"].astype(int))
                 if status is not None and not status.empty else None)
        row = {"p": p, "n": len(new),
               "untested": asked is not None and asked <= seeds_in_sample(p)}
        if len(new):
            matched, states = int(new["states_as_no_denoiser"].sum()), int(new["n_states"].sum())
            own = samplers_own(matched, states)
            row.update(seeds=", ".join(str(int(s)) for s in sorted(new["seed"])),
                       matched=matched, states=states, own=own,
                       agrees=None if p["predicted"] == UNDECIDED else own == (p["predicted"] == OWN))
        out.append(row)
    return out


def alone_section(predictions: pd.DataFrame, nd: pd.DataFrame, commit: str,
                  status: pd.DataFrame | None = None) -> str:
    """The committed sampler-alone predictions beside the seeds that test them."""
    from analysis.audit.scale_model import OWN, NOT_OWN, RMS_FACTOR, SAMPLERS_OWN
    rows = []
    for x in alone_rows(predictions, nd, status):
        p = x["p"]
        sample = ", ".join(str(s) for s in sorted(seeds_in_sample(p))) or "none"
        head = (p["task"], sample, span(p["rms_low"], p["rms_high"]), p["predicted"])
        if not x["n"]:
            rows.append((*head, "", "", "", "in-sample: no seed asked beyond it" if x["untested"]
                         else "no new seed yet"))
            continue
        rows.append((*head, x["seeds"], f"{x['matched']} of {x['states']}",
                     OWN if x["own"] else NOT_OWN,
                     "not judged (undecided)" if x["agrees"] is None
                     else "yes" if x["agrees"] else "**no**"))
    p0 = predictions.iloc[0]
    return (f"Predictions committed at {commit} (`docs/predictions/sampler_alone_predictions.csv`, "
            f"`python -m analysis.audit.scale_model predict-alone`) before the seeds that test "
            f"them trained. A policy is the sampler's own when at least "
            f"{SAMPLERS_OWN:.0%} of its probe states are what its sampler draws with no denoiser "
            f"(the subsection below). The rule: from the score-target RMS the score-scale model "
            f"predicts, the sampler's own within a factor of {RMS_FACTOR:g} of the largest "
            f"median RMS of a trained task whose policy is ({num(p0['own_rms_max'])}), not the "
            f"sampler's above the smallest of a task whose policy is not "
            f"({num(p0['other_rms_min'])}) divided by {RMS_FACTOR:g}, undecided between. The "
            f"seeds in sample had trained when the predictions were made; only the others "
            f"judge them (QSM at the paper's setting, end of training, 8 probe states per seed)."
            f"\n\n" + table(("task", "seeds in sample", "predicted score-target RMS", "predicted",
                              "new seeds", "their probe states as the sampler's", "learned",
                              "agree"), rows))


def alone_point(predictions: pd.DataFrame, nd: pd.DataFrame,
                status: pd.DataFrame | None = None) -> str:
    """The verdict's sentence on the sampler-alone predictions (empty without them)."""
    if predictions.empty:
        return ""
    rows = alone_rows(predictions, nd, status)
    done = [x for x in rows if x["n"] and x["agrees"] is not None]
    waiting = [x["p"]["task"] for x in rows if not x["n"] and not x["untested"]]
    text = "**The sampler alone, predicted** (committed before the seeds that test it): "
    if not done:
        return text + ("no seed that tests it has trained yet"
                       + (f" ({', '.join(waiting)})" if waiting else "") + ".")
    else:
        text += (f"{sum(x['agrees'] for x in done)} of {len(done)} tasks with new seeds agree ("
                 + "; ".join(f"{x['p']['task']}: predicted {x['p']['predicted']}, "
                             f"{x['matched']} of {x['states']} probe states of "
                             f"{'seed' if x['n'] == 1 else 'seeds'} {x['seeds']} the sampler's: "
                             f"{'agrees' if x['agrees'] else 'disagrees'}" for x in done) + ")")
    return text + (f"; no new seed yet: {', '.join(waiting)}" if waiting else "") + "."


def no_denoiser_groups(nd: pd.DataFrame, tasks) -> list[dict]:
    """no_denoiser.csv's runs of these tasks per (algo, task, setting): seeds, probe states that
    are the no-denoiser sampler's (in all and per seed), and the shares on a bound, the runs' mean
    and the sampler's."""
    if nd.empty:
        return []
    keys = ["algo", "task", "M_q", "T", "score_target"]
    out = []
    mine = nd[nd["task"].isin(list(tasks))].fillna({"other_hparams": ""})
    for key, g in mine.groupby(keys + ["other_hparams"], sort=True):
        g = g.sort_values("seed")
        out.append({**dict(zip(keys + ["other_hparams"], key)), "n": len(g),
                    "matched": int(g["states_as_no_denoiser"].sum()),
                    "states": int(g["n_states"].sum()),
                    "per_seed": ", ".join(str(int(v)) for v in g["states_as_no_denoiser"]),
                    "coord": float(g["coord_bound"].mean()),
                    "null_coord": float(g["no_denoiser_coord_bound"].iloc[0]),
                    "any": float(g["mass_any_bound"].mean()),
                    "null_any": float(g["no_denoiser_mass_any_bound"].iloc[0])})
    return out


def no_denoiser_section(nd: pd.DataFrame, benchmark_tasks, toy_tasks) -> str:
    """QSM-like runs beside their sampler with no denoiser (no_denoiser.csv): per benchmark task
    a row, the toys in one sentence."""
    from analysis.audit.oracle import NO_DENOISER_TV
    if nd.empty:
        return "No QSM-like run to put beside its sampler with no denoiser."
    null = nd.drop_duplicates("T").sort_values("T")
    splits = "; ".join(f"at T {int(r['T'])}: {num(r['no_denoiser_lower'], 2)} of each coordinate "
                       f"at -1, {num(r['no_denoiser_inside'], 2)} inside, "
                       f"{num(r['no_denoiser_upper'], 2)} at +1" for _, r in null.iterrows())
    rows = [(x["task"], x["algo"], f"M_q {num(x['M_q'])}, T {int(x['T'])}, {x['score_target']}"
             + (f", {x['other_hparams']}" if x["other_hparams"] else ""), x["n"],
             f"{x['matched']} of {x['states']} ({x['per_seed']})",
             f"{num(x['coord'], 2)} / {num(x['null_coord'], 2)}",
             f"{num(x['any'], 2)} / {num(x['null_any'], 2)}")
            for x in no_denoiser_groups(nd, benchmark_tasks)]
    toys = no_denoiser_groups(nd, toy_tasks)
    text = ("QSM's denoiser is regressed onto -M_q dQ/da, not onto the noise, so nothing in its "
            "sampler undoes the chain's rescaling by 1/sqrt(alpha_t): where the score is weak, "
            "the draws spread, and the clip after every step piles them on the bounds. With no "
            f"denoiser at all (eps_theta = 0) the sampler draws, {splits} (`python -m "
            "analysis.audit.oracle no-denoiser`); in d dimensions 1 - inside^d of its samples "
            "have a coordinate on a bound. A probe state of a run is the sampler's own when the "
            "shares at -1, inside and at +1 of each of its coordinates lie within "
            f"{NO_DENOISER_TV:g} of these in total variation (`no_denoiser.csv`); there the "
            "policy's place on the bounds says nothing of the task. Policy distribution, 8 probe "
            "states per seed, end of training.")
    if rows:
        text += "\n\n" + table(("task", "algorithm", "setting", "seeds",
                                 "probe states as the sampler's with no denoiser (per seed)",
                                 "a coordinate on a bound: learned / no denoiser",
                                 "mass on a bound: learned / no denoiser"), rows)
    if toys:
        text += ("\n\nOn the toys, over all " + counted(len(toys), "setting") + " of their QSM-like "
                 f"runs: {sum(x['matched'] for x in toys)} of {sum(x['states'] for x in toys)} "
                 "probe states are the no-denoiser sampler's (their learned scores pull the "
                 "samples to the optima or hold them on the bounds).")
    return text


def no_denoiser_point(nd: pd.DataFrame, benchmark_tasks, setting) -> tuple[str, str]:
    """The verdict's sentence on the sampler with no denoiser at the paper's setting, and the
    cause it adds to the verdict's last point (empty where no task's policy is the sampler's)."""
    from analysis.audit.scale_model import SAMPLERS_OWN, samplers_own
    groups = [x for x in no_denoiser_groups(nd, benchmark_tasks)
              if x["algo"] == "qsm" and not x["other_hparams"]
              and (x["M_q"], x["T"], x["score_target"]) == setting]
    if not groups:
        return "", ""
    own = [x for x in groups if samplers_own(x["matched"], x["states"])]
    rest = [x for x in groups if not samplers_own(x["matched"], x["states"])]

    def said(x):
        return (f"{x['task']} ({counted(x['n'], 'seed')}): {x['matched']} of {x['states']} probe "
                f"states")
    text = ("**The sampler alone** (`no_denoiser.csv`): the probe states at which QSM's policy "
            "draws, coordinate by coordinate, what its sampler draws with no denoiser at all: "
            + "; ".join(said(x) for x in own + rest) + ".")
    if not own:
        return text + (" On no benchmark task is the policy the sampler's own: its place on the "
                       "bounds is the learned score's doing."), ""
    text += (" On " + ", ".join(x["task"] for x in own) + " the policy is, at "
             f"{SAMPLERS_OWN:.0%} or more of its probe states, what the sampler draws knowing "
             "nothing of Q (a coordinate on a "
             "bound: " + ", ".join(f"{num(x['coord'], 2)} against the sampler's "
                                   f"{num(x['null_coord'], 2)}" for x in own) + "): there the "
             "score is too weak to move the samples, and the mass on the bounds is the sampler's, "
             "not the task's.")
    return text, ("the sampler itself where the score is weak (" + ", ".join(x["task"] for x in own)
                  + ": the policy is what the sampler draws with no denoiser)")


# -- the verdict, point by point: each sentence from a table -----------------------------------

def toy_geometry(toy_optima: pd.DataFrame) -> dict:
    """Per toy task: (its action dimension, the optima's distance from the nearest action bound),
    from toy_optima.csv's `optima` column, e.g. '(-0.8,-0.8) (-0.8,0.8) ...'."""
    out = {}
    if toy_optima.empty:
        return out
    for task, text in toy_optima.drop_duplicates("task")[["task", "optima"]].itertuples(False):
        points = [[float(x) for x in p.split(",")] for p in re.findall(r"\(([^)]*)\)", str(text))]
        if points:
            out[task] = (len(points[0]), round(1.0 - max(abs(x) for p in points for x in p), 6))
    return out


#: What the demonstration's verdict for a QSM implementation says of the paper's Fig. 4.
OUTCOME = {"bimodal": "reproduces", "not bimodal": "does not reproduce"}


def _learned_text(r) -> str:
    return (f"{with_ci(r, 'learned_return')} ({int(r['n_learned'])} of "
            f"{counted(r['n_seeds'], 'seed')} learned)")


def _learns(r) -> bool:
    """Whether most seeds of an oracle.csv row learned the task."""
    return r["n_learned"] * 2 > r["n_seeds"]


def verdict_points(modes, initial, status, oracle, scale, toy_optima, on_benchmark=(),
                   no_denoiser=None, on_alone=()) -> str:
    """The section's conclusions, one point per part of the question, each computed from the
    tables the subsections below show: the paper's demonstration, the kind of multimodality on
    each benchmark task (followed by `on_benchmark`, points already written), learning against
    the sampler (the oracle's agreement), geometry, sampler
    steps, target form and score scale; and which parts of the algorithm the evidence points to
    (the sampler alone among them, where a task's policy is its no-denoiser sampler's, followed
    by `on_alone`)."""
    from analysis.audit.oracle import AGREEMENT
    from analysis.audit.scale_model import paper_setting
    M_q, T, form = paper_setting()
    paper = f"M_q {num(M_q)}, T {T}, {form}"
    points, causes, not_causes = [], [], []

    demo = demonstration_rows(initial, status)
    if demo:
        said = "; ".join(f"{r['algo']}: {r['verdict']} ({r['n_bimodal']} of {r['n']} audited "
                         f"seeds bimodal, {r['n_asked']} asked)" for r in demo)
        outcome = "; ".join(f"with {r['algo']} it {OUTCOME.get(r['verdict'], 'is not decided yet')}"
                            for r in demo if r["algo"].startswith("qsm"))
        points.append(f"**The paper's demonstration** ({budgets(status, [DEMO_TASK])}, probe "
                      f"state 0, the rule below): {said}. Fig. 4's picture, at this budget: "
                      f"{outcome or 'no QSM run to check it'}.")

    benchmark = sorted(set(status.loc[status["role"] == "benchmark", "task"]))
    policy = modes[modes["distribution"] == "policy"] if not modes.empty else modes
    described, without = [], []
    for task in benchmark:
        rows = policy[(policy["task"] == task) & (policy["n_seeds"] > 0)] if len(policy) else policy
        q = rows[rows["algo"] == "qsm"] if len(rows) else rows
        if q.empty:
            without.append(task)
            continue
        r = q.iloc[0]
        others = "; ".join(f"{o['algo']}'s: {multimodality_kind(o)}"
                           for _, o in rows[rows["algo"] != "qsm"].sort_values("algo").iterrows())
        interior = (f"{with_ci(r, 'interior_modes')} interior modes"
                    if math.isfinite(float(r["interior_modes"]))
                    else "no interior part large enough to count modes in")
        described.append(f"{task} ({counted(r['n_seeds'], 'seed')}): QSM's policy shows "
                         f"{multimodality_kind(r)} ({with_ci(r, 'n_heavy_patterns')} bound "
                         f"patterns >= 5% per state, {interior}, "
                         f"{with_ci(r, 'mass_any_bound')} of its mass on a bound)"
                         + (f"; {others}" if others else ""))
    if described or without:
        points.append("**The benchmark tasks** (policy, the kinds defined above): "
                      + ". ".join(described)
                      + (". " if described and without else "")
                      + (f"No QSM run yet on {', '.join(without)}" if without else "") + ".")
    points += [p for p in on_benchmark if p]
    alone, alone_cause = no_denoiser_point(
        pd.DataFrame() if no_denoiser is None else no_denoiser, benchmark, (M_q, T, form))
    if alone:
        points.append(alone)
    points += [p for p in on_alone if p]
    if alone_cause:
        causes.append(alone_cause)

    qsm_oracle = (oracle[(oracle["algo"] == "qsm") & (oracle["other_hparams"].fillna("") == "")]
                  if not oracle.empty else oracle)
    if not qsm_oracle.empty:
        agree = qsm_oracle["agrees"].eq(True)  # a missing verdict is no agreement
        off = ", ".join(f"{r['task']} at M_q {num(r['M_q'])}, T {int(r['T'])}, {r['score_target']}"
                        for _, r in qsm_oracle[~agree].iterrows())
        points.append(f"**Learning or sampler** (`oracle.csv`): at {int(agree.sum())} of the "
                      f"{len(qsm_oracle)} QSM settings on the toys the runs return what the "
                      f"sampler returns with a perfect denoiser (within {AGREEMENT:g}): there the "
                      f"result is the sampler's, not a shortfall of learning"
                      + (f". They differ at {off} (diagnosed below)" if off else "") + ".")
        if agree.sum() * 2 > len(agree):
            not_causes.append("learning (the denoisers reach their targets)")

        at_paper = qsm_oracle[(qsm_oracle["M_q"] == M_q) & (qsm_oracle["T"] == T)
                              & (qsm_oracle["score_target"] == form)]
        geometry = toy_geometry(toy_optima)
        lines, monotone, on_bounds = [], True, True
        for dim in sorted({geometry[t][0] for t in at_paper["task"] if t in geometry}):
            group = sorted(((geometry[r["task"]][1], r) for _, r in at_paper.iterrows()
                            if geometry.get(r["task"], (None,))[0] == dim),
                           key=lambda pair: (pair[0], pair[1]["task"]))
            if len(group) < 2:
                continue
            returns = [r["learned_return"] for _, r in group]
            # falls as the optima move inward: never rises by more than the oracle's agreement,
            # and drops by more than it from the bounds to the innermost optima
            monotone &= (all(a >= b - AGREEMENT for a, b in zip(returns, returns[1:]))
                         and returns[0] - returns[-1] > AGREEMENT)
            on_bounds &= all(r["learned_bound"] >= 0.95 for _, r in group)
            lines.append(f"{dim}-D, optima at " + ", ".join(f"{d:g}" for d, _ in group)
                         + " from the bounds: " + "; ".join(_learned_text(r) for _, r in group)
                         + ", mass on a bound " + ", ".join(num(r["learned_bound"])
                                                            for _, r in group))
        if lines:
            decides = monotone and on_bounds
            points.append(f"**Geometry** (the paper's setting, {paper}): " + ". ".join(lines)
                          + (". The policy sits on the bounds wherever the optima are, and its "
                             "return is what the bounds are worth: the optima's place decides "
                             "the toy verdict" if decides else
                             ". No single pattern across the optima's places") + ".")
            if decides:
                causes.append("geometry (where the optima lie relative to the bounds)")

        steps_rows = qsm_oracle[(qsm_oracle["T"] != T) & (qsm_oracle["score_target"] == form)]
        form_rows = qsm_oracle[(qsm_oracle["T"] == T) & (qsm_oracle["score_target"] != form)]
        for knob, cause, rows, label in (
                ("Sampler steps", "sampler steps (T)", steps_rows, lambda r: f"T {int(r['T'])}"),
                ("Target form", "the score target's form", form_rows,
                 lambda r: str(r["score_target"]))):
            pairs = []  # each point beside the paper's T and form at its own task and M_q
            for _, r in rows.iterrows():
                base = same_setting(qsm_oracle, {"task": r["task"], "M_q": r["M_q"], "T": T,
                                                 "score_target": form})
                if len(base):
                    pairs.append((r, base.iloc[0]))
            if not pairs:
                continue
            points.append(f"**{knob}**: " + "; ".join(
                f"{r['task']} at M_q {num(r['M_q'])}: {label(r)} {_learned_text(r)} against "
                f"{label(b)} {_learned_text(b)}" for r, b in pairs) + ".")
            where = "at M_q " + ", ".join(sorted({num(r["M_q"]) for r, _ in pairs},
                                                 key=float))
            if any(_learns(r) and not _learns(b) for r, b in pairs):
                causes.append(f"{cause} ({where})")
            elif any(r["learned_return"] - b["learned_return"] > AGREEMENT for r, b in pairs):
                causes.append(f"{cause}, in part ({where}: a higher return, not learned)")

    matched = scale[scale["matched_M_q"].notna()] if not scale.empty else scale
    if not matched.empty:
        points.append("**Score scale** (`scale_match.csv`): " + "; ".join(
            f"{r['task']} at the M_q matching {r['reference_task']} ({num(r['matched_M_q'])}, "
            f"nearest audited {num(r['nearest_M_q'])}): {with_ci(r, 'final_normalized')} "
            f"({int(r['n_learned'])} of {counted(r['n_seeds'], 'seed')} learned)"
            for _, r in matched.iterrows()) + ".")
        if (matched["n_learned"] * 2 > matched["n_seeds"]).any():
            causes.append("score scale (M_q against the task's dQ/da)")
        else:
            not_causes.append(f"score scale (at T {T}, no benchmark-matched M_q learns a toy)")

    if causes or not_causes:
        points.append("**Which part of the algorithm**: the evidence points to "
                      + ("; ".join(causes) if causes else "no part yet") + "."
                      + (f" It does not point to {'; nor to '.join(not_causes)}."
                         if not_causes else ""))
    return "\n".join(f"- {p}" for p in points)


def verdict_section(modes, initial, status, oracle, steps, scale, toy_optima=None,
                    committed=None, audit_runs=None, diagnostics=None, no_denoiser=None) -> str:
    """The audit's verdict; `committed`: the predictions committed before their runs, per model
    of PREDICTION_MODELS, (table, commit)."""
    tasks = sorted(set(modes["task"])) if not modes.empty else []
    parts = [f"The paper's claim, in its own words: \"{PAPER_CLAIM}\" (abstract). Its evidence "
             f"of multimodality is a picture of a QSM policy's actions at the initial state of "
             f"{DEMO_TASK} (its Fig. 4; docs/audit.md says what it shows). The audit separates "
             f"two kinds: **{KIND_INTERIOR}** (several modes of the part of the distribution "
             f"with no coordinate on a bound) and **{KIND_PATTERNS}** (a law spread over "
             f"several faces of the action box: several bound patterns, each coordinate at -1, "
             f"inside or at +1, holding at least 5% of a probe state's samples). A distribution "
             f"shows a kind when the lower end of the 95% interval over seeds of its count per "
             f"probe state exceeds 1."]
    toy_optima = pd.DataFrame() if toy_optima is None else toy_optima
    committed = committed or {}
    predictions, commit = committed.get("oracle", (pd.DataFrame(), ""))
    scale_predictions, scale_commit = committed.get("score_scale", (pd.DataFrame(), ""))
    alone, alone_commit = committed.get("sampler_alone", (pd.DataFrame(), ""))
    audit_runs = pd.DataFrame() if audit_runs is None else audit_runs
    no_denoiser = pd.DataFrame() if no_denoiser is None else no_denoiser
    points = verdict_points(modes, initial, status, oracle, scale, toy_optima,
                            [scale_predictions_point(scale_predictions, audit_runs)], no_denoiser,
                            [alone_point(alone, no_denoiser, status)])
    if points:
        parts += ["### The verdict, point by point", "Each point is computed from the tables "
                  "of the subsections below, at the budgets and seeds it names.", points]
    if tasks:
        parts += ["### What kind of multimodality, per task and algorithm",
                  kinds_table(modes, tasks)]
    parts += [f"### The paper's demonstration: {DEMO_TASK} at its initial state",
              demonstration_section(initial, status),
              "### Predicted beside learned: the sampler with a perfect denoiser",
              predictions_section(predictions, oracle, steps, commit)]
    if not scale_predictions.empty:
        parts += ["### Predicted beside learned: the score scale on the benchmark tasks",
                  scale_predictions_section(scale_predictions, audit_runs, scale_commit,
                                            diagnostics, no_denoiser)]
    if not alone.empty:
        parts += ["### Predicted beside learned: where the policy is the sampler's own",
                  alone_section(alone, no_denoiser, alone_commit, status)]
    benchmark = sorted(set(status.loc[status["role"] == "benchmark", "task"]))
    parts += ["### Beside the sampler with no denoiser",
              no_denoiser_section(no_denoiser, benchmark, sorted(toy_geometry(toy_optima))),
              "### Score scale", scale_section(scale)]
    return "\n\n".join(parts)


def their_seeds(r) -> str:
    """A published source's number of seeds ('seeds unknown' where it does not say)."""
    n = r["their_seeds"]
    return counted(n, "seed") if pd.notna(n) else "seeds unknown"


def references_section(refs: pd.DataFrame) -> str:
    """Our baselines against published ones (references.csv): protocol-matched sources compared,
    with a flag; the others shown as labelled context."""
    if refs.empty:
        return ("No published reference covers an algorithm and task of this configuration "
                "(docs/references.md lists the sources).")
    out = ["Published learning curves of the same algorithms on the same tasks "
           "(`results/archive/references/`, provenance and protocol per source: "
           "docs/references.md), at the step our runs end; ours: mean final return over seeds "
           "with a 95% t-interval, theirs: the source's evaluation at or below that step with a "
           "95% t-interval over its seeds. A source is *matched* when its observations, action "
           "repeat (1), updates per environment step (1) and step counting (environment steps) "
           "are ours; widths, batch size and the like may still differ (last column). Flags: "
           "consistent (the intervals overlap), ours higher, ours lower."]
    for title, part in (("Protocol-matched sources", refs[refs["protocol"] == "matched"]),
                        ("Other protocols, shown as context only",
                         refs[refs["protocol"] != "matched"])):
        if part.empty:
            out.append(f"{title}: none.")
            continue
        rows = [(r["algo"], r["task"], f"{int(r['step']):,}",
                 f"{with_ci(r, 'ours', 4)} ({counted(r['n_seeds'], 'seed')})", r["source"],
                 f"{with_ci(r, 'theirs', 4)} ({their_seeds(r)}, step "
                 f"{int(r['step_used']):,})" if pd.notna(r["step_used"]) else "no evaluation",
                 r["flag"] if r["protocol"] == "matched" else r["protocol"],
                 str(r["protocol_other"]) if pd.notna(r["protocol_other"]) else "")
                for _, r in part.iterrows()]
        out += [f"**{title}**", table(("algorithm", "task", "step", "ours", "source", "theirs",
                                       "flag", "other differences"), rows)]
    return "\n\n".join(out)


def guessed_text(summary: pd.DataFrame) -> str:
    """The cost of the groups with no projection, guessed from other tasks, where it can be."""
    open_groups = summary[summary["hours_projected"].isna()]
    guessed = open_groups["hours_guessed"] - open_groups["hours_measured"]
    if open_groups.empty or guessed.isna().all():
        return ""
    unguessed = int(guessed.isna().sum())
    total = summary["hours_guessed"].sum()  # the projection wherever there is one
    return ("; a guess for " + ("those groups" if not unguessed else
                                f"{len(open_groups) - unguessed} of those groups")
            + ", at the median of the same algorithm's finished runs of the same role on other "
            f"tasks (the updates are most of a run's cost; a task's physics changes it by tens "
            f"of percent): **about {num(guessed.sum())} more, {num(total)} in all**")


def cost_section(summary: pd.DataFrame, runs: pd.DataFrame) -> str:
    """What the training took: measured hours per group and the projection for the rest."""
    if summary.empty:
        return "No cost table."
    rows = [(r.role, r.task, r.algo, f"{int(r.finished)} of {int(r.runs)}"
             + (f" ({int(r.slow)} slow)" if r.slow else ""),
             num(r.hours_measured), f"{num(r.hours_median)} ({int(r.peers)})",
             f"{num(r.hours_min)} - {num(r.hours_max)}" if r.finished else "n/a",
             num(r.hours_projected)) for r in summary.itertuples()]
    finished = runs.dropna(subset=["hours"]) if not runs.empty else runs
    threads = finished["threads"] if len(finished) else pd.Series(dtype=float)
    one_thread = bool(len(threads)) and bool((threads == 1).all())
    if one_thread:
        threads_text = " Every finished run recorded one thread, so its hours are core-hours."
    elif len(threads):
        counts = [f"{n} recorded {int(t)} thread(s)"
                  for t, n in threads.value_counts().sort_index().items()]
        if threads.isna().any():
            counts.append(f"{int(threads.isna().sum())} recorded no thread count")
        threads_text = f" Of the {len(threads)} finished runs, {', '.join(counts)}."
    else:
        threads_text = ""
    unestimated = [f"{r.role}: {r.algo} on {r.task}"
                   for r in summary[summary["hours_projected"].isna()].itertuples()]
    projected = summary["hours_projected"].sum()  # groups without peers (NaN) are skipped
    text = (f"**{num(summary['hours_measured'].sum())} {'core-hours' if one_thread else 'hours'} "
            f"measured** over {int(summary['finished'].sum())} finished runs of "
            f"{int(summary['runs'].sum())}; projected for the whole configuration: "
            f"**{num(projected)}**"
            + (f", not counting {len(unestimated)} group(s) with no finished peer run yet "
               f"({', '.join(unestimated)})" if unestimated else "")
            + guessed_text(summary)
            + ". Hours are each seed's share of the wall-clock of its run's timed phases "
            "(start-up and the final probe are not timed; time a process spent stopped counts). "
            "A run not finished is projected at the median of its peers, the finished runs of "
            "the same algorithm, task, budget and hyperparameters over every role (their number "
            "in brackets), leaving out slow runs: those at under half of their peers' median "
            "speed, stopped for a while or on a shared core; a configuration none of whose "
            "seeds has finished is not projected yet (its hyperparameters, T for one, can change "
            "its cost)."
            + threads_text
            + (f" The finished runs keep **{num(summary['mb_measured'].sum())} MB** of files "
               "(their contract files and policy, what an archive holds of a run; checkpoints "
               "are not kept); projected for the whole configuration at the median of each "
               f"group's peers: **{num(summary['mb_projected'].sum())} MB**"
               + (", not counting the same groups" if unestimated else "") + ".")
            + " Table: `cost_summary.csv`; per run: `run_cost.csv`; figure: "
            "`run_cost.png`.")
    return "\n\n".join([text, table(("role", "task", "algorithm", "finished", "hours measured",
                                      "median of peers", "fastest - slowest", "projected"),
                                     rows)])


# -- the document -------------------------------------------------------------------------------

def scores_by_task(final: pd.DataFrame, algo: str, tasks) -> dict:
    """An algorithm's finished benchmark final scores per task, over the given tasks (finite
    ones: the planner counts the seeds it can draw from)."""
    scored = final[final["status"].isin(FINISHED_STATUSES) & (final["role"] == "benchmark")
                   & (final["algo"] == algo)]
    scores = {task: scored.loc[scored["task"] == task, "final_normalized"].to_numpy(float)
              for task in tasks}
    return {task: v[np.isfinite(v)] for task, v in scores.items()}  # a diverged run scores none


def fidelity_plan(final: pd.DataFrame, fidelity: pd.DataFrame, margin: float):
    """The seed-count plan of the fidelity pair's IQM difference over the tasks the fidelity
    table compares (each a stratum, as in its bootstrap), or None without two seeds each."""
    if fidelity.empty or final.empty:
        return None
    pair = fidelity[fidelity["quantity"] == "iqm_difference"]
    if pair.empty or not str(pair["task"].iloc[0]).split():
        return None
    candidate, reference = (a.strip() for a in pair["algo"].iloc[0].split(" - "))
    tasks = str(pair["task"].iloc[0]).split()
    x, y = (scores_by_task(final, algo, tasks) for algo in (candidate, reference))
    if min(len(v) for v in (*x.values(), *y.values())) < 2:
        return None
    plan = bootstrap.seed_count_plan(x, y, margin=margin)
    return plan.assign(plan="fidelity", comparison=f"{candidate} - {reference}",
                       tasks=" ".join(tasks))


#: Seed counts per task at which the findings ask what the reference's comparisons would become.
COMPARISON_SEEDS = (3, 5, 10)
PLANNER_EXPERIMENTS = 200


def comparison_plans(final: pd.DataFrame, reference: str, tasks) -> pd.DataFrame:
    """Seed-count plans of the reference's IQM difference from every other benchmark algorithm
    (as P(improvement) compares them), over the aggregated tasks on which both have at least two
    finished seeds: what more seeds per task would change."""
    if final.empty:
        return pd.DataFrame()
    bench = final[(final["role"] == "benchmark") & final["status"].isin(FINISHED_STATUSES)]
    tasks = sorted(tasks) if tasks else sorted(set(bench["task"]))
    plans = []
    for other in sorted(set(bench["algo"]) - {reference}):
        x, y = (scores_by_task(final, algo, tasks) for algo in (reference, other))
        shared = [t for t in tasks if min(len(x[t]), len(y[t])) >= 2]
        if not shared:
            continue
        plan = bootstrap.seed_count_plan({t: x[t] for t in shared}, {t: y[t] for t in shared},
                                         seeds=COMPARISON_SEEDS, experiments=PLANNER_EXPERIMENTS)
        plans.append(plan.assign(plan="comparison", comparison=f"{reference} - {other}",
                                 tasks=" ".join(shared)))
    return pd.concat(plans, ignore_index=True) if plans else pd.DataFrame()


def observed_text(comparison: str, observed: str) -> str:
    """A plan's observed seeds per task ('5,2 / 5,3' for 'qsm - sac') as 'qsm 5, 2; sac 5, 3'."""
    return "; ".join(f"{algo.strip()} {counts.replace(',', ', ')}"
                     for algo, counts in zip(comparison.split(" - "), observed.split(" / ")))


def comparison_plan_section(plans: pd.DataFrame, reference: str, tasks) -> str:
    if plans.empty:
        return ""
    rows = []
    for comparison, plan in plans.groupby("comparison", sort=False):
        used = plan["tasks"].iloc[0].split()
        observed = observed_text(comparison, plan["observed_seeds"].iloc[0])
        for r in plan.itertuples():
            rows.append((comparison, ", ".join(used), observed, int(r.n_seeds),
                         num(r.width_median), f"{num(r.width_p10)} - {num(r.width_p90)}",
                         f"{r.excludes_zero:.0%}"))
    left_out = sorted(set(tasks or []) - {t for u in plans["tasks"] for t in u.split()})
    return ("**What more seeds per task would change** (`analysis.estimators.bootstrap."
            "seed_count_plan`, table `seed_plan.csv`): each task's observed final scores stand "
            "for its population; imagined experiments with n seeds per task draw from them, and "
            f"each computes the stratified 95% interval of the IQM difference between {reference} "
            "and another algorithm over the tasks where both have at least two finished seeds. "
            "Per n: the interval's median width (10th-90th percentile), and the share of "
            "experiments whose interval excludes zero, i.e. tells the two apart"
            + (f". Tasks without two seeds of both yet: {', '.join(left_out)}" if left_out else "")
            + f". The shares come from {PLANNER_EXPERIMENTS} experiments (a few percent of "
            "noise); at few seeds neither widths nor shares need move monotonically with n (the "
            "IQM of 3 scores is their mean, of 4 the mean of the middle two), and a percentile "
            "bootstrap of 3 scores per task is too narrow, so its share overstates what 3 seeds "
            "can tell.\n\n"
            + table(("IQM difference", "tasks", "observed seeds per task", "seeds per task",
                     "median width", "10th-90th percentile", "interval excludes 0"), rows))


def findings(manifest, tables: Path, margin: float, command: str = DEFAULT_COMMAND,
             committed: dict | None = None, reference: str = "qsm", tasks=None):
    """The findings' text and the seed-count plan; `committed`: predictions committed before
    their runs, per model of PREDICTION_MODELS, (table, commit)."""
    status = read(tables, "run_status.csv")
    final = read(tables, "final_scores.csv")
    fidelity = read(tables, "fidelity.csv")
    if not fidelity.empty:
        band = fidelity.loc[fidelity["quantity"] == "iqm_difference", "band_high"]
        margin = float(band.iloc[0]) if len(band) else margin
    plan = fidelity_plan(final, fidelity, margin)
    archive = manifest.archive or {}
    found, asked = int((status["status"] == "complete").sum()), len(status)
    origin = (f"the runs of `{archive['path']}`, trained at commit "
              f"{', '.join(c[:12] for c in archive.get('commits', [])) or '(none yet)'}"
              if archive else "the runs under `results/runs/`")
    benchmark_tasks = sorted(set(status.loc[status["role"] == "benchmark", "task"]))
    audit_tasks = sorted(set(status.loc[status["role"] == "audit", "task"]))
    parts = [
        "# Findings",
        "Written by `python -m analysis.findings` (the pipeline's rule `findings`: "
        f"`{command}`) from this configuration's tables, which were computed from {origin}; "
        f"configuration {manifest.config_hash[:12]}. Do not edit: the rule rewrites it whenever "
        f"a table changes. **{found} of the {asked} benchmark and audit runs the configuration "
        "asks for are complete** (each sweep's table counts its own); a section over runs that "
        "are missing says so, and its numbers are provisional until they are in. Intervals are "
        "95% bootstrap intervals over seeds; every table says how many seeds are behind a row.",
        "## Runs behind the findings", runs_section(status),
    ]
    if not fidelity.empty:
        pair = fidelity.loc[fidelity["quantity"] == "iqm_difference", "algo"]
        candidate, ref = (a.strip() for a in pair.iloc[0].split(" - ")) if len(pair) else ("", "")
        parts += [f"## Fidelity: {candidate} against {ref}", fidelity_section(fidelity, plan)]
    # the configuration's algorithms, named as it names them: its reference against the rest
    others = sorted(set(status.loc[status["role"] == "benchmark", "algo"]) - {reference})
    parts += [
        f"## {reference} against {', '.join(others) or 'nothing else'} "
        f"({budgets(status, benchmark_tasks)})",
        benchmark_section(read(tables, "aggregate.csv"),
                          read(tables, "probability_of_improvement.csv"), final),
    ]
    comparisons = comparison_plans(final, reference, tasks)
    if not comparisons.empty:
        parts.append(comparison_plan_section(comparisons, reference, tasks))
    parts += [
        f"## The audit ({budgets(status, benchmark_tasks + audit_tasks)})",
        "Policy = the learned sampler without exploration noise; behaviour = what the agent "
        "executes while exploring. Score-target RMS = the RMS of M_q dQ/da over training's last "
        "tenth (QSM; the sampler's noise has RMS 1). Seeds whose final return is below 0.8 of a "
        "toy task's optimum did not learn it, and their mode counts are not evidence (see note).",
        audit_section(read(tables, "modes_summary.csv"), benchmark_tasks + audit_tasks),
    ]
    parts += ["## Our baselines against published ones",
              references_section(read(tables, "references.csv"))]
    parts += ["## Is QSM multi-modal, and where?",
              verdict_section(read(tables, "modes_summary.csv"), read(tables, "initial_state.csv"),
                              status, read(tables, "oracle.csv"), read(tables, "oracle_steps.csv"),
                              read(tables, "scale_match.csv"), read(tables, "toy_optima.csv"),
                              committed, read(tables, "audit_runs.csv"),
                              read(tables, "diagnostics.csv"), read(tables, "no_denoiser.csv"))]
    for name, spec in manifest.sweeps.items():  # one section per sweep of the configuration
        parts += [f"## Sweep {name}: {spec['hparam']} of {', '.join(spec.get('algos', []))}",
                  sweep_section(read(tables, f"{name}.csv"), spec["hparam"])]
    parts += ["## Cost", cost_section(read(tables, "cost_summary.csv"),
                                      read(tables, "run_cost.csv"))]
    plans = [p for p in (plan, comparisons) if p is not None and not p.empty]
    return "\n\n".join(parts) + "\n", (pd.concat(plans, ignore_index=True) if plans else None)


#: seed_plan.csv's columns: the fidelity pair's plan (with its margin) and the reference's
#: comparisons (with the share of intervals that exclude zero), one row per seed count.
PLAN_COLUMNS = ["plan", "comparison", "tasks", "n_seeds", "statistic", "width_median", "width_p10",
                "width_p90", "observed_seeds", "excludes_zero", "margin", "decides"]


def write(manifest_path, tables, out, margin=0.05, command=DEFAULT_COMMAND, predictions=(),
          reference="qsm", tasks=None):
    """`predictions`: (model, table path, commit) of each committed predictions table."""
    manifest = load_manifest(manifest_path)
    tables = Path(tables)
    committed = {}
    for model, path, commit in predictions:
        if model not in PREDICTION_MODELS:
            raise ValueError(f"unknown prediction model {model!r}: one of "
                             f"{', '.join(PREDICTION_MODELS)}")
        committed[model] = (pd.read_csv(path), commit)
    text, plan = findings(manifest, tables, margin, command, committed, reference, tasks)
    atomic_write_text(out, text)
    plan = (plan if plan is not None else pd.DataFrame()).reindex(columns=PLAN_COLUMNS)
    plan_path = tables / PLAN_FILE
    atomic_write_text(plan_path, plan.to_csv(index=False))
    provenance = Provenance.of(manifest, ("benchmark",), MODULE)
    atomic_write_json(sidecar_path(plan_path), provenance.record(PLAN_FILE, used=[]))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__,
                                 formatter_class=HelpFormatter)
    ap.add_argument("--manifest", required=True, help="the run manifest the tables were made from")
    ap.add_argument("--tables", required=True, help="the pipeline's tables directory")
    ap.add_argument("--out", required=True, help="the findings to write (Markdown)")
    ap.add_argument("--margin", type=float, default=0.05,
                    help="the IQM margin of the seed-count planner when there is no fidelity "
                         "table to take it from")
    ap.add_argument("--reference", default="qsm",
                    help="the configuration's reference algorithm (config stats.reference), "
                         "compared with every other in the findings' headings")
    ap.add_argument("--tasks", nargs="+", default=None,
                    help="the tasks the statistics stratify over (config stats.tasks; default: "
                         "every benchmark task), over which the seed-count planner compares the "
                         "reference with every other algorithm")
    ap.add_argument("--prediction", nargs=3, action="append", default=[],
                    metavar=("MODEL", "TABLE", "COMMIT"),
                    help="a predictions table committed before its runs (config predictions), "
                         "shown beside what the runs learned; MODEL is one of "
                         f"{', '.join(PREDICTION_MODELS)}; COMMIT the commit that added it. "
                         "Repeat for each model")
    ap.add_argument("--command", default=DEFAULT_COMMAND,
                    help="the command that regenerates the findings, named in their first lines")
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    unknown = sorted({model for model, _, _ in a.prediction} - set(PREDICTION_MODELS))
    if unknown:
        parser.error(f"--prediction: unknown model {', '.join(unknown)}; one of "
                     f"{', '.join(PREDICTION_MODELS)}")
    write(a.manifest, a.tables, a.out, a.margin, a.command, a.prediction, a.reference, a.tasks)
    print(f"findings -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
