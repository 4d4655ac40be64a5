"""Every command line of the suite: `--help` works, every option says what it does and, where it
has a default, what that default is; the trainer lists its agents and tasks without the
arguments a training run needs."""
import argparse
import importlib
import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT, python_env

MODULES = ["qsm.train", "qsm.policy", "qsm.contract.rundir", "qsm.runtime.gpu_slots",
           "qsm.declare.hparams_docs", "analysis.records.manifest", "analysis.records.archive",
           "analysis.benchmark.aggregate", "analysis.benchmark.stats", "analysis.benchmark.figures",
           "analysis.audit.cli", "analysis.audit.scale_model", "analysis.training.profile", "analysis.training.fidelity",
           "analysis.training.diagnostics", "benchmarks/calibration.py",
           "workflow/scripts/official_baseline.py"]


def load(name):
    if name.endswith(".py"):
        path = ROOT / name
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(name)


def options(parser):
    """(parser, action) for every argument of a parser and of its subcommands, -h excluded."""
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        yield parser, action
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from options(sub)


def has_default(action) -> bool:
    if action.default in (None, False, argparse.SUPPRESS) or action.default == []:
        return False
    return bool(action.option_strings) or action.nargs in ("?", "*")


@pytest.mark.parametrize("name", MODULES)
def test_every_option_has_help_that_states_its_default(name):
    parser = load(name).build_parser()
    checked = 0
    for owner, action in options(parser):
        where = f"{name}: {'/'.join(action.option_strings) or action.dest}"
        if action.help == argparse.SUPPRESS:  # hidden on purpose: test hooks
            continue
        assert action.help, f"{where} has no help"
        text = owner._get_formatter()._expand_help(action)
        if has_default(action):
            assert "default" in text, f"{where}: help does not state the default: {text!r}"
        checked += 1
    assert checked


@pytest.mark.parametrize("name", MODULES)
def test_help_exits_0(name, capsys):
    with pytest.raises(SystemExit) as e:
        load(name).main(["--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")


def train_cli(*args):
    return subprocess.run([sys.executable, "-m", "qsm.train", *args], capture_output=True,
                          text=True, env=python_env(), timeout=300)


def test_trainer_lists_agents_and_tasks_without_other_arguments():
    agents = train_cli("--list-agents")
    assert agents.returncode == 0, agents.stderr
    listed = {line.split()[0] for line in agents.stdout.splitlines()[1:]}
    assert {"qsm", "sac", "td3", "dql"} <= listed
    assert "Q-score matching" in agents.stdout  # the module docstring's first line
    tasks = train_cli("--list-tasks")
    assert tasks.returncode == 0, tasks.stderr
    assert "cheetah_run" in tasks.stdout and "toy_bimodal" in tasks.stdout
    assert "toy_quadmodal" in tasks.stdout and "gymnasium" in tasks.stdout.lower()
    full_help = train_cli("--help")
    assert full_help.returncode == 0 and "--list-agents" in full_help.stdout
