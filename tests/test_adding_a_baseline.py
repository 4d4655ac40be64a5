"""docs/adding_a_baseline.md, followed as a reader would: its commands run as written (in a
temporary directory instead of /tmp) and give what the text says, and its job counts are those of
a dry run of the demo preset."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, python_env
from test_pipeline import planned_jobs, snakemake

DOC = (ROOT / "docs" / "adding_a_baseline.md").read_text()


def bash_block_after(heading: str) -> str:
    """The first ```bash block after a heading of the document."""
    start = DOC.index(heading)
    match = re.search(r"```bash\n(.*?)```", DOC[start:], flags=re.S)
    return match.group(1)


def commands(block: str) -> list[tuple[str, str]]:
    """(command, the '# ...' line printed below it if any), with continuation lines joined."""
    out, pending = [], ""
    for line in block.splitlines():
        if line.startswith("# ") and out:
            out[-1] = (out[-1][0], line[2:])
            continue
        pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            if pending.strip():
                out.append((pending.split("  #")[0].strip(), ""))
            pending = ""
    return out


def run(command: str, tmp_path):
    command = command.replace("/tmp/", f"{tmp_path}/")
    words = shlex.split(command)
    assert words[0] == "python", command
    proc = subprocess.run(["python", *words[1:]], capture_output=True, text=True, cwd=ROOT,
                          env=python_env(), timeout=600)
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_path_a_by_hand_prints_what_the_text_shows(tmp_path):
    steps = commands(bash_block_after("### Step 3: try it once by hand"))
    assert [c.split()[1] for c, _ in steps] == ["-m", "-c"]
    run(steps[0][0], tmp_path)
    printed = run(steps[1][0], tmp_path).strip()
    assert printed == steps[1][1], (printed, steps[1][1])


def test_path_b_program_validates_and_aggregates(tmp_path):
    steps = commands(bash_block_after("Try it and validate the output:"))
    outputs = [run(command, tmp_path) for command, _ in steps]
    assert outputs[1].count("ok: ") == 2 and "(complete)" in outputs[1]
    assert (tmp_path / "scores.csv").is_file() and (tmp_path / "run_status.csv").is_file()


def test_stated_job_counts_are_those_of_a_dry_run(tmp_path):
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    with_dql, without = map(int, re.search(r"plans (\d+) `train` jobs instead of (\d+)", DOC).groups())
    base = planned_jobs(snakemake("-n", workdir=tmp_path, check=True).text)
    extended = planned_jobs(snakemake("-n", "--config", "algos=[qsm,sac,td3,dql]",
                                      workdir=tmp_path, check=True).text)
    assert (base["train"], extended["train"]) == (without, with_dql)
    random_jobs = int(re.search(r"(\d+) `random_policy` jobs, one per task", DOC).group(1))
    assert base["random_policy"] == random_jobs
    none = planned_jobs(snakemake("-n", "--config", "external_baselines=[]", workdir=tmp_path,
                                  check=True).text)
    assert "random_policy" not in none


@pytest.mark.parametrize("name", ["POLICY_MODULES", "extra_state()", "declaration imports no torch",
                                  "learner's `Config` is the declared one"])
def test_the_rules_for_a_new_agent_are_named(name):
    assert name in DOC


def test_step_1_shows_the_declaration_as_it_is():
    start = DOC.index("### Step 1: declare the agent")
    shown = re.search(r"```python\n(.*?)```", DOC[start:], flags=re.S).group(1)
    source = (ROOT / "baselines" / "dql_config.py").read_text()
    assert source.endswith(shown), "docs/adding_a_baseline.md Step 1 differs from baselines/dql_config.py"


NEW_DECLARATION = """\
from dataclasses import dataclass

from qsm.declare.hparams import hp

NAME = "mine"
LEARNER = "baselines.mine:Mine"


@dataclass
class MineConfig:
    hidden: tuple = hp((8, 8), sizes=True, doc="actor widths")
    gamma: float = hp(0.99, gt=0, lt=1, doc="discount")


CONFIG = MineConfig
TASK_OVERRIDES = {"toy_bimodal": {"gamma": 0.9}}
"""

NEW_LEARNER = """\
\"\"\"A new agent, found by its two files alone.\"\"\"
from baselines.mine_config import MineConfig
from qsm.learners.agent_base import Agent


class Mine(Agent):
    Config = MineConfig
"""


def test_the_two_files_are_all_the_registration_needed(tmp_path):
    """Rules 1-3 on a copy of the packages: a new learner and its declaration in baselines/ are
    listed by the trainer, resolved with their per-task defaults, and a learner that carries
    another Config than the declared one is refused."""
    for pkg in ("qsm", "baselines"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "baselines" / "mine_config.py").write_text(NEW_DECLARATION)
    (tmp_path / "baselines" / "mine.py").write_text(NEW_LEARNER)
    env = {**python_env(), "PYTHONPATH": str(tmp_path)}

    def python(*args):
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=tmp_path,
                              env=env, timeout=300)

    listing = python("-m", "qsm.train", "--list-agents")
    assert listing.returncode == 0, listing.stderr
    assert "  mine  A new agent, found by its two files alone." in listing.stdout
    resolved = python("-c", "from qsm.declare.registry import get_agent, resolve_config; "
                            "cls = get_agent('mine'); print(cls.__module__, cls.name, "
                            "resolve_config(cls, 'toy_bimodal', {}).gamma)")
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout.split() == ["baselines.mine", "mine", "0.9"]
    (tmp_path / "baselines" / "mine.py").write_text(NEW_LEARNER.replace(
        "    Config = MineConfig", "    class Config:\n        pass"))
    refused = python("-c", "from qsm.declare.registry import get_agent; get_agent('mine')")
    assert refused.returncode != 0 and "is not the Config its declaration" in refused.stderr
