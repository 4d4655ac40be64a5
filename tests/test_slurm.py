"""The paper preset's path through SLURM, on a real cluster: the single-node cluster of
scripts/slurm-up.sh (slurmctld, slurmd, slurmdbd with MariaDB, munge; partitions cpu and gpu).

The smoke preset runs through the repository's own profiles/slurm plus the small overlay below
(the test cluster's account), and must give the outputs of a local run of the same preset, even
with one training job cancelled mid-run; a job past its runtime must fail naming the rule and the
limit. No process of a job, cancelled, timed out or complete, may outlive it. Where the cluster
cannot be started (not root, no apt-get) these tests are skipped with the reason. The tests
never touch the checkout's results/ or .snakemake/: every run has its own temporary working
directory.
"""
import csv
import json
import os
import re
import runpy
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, python_env

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
PROFILE = ROOT / "profiles" / "slurm"
SMOKE = ROOT / "config" / "smoke.yaml"
ACCOUNT = "qsm"  # the account scripts/slurm-up.sh creates
TIMEOUTS = runpy.run_path(str(ROOT / "workflow" / "scripts" / "slurm_timeouts.py"))


def overlay(**per_rule):
    """What the test adds to profiles/slurm/config.yaml: the test cluster's account instead of
    the placeholder, extra per-rule resources, and status polling every few seconds (the plugin
    starts at 40 s, long against jobs of seconds). Snakemake replaces a profile's
    default-resources and set-resources wholesale when they are given on the command line, so
    the profile's own entries are read from the file and passed on unchanged."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    defaults = {**profile["default-resources"], "slurm_account": ACCOUNT}
    rules = {rule: dict(res) for rule, res in profile.get("set-resources", {}).items()}
    for rule, extra in per_rule.items():
        rules.setdefault(rule, {}).update(extra)
    return ["--workflow-profile", str(PROFILE),
            "--default-resources", *[f"{k}={v}" for k, v in defaults.items()],
            "--set-resources", *[f"{r}:{k}={v}" for r, res in rules.items() for k, v in res.items()],
            "--slurm-init-seconds-before-status-checks", "2",
            "--seconds-between-status-checks", "2"]


@pytest.fixture(scope="module")
def cluster():
    """Start the test cluster (a no-op when it is up), or skip saying why it cannot be."""
    if os.environ.get("QSM_SLURM_TESTS") == "0":
        pytest.skip("SLURM tests switched off (QSM_SLURM_TESTS=0)")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "slurm-up.sh")], capture_output=True,
                          text=True, timeout=900)
    if proc.returncode == 3:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    partitions = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True,
                                check=True).stdout.split()
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    wanted = {profile["default-resources"]["slurm_partition"]} | {
        res["slurm_partition"] for res in profile["set-resources"].values()}
    assert wanted <= set(partitions), f"profile partitions {wanted}, cluster has {partitions}"


def sacct(run_id):
    """The jobs of one Snakemake run (its SLURM job name is the run ID), one dict per job."""
    fields = ["JobID", "State", "Partition", "Account", "AllocCPUS", "AllocTRES", "Elapsed",
              "Timelimit", "Comment"]
    out = subprocess.run(["sacct", "-X", "-P", "-n", "--name", run_id, "-S", "now-1days",
                          "-o", ",".join(fields)], capture_output=True, text=True,
                         check=True).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]


def show(jobs):
    """Print a job table (pytest shows it with -s, or when the test fails)."""
    print(f"{'JobID':>6} {'State':<10} {'Partition':<9} {'Account':<7} {'CPUs':>4} "
          f"{'GPUs':>4} {'Elapsed':>8}  Comment")
    for j in jobs:
        gpus = re.search(r"gres/gpu=(\d+)", j["AllocTRES"])
        print(f"{j['JobID']:>6} {j['State']:<10} {j['Partition']:<9} {j['Account']:<7} "
              f"{j['AllocCPUS']:>4} {gpus.group(1) if gpus else 0:>4} {j['Elapsed']:>8}  "
              f"{j['Comment']}")


def rule_of(comment):
    """The rule of a job, from the plugin's job comment rule_<name>[_wildcards_<values>]."""
    return comment[len("rule_"):].split("_wildcards_")[0]


def planned_jobs(output):
    """The "Job stats" table Snakemake prints before running: rule -> number of jobs."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def training_with_checkpoint(workdir):
    """(SLURM job id, log file) of a training process of this run that has written a checkpoint.
    Read from /proc (the node is this machine): the process's own --checkpoint-dir, its
    SLURM_JOB_ID and the file its stderr goes to, whatever the results layout."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            if "qsm.train" not in args or os.readlink(f"/proc/{pid}/cwd") != str(workdir):
                continue
            ckpt_dir = workdir / args[args.index("--checkpoint-dir") + 1]
            env = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
            log = os.readlink(f"/proc/{pid}/fd/2")
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile, or is not a training command
        jobid = [e.split("=", 1)[1] for e in env if e.startswith("SLURM_JOB_ID=")]
        if jobid and any(ckpt_dir.rglob("*.pt")):
            return jobid[0], Path(log)
    return None


def eval_rows(path):
    """eval.csv without its wall-clock column, as the exact text of every field."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, name in enumerate(rows[0]) if name != "wall_time_s"]
    assert len(keep) == len(rows[0]) - 1, f"{path}: no wall_time_s column"
    return [[row[i] for i in keep] for row in rows]


TIMING_TABLES = {"step_profile.csv", "tsweep_profile.csv", "batch_profile.csv", "run_cost.csv",
                 "cost_summary.csv"}  # wall-clock: equal in shape only


def assert_same_outputs(local, remote):
    """The SLURM run's results equal the local run's: every eval.csv (all but the wall-clock
    column, byte for byte), every probe action, every table."""
    evals = sorted(p.relative_to(local) for p in (local / "results" / "runs").rglob("eval.csv"))
    manifest = json.loads((local / "results" / "tables" / "run_manifest.json").read_text())
    # every run the config asks for (a run listed under two roles is one directory)
    assert evals == sorted({Path(r["path"]) / "eval.csv" for r in manifest["runs"]}), evals
    assert evals == sorted(p.relative_to(remote)
                           for p in (remote / "results" / "runs").rglob("eval.csv"))
    for rel in evals:
        assert eval_rows(local / rel) == eval_rows(remote / rel), rel
    probes = sorted(p.relative_to(local) for p in (local / "results" / "runs").rglob("*.npz"))
    assert probes and probes == sorted(
        p.relative_to(remote) for p in (remote / "results" / "runs").rglob("*.npz"))
    for rel in probes:
        a, b = np.load(local / rel), np.load(remote / rel)
        assert sorted(a.files) == sorted(b.files), rel
        for key in a.files:
            assert np.array_equal(a[key], b[key]), (rel, key)
    tables = sorted(p.name for p in (local / "results" / "tables").iterdir())
    assert "scores.csv" in tables and tables == sorted(
        p.name for p in (remote / "results" / "tables").iterdir())
    for name in tables:
        a, b = local / "results" / "tables" / name, remote / "results" / "tables" / name
        if name in TIMING_TABLES:
            x, y = pd.read_csv(a), pd.read_csv(b)
            keys = [c for c in x.columns if x[c].dtype == object]
            assert list(x.columns) == list(y.columns) and x.shape == y.shape, name
            pd.testing.assert_frame_equal(x[keys], y[keys], obj=name)
        elif name.endswith(".csv"):
            pd.testing.assert_frame_equal(pd.read_csv(a), pd.read_csv(b), obj=name)
        else:
            assert a.read_text() == b.read_text(), name


def outliving_processes(run_id, workdir, wait=60):
    """Processes of a finished run's SLURM jobs still alive `wait` seconds after it ended: those
    whose environment names one of the run's jobs (SLURM_JOB_ID) or whose working directory or
    command line lies in `workdir`. The node is this machine: read from /proc. They are
    SIGKILLed (a test leaves nothing behind), and returned, one description each. A job's
    processes must end with it: SLURM kills them at a cancellation or time limit (SIGTERM, then
    SIGKILL after KillWait) and when its steps end (scripts/slurm-up.sh: proctrack/pgid)."""
    try:
        jobs = {j["JobID"] for j in sacct(run_id)} if run_id else set()
    except subprocess.CalledProcessError:  # no accounting: the directory alone tells
        jobs = set()
    marks = {f"SLURM_JOB_ID={j}".encode() for j in jobs}
    ours = {os.getpid(), os.getppid()}

    def alive():
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            if int(pid) in ours:
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                if stat[0] == "Z":
                    continue  # already dead; its parent (checked too) has yet to reap it
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                cwd = os.readlink(f"/proc/{pid}/cwd")
                env = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
            except (OSError, IndexError, UnicodeDecodeError):
                continue  # gone meanwhile, or not ours to read
            if env & marks or str(workdir) in cmd or Path(cwd).is_relative_to(workdir):
                job = [e.decode() for e in env if e.startswith(b"SLURM_JOB_ID=")]
                found[int(pid)] = (f"pid {pid} (parent {stat[1]}, state {stat[0]}, "
                                   f"{' '.join(job) or 'no SLURM job'}): {cmd[:300]}")
        return found

    deadline = time.time() + wait
    left = alive()
    while left and time.time() < deadline:
        time.sleep(1)
        left = alive()
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return list(left.values())


def stop(proc, output):
    """Stop a Snakemake run left running by a failed assertion, and its SLURM jobs."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    m = re.search(r"SLURM run ID: (\S+)", output.read_text())
    if m:
        subprocess.run(["scancel", "--name", m.group(1)], check=False)


def test_timeout_report_names_rule_wildcards_and_limit():
    """The onerror report, on a log like the executor's: the last attempt of each job counts."""
    log = ("[Mon Jan  5 10:00:00 2026]\nrule train:\n    output: x\n    jobid: 7\n"
           "    wildcards: algo=qsm, task=cheetah_run, run_id=0123456789ab, seeds=0\n"
           "    resources: runtime=5\n"
           "Job 7 has been submitted with SLURM jobid 101 (log: /w/.snakemake/slurm_logs/"
           "rule_train/qsm_cheetah_run_0/101.log).\n"
           "Job 7 has been submitted with SLURM jobid 105 (log: /w/.snakemake/slurm_logs/"
           "rule_train/qsm_cheetah_run_0/105.log).\n"
           "Job 9 has been submitted with SLURM jobid 102 (log: /w/.snakemake/slurm_logs/"
           "rule_audit/102.log).\n"
           "Job 8 has been submitted with SLURM jobid 103 (log: /w/.snakemake/slurm_logs/"
           "rule_train/sac_cheetah_run_0/103.log).\n"
           "[Mon Jan  5 10:00:01 2026]\nJob 4: benchmark: td3 on cheetah_run, seeds 0: run "
           "afd57b869d3b = code a6aa1c05f3e7, 200000 steps (200 random), overrides none\n"
           "Reason: Missing output files: results/runs/td3/cheetah_run/afd57b869d3b/block_0.done\n"
           "Job 4 has been submitted with SLURM jobid 104 (log: /w/.snakemake/slurm_logs/"
           "rule_train/td3_cheetah_run_afd57b869d3b_0/104.log).\n")
    states = {"101": ("TIMEOUT", "00:05:00", "00:05:31"), "105": ("TIMEOUT", "2-00:00:00", "2-00:00:29"),
              "102": ("TIMEOUT", "01:00:00", "01:00:40"), "103": ("TIMEOUT", "00:05:00", "00:05:12"),
              "104": ("TIMEOUT", "00:01:00", "00:01:16")}
    messages = TIMEOUTS["timeout_messages"](log, sacct=lambda ids: states)
    assert messages[0].startswith("rule train (algo=qsm, task=cheetah_run, run_id=0123456789ab, "
                                  "seeds=0) exceeded its "
                                  "runtime of 2880 min (2-00:00:00): SLURM job 105 ")
    assert messages[1].startswith("rule audit exceeded its runtime of 60 min (01:00:00)")
    # no job block in the log: the plugin's wildcard string stands in
    assert messages[2].startswith("rule train (sac_cheetah_run_0) exceeded its runtime of 5 min:")
    # a rule with a message (the training rule): the message names the job
    assert messages[3].startswith("rule train (benchmark: td3 on cheetah_run, seeds 0: run "
                                  "afd57b869d3b = code a6aa1c05f3e7, 200000 steps (200 random), "
                                  "overrides none) exceeded its runtime of 1 min: SLURM job 104 ")
    assert len(messages) == 4
    states["105"] = ("COMPLETED", "2-00:00:00", "1-00:00:00")  # the retry made it
    assert not any("qsm" in m for m in TIMEOUTS["timeout_messages"](log, sacct=lambda ids: states))


def test_sigterm_while_the_scheduler_holds_its_lock_does_not_hang_snakemake():
    """Snakemake's SIGTERM handler takes the scheduler's lock, and runs in the main thread, which
    holds that lock while it handles a finished or failed job: there the unpatched handler waits
    for itself forever (how a cancelled job's Snakemake outlived its job). With the pipeline's
    patch (workflow/scripts/snakemake_sigterm.py, applied by workflow/rules/slurm.smk) the signal
    takes effect once the lock is free."""
    code = f"""
import os, runpy, signal, threading, time
assert runpy.run_path({str(ROOT / "workflow" / "scripts" / "snakemake_sigterm.py")!r})[
    "patch_sigterm_handler"]()
from snakemake.scheduling.job_scheduler import JobScheduler
scheduler = object.__new__(JobScheduler)  # the state the handler uses, as __init__ makes it
scheduler._lock, scheduler._open_jobs = threading.Lock(), threading.Semaphore(0)
scheduler._user_kill = None
signal.signal(signal.SIGTERM, scheduler.exit_gracefully)  # as __init__ does
with scheduler._lock:  # as schedule() does around _finish_jobs() and _error_jobs()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)  # the handler runs here, in this thread
    assert scheduler._user_kill is None  # its work waits for the lock...
assert scheduler._open_jobs.acquire(timeout=30)  # ...then wakes the scheduler
print(scheduler._user_kill)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=python_env(), timeout=120)  # a hang: killed, and fails here
    assert proc.returncode == 0 and proc.stdout.strip() == "graceful", proc.stdout + proc.stderr


def every_rule_config(path):
    """The smoke preset cut down to the fewest jobs that still run every rule of the DAG through
    SLURM (8 training jobs of 20, 20 jobs of 33): what goes through sbatch is the same for a job
    of any agent or role, and each job waits for its scheduling, so fewer jobs is less waiting."""
    config = yaml.safe_load(SMOKE.read_text())
    config.update(algos=["qsm", "td3"], tasks=["cheetah_run"])
    config["audit"].update(algos=["qsm", "td3"])
    config["sweeps"] = [{"name": "mq_sweep", "algos": ["qsm"], "hparam": "M_q", "values": [1, 50],
                         "tasks": ["toy_bimodal"], "seeds": [0, 1]}]
    config["profile"]["tsweep"].update(algos=["qsm"], Ts=[1])
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_smoke_preset_on_slurm_equals_local_run_with_a_cancelled_training_job(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "slurm"
    smoke = every_rule_config(tmp_path / "smoke.yaml")
    # 1. the reference, the same preset on this machine, and 2. the run through SLURM, side by
    # side (the local run fills the SLURM run's waits for scheduling and status checks).
    # Training jobs ask for a GPU as the paper preset's do (--gpus=1 from the gpu resource): the
    # gpu partition's GPU stub grants it, and device: cpu keeps the arithmetic that of the local
    # run. (--gres=gpu:1 and typed requests are granted as well: scripts/slurm-up.sh.)
    ref_output, output = tmp_path / "local.log", tmp_path / "slurm.log"
    start = time.time()
    with open(ref_output, "w") as ref_out, open(output, "w") as out:
        ref = subprocess.Popen([*SNAKEMAKE, "--directory", str(local), "--configfile", str(smoke),
                                "--cores", "2"], stdout=ref_out, stderr=subprocess.STDOUT,
                               env=python_env(), start_new_session=True)
        proc = subprocess.Popen([*SNAKEMAKE, "--directory", str(remote), "--configfile",
                                 str(smoke), *overlay(train={"gpu": 1})],
                                stdout=out, stderr=subprocess.STDOUT, env=python_env(),
                                start_new_session=True)
    try:
        # 3. cancel a training job of the SLURM run once it has written a checkpoint
        found = None
        while proc.poll() is None and time.time() < start + 900 and not found:
            found = training_with_checkpoint(remote)
            time.sleep(0.1)
        assert found, "no training job wrote a checkpoint while running:\n" + output.read_text()[-3000:]
        cancelled, train_log = found
        subprocess.run(["scancel", cancelled], check=True)
        rc = proc.wait(timeout=1500)
        print(f"SLURM run: {time.time() - start:.0f} s")
        assert ref.wait(timeout=900) == 0, ref_output.read_text()[-5000:]
    finally:
        stop(proc, output)
        if ref.poll() is None:
            os.killpg(ref.pid, signal.SIGKILL)
            ref.wait()
        run_id = re.search(r"SLURM run ID: (\S+)", output.read_text())
        left = outliving_processes(run_id and run_id.group(1), tmp_path)
    text = output.read_text()
    assert rc == 0, text[-5000:]
    # no process of any job, the cancelled one's included, outlives its job
    assert not left, "processes outlived their SLURM jobs:\n" + "\n".join(left)

    # every job of every rule went through sbatch: sacct has it, with the rule in its comment
    jobs = sacct(re.search(r"SLURM run ID: (\S+)", text).group(1))
    show(jobs)
    local_rules = set(re.findall(r"^localrule (\w+):", text, re.M))
    # default has no command; run_manifest is a local rule (it writes the DAG's run list as JSON,
    # in the main process: a SLURM job would only add its scheduling wait)
    assert local_rules <= {"default", "run_manifest"}, f"ran outside SLURM: {local_rules}"
    planned = {rule: n for rule, n in planned_jobs(text).items() if rule not in local_rules}
    # the cut-down preset still has every rule the whole smoke preset has
    full = subprocess.run([*SNAKEMAKE, "-n", "--directory", str(tmp_path / "full"),
                           "--configfile", str(SMOKE)], capture_output=True, text=True,
                          env=python_env(), timeout=300)
    assert set(planned_jobs(full.stdout + full.stderr)) == set(planned_jobs(text)), full.stderr[-3000:]
    completed = Counter(rule_of(j["Comment"]) for j in jobs if j["State"] == "COMPLETED")
    assert completed == Counter(planned), (completed, planned)
    for j in jobs:
        gpu = rule_of(j["Comment"]) == "train"
        assert j["Account"] == ACCOUNT and j["Partition"] == ("gpu" if gpu else "cpu"), j
        assert ("gres/gpu=1" in j["AllocTRES"]) == gpu, j

    # the cancelled training job was resubmitted (profile: retries) and resumed
    by_id = {j["JobID"]: j for j in jobs}
    assert by_id[cancelled]["State"].startswith("CANCELLED"), by_id[cancelled]  # "... by <uid>"
    retries = [j for j in jobs if j["Comment"] == by_id[cancelled]["Comment"]
               and int(j["JobID"]) > int(cancelled)]
    assert [j["State"] for j in retries] == ["COMPLETED"], retries
    resumed = re.search(r"resumed from (\S+) at step (\d+)", train_log.read_text())
    assert resumed and int(resumed.group(2)) > 0, train_log.read_text()
    print(f"job {cancelled} ({by_id[cancelled]['Comment']}) cancelled; job {retries[0]['JobID']} "
          f"resumed from {resumed.group(1)} at step {resumed.group(2)}")

    # and the results are the local run's
    assert_same_outputs(local, remote)


@pytest.mark.slow
def test_job_past_its_runtime_fails_naming_the_rule_and_the_limit(cluster, tmp_path):
    config = yaml.safe_load(SMOKE.read_text())
    # three training jobs: td3 on cheetah_run (far past 1 min) and, in seconds, td3 on the toy
    # bandit (the audit) and qsm on it at M_q = 50 (the M_q sweep, cut down to that one point)
    config.update(algos=["td3"], tasks=["cheetah_run"], seeds=[0], seed_block=1,
                  external_baselines=[], checkpoint_every=0)
    config["budget"].update(steps=200_000, eval_every=100_000)
    config["audit"].update(algos=["td3"], seeds=[0])
    config["sweeps"] = [{"name": "mq_sweep", "algos": ["qsm"], "hparam": "M_q", "values": [50],
                         "tasks": ["toy_bimodal"], "seeds": [0]}]
    config["profile"]["tsweep"]["algos"] = []  # no cost-sweep training jobs
    config["profile"]["batch_sweep"]["algos"] = []
    config["stats"]["reference"] = "td3"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    # runtime is in minutes; 1 is SLURM's smallest limit. No retries: each would take as long.
    # (The jobs may queue behind the other test's: the time limit counts from a job's start.)
    proc = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "--configfile",
                           str(tmp_path / "config.yaml"), "--until", "train", "--retries", "0",
                           *overlay(train={"runtime": 1})],
                          capture_output=True, text=True, env=python_env(), timeout=1800)
    text = proc.stdout + proc.stderr
    run_id = re.search(r"SLURM run ID: (\S+)", text)
    left = outliving_processes(run_id and run_id.group(1), tmp_path)
    assert not left, "processes outlived their SLURM jobs:\n" + "\n".join(left)
    assert proc.returncode != 0, text[-3000:]
    message = re.search(r"^rule train \(benchmark: td3 on cheetah_run, seeds 0: run [0-9a-f]{12} "
                        r".*\) exceeded its "
                        r"runtime of 1 min: SLURM job (\d+) was killed at its time limit.*$",
                        text, re.M)
    assert message, text[-5000:]
    print(message.group(0))
    jobs = {j["JobID"]: j for j in sacct(re.search(r"SLURM run ID: (\S+)", text).group(1))}
    assert jobs[message.group(1)]["State"] == "TIMEOUT", jobs
    states = sorted(j["State"] for j in jobs.values())
    assert states == ["COMPLETED", "COMPLETED", "TIMEOUT"], jobs  # td3's and qsm's toy jobs
