"""`python -m qsm.policy` computes as the run did: its torch threads and its device from the run's
config.json provenance, whatever the user's environment says (OMP_NUM_THREADS, the machine's
cores); what it cannot match it says before comparing."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch

from conftest import ROOT, python_env
from qsm.policy import PolicyError, use_run_numerics

# a run trained at one thread, as the pipeline trains (OMP_NUM_THREADS=1 and --threads 1)
TRAIN = ["--algo", "qsm", "--task", "toy_quadmodal", "--seeds", "0", "--steps", "40",
         "--start-steps", "20", "--eval-every", "20", "--eval-episodes", "2", "--batch-size", "16",
         "--probe-states", "4", "--probe-samples", "200", "--threads", "1"]


def run(args, threads: int):
    """A command in an environment that asks for `threads` threads, as a user's shell might."""
    env = python_env()
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def one_thread_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("policy_numerics") / "qsm"
    proc = run(["-m", "qsm.train", *TRAIN, "--out", str(out)], threads=1)
    assert proc.returncode == 0, proc.stderr
    seed_dir = out / "seed0"
    assert json.loads((seed_dir / "config.json").read_text())["provenance"]["torch_threads"] == 1
    return seed_dir


def test_a_two_thread_environment_reprobes_a_one_thread_run_bit_for_bit(one_thread_run):
    # the environment does give a plain torch process 2 threads
    proc = run(["-c", "import torch; print(torch.get_num_threads())"], threads=2)
    assert proc.stdout.strip() == "2", proc.stdout + proc.stderr
    proc = run(["-m", "qsm.policy", "probe", str(one_thread_run), "--compare"], threads=2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    # said before the comparison: how it computed
    assert lines[-2] == "computed as the run did: on the cpu, 1 torch thread(s)", proc.stdout
    assert lines[-1] == "identical to the run's probe_actions.npz", proc.stdout


def test_evaluate_computes_at_the_runs_threads(one_thread_run, tmp_path):
    outs = {t: tmp_path / f"t{t}.csv" for t in (1, 2)}
    for threads, out in outs.items():
        proc = run(["-m", "qsm.policy", "evaluate", str(one_thread_run), "--episodes", "3",
                    "--seed", "5", "--out", str(out)], threads=threads)
        assert proc.returncode == 0, proc.stderr
        assert "note:" not in proc.stderr, proc.stderr  # nothing differs from the run's numerics
    pd.testing.assert_frame_equal(pd.read_csv(outs[1]), pd.read_csv(outs[2]))


def test_what_cannot_match_the_run_is_said_before_comparing(one_thread_run, tmp_path):
    # other threads, asked for
    proc = run(["-m", "qsm.policy", "probe", str(one_thread_run), "--compare", "--threads", "2"],
               threads=1)
    lines = proc.stdout.strip().splitlines()
    said = [i for i, line in enumerate(lines) if line.startswith("cannot compute as the run did")]
    assert said and "2 torch thread(s) (--threads), the run used 1" in lines[said[0]], proc.stdout
    assert said[0] == len(lines) - 2, proc.stdout  # then the comparison's verdict
    # a machine whose CPU kernels round differently (another numerics fingerprint) and torch
    d = tmp_path / "seed0"
    shutil.copytree(one_thread_run, d)
    config = json.loads((d / "config.json").read_text())
    config["provenance"]["cpu_numerics"] = "0123456789abcdef"
    config["provenance"]["packages"]["torch"] = "1.0.0"
    (d / "config.json").write_text(json.dumps(config))
    proc = run(["-m", "qsm.policy", "probe", str(d), "--compare"], threads=1)
    line = proc.stdout.strip().splitlines()[-2]
    assert line.startswith("cannot compute as the run did"), proc.stdout
    assert "round differently" in line and "0123456789abcdef" in line and "torch 1.0.0" not in line
    assert f"torch {torch.__version__}, the run's 1.0.0" in line, line
    proc = run(["-m", "qsm.policy", "evaluate", str(d), "--episodes", "1"], threads=1)
    assert proc.returncode == 0 and "note: not as the run computed: " in proc.stderr, proc.stderr


def test_the_runs_threads_are_set_in_process():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        run_config = {"provenance": {"torch_threads": 1, "device": "cpu"}}
        device, threads, notes = use_run_numerics(run_config)
        assert (device.type, threads, notes) == ("cpu", 1, []) and torch.get_num_threads() == 1
        device, threads, notes = use_run_numerics(run_config, "cpu", 2)
        assert threads == 2 and torch.get_num_threads() == 2
        assert notes == ["2 torch thread(s) (--threads), the run used 1"]
        # a CUDA run where no CUDA is: on the CPU, said so
        if not torch.cuda.is_available():
            device, _, notes = use_run_numerics({"provenance": {"torch_threads": 1,
                                                                "device": "cuda"}})
            assert device.type == "cpu" and notes == [
                "on the cpu, the run trained on cuda (CUDA is not available here)"]
            with pytest.raises(PolicyError, match="CUDA is not available"):
                use_run_numerics(run_config, "cuda")
        with pytest.raises(PolicyError, match="--threads must be positive"):
            use_run_numerics(run_config, None, 0)
        # an older run without the record: the environment's threads, said so
        _, threads, notes = use_run_numerics({"provenance": {}})
        assert threads is None and notes == ["the run's config.json does not record its torch "
                                             "threads"]
    finally:
        torch.set_num_threads(before)
