"""Hyperparameter ranges (qsm/declare/hparams.py): declared once per agent, checked by the trainer
before anything is built, and shown in the generated docs/hyperparameters.md."""
import math
import subprocess
import sys

import pytest

from conftest import ROOT, python_env
from qsm import train
from qsm.declare.catalog import agent_catalog
from qsm.declare.hparams import HparamError, Spec, identity_values, markdown_table, resolve
from qsm.declare.hparams_docs import DOCS_COMMAND, DOCS_PAGE, hyperparameters_page

# (algo, --set value, what the one-line error must say): 29 values across the four agents.
OUT_OF_RANGE = [
    ("qsm", "T=0", "qsm: T=0 is invalid: T must be an integer >= 1"),
    ("qsm", "actor_lr=-1", "qsm: actor_lr=-1.0 is invalid: actor_lr must be a number > 0"),
    ("qsm", "time_dim=3", "qsm: time_dim=3 is invalid: time_dim must be an even integer > 0"),
    ("qsm", "actor_hidden=[]", "qsm: actor_hidden=[] is invalid: actor_hidden must be a non-empty "
                               "list of positive integers"),
    ("qsm", "M_q=0", "qsm: M_q=0.0 is invalid: M_q must be a number > 0"),
    ("qsm", "tau=0", "qsm: tau=0.0 is invalid: tau must be a number in (0, 1]"),
    ("qsm", "tau=1.5", "qsm: tau=1.5 is invalid"),
    ("qsm", "temperature=-0.1", "qsm: temperature=-0.1 is invalid: temperature must be a number >= 0"),
    ("qsm", "gamma=1", "qsm: gamma=1.0 is invalid: gamma must be a number in (0, 1)"),
    ("qsm", "beta_max=0.05", "qsm: beta_min=0.1 and beta_max=0.05 are invalid together: beta_min "
                             "must be <= beta_max"),
    ("qsm", "cond_hidden=[0,4]", "qsm: cond_hidden=[0,4] is invalid"),
    ("qsm", "actor_lr_decay_steps=0", "qsm: actor_lr_decay_steps=0 is invalid"),
    ("qsm", "critic_hidden=[64,-1]", "qsm: critic_hidden=[64,-1] is invalid"),
    ("qsm", "T=2.5", "qsm: T=2.5 is invalid: T must be an integer >= 1"),
    ("sac", "gamma=2.0", "sac: gamma=2.0 is invalid: gamma must be a number in (0, 1)"),
    ("sac", "init_temperature=0", "sac: init_temperature=0.0 is invalid: init_temperature must be "
                                  "a number > 0"),
    ("sac", "temp_lr=-3e-4", "sac: temp_lr=-0.0003 is invalid"),
    ("sac", "target_entropy_scale=-1", "sac: target_entropy_scale=-1.0 is invalid"),
    ("sac", "log_std_min=3", "sac: log_std_min=3.0 and log_std_max=2.0 are invalid together"),
    ("sac", "hidden=[]", "sac: hidden=[] is invalid"),
    ("sac", "backup_entropy=1", "sac: backup_entropy=1 is invalid: backup_entropy must be true or "
                                "false"),
    ("sac", "actor_lr=nan", "sac: actor_lr=nan is invalid"),
    ("td3", "policy_delay=0", "td3: policy_delay=0 is invalid: policy_delay must be an integer >= 1"),
    ("td3", "target_noise=-0.2", "td3: target_noise=-0.2 is invalid"),
    ("td3", "target_noise_clip=-1", "td3: target_noise_clip=-1.0 is invalid"),
    ("td3", "explore_noise=-0.1", "td3: explore_noise=-0.1 is invalid"),
    ("td3", "hidden=[256,0]", "td3: hidden=[256,0] is invalid"),
    ("dql", "T=0", "dql: T=0 is invalid"),
    ("dql", "time_dim=0", "dql: time_dim=0 is invalid: time_dim must be an even integer > 0"),
    ("dql", "gamma=0", "dql: gamma=0.0 is invalid"),
]


@pytest.mark.parametrize("algo,override,message", OUT_OF_RANGE,
                         ids=[f"{a}:{o}" for a, o, _ in OUT_OF_RANGE])
def test_out_of_range_value_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, algo,
                                                                    override, message):
    out = tmp_path / "out"
    code = train.main(["--algo", algo, "--task", "cheetah_run", "--seeds", "0", "--steps", "10",
                       "--set", override, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()


def test_the_command_line_gives_the_same_single_line(tmp_path):
    """The same check through a real process: exit status 2, no traceback, nothing written."""
    proc = subprocess.run([sys.executable, "-m", "qsm.train", "--algo", "qsm", "--task",
                           "cheetah_run", "--seeds", "0", "--steps", "10", "--set", "T=0",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          env=python_env(), timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: qsm: T=0 is invalid: T must be an integer >= 1"
    assert not (tmp_path / "out").exists()


def test_per_task_defaults_are_checked_too():
    spec = {"M_q": Spec("M_q", 50.0, gt=0)}
    with pytest.raises(HparamError, match=r"M_q=-1.0 is invalid.*\(from x's defaults for walk\)"):
        resolve("x", spec, (), {"M_q": -1}, {}, "walk")


@pytest.mark.parametrize("spec,text", [
    (Spec("a", 5, ge=1), "integer >= 1"),
    (Spec("a", 0.99, gt=0, lt=1), "number in (0, 1)"),
    (Spec("a", 0.005, gt=0, le=1), "number in (0, 1]"),
    (Spec("a", 0.1, ge=0), "number >= 0"),
    (Spec("a", 2.0), "finite number"),
    (Spec("a", 64, gt=0, even=True), "even integer > 0"),
    (Spec("a", (1, 2), sizes=True), "non-empty list of positive integers"),
    (Spec("a", True), "true or false"),
    (Spec("a", "x", choices=("x", "y")), "one of x, y"),
])
def test_ranges_read_as_words(spec, text):
    assert spec.describe() == text
    assert spec.coerce(spec.default) == spec.default or isinstance(spec.default, tuple)


def test_boundaries_are_exact():
    open_unit = Spec("g", 0.5, gt=0, lt=1)
    for bad in (0, 1, 0.0, 1.0, -1e-12, math.inf, math.nan):
        with pytest.raises(HparamError):
            open_unit.coerce(bad)
    assert open_unit.coerce(1e-12) == 1e-12 and open_unit.coerce(1 - 1e-12) == 1 - 1e-12
    assert Spec("t", 0.5, gt=0, le=1).coerce(1) == 1.0
    assert Spec("n", 3, ge=1).coerce(1) == 1
    with pytest.raises(HparamError):
        Spec("n", 3, ge=1).coerce(True)  # a bool is not an integer here


@pytest.mark.parametrize("algo", sorted(agent_catalog()))
def test_every_field_declares_a_range_and_a_meaning(algo):
    for spec in agent_catalog()[algo].specs.values():
        assert spec.doc, f"{algo}.{spec.name} has no doc"
        if spec.kind in ("int", "float") and not spec.name.startswith("log_std"):
            assert any(v is not None for v in (spec.gt, spec.ge, spec.lt, spec.le)), \
                f"{algo}.{spec.name} declares no range"


def test_hyperparameters_page_is_generated_from_the_declarations():
    committed = (ROOT / DOCS_PAGE).read_text()
    assert committed == hyperparameters_page(), f"{DOCS_PAGE} is stale: run {DOCS_COMMAND}"
    for name, entry in agent_catalog().items():  # every registered agent has its table
        table = markdown_table(name, entry.specs, entry.relations)
        assert table.split("\n", 1)[1] in committed, name


def test_hyperparameters_page_command_writes_what_the_test_expects(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "qsm.declare.hparams_docs", "--markdown"],
                          capture_output=True, text=True, env=python_env(), cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == hyperparameters_page()


def test_an_implicit_field_enters_the_identity_only_away_from_its_default():
    """score_target was added after runs were archived without it: at its default those runs
    keep their identities; its other values make other runs."""
    entry = agent_catalog()["qsm"]
    assert entry.specs["score_target"].implicit and not entry.specs["M_q"].implicit
    default = entry.resolve("toy_bimodal", {})
    assert "score_target" not in identity_values(entry.specs, default)
    assert identity_values(entry.specs, default)["M_q"] == 50.0
    other = entry.resolve("toy_bimodal", {"score_target": "sigma_scaled"})
    assert identity_values(entry.specs, other)["score_target"] == "sigma_scaled"
    with pytest.raises(HparamError, match="score_target must be one of constant, sigma_scaled"):
        entry.resolve("toy_bimodal", {"score_target": "sigma"})
