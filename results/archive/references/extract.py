"""How each reference CSV in this folder was cut from its source (a record, not part of the pipeline).

Reads the published result files straight out of bare git snapshots of the source repositories
(``git --git-dir=<snapshot> show <commit>:<path>``), keeps our seven DMC tasks and the evaluations
up to 500,000 environment steps, and writes ``<source>/curves.csv`` with the columns
``algo,task,step,seed,return``. Return values are copied as the source file spells them (no
rounding, no interpolation, no smoothing); steps are the source's environment-step axis (see each
``SOURCE.yaml``). Nothing else is changed.

    python results/archive/references/extract.py --mirror /path/to/mirrors

where ``--mirror`` holds ``<owner>+<name>/repo`` (a bare git dir, or a clone whose ``.git`` is
inside). The commits read are pinned below and in each ``SOURCE.yaml``; the script refuses a
snapshot that does not have them.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = ("cheetah_run", "walker_run", "hopper_hop", "quadruped_walk", "finger_spin", "reacher_hard",
         "cartpole_swingup")
MAX_STEP = 500_000
COLUMNS = ("algo", "task", "step", "seed", "return")

COMMITS = {
    "nicklashansen/tdmpc2": "e9f59321933cbc8e11a002b842adc7d4ffae8ff1",
    "denisyarats/pytorch_sac": "81c5b536d3a1c5616b2531e446450df412a064fb",
    "SonyResearch/simba": "7d0358b1f1fa3404fc5ea0ffedf9dc1424b49a45",
    "LQNew/Continuous_Control_Benchmark": "205ceb76dbc2dda00121da2354a4ebe221a9e9d0",
}


def git_dir(mirror: Path, repo: str) -> Path:
    d = mirror / repo.replace("/", "+") / "repo"
    return d / ".git" if (d / ".git").is_dir() else d


def show(mirror: Path, repo: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", str(git_dir(mirror, repo)), "show",
                           f"{COMMITS[repo]}:{path}"], check=True, capture_output=True,
                          text=True).stdout


def ls(mirror: Path, repo: str, path: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(git_dir(mirror, repo)), "ls-tree", "-r",
                          "--name-only", COMMITS[repo], path], check=True, capture_output=True,
                         text=True).stdout
    return out.split()


def write(source: str, rows: list[dict]) -> None:
    rows = sorted(rows, key=lambda r: (r["algo"], r["task"], int(r["seed"]), int(r["step"])))
    with open(HERE / source / "curves.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"{source}: {len(rows)} rows")


def tdmpc2_sac(mirror):
    repo, rows = "nicklashansen/tdmpc2", []
    for task in TASKS:
        text = show(mirror, repo, f"results/sac/{task.replace('_', '-')}.csv")
        for r in csv.DictReader(io.StringIO(text)):  # step,reward,seed
            if int(r["step"]) <= MAX_STEP:
                rows.append(dict(algo="sac", task=task, step=r["step"], seed=r["seed"],
                                 **{"return": r["reward"]}))
    write("tdmpc2_sac", rows)


def pytorch_sac(mirror):
    repo, rows = "denisyarats/pytorch_sac", []
    text = show(mirror, repo, "data/sac.csv")
    for r in csv.DictReader(io.StringIO(text)):
        # ,episode,episode_reward,step,run_id,agent,env,seed,experiment,...: the eval log of the
        # "bench" runs (one row per evaluation, every 20,000 steps; episode = step / 1000)
        if r["env"] in TASKS and int(r["step"]) <= MAX_STEP:
            assert r["agent"] == "sac" and float(r["episode"]) * 1000 == int(r["step"]), r
            rows.append(dict(algo="sac", task=r["env"], step=r["step"], seed=r["seed"],
                             **{"return": r["episode_reward"]}))
    write("pytorch_sac", rows)


def simba_sac(mirror):
    repo, rows = "SonyResearch/simba", []
    text = show(mirror, repo, "results/sac.csv")
    for r in csv.DictReader(io.StringIO(text)):  # ,exp_name,env_name,seed,metric,env_step,value
        if (r["env_name"] in TASKS and r["metric"] == "avg_return"
                and float(r["env_step"]) <= MAX_STEP):
            assert r["exp_name"] == "sac" and float(r["env_step"]).is_integer(), r
            rows.append(dict(algo="sac", task=r["env_name"], step=str(int(float(r["env_step"]))),
                             seed=r["seed"], **{"return": r["value"]}))
    write("simba_sac", rows)


SPINUP_KEEP_ALL_TO = 100_000  # every evaluation up to here, then every fifth (20,000 steps)


def spinup(mirror):
    """Spinning Up's progress.txt: one row per epoch of `steps_per_epoch` environment steps, with
    the mean return of `num_test_episodes` deterministic test episodes at the epoch's end.
    `TotalEnvInteracts` is Spinning Up's 0-based loop index t at that point, so the epoch ends
    after t + 1 = Epoch * steps_per_epoch environment steps: that is the step written here
    (checked for every row)."""
    repo, rows, configs = "LQNew/Continuous_Control_Benchmark", [], {}
    for algo in ("SAC", "TD3"):
        for task in TASKS:
            base = f"DMControlSuite-3M/SpinningUp/{algo}/{algo}-{task.replace('_', '-')}"
            for path in ls(mirror, repo, base):
                if not path.endswith("/progress.txt"):
                    continue
                cfg = json.loads(show(mirror, repo, path.replace("progress.txt", "config.json")))
                keep = {k: cfg.get(k) for k in (
                    "ac_kwargs", "batch_size", "steps_per_epoch", "num_test_episodes", "start_steps",
                    "update_after", "update_every", "max_ep_len", "gamma", "polyak", "lr", "pi_lr",
                    "q_lr", "alpha", "act_noise", "target_noise", "noise_clip", "policy_delay")}
                configs.setdefault(algo, set()).add(json.dumps(keep, sort_keys=True))
                spe = cfg["steps_per_epoch"]
                table = list(csv.DictReader(io.StringIO(show(mirror, repo, path)), delimiter="\t"))
                for r in table:
                    step = int(r["Epoch"]) * spe
                    if step > MAX_STEP:
                        break  # (past ~1e6 the log's 8 significant digits round t itself)
                    assert int(float(r["TotalEnvInteracts"])) + 1 == step, (path, r["Epoch"])
                    assert float(r["EpLen"]) == 1000.0, (path, r["Epoch"], r["EpLen"])
                    if step > SPINUP_KEEP_ALL_TO and step % 20_000:
                        continue
                    rows.append(dict(algo=algo.lower(), task=task, step=str(step),
                                     seed=str(cfg["seed"]), **{"return": r["AverageTestEpRet"]}))
    for algo, cfgs in configs.items():  # one configuration per algorithm across all runs
        assert len(cfgs) == 1, (algo, cfgs)
        print(algo, next(iter(cfgs)))
    write("spinup_dmc", rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mirror", type=Path, required=True)
    a = p.parse_args()
    for f in (tdmpc2_sac, pytorch_sac, simba_sac, spinup):
        f(a.mirror)


if __name__ == "__main__":
    main()
