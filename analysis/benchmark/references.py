"""Published reference learning curves of the baselines, with provenance and protocol.

A reviewer's first question about the baselines is whether they score what the same baselines
score elsewhere under the same protocol. The answers live in ``results/archive/references/``:
one folder per source, holding

* ``curves.csv``: ``algo,task,step,seed,return`` (one row per seed and evaluation), or
  ``algo,task,step,n_seeds,return[,return_std]`` where the source publishes only a mean (and the
  standard deviation over its seeds); ``step`` counts environment steps (see ``step_counting``);
* ``SOURCE.yaml``: ``provenance`` (``repository`` or ``paper``, ``file``, ``commit`` or
  ``version``, ``licence``) and ``protocol`` (``observations``, ``action_repeat``,
  ``updates_per_env_step``, ``hidden_widths``, ``batch_size``, ``eval_episodes``,
  ``random_steps``, ``learning_rate``, ``seeds``, ``step_counting``: ``env_steps`` or
  ``agent_steps``). A protocol value the source does not establish is ``null`` (unknown), never a
  guess.

:func:`load_references` refuses a source whose provenance lacks a field, with a one-line error
naming the source and the field. Every row carries its source's protocol and a ``protocol`` label:
``matched`` where the core of the protocol (state observations, action repeat 1, one update per
environment step, steps counted in environment steps) equals ours, else ``differs: <fields>``
(an unknown core field differs). Widths, batch size, evaluation episodes, random steps and learning
rate (and a source's free-text ``other``) are reported in ``protocol_other`` and do not decide the
label. :func:`at_step` gives each
(source, algo, task) its value at 100k environment steps from the source's own evaluation nearest
at or below it, with a 95% interval over the seeds, and keeps both columns, so a mismatched
source is never silently compared.

``python -m analysis.benchmark.references`` prints the table at 100k steps.
"""
from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from qsm import ROOT
REFERENCES_DIR = ROOT / "results" / "archive" / "references"
SOURCE_FILE = "SOURCE.yaml"

# The study's DMC protocol (docs/references.md): proprioceptive state, no action repeat, one gradient
# update per environment step, 10,000 uniform-random initial steps, batch 256, MLP(256, 256) actor
# and twin critics (SAC, TD3), Adam 3e-4, evaluation every 5,000 steps over 10 episodes, steps
# counted in environment steps.
OUR_PROTOCOL = {
    "observations": "state",
    "action_repeat": 1,
    "updates_per_env_step": 1,
    "step_counting": "env_steps",
    "hidden_widths": [256, 256],
    "batch_size": 256,
    "eval_episodes": 10,
    "random_steps": 10_000,
    "learning_rate": 3e-4,
    "eval_interval_env_steps": 5_000,
}
# Fields that decide "matched": a difference here changes what a step or a return means.
CORE_FIELDS = ("observations", "action_repeat", "updates_per_env_step", "step_counting")
# Fields reported as differences (protocol_other) without deciding the label.
OTHER_FIELDS = ("hidden_widths", "batch_size", "eval_episodes", "random_steps", "learning_rate")
PROTOCOL_FIELDS = CORE_FIELDS + OTHER_FIELDS + ("seeds", "eval_interval_env_steps")
STEP_COUNTINGS = ("env_steps", "agent_steps")

# provenance: each entry is satisfied by any one of its keys
REQUIRED_PROVENANCE = (("repository", "paper"), ("file",), ("commit", "version"),
                       ("licence", "license"))

COLUMNS = ["source", "algo", "task", "step", "seed", "n_seeds", "return", "return_std",
           "protocol", "protocol_other", *PROTOCOL_FIELDS, "repository", "paper", "file", "commit",
           "licence"]

DEFAULT_STEP = 100_000
CONFIDENCE = 0.95
BOOTSTRAP_REPS = 10_000
BOOTSTRAP_SEED = 0
CI_METHODS = ("t", "bootstrap")


class ReferenceError(ValueError):
    """A reference source that cannot be used: the message names the source and what is wrong."""


# ---------------------------------------------------------------- protocol comparison

def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(theirs, ours) -> bool:
    if isinstance(ours, (list, tuple)):
        return isinstance(theirs, (list, tuple)) and [float(x) for x in theirs] == [float(x)
                                                                                   for x in ours]
    if isinstance(ours, (int, float)) and not isinstance(ours, bool):
        try:
            return math.isclose(float(theirs), float(ours), rel_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return theirs == ours


def _show(value) -> str:
    if _missing(value):
        return "unknown"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def protocol_matches(protocol: dict, ours: dict | None = None) -> tuple[bool, list[str]]:
    """Compare a source's protocol to ours.

    Returns ``(matched, mismatches)``: ``matched`` is True when every core field (observations,
    action_repeat, updates_per_env_step, step_counting) equals ours; an unknown (missing or null)
    core field is a mismatch. ``mismatches`` lists every difference as ``"field=theirs (ours
    ours)"``, core fields first, then widths, batch size, evaluation episodes, random steps and
    learning rate, which are reported but do not decide ``matched``. A field we do not set is not
    compared.
    """
    ours = OUR_PROTOCOL if ours is None else ours
    protocol = protocol or {}
    core, other = [], []
    for fields, out in ((CORE_FIELDS, core), (OTHER_FIELDS, other)):
        for f in fields:
            if f not in ours:
                continue
            theirs = protocol.get(f)
            if _missing(theirs) or not _same(theirs, ours[f]):
                out.append(f"{f}={_show(theirs)} (ours {_show(ours[f])})")
    return not core, core + other


def protocol_label(protocol: dict, ours: dict | None = None) -> tuple[str, str]:
    """``(label, other)``: ``"matched"`` or ``"differs: <core mismatches>"``, and the other
    differences joined by ``"; "`` (empty when none)."""
    ours = OUR_PROTOCOL if ours is None else ours
    matched, mismatches = protocol_matches(protocol, ours)
    core = [m for m in mismatches if m.split("=", 1)[0] in CORE_FIELDS]
    other = [m for m in mismatches if m.split("=", 1)[0] not in CORE_FIELDS]
    label = "matched" if matched else "differs: " + ", ".join(core)
    return label, "; ".join(other)


# ---------------------------------------------------------------- loading

def _check_provenance(source: str, meta: dict) -> dict:
    prov = meta.get("provenance")
    if not isinstance(prov, dict):
        raise ReferenceError(f"reference source {source!r}: no provenance in its {SOURCE_FILE}")
    for keys in REQUIRED_PROVENANCE:
        if not any(not _missing(prov.get(k)) and str(prov.get(k)).strip() for k in keys):
            name = keys[0] if keys[0] in ("file", "licence") else " or ".join(keys)
            raise ReferenceError(f"reference source {source!r}: provenance lacks {name}")
    return prov


def read_source(folder) -> tuple[dict, pd.DataFrame]:
    """One source folder: its SOURCE.yaml (checked) and its curves, in environment steps."""
    folder = Path(folder)
    source = folder.name
    meta_path = folder / SOURCE_FILE
    if not meta_path.is_file():
        raise ReferenceError(f"reference source {source!r}: no {SOURCE_FILE} (provenance required)")
    meta = yaml.safe_load(meta_path.read_text()) or {}
    if not isinstance(meta, dict):
        raise ReferenceError(f"reference source {source!r}: {SOURCE_FILE} is not a mapping")
    if meta.get("id", source) != source:
        raise ReferenceError(f"reference source {source!r}: {SOURCE_FILE} says id {meta['id']!r}")
    prov = _check_provenance(source, meta)
    protocol = meta.get("protocol")
    if not isinstance(protocol, dict):
        raise ReferenceError(f"reference source {source!r}: no protocol in its {SOURCE_FILE} "
                             "(write null for a field the source does not establish)")
    counting = protocol.get("step_counting")
    if counting not in STEP_COUNTINGS:
        raise ReferenceError(f"reference source {source!r}: protocol step_counting must be one of "
                             f"{', '.join(STEP_COUNTINGS)}, not {counting!r}")
    curves_path = folder / meta.get("curves", "curves.csv")
    if not curves_path.is_file():
        raise ReferenceError(f"reference source {source!r}: no curves file {curves_path.name}")
    df = pd.read_csv(curves_path)
    missing = [c for c in ("algo", "task", "step", "return") if c not in df.columns]
    if missing:
        raise ReferenceError(f"reference source {source!r}: {curves_path.name} lacks column(s) "
                             f"{', '.join(missing)}")
    if "seed" not in df.columns and "n_seeds" not in df.columns:
        raise ReferenceError(f"reference source {source!r}: {curves_path.name} needs a seed column "
                             "(one row per seed) or n_seeds (a mean over seeds)")
    if df[["step", "return"]].isna().any().any():
        raise ReferenceError(f"reference source {source!r}: {curves_path.name} has empty step or "
                             "return values")
    df["step"] = df["step"].astype("int64")
    if counting == "agent_steps":  # convert to environment steps with the source's action repeat
        repeat = protocol.get("action_repeat")
        if _missing(repeat) or int(repeat) < 1:
            raise ReferenceError(f"reference source {source!r}: steps count agent steps but "
                                 "action_repeat is unknown, so they cannot be made environment steps")
        df["step"] = df["step"] * int(repeat)
    if "seed" in df.columns:  # one row per seed: each row is one seed's evaluation
        df["seed"] = df["seed"].astype("Int64")
        df["n_seeds"] = pd.array([1] * len(df), dtype="Int64")
    else:
        df["seed"] = pd.array([pd.NA] * len(df), dtype="Int64")
        df["n_seeds"] = df["n_seeds"].astype("Int64")
    if "return_std" not in df.columns:
        df["return_std"] = np.nan
    df["return"] = df["return"].astype(float)
    df["source"] = source
    label, other = protocol_label(protocol)
    if not _missing(protocol.get("other")) and str(protocol["other"]).strip():
        other = "; ".join(x for x in (other, f"also: {str(protocol['other']).strip()}") if x)
    df["protocol"] = label
    df["protocol_other"] = other
    for f in PROTOCOL_FIELDS:
        v = protocol.get(f)
        df[f] = _show(v) if isinstance(v, (list, tuple)) else v
    df["repository"] = prov.get("repository")
    df["paper"] = prov.get("paper")
    df["file"] = prov.get("file")
    df["commit"] = prov.get("commit") or prov.get("version")
    df["licence"] = prov.get("licence") or prov.get("license")
    return meta, df[COLUMNS]


def source_folders(root=None) -> list[Path]:
    root = Path(root) if root is not None else REFERENCES_DIR
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def load_references(root=None) -> pd.DataFrame:
    """Every source under `root` (default ``results/archive/references``) as one table: source,
    algo, task, step (environment steps), seed (per-seed rows) or n_seeds (mean rows), return,
    return_std, the protocol label and fields, and the provenance. Raises :class:`ReferenceError`
    (one line naming the source and the missing field) on a source without full provenance."""
    folders = source_folders(root)
    if not folders:
        raise ReferenceError(f"no reference sources under {root or REFERENCES_DIR}")
    frames = [read_source(f)[1] for f in folders]
    with warnings.catch_warnings():  # all-null columns (e.g. a source without return_std)
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- value at a step

def t_interval(values, confidence=CONFIDENCE) -> tuple[float, float]:
    """Student-t interval of the mean of `values` (NaN, NaN with fewer than two)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def bootstrap_interval(values, confidence=CONFIDENCE, reps=BOOTSTRAP_REPS,
                       seed=BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values`, resampling seeds with a fixed RNG
    seed (NaN, NaN with fewer than two values)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(reps, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return float(lo), float(hi)


def at_step(df: pd.DataFrame, step: int = DEFAULT_STEP, method: str = "t",
            confidence: float = CONFIDENCE, reps: int = BOOTSTRAP_REPS,
            seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """Each (source, algo, task) at `step` environment steps.

    The value is the source's own evaluation at the largest step at or below `step` where it has
    one (``step_used``; never interpolated, never a later evaluation): the mean over the seeds
    evaluated there, with a `confidence` interval of that mean. ``method="t"`` (default) is a
    Student-t interval; ``"bootstrap"`` a percentile bootstrap over seeds (`reps` resamples, RNG
    seed `seed`). For a source that gives only a mean, the interval is a t-interval from its
    ``return_std`` and ``n_seeds`` when both are given, else NaN. ``ci_method`` says which. A group
    with no evaluation at or below `step` is kept with NaN values. The protocol label and fields
    travel with every row.
    """
    if method not in CI_METHODS:
        raise ValueError(f"method must be one of {CI_METHODS}, not {method!r}")
    from scipy import stats

    keep = ["protocol", "protocol_other", *PROTOCOL_FIELDS, "repository", "commit", "licence"]
    rows = []
    for (source, algo, task), g in df.groupby(["source", "algo", "task"], sort=True):
        row = {"source": source, "algo": algo, "task": task, "target_step": int(step)}
        row.update({k: g[k].iloc[0] for k in keep if k in g.columns})
        below = g[g["step"] <= step]
        if below.empty:
            row.update(step_used=pd.NA, n_seeds=0, mean=math.nan, ci_low=math.nan,
                       ci_high=math.nan, ci_method="none: no evaluation at or below the step")
            rows.append(row)
            continue
        used = int(below["step"].max())
        at = below[below["step"] == used]
        per_seed = at[at["seed"].notna()]
        if len(per_seed):
            vals = per_seed["return"].to_numpy(float)
            lo, hi = (t_interval(vals, confidence) if method == "t"
                      else bootstrap_interval(vals, confidence, reps, seed))
            ci = (f"t-interval over seeds ({confidence:.0%})" if method == "t" else
                  f"percentile bootstrap over seeds ({confidence:.0%}, {reps} reps, seed {seed})")
            if len(vals) < 2:
                ci = "none: one seed"
            row.update(step_used=used, n_seeds=len(vals), mean=float(vals.mean()), ci_low=lo,
                       ci_high=hi, ci_method=ci)
        else:  # the source's mean over its seeds
            r = at.iloc[0]
            n = r["n_seeds"]
            sd = r["return_std"]
            if not pd.isna(n) and int(n) >= 2 and not pd.isna(sd):
                half = stats.t.ppf(0.5 + confidence / 2, int(n) - 1) * float(sd) / math.sqrt(int(n))
                lo, hi, ci = (r["return"] - half, r["return"] + half,
                              f"t-interval from the source's mean and std ({confidence:.0%})")
            else:
                lo, hi, ci = math.nan, math.nan, "none: the source gives no per-seed values or std"
            row.update(step_used=used, n_seeds=(pd.NA if pd.isna(n) else int(n)),
                       mean=float(r["return"]), ci_low=lo, ci_high=hi, ci_method=ci)
        rows.append(row)
    order = ["source", "algo", "task", "target_step", "step_used", "n_seeds", "mean", "ci_low",
             "ci_high", "ci_method", *keep]
    return pd.DataFrame(rows)[order]


# ---------------------------------------------------------------- ours against theirs

COMPARE_COLUMNS = ["algo", "task", "step", "n_seeds", "ours", "ours_ci_low", "ours_ci_high",
                   "source", "step_used", "their_seeds", "theirs", "theirs_ci_low",
                   "theirs_ci_high", "protocol", "protocol_other", "flag"]


def compare(final: pd.DataFrame, refs: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Our benchmark runs' final returns (final_scores.csv: complete runs, their last evaluation)
    per (algorithm, task) with a t-interval over seeds, beside every reference of the same
    algorithm and task at the same number of environment steps (:func:`at_step`). ``flag``:
    for a protocol-matched source ``consistent`` (the two intervals overlap), ``ours higher`` or
    ``ours lower``; for any other, ``context (protocol differs)``: shown, never compared."""
    ours = final[(final["role"] == "benchmark") & (final["status"] == "complete")]
    rows = []
    for (algo, task), g in ours.groupby(["algo", "task"], sort=True):
        mine = refs[(refs["algo"] == algo) & (refs["task"] == task)]
        if mine.empty:
            continue
        step = int(g["final_step"].max())
        values = g["final_return"].to_numpy(float)
        lo, hi = t_interval(values, confidence) if len(values) > 1 else (math.nan, math.nan)
        theirs = at_step(mine, step)
        for _, r in theirs.iterrows():
            matched = r["protocol"] == "matched"
            if not matched:
                flag = "context (protocol differs)"
            elif not (math.isfinite(lo) and math.isfinite(r["ci_low"])):
                flag = "no interval"
            elif lo > r["ci_high"]:
                flag = "ours higher"
            elif hi < r["ci_low"]:
                flag = "ours lower"
            else:
                flag = "consistent"
            rows.append({"algo": algo, "task": task, "step": step, "n_seeds": len(values),
                         "ours": float(values.mean()), "ours_ci_low": lo, "ours_ci_high": hi,
                         "source": r["source"], "step_used": r["step_used"],
                         "their_seeds": r["n_seeds"], "theirs": r["mean"],
                         "theirs_ci_low": r["ci_low"], "theirs_ci_high": r["ci_high"],
                         "protocol": r["protocol"], "protocol_other": r.get("protocol_other", ""),
                         "flag": flag})
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def write_comparison(manifest, final_scores, out, root=None) -> Path:
    """references.csv, with its provenance sidecar: :func:`compare` of a configuration's final
    scores with the committed references."""
    from analysis.records.manifest import load_manifest
    from analysis.records.outputs import write_table
    from analysis.records.provenance import Provenance

    final = pd.read_csv(final_scores)
    df = compare(final, load_references(root))
    manifest = load_manifest(manifest)
    used = {r.path for r in manifest.runs if r.role == "benchmark"
            and (r.algo, r.task) in set(zip(df["algo"], df["task"]))}
    prov = Provenance.of(manifest, ("benchmark",), "analysis.benchmark.references")
    return write_table(Path(out), df, prov, used, float_format="%.6g",
                       extra={"sources": sorted(set(df["source"]))})


def main(argv=None):
    if argv is None:
        import sys
        argv = sys.argv[1:]
    if argv and argv[0] == "compare":
        p = argparse.ArgumentParser(prog="python -m analysis.benchmark.references compare",
                                    description="Our benchmark runs beside the published "
                                                "references (references.csv).")
        p.add_argument("--manifest", required=True, help="run_manifest.json")
        p.add_argument("--final-scores", required=True,
                       help="final_scores.csv (analysis.benchmark.stats)")
        p.add_argument("--out", required=True, help="references.csv to write")
        p.add_argument("--root", type=Path, default=REFERENCES_DIR,
                       help="folder of reference sources (default: %(default)s)")
        a = p.parse_args(argv[1:])
        print(f"wrote {write_comparison(a.manifest, a.final_scores, a.out, a.root)}")
        return
    p = argparse.ArgumentParser(
        description="Published reference curves of the baselines at a step, with their protocol.")
    p.add_argument("--root", type=Path, default=REFERENCES_DIR,
                   help="folder of reference sources (default: %(default)s)")
    p.add_argument("--step", type=int, default=DEFAULT_STEP,
                   help="environment steps (default: %(default)s)")
    p.add_argument("--method", choices=CI_METHODS, default="t",
                   help="interval over seeds (default: %(default)s)")
    p.add_argument("--out", type=Path, help="also write the table as CSV here")
    a = p.parse_args(argv)
    table = at_step(load_references(a.root), a.step, a.method)
    if a.out:
        table.to_csv(a.out, index=False)
    cols = ["source", "algo", "task", "step_used", "n_seeds", "mean", "ci_low", "ci_high",
            "protocol"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 60,
                           "display.max_rows", 500):
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
