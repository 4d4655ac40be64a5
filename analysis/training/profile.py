"""Wall-clock per-step profiles from the runs' timing.csv files.

Every run records, per phase, the number of calls and the total seconds for its whole seed block
(timing.csv). Costs are reported per seed: a block of S seeds that needs x ms per call costs
x / S ms per seed. Phases:

    env_step       stepping the block's environments (CPU)
    act            choosing the block's actions (policy forward pass; QSM runs its sampler)
    replay         writing and sampling the replay buffers
    critic_update  one critic step (QSM: includes sampling next actions with the sampler)
    actor_update   one actor step (QSM: the score-matching step; TD3: only every 2nd step)

"Per learning step" cost = env_step + act + replay per call, plus the update phases' totals
divided by the number of learning steps (critic_update calls), so TD3's delayed actor counts at
half rate and warm-up steps without updates are not averaged in.

    python -m analysis.training.profile steps  --manifest results/tables/run_manifest.json --table results/tables/step_profile.csv --figure results/figures/step_profile
    python -m analysis.training.profile tsweep --manifest results/tables/run_manifest.json --table results/tables/tsweep_profile.csv --figure results/figures/tsweep_profile
    python -m analysis.training.profile batch  --manifest results/tables/run_manifest.json --table results/tables/batch_profile.csv --figure results/figures/batch_profile

    python -m analysis.training.profile runs   --manifest results/tables/run_manifest.json --table results/tables/run_cost.csv --summary results/tables/cost_summary.csv --figure results/figures/run_cost

`runs` is what the configuration's training costs: one row per listed run of every role (its
seed's share of the timed phases of a finished run, in hours), and per role, task and algorithm
the hours measured so far and a projection for the whole group (the measured hours plus, for
every run not finished yet, the median of its peers, the finished runs of the same algorithm,
task, budget and hyperparameters over every role and code version, less those at under half of
their median speed: `slow`, stopped for a while or on a shared core; a configuration none of
whose seeds has finished is not projected: its T, say, may change its cost). The
timed phases leave out start-up and the final probe; time a process spent stopped inside a phase
(SIGSTOP, a suspended machine) counts, which is why the projection uses a median.

`tsweep` and `batch` are the cost sweeps (config profile.tsweep and profile.batch_sweep): per
algorithm and diffusion steps T, or replay batch size, the per-seed cost per call of acting and
of each update. The table gets a provenance sidecar and the figure a provenance footer
(analysis/records/provenance.py): the runs of the role read (benchmark, tsweep or batch_sweep), with
the ones whose timing entered the numbers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.plotting import algo_color, finish_figure, no_data_panel  # noqa: E402
from analysis.records.manifest import ROLES, load_manifest, read_runs  # noqa: E402
from analysis.records.outputs import write_table  # noqa: E402
from analysis.records.provenance import Provenance  # noqa: E402
from qsm.contract.rundir import FINISHED_STATUSES, KEPT_FILES  # noqa: E402
from qsm.declare.cli import HelpFormatter  # noqa: E402

PHASES = ("env_step", "act", "replay", "critic_update", "actor_update")
PER_CALL = ("env_step", "act", "replay")


def block_timings(manifest, role: str, status=None, used=None) -> pd.DataFrame:
    """One row per (block, phase) of the manifest's runs of one role (``benchmark``: the audit's
    toy tasks, with their one-step episodes, are left out; ``tsweep``: the T sweep): a block's
    seeds share one timing record, so read it once. `status` and `used`, when given, collect
    each run's status and the manifest paths of the runs with a timing record (keyed by the
    manifest's path)."""
    status = {} if status is None else status
    used = set() if used is None else used
    rows, seen = [], set()
    for listed in read_runs(manifest, (role,), check_probes=False):
        entry, run = listed.entry, listed.run
        status[entry.path] = listed.status
        if run is None:
            if listed.status == "invalid":
                print(f"warning: skipped {listed.detail}", file=sys.stderr)
            continue
        if run.timing is None:
            continue
        used.add(entry.path)
        block = tuple(run.config.get("block", {}).get("seeds", [run.seed]))
        key = (str(run.path.parent), block)
        if key in seen:
            continue
        seen.add(key)
        hp = run.config["hparams"]
        learning_steps = _calls(run.timing, "critic_update")
        for _, r in run.timing.iterrows():
            if r["phase"] not in PHASES:
                continue
            per = r["calls"] if r["phase"] in PER_CALL else learning_steps
            ms = 1000.0 * r["total_s"] / per / r["block_size"] if per else np.nan
            rows.append({"algo": run.algo, "task": run.task, "T": hp.get("T"),
                         # a learner's replay batch (programs that learn nothing have none)
                         "batch_size": run.config.get("budget", {}).get("batch_size"),
                         "device": r["device"], "block_size": int(r["block_size"]),
                         "block": " ".join(map(str, block)), "phase": r["phase"],
                         "calls": int(r["calls"]), "total_s": float(r["total_s"]),
                         "ms_per_seed": ms})
    return pd.DataFrame(rows)


def _calls(timing, phase):
    hit = timing.loc[timing["phase"] == phase, "calls"]
    return int(hit.iloc[0]) if len(hit) else 0


def step_profile(manifest, status=None, used=None) -> pd.DataFrame:
    """Mean and spread over blocks and tasks of the per-seed cost per learning step, by algo."""
    df = block_timings(manifest, "benchmark", status, used)
    if df.empty:
        return pd.DataFrame(columns=["algo", "device", "block_size", "phase", "ms_per_seed_mean",
                                     "ms_per_seed_std", "n_blocks", "tasks"])
    g = df.groupby(["algo", "device", "block_size", "phase"])
    out = g["ms_per_seed"].agg(ms_per_seed_mean="mean", ms_per_seed_std="std",
                               n_blocks="count").reset_index()
    out["tasks"] = g["task"].apply(lambda s: " ".join(sorted(set(s)))).values
    return out


def _stacked_bars(ax, table, index_col, labels):
    bottom = np.zeros(len(labels))
    colors = plt.get_cmap("tab10")
    for k, phase in enumerate(PHASES):
        vals = np.array([table.get((lab, phase), np.nan) for lab in labels], dtype=float)
        vals = np.nan_to_num(vals)
        ax.bar(range(len(labels)), vals, bottom=bottom, label=phase.replace("_", " "),
               color=colors(k))
        bottom += vals
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{total:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(labels)), labels)


def plot_step_profile(table: pd.DataFrame, out_stem, provenance, used=None) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    if table.empty:
        ax.text(0.5, 0.5, "no timing records", ha="center", transform=ax.transAxes)
    else:
        table = table.copy()
        table["label"] = table["algo"] + "\n(" + table["block_size"].astype(str) + " seeds/block)"
        labels = sorted(table["label"].unique())
        values = {(r.label, r.phase): r.ms_per_seed_mean for r in table.itertuples()}
        _stacked_bars(ax, values, "label", labels)
        ax.legend(title="phase", fontsize=8, frameon=False)
        devices = ", ".join(sorted(table["device"].unique()))
        ax.set_title(f"Wall-clock per learning step, per seed (device: {devices})", fontsize=10)
    ax.set_ylabel("milliseconds per environment step per seed")
    out_stem = Path(out_stem)
    finish_figure(fig, out_stem.parent, out_stem.name,
                  "Mean over training blocks and tasks; update phases averaged over learning "
                  "steps (after warm-up).", provenance, used, top=1.0, entry="step_profile")


#: The cost sweeps: their role in the run manifest, the column they vary, its axis label, what
#: the figure's title says to expect, and the figure's name in the catalogue of outputs.
COST_SWEEPS = {
    "tsweep": ("tsweep", "T", "diffusion steps T",
               "Sampling should grow linearly in T; QSM's score update should not.",
               "tsweep_profile"),
    "batch": ("batch_sweep", "batch_size", "replay batch size",
              "Acting does not depend on the batch; updates grow at most linearly with it.",
              "batch_profile"),
}


def cost_sweep(manifest, kind, status=None, used=None) -> pd.DataFrame:
    """Mean per-seed cost per call of every phase, by algorithm and value of the swept column."""
    role, column = COST_SWEEPS[kind][:2]
    df = block_timings(manifest, role, status, used)
    if df.empty:
        return pd.DataFrame(columns=["algo", column, "device", "block_size", "phase",
                                     "ms_per_seed"])
    return (df.groupby(["algo", column, "device", "block_size", "phase"])["ms_per_seed"].mean()
            .reset_index().sort_values(["algo", "phase", column]))


def plot_cost_sweep(table: pd.DataFrame, kind, out_stem, provenance, used=None) -> None:
    _, column, label, expectation, entry = COST_SWEEPS[kind]
    phases = ("act", "critic_update", "actor_update")
    titles = {"act": "acting (sampler, batch 1)", "critic_update": "critic update (samples a')",
              "actor_update": "actor update"}
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharex=True)
    settings = sorted(map(tuple, table[["device", "block_size"]].drop_duplicates().values))
    for ax, phase in zip(axes, phases):
        sub = table[table["phase"] == phase]
        # one line per algorithm and setting (runs on other devices or block sizes never mix);
        # each label carries the measured growth, cost at the largest value over the smallest
        for (algo, device, block), g in sub.groupby(["algo", "device", "block_size"]):
            g = g.sort_values(column)
            name = f"{algo} ({device}, {block} seeds)" if len(settings) > 1 else algo
            ms = g["ms_per_seed"].to_numpy()
            if len(ms) > 1 and ms[0] > 0:
                name += (f": x{ms[-1] / ms[0]:.1f} from {g[column].iloc[0]} to "
                         f"{g[column].iloc[-1]}")
            style = ["-", "--", ":", "-."][settings.index((device, block)) % 4]
            ax.plot(g[column], ms, marker="o", label=name, color=algo_color(algo),
                    linestyle=style)
        if kind == "batch":
            ax.set_xscale("log", base=2)
        ax.set_title(titles[phase], fontsize=10)
        ax.set_xlabel(label)
        ax.set_ylabel("ms per call per seed")
        ax.grid(alpha=0.3)
        if len(sub):
            ax.legend(frameon=False, fontsize=7)
        else:
            ax.text(0.5, 0.5, "no runs of this sweep in the configuration", ha="center",
                    va="center", transform=ax.transAxes, fontsize=8, color="0.4")
    devices = ", ".join(sorted(table["device"].unique())) if len(table) else "n/a"
    blocks = ", ".join(map(str, sorted(table["block_size"].unique()))) if len(table) else "n/a"
    fig.suptitle(f"Cost against the {label} (device: {devices}; seeds per block: {blocks}). "
                 f"{expectation}", fontsize=10)
    out_stem = Path(out_stem)
    finish_figure(fig, out_stem.parent, out_stem.name,
                  "Mean over the sweep's seeds of the per-seed cost per call, from each run's "
                  "timing.csv.", provenance, used, top=1.0, entry=entry)


RUN_COST_COLUMNS = ["role", "task", "algo", "seed", "run_id", "status", "steps", "device",
                    "block_size", "threads", "hours", "steps_per_s", "mb", "setting"]
SUMMARY_COLUMNS = ["role", "task", "algo", "runs", "finished", "slow", "peers", "hours_measured",
                   "hours_median", "hours_min", "hours_max", "hours_projected", "hours_guessed",
                   "mb_measured", "mb_projected"]
#: A finished run slower than this share of its peers' median speed counts as slow.
SLOW_FACTOR = 0.5


def seconds_per_seed(timing: pd.DataFrame) -> float:
    """A seed's share of the wall-clock of its run's timed phases (timing.csv): a block's seeds
    train together and share one timing record."""
    return float(timing["total_s"].sum()) / int(timing["block_size"].iloc[0])


def kept_megabytes(run_dir) -> float:
    """The size in MB (10^6 bytes) of what a finished run keeps (KEPT_FILES: what the archive
    copies of it; checkpoints are not kept)."""
    return sum((Path(run_dir) / name).stat().st_size for name in KEPT_FILES
               if (Path(run_dir) / name).is_file()) / 1e6


def run_cost(manifest, status=None, used=None) -> pd.DataFrame:
    """One row per run the manifest lists, of every role: for a finished run, its seed's share
    of the wall-clock of its timed phases (a block's seeds share one timing record) and the size
    of the files it keeps (:func:`kept_megabytes`), and for
    every run its `setting`: its configuration (the manifest's config_id: algorithm, task,
    hyperparameters and budget, whatever code trained it). A run listed under two roles (a
    sweep's point at the default value is the audit's run) is trained once and counted once,
    under the first."""
    status = {} if status is None else status
    used = set() if used is None else used
    rows, seen = [], set()
    for listed in read_runs(manifest, (*ROLES, *manifest.sweeps), check_probes=False):
        e, run = listed.entry, listed.run
        if e.path in seen:
            continue
        seen.add(e.path)
        status[e.path] = listed.status
        row = dict.fromkeys(RUN_COST_COLUMNS, np.nan)
        row.update(role=e.role, task=e.task, algo=e.algo, seed=e.seed, run_id=e.run_id,
                   status=listed.status, device="", setting=e.configuration)
        if run is not None and listed.status in FINISHED_STATUSES and run.timing is not None:
            used.add(e.path)
            block = int(run.timing["block_size"].iloc[0])
            seconds = seconds_per_seed(run.timing)
            steps = int(run.config["budget"]["steps"])
            threads = run.config.get("provenance", {}).get("torch_threads")  # None: not recorded
            row.update(steps=steps, device=str(run.timing["device"].iloc[0]), block_size=block,
                       threads=np.nan if threads is None else int(threads),
                       hours=seconds / 3600.0,
                       steps_per_s=steps / seconds if seconds > 0 else np.nan,
                       mb=kept_megabytes(run.path))
        rows.append(row)
    return pd.DataFrame(rows, columns=RUN_COST_COLUMNS)


def _peers(finished: pd.DataFrame, algo, task, settings) -> pd.DataFrame:
    """The finished runs of the same algorithm and task in one of `settings` (configurations:
    budget and hyperparameters), over every role and code version."""
    return finished[(finished["algo"] == algo) & (finished["task"] == task)
                    & finished["setting"].isin(set(settings))]


def _median_hours(runs: pd.DataFrame) -> float:
    """The median hours of finished runs, slow ones left out (:func:`flag_slow`); NaN without."""
    hours = runs.loc[~runs["slow"].astype(bool), "hours"]
    return float(hours.median()) if len(hours) else np.nan


def typical_hours(finished: pd.DataFrame, algo, task, run_setting) -> float:
    """What a run not finished is projected at: the median hours of its peers (:func:`_peers`),
    slow ones left out; NaN without peers."""
    return _median_hours(_peers(finished, algo, task, {run_setting}))


#: The roles whose runs of one algorithm differ only in their task (one budget, the declared
#: hyperparameters); a sweep's or a profile's runs differ in a value that can change their cost.
SAME_SETTING_ROLES = ("benchmark", "audit")


def other_tasks_hours(finished: pd.DataFrame, algo, role) -> float:
    """A guess for a run none of whose configuration's seeds has finished (a task's first run):
    the median hours of the same algorithm's finished runs of the same role on any task, slow
    ones left out, for a role of SAME_SETTING_ROLES (the updates are most of a run's cost; a
    task's physics changes it by tens of percent); NaN for other roles or without such runs."""
    if role not in SAME_SETTING_ROLES:
        return np.nan
    return _median_hours(finished[(finished["algo"] == algo) & (finished["role"] == role)])


def typical_megabytes(finished: pd.DataFrame, algo, task, run_setting) -> float:
    """The size a run not finished is projected at: the median of its peers' (:func:`_peers`;
    a slow run's files are no larger); NaN without peers."""
    sizes = _peers(finished, algo, task, {run_setting})["mb"].dropna()
    return float(sizes.median()) if len(sizes) else np.nan


def flag_slow(runs: pd.DataFrame) -> pd.DataFrame:
    """Column `slow`: a finished run at under SLOW_FACTOR of the median speed (steps per second)
    of its peers, itself included, was stopped for a while or shared its core. Its hours are what
    it took, so they count as measured; they are left out of the projection."""
    runs = runs.copy()
    finished = runs.dropna(subset=["hours"])
    slow = pd.Series(False, index=runs.index)
    for i, r in finished.iterrows():
        typical = _peers(finished, r["algo"], r["task"], {r["setting"]})["steps_per_s"].median()
        slow[i] = bool(r["steps_per_s"] < SLOW_FACTOR * typical)
    runs["slow"] = slow
    return runs


def cost_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per role, task and algorithm: runs asked for and finished, hours measured, the fastest
    and slowest finished run, the median of the group's peers (:func:`_peers` of any of its
    settings, slow ones left out) and the projection for the whole group: the measured hours
    plus, for each run not finished, :func:`typical_hours` of its own setting; likewise the
    megabytes its runs keep (:func:`typical_megabytes`). A run not finished without peers
    leaves the group without a projection (NaN); `hours_guessed` is the projection where there
    is one, else the guess of :func:`other_tasks_hours` for such runs (a task's first runs)."""
    rows = []
    finished = runs.dropna(subset=["hours"])
    for (role, task, algo), g in runs.groupby(["role", "task", "algo"], sort=True):
        hours = g["hours"].dropna()
        peers = _peers(finished, algo, task, g["setting"].dropna())
        typical = peers.loc[~peers["slow"].astype(bool), "hours"]
        unfinished = g.loc[g["hours"].isna(), "setting"]
        rest = [typical_hours(finished, algo, task, s) for s in unfinished]
        guess = other_tasks_hours(finished, algo, role)
        rest_guessed = [guess if np.isnan(h) else h for h in rest]
        rest_mb = [typical_megabytes(finished, algo, task, s) for s in unfinished]
        rows.append({"role": role, "task": task, "algo": algo, "runs": len(g),
                     "finished": len(hours), "slow": int(g["slow"].astype(bool).sum()),
                     "peers": len(typical), "hours_measured": float(hours.sum()),
                     "hours_median": float(typical.median()) if len(typical) else np.nan,
                     "hours_min": float(hours.min()) if len(hours) else np.nan,
                     "hours_max": float(hours.max()) if len(hours) else np.nan,
                     "hours_projected": float(hours.sum()) + float(np.sum(rest)),
                     "hours_guessed": float(hours.sum()) + float(np.sum(rest_guessed)),
                     "mb_measured": float(g["mb"].sum()),
                     "mb_projected": float(g["mb"].sum()) + float(np.sum(rest_mb))})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def plot_run_cost(summary: pd.DataFrame, out_stem, provenance, used=None) -> None:
    """Horizontal bars per group: hours measured, and the projected rest (hatched)."""
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * max(len(summary), 1)))
    if summary.empty:
        no_data_panel(ax, "no runs listed")
    else:
        s = summary.iloc[::-1].reset_index(drop=True)  # first group at the top
        y = np.arange(len(s))
        rest = (s["hours_projected"] - s["hours_measured"]).fillna(0.0)
        colors = [algo_color(a) for a in s["algo"]]
        ax.barh(y, s["hours_measured"], color=colors, label="measured (finished runs)")
        ax.barh(y, rest, left=s["hours_measured"], color=colors, alpha=0.3, hatch="//",
                edgecolor="0.4", lw=0.3, label="projected (median of peers x runs not finished)")
        for i, r in s.iterrows():
            end = r["hours_measured"] + rest[i]
            text = f"{int(r['finished'])} of {int(r['runs'])}"
            if r["slow"]:
                text += f" ({int(r['slow'])} slow)"
            if pd.isna(r["hours_projected"]):
                text += " (no estimate yet)"
            ax.text(end, i, f" {text}", va="center", fontsize=7)
        ax.set_yticks(y, [f"{r.role}: {r.algo} on {r.task}" for r in s.itertuples()], fontsize=7)
        ax.set_xlim(0, max(float((s["hours_measured"] + rest).max()), 1e-9) * 1.25)
        ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=2)  # below the axis: any corner inside may hold a bar's end
        measured, projected = summary["hours_measured"].sum(), summary["hours_projected"].sum()
        missing = int(summary["hours_projected"].isna().sum())
        ax.set_title(f"Training cost: {measured:.1f} h measured, {projected:.1f} h projected "
                     f"for the whole configuration"
                     + (f"\n({missing} group(s) with no finished peer run not counted)"
                        if missing else ""), fontsize=9)
    ax.set_xlabel("hours of the timed training phases (per seed)")
    ax.grid(axis="x", alpha=0.3)
    out_stem = Path(out_stem)
    finish_figure(fig, out_stem.parent, out_stem.name,
                  "Per seed, the wall-clock of the timed phases of its run's timing.csv (a "
                  "block's share); start-up and the final probe are not timed, and time a "
                  "process spent stopped inside a phase counts. A run not finished is projected "
                  "at the median of the finished runs of its algorithm, task, budget and "
                  "hyperparameters, less slow ones (under half of their median speed).",
                  provenance, used,
                  top=1.0, entry="run_cost")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.training.profile", description=__doc__,
                                 formatter_class=HelpFormatter)
    ap.add_argument("kind", choices=["steps", *COST_SWEEPS, "runs"],
                    help="steps: per-step cost of the benchmark runs; tsweep: cost against the "
                         "number of diffusion steps T; batch: against the replay batch size; "
                         "runs: the hours every run of the configuration took")
    ap.add_argument("--manifest", required=True,
                    help="run_manifest.json (analysis/records/manifest.py)")
    ap.add_argument("--table", required=True, help="the CSV table to write")
    ap.add_argument("--figure", required=True, help="output path without extension")
    ap.add_argument("--summary", help="runs: the per-group summary table to write (required)")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    if a.kind == "runs" and not a.summary:
        ap.error("runs needs --summary (the per-group table)")
    manifest = load_manifest(a.manifest)
    status, used = {}, set()
    if a.kind == "runs":
        prov = Provenance.of(manifest, (*ROLES, *manifest.sweeps), "analysis.training.profile")
        table = flag_slow(run_cost(manifest, status, used))
        prov.with_status(status)
        summary = cost_summary(table)
        plot_run_cost(summary, a.figure, prov, used)
        write_table(a.summary, summary, prov, used)
        write_table(a.table, table, prov, used)
        return 0
    role = "benchmark" if a.kind == "steps" else COST_SWEEPS[a.kind][0]
    prov = Provenance.of(manifest, (role,), "analysis.training.profile")
    if a.kind == "steps":
        table = step_profile(manifest, status, used)
        prov.with_status(status)
        plot_step_profile(table, a.figure, prov, used)
    else:
        table = cost_sweep(manifest, a.kind, status, used)
        prov.with_status(status)
        plot_cost_sweep(table, a.kind, a.figure, prov, used)
    write_table(a.table, table, prov, used)
    return 0


if __name__ == "__main__":
    sys.exit(main())
