"""The score-scale model: where QSM's policy will sit on a benchmark task it has not trained on,
predicted from the score scale alone and committed before those runs
(docs/predictions/score_scale_predictions.csv; docs/predictions/README.md).

QSM regresses its denoiser onto M_q dQ/da, and its sampler, at the paper's T = 5 and constant
target, drives the actions onto the bounds of the box once that target is large against its unit
noise (the audit's toys and M_q sweep). The model, each step read off finished runs:

1. QSM's end-of-training score-target RMS on a task is proportional to the level of the task's Q
   at that budget, which TD3's critic measures as well: per task where both have finished runs
   (the calibration tasks), ratio = QSM's median score-target RMS / TD3's median end-of-training
   mean Q. Its range over those tasks is the model's uncertainty.
2. On a task without QSM runs: the predicted RMS is that range times TD3's mean Q there.
3. The toy curve: for the toy runs at T 5 and the constant target (every M_q), the share of each
   action coordinate that the policy puts on a bound, against their score-target RMS (medians
   per toy and M_q, made non-decreasing; log-linear between them, clamped at the ends). With d
   coordinates falling on a bound independently with that share p, the mass with any coordinate
   on a bound is 1 - (1 - p)^d, with every one p^d.

What it leaves out, stated with the predictions: the toys' Q is not a task's (the optima's place
decides a toy's return, not its bound share at a given score scale, but the curve is the toys');
coordinates need not fall on bounds independently; QSM's Q level need not be TD3's.

    python -m analysis.audit.scale_model predict --manifest results/tables/run_manifest.json \
        --out docs/predictions/score_scale_predictions.csv

A second prediction from the same scale (below, `sampler_alone_predictions`): on which tasks
QSM's policy will be what its sampler draws with no denoiser at all.

    python -m analysis.audit.scale_model predict-alone --manifest results/tables/run_manifest.json \
        --scale-predictions docs/predictions/score_scale_predictions.csv \
        --no-denoiser results/tables/no_denoiser.csv --out docs/predictions/sampler_alone_predictions.csv
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.estimators.mixed import bound_pattern
from analysis.records.manifest import ManifestError, load_manifest, read_runs
from analysis.training.metrics import end_of_training_value


PREDICTION_COLUMNS = ["task", "kind", "act_dim", "td3_q_mean", "n_td3_seeds", "ratio_low", "ratio_high",
                      "calibration_tasks", "rms_low", "rms_high", "coord_bound_low",
                      "coord_bound_high", "mass_any_bound_low", "mass_any_bound_high",
                      "mass_corner_low", "mass_corner_high", "predicted_on_bounds"]
#: Agreement, fixed with the predictions: the runs' median score-target RMS within the predicted
#: range widened by RMS_FACTOR each way, and their mean mass with a coordinate on a bound within
#: the predicted range widened by MASS_TOLERANCE each way.
RMS_FACTOR = 1.5
MASS_TOLERANCE = 0.1
#: 'on the bounds': at least this much of the policy's mass with a coordinate on a bound
ON_BOUNDS = 0.9


def paper_setting() -> tuple[float, int, str]:
    """The paper's QSM setting (M_q, T, score target): the declared defaults of the qsm agent.
    The calibration runs are at it, and the toy curve at its T and target form."""
    from qsm.declare.catalog import get_entry
    specs = get_entry("qsm").specs
    return float(specs["M_q"].default), int(specs["T"].default), str(specs["score_target"].default)


@dataclass(frozen=True)
class ScaleRun:
    """What the score-scale model reads of one complete run."""
    algo: str
    task: str
    setting: tuple | None      # (M_q, T, form) of a QSM-like learner, else None
    toy: bool                  # a task with known optima
    q_mean: float              # end-of-training mean Q of the critic (metrics.csv)
    score_target_rms: float    # end-of-training RMS of M_q dQ/da (NaN: not logged)
    coord_bound: float         # share of the policy's probe samples on a bound, per coordinate
    act_dim: int


def scale_runs(manifest) -> list[ScaleRun]:
    """Every complete run of the manifest (any role) as the score-scale model reads it."""
    if not hasattr(manifest, "runs"):
        manifest = load_manifest(manifest)

    def read(run):
        if run.status["status"] != "complete":
            return None
        _, actions = run.probe_actions("policy")
        a = np.clip(np.asarray(actions, np.float64), -1.0, 1.0)
        hp = dict(run.config.get("hparams") or {})
        setting = ((float(hp["M_q"]), int(hp["T"]), str(hp.get("score_target", "constant")))
                   if "M_q" in hp and "T" in hp else None)
        return ScaleRun(run.algo, run.task, setting, run.config["env"].get("optima") is not None,
                        end_of_training_value(run, "q_mean"),
                        end_of_training_value(run, "score_target_rms"),
                        float((bound_pattern(a.reshape(-1, a.shape[-1])) != 0).mean()),
                        int(a.shape[-1]))

    roles = sorted({e.role for e in manifest.runs})
    runs = {}
    for listed in read_runs(manifest, roles, read=read):
        r = listed.data
        if isinstance(r, ScaleRun):  # one per run, whichever role lists it first
            runs.setdefault(listed.entry.path, r)
    return list(runs.values())


def toy_curve(runs) -> tuple[np.ndarray, np.ndarray]:
    """The toys' share of each action coordinate on a bound against the score-target RMS, at the
    paper's T and target form (any M_q): one point per (toy, M_q), the medians of its seeds,
    sorted by RMS and made non-decreasing (more score, no less mass pushed onto the bounds)."""
    _, T, form = paper_setting()
    groups: dict = {}
    for r in runs:
        if r.toy and r.setting is not None and r.setting[1:] == (T, form) \
                and math.isfinite(r.score_target_rms):
            groups.setdefault((r.task, r.setting[0]), []).append(r)
    if len(groups) < 2:
        raise ValueError("the score-scale model needs toy runs at two or more score scales "
                         f"(T {T}, {form} target); found {len(groups)}")
    pts = sorted((float(np.median([r.score_target_rms for r in g])),
                  float(np.median([r.coord_bound for r in g]))) for g in groups.values())
    rms, share = (np.array(v) for v in zip(*pts))
    return rms, np.maximum.accumulate(share)


def coord_bound_at(rms_curve, share_curve, rms) -> float:
    """The toy curve's per-coordinate bound share at a score-target RMS (log-linear, clamped)."""
    return float(np.interp(math.log(rms), np.log(rms_curve), share_curve))


def score_scale_predictions(runs) -> pd.DataFrame:
    """Per benchmark task with TD3 runs: QSM's end-of-training score-target RMS and where its
    policy's mass will sit, predicted from TD3's Q level there (the module's docstring). Kind
    'prediction' for a task without QSM runs; 'calibration' for one with them (in-sample: what
    the model says of the runs it was fitted on)."""
    bench = [r for r in runs if not r.toy]

    def median(algo, task, field, setting=None):
        v = [getattr(r, field) for r in bench if r.algo == algo and r.task == task
             and (setting is None or r.setting == setting) and math.isfinite(getattr(r, field))]
        return (float(np.median(v)) if v else math.nan), len(v)

    tasks = sorted({r.task for r in bench})
    paper = paper_setting()
    ratios = {}
    for task in tasks:
        rms, _ = median("qsm", task, "score_target_rms", paper)
        q, _ = median("td3", task, "q_mean")
        if math.isfinite(rms) and math.isfinite(q) and q > 0:
            ratios[task] = rms / q
    if not ratios:
        raise ValueError("no benchmark task has finished runs of both qsm (M_q 50, T 5) and td3: "
                         "nothing to calibrate the score scale on")
    lo, hi = min(ratios.values()), max(ratios.values())
    rms_curve, share_curve = toy_curve(runs)
    rows = []
    for task in tasks:
        # a task with QSM runs already is in-sample: listed as a check of the model, not a test
        kind = ("calibration" if any(r.algo == "qsm" and r.task == task for r in bench)
                else "prediction")
        q, n = median("td3", task, "q_mean")
        if not (math.isfinite(q) and q > 0):
            continue
        d = next(r.act_dim for r in bench if r.task == task)
        p = [coord_bound_at(rms_curve, share_curve, k * q) for k in (lo, hi)]
        rows.append({"task": task, "kind": kind, "act_dim": d, "td3_q_mean": q, "n_td3_seeds": n,
                     "ratio_low": lo, "ratio_high": hi,
                     "calibration_tasks": " ".join(sorted(ratios)),
                     "rms_low": lo * q, "rms_high": hi * q,
                     "coord_bound_low": p[0], "coord_bound_high": p[1],
                     "mass_any_bound_low": 1 - (1 - p[0]) ** d,
                     "mass_any_bound_high": 1 - (1 - p[1]) ** d,
                     "mass_corner_low": p[0] ** d, "mass_corner_high": p[1] ** d,
                     "predicted_on_bounds": bool(1 - (1 - p[0]) ** d >= ON_BOUNDS)})
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


def agrees(prediction, rms: float, mass_any_bound: float) -> bool:
    """Whether runs agree with a prediction row (RMS_FACTOR, MASS_TOLERANCE): their median
    score-target RMS and their mean mass with a coordinate on a bound."""
    return (prediction["rms_low"] / RMS_FACTOR <= rms <= prediction["rms_high"] * RMS_FACTOR
            and prediction["mass_any_bound_low"] - MASS_TOLERANCE <= mass_any_bound
            <= prediction["mass_any_bound_high"] + MASS_TOLERANCE)


# -- a second prediction from the same scale: where the policy is the sampler's own ------------
#
# With no denoiser at all QSM's sampler puts about two thirds of each coordinate on a bound
# (analysis.audit.oracle.no_denoiser_split): a policy whose score is too weak to move the samples
# draws what that sampler draws. A task's QSM policy is 'the sampler's own' when at least
# SAMPLERS_OWN of its probe states are (no_denoiser.csv). The prediction, from the score-target RMS
# the score-scale model predicts (docs/predictions/score_scale_predictions.csv), bracketed by the
# tasks already trained at the paper's setting: the sampler's own where the predicted RMS stays
# within RMS_FACTOR of the largest RMS of a task whose policy is the sampler's own; not the
# sampler's where it stays above the smallest RMS of a task whose policy is not, divided by
# RMS_FACTOR; undecided in between. Seeds trained when the prediction is made are in-sample; the
# others test it.

SAMPLERS_OWN = 0.5
ALONE_COLUMNS = ["task", "seeds_in_sample", "rms_low", "rms_high", "own_rms_max",
                 "other_rms_min", "predicted"]
OWN, NOT_OWN, UNDECIDED = "the sampler's own", "not the sampler's", "undecided"


def samplers_own(matched: int, states: int) -> bool:
    """Whether probe states of which `matched` are the no-denoiser sampler's make the policy the
    sampler's own."""
    return states > 0 and matched >= SAMPLERS_OWN * states


def at_paper_setting(no_denoiser: pd.DataFrame) -> pd.DataFrame:
    """The rows of no_denoiser.csv of qsm at the paper's setting and its declared other
    hyperparameters."""
    if no_denoiser.empty:
        return no_denoiser
    M_q, T, form = paper_setting()
    nd = no_denoiser
    return nd[(nd["algo"] == "qsm") & (nd["M_q"] == M_q) & (nd["T"] == T)
              & (nd["score_target"] == form) & (nd["other_hparams"].fillna("") == "")]


def sampler_alone_predictions(runs, scale_predictions: pd.DataFrame,
                              no_denoiser: pd.DataFrame) -> pd.DataFrame:
    """Per task of the score-scale predictions: whether QSM's policy at the paper's setting will
    be the sampler's own, from its predicted RMS and the benchmark tasks QSM has trained on (their
    median score-target RMS from `runs`, their probe states from `no_denoiser`)."""
    M_q, T, form = paper_setting()
    nd = at_paper_setting(no_denoiser)
    rms = {}
    for r in runs:
        if r.algo == "qsm" and not r.toy and r.setting == (M_q, T, form) \
                and math.isfinite(r.score_target_rms):
            rms.setdefault(r.task, []).append(r.score_target_rms)
    own, other, seeds = [], [], {}
    for task, g in nd.groupby("task"):
        if task not in rms:
            continue
        seeds[task] = " ".join(str(int(s)) for s in sorted(g["seed"]))
        is_own = samplers_own(int(g["states_as_no_denoiser"].sum()), int(g["n_states"].sum()))
        (own if is_own else other).append(float(np.median(rms[task])))
    if not own or not other:
        raise ValueError("the sampler-alone prediction needs trained benchmark tasks on both "
                         f"sides: {len(own)} whose QSM policy is the sampler's own, {len(other)} "
                         "whose policy is not")
    own_max, other_min = max(own), min(other)
    rows = []
    for _, p in scale_predictions.iterrows():
        if p["rms_high"] <= own_max * RMS_FACTOR:
            predicted = OWN
        elif p["rms_low"] >= other_min / RMS_FACTOR:
            predicted = NOT_OWN
        else:
            predicted = UNDECIDED
        rows.append({"task": p["task"], "seeds_in_sample": seeds.get(p["task"], ""),
                     "rms_low": p["rms_low"], "rms_high": p["rms_high"], "own_rms_max": own_max,
                     "other_rms_min": other_min, "predicted": predicted})
    return pd.DataFrame(rows, columns=ALONE_COLUMNS)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.audit.scale_model",
        description="Predict, from the score scale alone, QSM's score-target RMS and its policy's "
                    "mass on the action bounds on every benchmark task where TD3 has finished "
                    "runs (docs/predictions/README.md).")
    p.add_argument("command", choices=["predict", "predict-alone"],
                   help="predict: the score-scale predictions; predict-alone: where QSM's policy "
                        "will be its sampler's own (needs --scale-predictions and --no-denoiser)")
    p.add_argument("--manifest", required=True, help="run_manifest.json of the configuration")
    p.add_argument("--scale-predictions", help="the committed score-scale predictions (CSV)")
    p.add_argument("--no-denoiser", help="no_denoiser.csv of the same runs (python -m "
                                         "analysis.audit.oracle check)")
    p.add_argument("--out", required=True, help="CSV to write")
    return p


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        if a.command == "predict":
            df = score_scale_predictions(scale_runs(a.manifest))
        elif not (a.scale_predictions and a.no_denoiser):
            raise ValueError("predict-alone needs --scale-predictions and --no-denoiser")
        else:
            df = sampler_alone_predictions(scale_runs(a.manifest),
                                           pd.read_csv(a.scale_predictions),
                                           pd.read_csv(a.no_denoiser))
    except (ValueError, ManifestError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    df.to_csv(a.out, index=False, float_format="%.4f")
    print(f"{len(df)} predictions written to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
