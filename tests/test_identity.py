"""Run identity and code versions (qsm/contract/identity.py), and the agent catalog
(qsm/declare/catalog.py) that lets the pipeline build its DAG without importing torch."""
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, python_env
from qsm.contract import identity
from qsm.declare import catalog
from qsm.declare.hparams import relations_of, specs_of
from qsm.declare.registry import get_agent

AGENTS = catalog.agent_names()


@pytest.mark.parametrize("algo", AGENTS)
def test_catalog_and_trainer_read_the_same_declaration(algo):
    entry, cls = catalog.get_entry(algo), get_agent(algo)
    assert entry.module == cls.__module__ and entry.class_name == cls.__name__
    assert cls.Config is entry.config and cls.name == algo
    assert entry.specs == specs_of(cls.Config)
    assert entry.relations == relations_of(cls.Config)
    assert entry.declaration == f"{entry.module}_config"  # the declaration sits beside its learner
    assert set(AGENTS) >= {"qsm", "sac", "td3", "dql"}


def test_qsm_and_dql_share_the_diffusion_fields_and_only_those():
    qsm, dql = catalog.get_entry("qsm"), catalog.get_entry("dql")
    shared = set(qsm.specs) & set(dql.specs)
    assert set(qsm.specs) - shared == {"M_q", "score_target"} and set(dql.specs) - shared == {"variant", "bc_weight"}
    assert all(qsm.specs[k] == dql.specs[k] for k in shared)
    assert qsm.relations == dql.relations == (("beta_min", "<=", "beta_max"),)


def test_a_malformed_declaration_is_named(monkeypatch):
    import types
    module = types.ModuleType("fake_config")
    module.NAME, module.LEARNER, module.CONFIG = "fake", "baselines.fake.Fake", int
    monkeypatch.setitem(sys.modules, "fake_config", module)
    with pytest.raises(catalog.CatalogError, match="fake_config.LEARNER must read"):
        catalog.read_declaration("fake_config")
    module.LEARNER = "baselines.fake:Fake"
    with pytest.raises(catalog.CatalogError, match="fake_config.CONFIG must be a dataclass"):
        catalog.read_declaration("fake_config")
    del module.NAME
    with pytest.raises(catalog.CatalogError, match="fake_config declares no NAME"):
        catalog.read_declaration("fake_config")


def test_closure_follows_imports_and_leaves_out_what_cannot_change_numbers():
    sac = identity.closure(["baselines.sac", "qsm.train"])
    assert {"qsm.learners.nets", "qsm.learners.agent_base", "qsm.harness.envs",
            "qsm.harness.vecenv", "qsm.harness.replay"} <= set(sac)
    assert "baselines.td3" not in sac and "qsm.agent" not in sac
    numeric = {p.relative_to(ROOT).as_posix() for p in identity.numeric_sources(["baselines.sac",
                                                                                  "qsm.train"])}
    assert "qsm/learners/nets.py" in numeric and "baselines/sac.py" in numeric
    assert "baselines/sac_config.py" in numeric  # the declaration: what the learner builds
    assert not numeric & {"qsm/contract/rundir.py", "qsm/runtime/timing.py",
                          "qsm/declare/registry.py", "qsm/declare/catalog.py"}
    # what is numeric is said by the folders: declare, contract and runtime never are, nor is an
    # __init__.py; the harness and the learners are
    assert {"qsm.declare.budget", "qsm.runtime.numerics", "qsm.contract.identity"} <= set(sac)
    assert not [p for p in numeric if p.startswith(("qsm/declare/", "qsm/contract/",
                                                    "qsm/runtime/")) or p.endswith("__init__.py")]
    assert identity.is_numeric("qsm.harness.loop") and identity.is_numeric("qsm.learners.nets")
    assert not identity.is_numeric("qsm.learners") and not identity.is_numeric("qsm.policy")
    # QSM and dql are siblings: both depend on the shared base and its config, not on each other
    for learner, declaration, other in (("qsm.agent", "qsm.agent_config", "baselines.dql"),
                                        ("baselines.dql", "baselines.dql_config", "qsm.agent")):
        modules = identity.closure([learner])
        assert {declaration, "qsm.learners.diffusion_agent",
                "qsm.learners.diffusion_agent_config"} <= set(modules)
        assert other not in modules and f"{other}_config" not in modules


def test_run_identity_is_canonical_and_sensitive_to_every_part():
    budget = {k: 10 for k in identity.BUDGET_KEYS}
    base = identity.run_identity("qsm", "cheetah_run", {"h": (64, 64), "M_q": 50.0}, budget, "abc")
    same = identity.run_identity("qsm", "cheetah_run", {"M_q": 50.0, "h": [64, 64]}, dict(budget), "abc")
    assert base["run_id"] == same["run_id"] and len(base["run_id"]) == 12
    changed = [identity.run_identity("sac", "cheetah_run", {"h": [64, 64], "M_q": 50.0}, budget, "abc"),
               identity.run_identity("qsm", "walker_run", {"h": [64, 64], "M_q": 50.0}, budget, "abc"),
               identity.run_identity("qsm", "cheetah_run", {"h": [64, 64], "M_q": 51.0}, budget, "abc"),
               identity.run_identity("qsm", "cheetah_run", {"h": [64, 64], "M_q": 50.0},
                                     {**budget, "steps": 11}, "abc"),
               identity.run_identity("qsm", "cheetah_run", {"h": [64, 64], "M_q": 50.0}, budget, "abd")]
    assert len({c["run_id"] for c in changed} | {base["run_id"]}) == 6


def test_package_versions_are_part_of_the_identity():
    budget = {k: 10 for k in identity.BUDGET_KEYS}
    hparams = {"M_q": 50.0}
    versions = {"torch": "2.5.1", "numpy": "2.1.0", "dm_control": "1.0.28", "mujoco": "3.3.2"}
    pinned = identity.run_identity("qsm", "cheetah_run", hparams, budget, "abc", versions)
    upgraded = identity.run_identity("qsm", "cheetah_run", hparams, budget, "abc",
                                     {**versions, "torch": "2.6.0"})
    reordered = identity.run_identity("qsm", "cheetah_run", hparams, budget, "abc",
                                      dict(reversed(list(versions.items()))))
    assert pinned["versions"] == versions and pinned["run_id"] != upgraded["run_id"]
    assert reordered["run_id"] == pinned["run_id"]
    # runs recorded before versions were in the identity keep their run_id (e.g. archived runs)
    legacy = identity.run_identity("qsm", "cheetah_run", hparams, budget, "abc")
    assert "versions" not in legacy and legacy["run_id"] != pinned["run_id"]
    assert legacy["run_id"] == identity.hash_of({k: v for k, v in legacy.items() if k != "run_id"})
    # what the programs read: installed metadata, None where a package is absent
    found = identity.package_versions([*identity.TRAINER_PACKAGES, "no-such-package-xyz"])
    assert found["no-such-package-xyz"] is None
    assert all(isinstance(found[p], str) for p in identity.TRAINER_PACKAGES)
    assert set(identity.TRAINER_PACKAGES) < set(identity.OFFICIAL_PACKAGES)


@pytest.fixture
def repo_copy(tmp_path, monkeypatch):
    """A copy of the suite's packages that tests may edit; identity reads it instead of ROOT."""
    for pkg in identity.PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(identity, "ROOT", tmp_path)
    for fn in (identity.imports_of, identity._file_digest):
        fn.cache_clear()
    yield tmp_path
    for fn in (identity.imports_of, identity._file_digest):
        fn.cache_clear()


def _versions():
    return {a: identity.training_code_version(catalog.get_entry(a).module) for a in AGENTS}


def test_code_version_changes_with_statements_not_with_comments_or_docstrings(repo_copy):
    before = _versions()
    sac = repo_copy / "baselines" / "sac.py"
    text = sac.read_text()
    sac.write_text("# a new comment\n" + text.replace('"""Soft actor-critic', '"""Reworded: soft actor-critic', 1)
                   .replace("        return self.log_alpha.detach().exp()",
                            "        # why: a comment inside a function\n"
                            "        return self.log_alpha.detach().exp()"))
    identity._file_digest.cache_clear()
    assert _versions() == before
    sac.write_text(text.replace("alpha = self.log_alpha.exp()", "alpha = 1.0 * self.log_alpha.exp()"))
    identity._file_digest.cache_clear()
    after = _versions()
    assert after["sac"] != before["sac"]
    assert {a: v for a, v in after.items() if a != "sac"} == {a: v for a, v in before.items() if a != "sac"}


@pytest.mark.parametrize("path,changed", [
    ("qsm/agent.py", {"qsm"}),                                  # QSM's own update
    ("qsm/agent_config.py", {"qsm"}),                           # QSM's declaration
    ("baselines/dql.py", {"dql"}),
    ("baselines/dql_config.py", {"dql"}),
    ("qsm/learners/diffusion_agent.py", {"qsm", "dql"}),                 # their shared base
    ("qsm/learners/diffusion_agent_config.py", {"qsm", "dql"}),
    ("qsm/learners/nets.py", {"qsm", "dql", "sac", "td3"}),
    ("analysis/benchmark/stats.py", set()),
    ("analysis/estimators/bootstrap.py", set()),
])
def test_shared_code_versions_every_agent_that_uses_it_and_analysis_none(repo_copy, path, changed):
    before = _versions()
    edited = repo_copy / path
    edited.write_text(edited.read_text() + "\nUNUSED_CONSTANT = 1\n")
    identity._file_digest.cache_clear()
    after = _versions()
    assert {a for a in AGENTS if after[a] != before[a]} == changed


def test_dag_is_built_without_torch_or_dm_control(tmp_path):
    """Login nodes: the paper preset's DAG must build when torch and dm_control cannot be imported."""
    blocker = tmp_path / "blocked"
    for name in ("torch", "dm_control", "mujoco"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(
            f"raise ImportError('{name} imported while building the DAG')\n")
    env = python_env()
    env["PYTHONPATH"] = f"{blocker}:{env['PYTHONPATH']}"
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                           "--directory", str(work), "--configfile",
                           str(ROOT / "config" / "paper.yaml"), "-n", "--quiet", "rules"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "train" in proc.stdout + proc.stderr
