"""qsm/harness/official.py: where the official checkout is found, what a missing piece says, and
that the learner modules load without the package __init__ files (which pull in wandb and tfp)."""
import importlib.util
import subprocess
import sys

import pytest

from conftest import python_env
from qsm import ROOT
from qsm.harness import official


def test_environment_variable_comes_first(monkeypatch, tmp_path):
    monkeypatch.setenv(official.ENV_VAR, str(tmp_path / "elsewhere"))
    paths = official.candidate_paths()
    assert paths[0] == tmp_path / "elsewhere"
    assert paths[1] == ROOT.parent / "shared" / "official" / "score_matching_rl"


def test_missing_checkout_says_how_to_point_at_one(monkeypatch, tmp_path):
    monkeypatch.setattr(official, "candidate_paths", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(official.OfficialUnavailable, match=f"set {official.ENV_VAR} to a checkout "
                       f"of Alescontrela/score_matching_rl at commit {official.OFFICIAL_COMMIT}"):
        official.find_checkout()
    with pytest.raises(official.OfficialUnavailable, match="is not a score_matching_rl checkout"):
        official.find_checkout(tmp_path)


def test_missing_extra_says_how_to_install(monkeypatch):
    # every package of the extra present but flax (whether or not this machine has the extra)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "flax" else object())
    with pytest.raises(official.OfficialUnavailable, match=r'needs flax: .*pip install -e "\.\[official\]"'):
        official.check_extra()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(official.OfficialUnavailable, match=r"needs jax, flax, optax, gym: "):
        official.check_extra()


def test_learners_load_without_the_package_init_files():
    try:
        official.check_extra()
        official.find_checkout()
    except official.OfficialUnavailable as e:
        pytest.skip(str(e))
    code = ("import sys; from qsm.harness import official\n"
            "for algo in ('qsm', 'dql', 'td3'): official.load_learner(algo)\n"
            "print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
            "('wandb', 'tensorflow_probability', 'd4rl', 'dmcgym', 'tensorflow')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=python_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
