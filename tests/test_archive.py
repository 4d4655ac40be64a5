"""The run archive: finished runs copied with checksums, and every committed archive verified."""
from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from analysis.records import archive
from conftest import ROOT, python_env
from contract import run_config, seed_dir, write_manifest
from qsm.contract.rundir import TIMING_PHASES, SeedRunWriter
from qsm.runtime.numerics import cpu_model, fingerprint


def write_run(root, algo, seed, status="complete"):
    w = SeedRunWriter(seed_dir(root, algo, "toy_bimodal", seed))
    cfg = run_config(algo, "toy_bimodal", seed, act_dim=1)
    cfg["provenance"] = {"git_commit": "c0ffee", "git_dirty": False, "packages": {"torch": "x"}}
    w.write_config(cfg)
    w.add_eval(0, [1.0, 2.0], 0.1)
    w.write_timing([{"phase": p, "calls": 1, "total_s": 1.0, "env_steps": 1000, "block_size": 1,
                     "device": "cpu"} for p in TIMING_PHASES])
    w.write_probe_actions(np.zeros((2, 3)), np.zeros((2, 4, 1)), np.full((2, 4, 1), seed / 10))
    w.write_status(status, 1000)
    return w.dir


@pytest.fixture()
def runs(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "qsm", 0)
    write_run(root, "qsm", 1, status="running")  # still training: left for a later add
    write_run(root, "sac", 0, status="diverged")
    manifest = write_manifest(tmp_path / "manifest.json", root,
                              [("qsm", "toy_bimodal", 0, "audit"), ("qsm", "toy_bimodal", 1, "audit"),
                               ("sac", "toy_bimodal", 0, "audit"), ("qsm", "toy_bimodal", 0, "mq_sweep"),
                               ("td3", "toy_bimodal", 0, "audit")])  # td3: missing
    return root, manifest


def test_add_copies_finished_runs_with_checksums(runs, tmp_path):
    root, manifest = runs
    out = tmp_path / "archive" / "study"
    assert archive.add(manifest, out) == (2, 2)
    index = json.loads((out / "MANIFEST.json").read_text())
    qsm = next(r for r in index["runs"] if r["algo"] == "qsm")
    assert qsm["roles"] == ["audit", "mq_sweep"] and qsm["git_commit"] == "c0ffee"
    # the run recorded no numerics fingerprint: the archiving machine's stands in
    assert qsm["numerics"] == fingerprint() and qsm["cpu"] == cpu_model()
    assert set(qsm["files"]) == {"config.json", "eval.csv", "timing.csv", "metrics.csv",
                                 "probe_actions.npz", "status.json"}
    copied = out / qsm["path"] / "eval.csv"
    assert copied.read_bytes() == (seed_dir(root, "qsm", "toy_bimodal", 0) / "eval.csv").read_bytes()
    assert archive.verify(out) == []
    # adding again changes nothing; the running seed joins once it has finished
    assert archive.add(manifest, out) == (0, 2)
    write_run(root, "qsm", 1)
    assert archive.add(manifest, out) == (1, 3)


def test_add_waits_for_a_sitting_that_holds_the_archive(runs, tmp_path):
    # two sittings of the study archive into one MANIFEST.json: the second must read what the
    # first wrote, not overwrite it with what it read before
    root, manifest = runs
    archive.add(manifest, tmp_path / "warm-up")  # its first call imports what it needs: slow
    out = tmp_path / "archive" / "study"
    done = threading.Event()
    with archive.locked(out):
        writer = threading.Thread(target=lambda: (archive.add(manifest, out), done.set()))
        writer.start()
        assert not done.wait(2.0), "add wrote the archive while another sitting held it"
        assert not (out / "MANIFEST.json").exists()
    writer.join(timeout=60)
    assert done.is_set() and archive.verify(out) == []
    assert len(json.loads((out / "MANIFEST.json").read_text())["runs"]) == 2


def test_the_runs_own_numerics_fingerprint_is_archived(tmp_path):
    root = tmp_path / "runs"
    run = write_run(root, "qsm", 0)
    config = json.loads((run / "config.json").read_text())
    config["provenance"].update(cpu_model="Some CPU", cpu_numerics="0123456789abcdef")
    (run / "config.json").write_text(json.dumps(config))
    manifest = write_manifest(tmp_path / "manifest.json", root, [("qsm", "toy_bimodal", 0, "audit")])
    archive.add(manifest, tmp_path / "archive")
    record = json.loads((tmp_path / "archive" / "MANIFEST.json").read_text())["runs"][0]
    assert (record["cpu"], record["numerics"]) == ("Some CPU", "0123456789abcdef")


def test_verify_names_a_changed_missing_or_unlisted_file(runs, tmp_path):
    root, manifest = runs
    out = tmp_path / "archive"
    archive.add(manifest, out)
    run_dir = next((out / "runs" / "qsm").rglob("seed0"))
    with open(run_dir / "eval.csv", "a") as f:
        f.write("1000,3,0,2,0.1\n")
    (run_dir / "status.json").unlink()
    (run_dir / "checkpoint.pt").write_bytes(b"x")
    problems = archive.verify(out)
    assert any("eval.csv: sha256 differs" in p for p in problems)
    assert any("status.json: is missing" in p for p in problems)
    assert any("checkpoint.pt: is not listed" in p for p in problems)
    proc = subprocess.run([sys.executable, "-m", "analysis.records.archive", "verify", str(out)],
                          capture_output=True, text=True, env=python_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("error: ") == 3


def test_a_finished_run_whose_files_changed_is_refused(runs, tmp_path):
    root, manifest = runs
    out = tmp_path / "archive"
    archive.add(manifest, out)
    with open(seed_dir(root, "qsm", "toy_bimodal", 0) / "eval.csv", "a") as f:
        f.write("1000,3,0,2,0.1\n")
    with pytest.raises(archive.ArchiveError, match="differs from its archived copy"):
        archive.add(manifest, out)


def test_pending_lists_the_jobs_the_archive_lacks_cheapest_first(runs, tmp_path):
    root, manifest = runs
    out = tmp_path / "archive"
    archive.add(manifest, out)  # qsm seed 0 and sac seed 0 (diverged) are finished
    seconds = sum(1.0 for _ in TIMING_PHASES)  # write_run times each phase at 1 s
    qsm_run = seed_dir(root, "qsm", "toy_bimodal", 1).parent
    td3_run = seed_dir(root, "td3", "toy_bimodal", 0).parent
    jobs = archive.pending(manifest, out)
    # qsm seed 1 is estimated from its archived peer; td3 has none, so it goes last
    assert [t for t, _ in jobs] == [f"{qsm_run}/block_1.done", f"{td3_run}/block_0.done"]
    assert jobs[0][1] == pytest.approx(seconds / 3600) and np.isnan(jobs[1][1])
    # blocks of two seeds follow the manifest's order per role; a block is pending while any of
    # its seeds is not archived, and its estimate is for all of its seeds
    jobs = archive.pending(manifest, out, seed_block=2)
    assert jobs[0] == (f"{qsm_run}/block_0_1.done", pytest.approx(2 * seconds / 3600))
    # --max-hours leaves out what is estimated longer, never what is unknown
    assert [t for t, _ in archive.pending(manifest, out, max_hours=1e-6)] == [f"{td3_run}/block_0.done"]
    proc = subprocess.run([sys.executable, "-m", "analysis.records.archive", "pending",
                           "--manifest", str(manifest), "--archive", str(out)],
                          capture_output=True, text=True, env=python_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [line.split("\t") for line in proc.stdout.splitlines()] == [
        [f"{qsm_run}/block_1.done", f"{seconds / 3600:.3f}"], [f"{td3_run}/block_0.done", "nan"]]
    # a fresh worktree (a new machine, the other core's sitting) has the finished peer only in
    # the archive: the estimate reads the archived copy's timing
    shutil.rmtree(seed_dir(root, "qsm", "toy_bimodal", 0))
    assert archive.pending(manifest, out)[0] == (f"{qsm_run}/block_1.done",
                                                 pytest.approx(seconds / 3600))
    # a run id none of whose seeds is archived (another M_q, or T: another cost) has no peers
    other = write_manifest(tmp_path / "other.json", root,
                           [("qsm", "toy_bimodal", 0, "audit"),
                            ("qsm", "toy_bimodal", 0, "mq_sweep", "00000000000b")])
    [(target, hours)] = archive.pending(other, out)
    assert target.endswith("00000000000b/block_0.done") and np.isnan(hours)
    # a task's first run of a role is estimated from the same algorithm and role on other tasks
    another_task = write_manifest(tmp_path / "another.json", root,
                                  [("qsm", "toy_bimodal", 0, "audit"),
                                   ("qsm", "toy_quadmodal", 0, "audit", "00000000000c"),
                                   ("sac", "toy_quadmodal", 0, "audit", "00000000000d")])
    assert archive.pending(another_task, out) == [
        (f"{root}/qsm/toy_quadmodal/00000000000c/block_0.done", pytest.approx(seconds / 3600)),
        (f"{root}/sac/toy_quadmodal/00000000000d/block_0.done", pytest.approx(np.nan, nan_ok=True))]


def test_pending_puts_the_first_roles_or_tasks_first_then_seed_by_seed(tmp_path):
    root = tmp_path / "runs"
    manifest = write_manifest(tmp_path / "manifest.json", root,
                              [("qsm", "toy_bimodal", 0, "benchmark"), ("qsm", "toy_bimodal", 1, "benchmark"),
                               ("sac", "toy_bimodal", 0, "benchmark"), ("sac", "toy_bimodal", 1, "benchmark"),
                               ("td3", "toy_bimodal", 0, "audit"), ("td3", "toy_bimodal", 1, "audit")])
    out = tmp_path / "archive"
    out.mkdir()
    (out / "MANIFEST.json").write_text(json.dumps({"runs": []}))

    def order(**kw):
        return [(t.split("/")[-4], t.split("/")[-1]) for t, _ in archive.pending(manifest, out, **kw)]

    assert order() == [("qsm", "block_0.done"), ("qsm", "block_1.done"), ("sac", "block_0.done"),
                       ("sac", "block_1.done"), ("td3", "block_0.done"), ("td3", "block_1.done")]
    assert order(first=["audit"], seed_major=True) == [
        ("td3", "block_0.done"), ("td3", "block_1.done"), ("qsm", "block_0.done"),
        ("sac", "block_0.done"), ("qsm", "block_1.done"), ("sac", "block_1.done")]


@pytest.mark.parametrize("args, says", [
    (["--stop-by", "soon"], "--stop-by takes a time"),
    (["--stop-by", "2000-01-01 00:00"], "has passed"),
    (["--max-hours", "one"], "--max-hours takes a number of hours"),
    (["--until", "18:00"], "unknown option --until")])
def test_study_script_refuses_bad_options_before_it_trains(args, says):
    proc = subprocess.run(["bash", "scripts/study.sh", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr


def test_study_script_reads_a_passed_clock_time_as_tomorrows():
    """A sitting that ends after midnight: --stop-by 00:00 (always passed today) is tomorrow's
    midnight, not an error. The bad option after it stops the script before it trains."""
    days = [datetime.date.today() + datetime.timedelta(days=1)]
    proc = subprocess.run(["bash", "scripts/study.sh", "--stop-by", "00:00", "--until", "x"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    days.append(datetime.date.today() + datetime.timedelta(days=1))  # the test may span midnight
    assert proc.returncode == 2 and "unknown option --until" in proc.stderr, proc.stderr
    assert any(f"end after {d.isoformat()} 00:00" in proc.stderr for d in days), proc.stderr


COMMITTED = sorted(p.parent for p in (ROOT / "results" / "archive").glob("*/MANIFEST.json"))


@pytest.mark.parametrize("path", COMMITTED or [None], ids=[p.name for p in COMMITTED] or ["none"])
def test_committed_archives_match_their_checksums(path):
    if path is None:
        pytest.skip("no archive is committed under results/archive/")
    assert archive.verify(path) == []


def test_readme_names_the_commits_that_trained_the_study():
    """The README says which commit trained the study's archive; a run archived from another
    commit must be named there too (or the README is stale)."""
    manifest = ROOT / "results" / "archive" / "study" / "MANIFEST.json"
    if not manifest.is_file():
        pytest.skip("no study archive is committed")
    runs = json.loads(manifest.read_text())["runs"]
    commits = {r["git_commit"] for r in runs if r.get("git_commit")}
    readme = (ROOT / "README.md").read_text()
    assert commits and all(f"`{c[:12]}`" in readme for c in commits), \
        f"README.md should name the commits that trained results/archive/study: {sorted(commits)}"


def test_an_archived_run_belongs_to_the_configuration_that_at_its_code_has_its_run_id():
    from qsm.contract.identity import run_identity
    hparams, budget = {"M_q": 50.0}, {"steps": 40000, "start_steps": 2000, "eval_every": 2000,
                                      "eval_episodes": 100, "batch_size": 256,
                                      "replay_capacity": 10**6, "probe_states": 8,
                                      "probe_samples": 1000, "log_every": 190}
    old = run_identity("qsm", "toy_bimodal", hparams, budget, "0ldc0de0ldc0")
    record = {"algo": "qsm", "task": "toy_bimodal", "seed": 1, "run_id": old["run_id"],
              "code_version": "0ldc0de0ldc0"}
    index = {("qsm", "toy_bimodal", 1): [record]}
    # found whatever the code is now: the question is asked of the code that trained it
    assert archive.find_run(index, "qsm", "toy_bimodal", 1, hparams, budget) is record
    assert archive.find_run(index, "qsm", "toy_bimodal", 1, {"M_q": 20.0}, budget) is None
    assert archive.find_run(index, "qsm", "toy_bimodal", 1, hparams,
                            {**budget, "steps": 30000}) is None
    assert archive.find_run(index, "qsm", "toy_bimodal", 2, hparams, budget) is None
    newer = run_identity("qsm", "toy_bimodal", hparams, budget, "newc0de0newc")
    index[("qsm", "toy_bimodal", 1)].append({**record, "run_id": newer["run_id"],
                                             "code_version": "newc0de0newc"})
    with pytest.raises(archive.ArchiveError, match="archived 2 times"):
        archive.find_run(index, "qsm", "toy_bimodal", 1, hparams, budget)
    # a run whose identity holds package versions is found under the versions it recorded
    versions = {"torch": "2.5.1", "numpy": "2.1.0"}
    pinned = run_identity("qsm", "toy_bimodal", hparams, budget, "0ldc0de0ldc0", versions)
    pinned_record = {**record, "seed": 3, "run_id": pinned["run_id"], "versions": versions}
    index[("qsm", "toy_bimodal", 3)] = [pinned_record]
    assert archive.find_run(index, "qsm", "toy_bimodal", 3, hparams, budget) is pinned_record
    assert archive.find_run(index, "qsm", "toy_bimodal", 3, {"M_q": 20.0}, budget) is None
    # an external program records no versions: its run_id, asked under the configuration's
    # versions, says it was trained under them (and under other versions it is not found)
    unrecorded = {**pinned_record, "seed": 4}
    del unrecorded["versions"]
    index[("qsm", "toy_bimodal", 4)] = [unrecorded]
    assert archive.find_run(index, "qsm", "toy_bimodal", 4, hparams, budget, versions) \
        is unrecorded
    assert archive.find_run(index, "qsm", "toy_bimodal", 4, hparams, budget) is None
    assert archive.find_run(index, "qsm", "toy_bimodal", 4, hparams, budget,
                            {**versions, "torch": "2.6.0"}) is None

