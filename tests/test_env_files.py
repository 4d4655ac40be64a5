"""The conda environment files are generated from pyproject.toml (scripts/make_envs.py), and each
rule names the one it needs. No conda here: the files are checked, not built."""
import importlib.util
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, python_env

spec = importlib.util.spec_from_file_location("make_envs", ROOT / "scripts" / "make_envs.py")
make_envs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_envs)
PYPROJECT = make_envs.tomllib.loads((ROOT / "pyproject.toml").read_text())
RULE_FILES = [ROOT / "workflow" / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]


@pytest.mark.parametrize("name", sorted(make_envs.ENVS))
def test_committed_file_is_what_the_command_writes(name):
    assert (ROOT / name).read_text() == make_envs.render(PYPROJECT)[name], \
        f"{name} is stale: run {make_envs.COMMAND}"


@pytest.mark.parametrize("name,extras", [("environment.yml", []),
                                         ("environment-official.yml", ["official"])])
def test_pip_pins_are_pyprojects_exactly(name, extras):
    env = yaml.safe_load((ROOT / name).read_text())
    deps = env["dependencies"]
    assert "pip" in deps and any(str(d).startswith("python=") for d in deps)
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    project = PYPROJECT["project"]
    want = project["dependencies"] + [pin for e in extras
                                      for pin in project["optional-dependencies"][e]]
    assert pip == want


def test_check_flag_passes_on_the_checkout():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_envs.py"), "--check"],
                          capture_output=True, text=True, env=python_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr


def conda_files(path):
    """{rule name: conda file named by its `conda:` directive} of one Snakefile."""
    out, rule = {}, None
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"(?:rule|checkpoint)\s+(\w+):", line)
        if m:
            rule = m.group(1)
        elif line.strip() == "conda:" and rule:
            out[rule] = yaml.safe_load(lines[i + 1].strip())
    return out


def test_every_rule_names_an_existing_env_and_the_official_rule_the_official_one():
    found = {}
    for path in RULE_FILES:
        for rule, name in conda_files(path).items():
            assert (path.parent / name).resolve().is_file(), f"{path.name}: rule {rule}: {name}"
            found[rule] = (path.parent / name).resolve().name
    assert found["official_baseline"] == "environment-official.yml"
    assert found["train"] == "environment.yml"
