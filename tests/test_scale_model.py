"""The score-scale model (analysis.audit.scale_model) on hand-made runs whose predictions are
computed by hand."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.audit.scale_model import (PREDICTION_COLUMNS, ScaleRun, coord_bound_at,
                                        paper_setting, score_scale_predictions, toy_curve)
from conftest import ROOT
from contract import run_config, seed_dir, write_manifest
from qsm.contract.rundir import TIMING_PHASES, SeedRunWriter

NAN = math.nan


def toy(task, m_q, rms, share, T=5, form="constant"):
    return ScaleRun("qsm", task, (m_q, T, form), True, 10.0, rms, share, 1)


def bench(algo, task, q=NAN, rms=NAN, d=2, setting=None):
    setting = (setting or paper_setting()) if algo == "qsm" else None
    return ScaleRun(algo, task, setting, False, q, rms, 0.5, d)


# the toy curve: share 0.1 at RMS 1, 0.5 at RMS 4, 1.0 at RMS 16 (medians of each toy and M_q)
TOYS = [toy("toy_a", 1.0, 0.9, 0.05), toy("toy_a", 1.0, 1.0, 0.1), toy("toy_a", 1.0, 1.1, 0.2),
        toy("toy_a", 5.0, 4.0, 0.5),
        toy("toy_b", 50.0, 16.0, 1.0), toy("toy_b", 50.0, 16.0, 1.0),
        # off the paper's sampler (T 20; the sigma-scaled target): not on the curve
        toy("toy_a", 1.0, 2.0, 0.0, T=20), toy("toy_a", 5.0, 2.0, 0.0, form="sigma_scaled")]


def test_the_toy_curve_takes_each_settings_median_at_the_papers_sampler_and_never_falls():
    rms, share = toy_curve(TOYS)
    assert rms.tolist() == [1.0, 4.0, 16.0] and share.tolist() == [0.1, 0.5, 1.0]
    # a toy whose share falls as the score grows is flattened: more score, no less on the bounds
    rms, share = toy_curve(TOYS + [toy("toy_c", 20.0, 8.0, 0.3)])
    assert rms.tolist() == [1.0, 4.0, 8.0, 16.0] and share.tolist() == [0.1, 0.5, 0.5, 1.0]
    with pytest.raises(ValueError, match="two or more score scales"):
        toy_curve(TOYS[:3])


def test_the_curve_is_read_log_linearly_and_clamped_at_its_ends():
    rms, share = toy_curve(TOYS)
    assert coord_bound_at(rms, share, 2.0) == pytest.approx(0.3)   # halfway from 1 to 4 in log
    assert coord_bound_at(rms, share, 8.0) == pytest.approx(0.75)
    assert coord_bound_at(rms, share, 0.01) == 0.1 and coord_bound_at(rms, share, 1e3) == 1.0


def test_predictions_scale_td3s_q_by_the_calibration_ratios_and_read_the_toy_curve():
    runs = TOYS + [
        # calibration: QSM RMS / TD3 Q = 10 / 20 = 0.5 on task_a, 5 / 20 = 0.25 on task_b
        bench("qsm", "task_a", rms=9.0), bench("qsm", "task_a", rms=10.0),
        bench("qsm", "task_a", rms=11.0), bench("td3", "task_a", q=20.0),
        bench("qsm", "task_b", rms=5.0), bench("td3", "task_b", q=20.0),
        # a QSM run at another setting does not calibrate
        bench("qsm", "task_b", rms=500.0, setting=(5.0, 5, "constant")),
        # to predict: TD3's median Q 4 (seeds at 3, 4, 100), 2 action coordinates
        bench("td3", "task_c", q=3.0), bench("td3", "task_c", q=4.0), bench("td3", "task_c", q=100.0),
        # no TD3 run: nothing to predict from; SAC's Q is not read
        bench("sac", "task_d", q=50.0)]
    df = score_scale_predictions(runs)
    assert list(df.columns) == PREDICTION_COLUMNS
    assert df["task"].tolist() == ["task_a", "task_b", "task_c"]
    assert df["kind"].tolist() == ["calibration", "calibration", "prediction"]
    c = df.set_index("task").loc["task_c"]
    assert (c["td3_q_mean"], c["n_td3_seeds"], c["act_dim"]) == (4.0, 3, 2)
    assert (c["ratio_low"], c["ratio_high"]) == (0.25, 0.5)
    assert c["calibration_tasks"] == "task_a task_b"
    assert (c["rms_low"], c["rms_high"]) == (1.0, 2.0)
    assert c["coord_bound_low"] == pytest.approx(0.1) and c["coord_bound_high"] == pytest.approx(0.3)
    # two coordinates, each on a bound with share p, independently
    assert c["mass_any_bound_low"] == pytest.approx(1 - 0.9 ** 2)
    assert c["mass_any_bound_high"] == pytest.approx(1 - 0.7 ** 2)
    assert c["mass_corner_low"] == pytest.approx(0.01) and c["mass_corner_high"] == pytest.approx(0.09)
    assert not c["predicted_on_bounds"]
    a = df.set_index("task").loc["task_a"]  # RMS 5 to 10: p from 0.58 to 0.83, any >= 0.82
    assert a["rms_low"] == 5.0 and a["rms_high"] == 10.0
    assert a["coord_bound_low"] == pytest.approx(0.5 + 0.5 * math.log(5 / 4) / math.log(4))
    assert not a["predicted_on_bounds"]  # 1 - (1 - 0.58)^2 = 0.82 < 0.9


def test_no_task_with_both_qsm_and_td3_runs_is_an_error():
    with pytest.raises(ValueError, match="nothing to calibrate"):
        score_scale_predictions(TOYS + [bench("td3", "task_c", q=4.0)])


def test_the_command_refuses_a_manifest_it_cannot_calibrate_on(tmp_path):
    """Runs without training diagnostics (no Q logged): a clear error and exit status 2."""
    listed = []
    for algo in ("qsm", "td3"):
        w = SeedRunWriter(seed_dir(tmp_path, algo, "cheetah_run", 0))
        w.write_config(run_config(algo, "cheetah_run", 0, act_dim=2))
        w.add_eval(0, [1.0], wall_time_s=0.0)
        w.write_timing([{"phase": p, "calls": 1, "total_s": 1.0, "env_steps": 1, "block_size": 1,
                         "device": "cpu"} for p in TIMING_PHASES])
        a = np.zeros((2, 5, 2))
        w.write_probe_actions(np.zeros((2, 3)), a, a)
        w.write_status("complete", 1000)
        listed.append((algo, "cheetah_run", 0, "benchmark"))
    manifest = write_manifest(tmp_path / "manifest.json", tmp_path, listed)
    proc = subprocess.run([sys.executable, "-m", "analysis.audit.scale_model", "predict",
                           "--manifest", str(manifest), "--out", str(tmp_path / "p.csv")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "nothing to calibrate" in proc.stderr and not (tmp_path / "p.csv").exists()


def _archive_then(model, tmp_path):
    """The study's configuration, the spec of its committed predictions of `model`, and a
    manifest of exactly the runs the archive held at the commit that added them (its
    MANIFEST.json there); skips in a clone without that commit."""
    import json

    import yaml

    from analysis.records.manifest import load_manifest, manifest_dict, manifest_entry
    config = yaml.safe_load((ROOT / "config" / "study.yaml").read_text())
    spec = config["predictions"][model]
    archive = ROOT / "results" / "archive" / "study"
    then = subprocess.run(["git", "show", f"{spec['commit']}:results/archive/study/MANIFEST.json"],
                          capture_output=True, text=True, cwd=ROOT)
    if then.returncode:
        pytest.skip(f"the commit {spec['commit'][:12]} is not in this clone's history")
    runs = [manifest_entry(r["algo"], r["task"], r["seed"], r["roles"][0], r["run_id"],
                           r["code_version"], str(archive / r["path"]))
            for r in json.loads(then.stdout)["runs"]]
    path = tmp_path / "manifest.json"
    sweeps = {w["name"]: {"hparam": w["hparam"], "algos": w["algos"], "values": w["values"]}
              for w in config["sweeps"]}
    path.write_text(json.dumps(manifest_dict("then", str(archive), runs, sweeps)))
    return config, spec, load_manifest(path)


def _assert_same_table(again, committed, columns):
    assert again["task"].tolist() == committed["task"].tolist()
    for column in columns:
        if again[column].dtype.kind == "f":
            assert np.allclose(again[column], committed[column], atol=1e-4), column
        else:
            assert again[column].tolist() == committed[column].tolist(), column


def test_the_committed_predictions_are_this_codes_on_the_runs_archived_when_they_were_made(        tmp_path):
    """docs/predictions/score_scale_predictions.csv, recomputed from exactly the runs the study's
    archive held at the commit that added it (its MANIFEST.json there), by the current code."""
    import pandas as pd

    from analysis.audit.scale_model import scale_runs
    _, spec, manifest = _archive_then("score_scale", tmp_path)
    _assert_same_table(score_scale_predictions(scale_runs(manifest)),
                       pd.read_csv(ROOT / spec["table"]), PREDICTION_COLUMNS)


def _nd(task, seed, matched, algo="qsm", M_q=None):
    M_q_paper, T, form = paper_setting()
    return {"algo": algo, "task": task, "seed": seed, "M_q": M_q or M_q_paper, "T": T,
            "score_target": form, "other_hparams": NAN, "n_states": 8,
            "states_as_no_denoiser": matched}


def test_the_sampler_alone_is_predicted_from_the_score_scale_bracketed_by_trained_tasks():
    """Trained: task_w (RMS 1, 5 of 8 states the sampler's: its own) and task_s (RMS 9, 0 of 8:
    not). Predicted RMS 0.5 to 1.4 (<= 1 x 1.5): the sampler's own; 6 to 20 (>= 9 / 1.5):
    not; 2 to 7: undecided. Another M_q, SAC and a toy are not read."""
    import pandas as pd

    from analysis.audit.scale_model import (ALONE_COLUMNS, NOT_OWN, OWN, UNDECIDED,
                                            sampler_alone_predictions, samplers_own)
    assert samplers_own(4, 8) and not samplers_own(3, 8) and not samplers_own(0, 0)
    runs = [bench("qsm", "task_w", rms=1.0), bench("qsm", "task_s", rms=8.0),
            bench("qsm", "task_s", rms=9.0), bench("qsm", "task_s", rms=10.0),
            bench("qsm", "task_s", rms=0.1, setting=(1.0, 5, "constant")), *TOYS]
    nd = pd.DataFrame([_nd("task_w", 0, 5), _nd("task_s", 0, 0), _nd("task_s", 2, 1),
                       _nd("task_s", 1, 8, M_q=1.0), _nd("task_s", 3, 8, algo="sac"),
                       _nd("toy_a", 0, 8)])
    scale = pd.DataFrame([{"task": t, "rms_low": lo, "rms_high": hi} for t, lo, hi in (
        ("task_w", 0.5, 1.4), ("task_new", 6.0, 20.0), ("task_mid", 2.0, 7.0))])
    df = sampler_alone_predictions(runs, scale, nd)
    assert list(df.columns) == ALONE_COLUMNS
    assert df["predicted"].tolist() == [OWN, NOT_OWN, UNDECIDED]
    assert df["seeds_in_sample"].tolist() == ["0", "", ""]
    assert (df["own_rms_max"] == 1.0).all() and (df["other_rms_min"] == 9.0).all()
    with pytest.raises(ValueError, match="both sides"):
        sampler_alone_predictions(runs, scale, nd[nd["task"] != "task_w"])


def test_the_committed_sampler_alone_predictions_are_this_codes_on_the_runs_archived_then(
        tmp_path):
    """docs/predictions/sampler_alone_predictions.csv, recomputed by the current code from the
    runs the study's archive held at the commit that added it: their no-denoiser comparison
    (analysis.audit.oracle) and score-target RMS, and the committed score-scale predictions."""
    import pandas as pd

    from analysis.audit import oracle
    from analysis.audit.load import load_entries
    from analysis.audit.scale_model import ALONE_COLUMNS, sampler_alone_predictions, scale_runs
    config, spec, manifest = _archive_then("sampler_alone", tmp_path)
    entries = [e for role in ("benchmark", "audit", *manifest.sweeps)
               for e in load_entries(manifest, ("policy",), roles=(role,))]
    again = sampler_alone_predictions(
        scale_runs(manifest), pd.read_csv(ROOT / config["predictions"]["score_scale"]["table"]),
        oracle.no_denoiser_table(entries))
    _assert_same_table(again, pd.read_csv(ROOT / spec["table"], dtype={"seeds_in_sample": str},
                                          keep_default_na=False), ALONE_COLUMNS)
