"""docs/adding_a_baseline.md, followed as a reader would: its commands run as written (in a
temporary directory instead of /tmp) and give what the text says, and its job counts are those of
a dry run of the demo preset."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess

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
    steps = commands(bash_block_after("### Step 2: try it once by hand"))
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


@pytest.mark.parametrize("name", ["POLICY_MODULES", "extra_state()", "literal `hp(...)` calls"])
def test_the_rules_for_a_new_agent_are_named(name):
    assert name in DOC
