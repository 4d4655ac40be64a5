"""The one budget type (qsm.declare.budget): both command lines, the pipeline's command strings, the
run identity and the configuration schema agree with it."""
from __future__ import annotations

import argparse

import pytest
import yaml

from conftest import ROOT
from qsm.contract.identity import BUDGET_KEYS, run_identity
from qsm.declare import budget as budget_module
from qsm.declare.budget import KEYS, Budget, BudgetError, default_log_every
from qsm.declare.train_cli import add_run_options, build_parser

FULL = {"steps": 3000, "start_steps": 1000, "eval_every": 500, "eval_episodes": 5,
        "batch_size": 256, "replay_capacity": 100_000, "probe_states": 8, "probe_samples": 1000,
        "log_every": 10}


def test_budget_from_a_mapping_derives_log_every_and_keeps_every_field():
    without = {k: v for k, v in FULL.items() if k != "log_every"}
    b = Budget.of(without)
    assert b.log_every == default_log_every(3000, 1000) == 10
    assert Budget.of(FULL).as_dict() == FULL
    assert tuple(b.as_dict()) == KEYS == BUDGET_KEYS


@pytest.mark.parametrize("field,value,message", [
    ("steps", 0, "--steps must be positive, got 0"),
    ("start_steps", -1, "--start-steps must be >= 0, got -1"),
    ("eval_episodes", 0, "--eval-episodes must be positive"),
    ("log_every", 0, "--log-every must be positive"),
])
def test_out_of_range_values_name_the_option(field, value, message):
    with pytest.raises(BudgetError, match=message):
        Budget.of({**FULL, field: value})


def test_a_missing_field_is_named():
    with pytest.raises(KeyError, match="batch_size"):
        Budget.of({k: v for k, v in FULL.items() if k != "batch_size"})


def test_command_args_parse_back_to_the_same_budget_in_both_programs():
    b = Budget.of(FULL)
    words = ["--algo", "qsm", "--task", "toy_bimodal", "--seeds", "0", "--out", "x",
             *b.command_args().split()]
    assert Budget.of(build_parser().parse_args(words)) == b
    official = argparse.ArgumentParser()  # the official learners' program takes the same options
    add_run_options(official)
    assert Budget.of(official.parse_args(["--seeds", "0", "--out", "x",
                                          *b.command_args().split()])) == b
    # the external programs' split: what every program takes, then what only learners take
    split = f"{b.command_args(budget_module.PROTOCOL_KEYS)} {b.command_args(budget_module.LEARNING_KEYS)}"
    assert sorted(split.split()) == sorted(b.command_args().split())


def test_command_line_defaults_are_the_declared_ones():
    args = build_parser().parse_args(["--algo", "qsm", "--task", "toy_bimodal", "--seeds", "0",
                                      "--steps", "50000", "--out", "x"])
    for f in budget_module.FIELDS:
        if f.name != "steps":
            assert getattr(args, f.name) == f.default, f.name
    assert Budget.of(args).log_every == default_log_every(50000, 10_000)


def test_the_identity_holds_the_budget_with_log_every_resolved():
    without = {k: v for k, v in FULL.items() if k != "log_every"}
    a = run_identity("qsm", "toy_bimodal", {}, without, "c")
    b = run_identity("qsm", "toy_bimodal", {}, FULL, "c")
    assert a == b and a["budget"] == FULL


def test_the_schema_declares_the_budget_fields_with_their_minimums():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    declared = schema["definitions"]["budget"]["properties"]
    probes = schema["properties"]["probes"]["properties"]
    # the probe sizes are configured under `probes` (states, samples), the rest under `budget`
    in_schema = {**declared, "probe_states": probes["states"], "probe_samples": probes["samples"]}
    assert set(in_schema) == set(KEYS)
    for f in budget_module.FIELDS:
        # the schema may ask for more (e.g. at least 10 probe samples), never for less
        assert in_schema[f.name]["minimum"] >= f.minimum, f.name
    required = set(schema["definitions"]["budget"]["required"])
    assert required == set(KEYS) - {"log_every", "probe_states", "probe_samples"}
