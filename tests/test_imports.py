"""The suite's imports: no module imports one that imports it back, the agent catalog that the
pipeline reads at DAG time loads no torch, and the plotting kit loads no statistics."""
import subprocess
import sys

from conftest import ROOT, python_env
from qsm.contract import identity

PACKAGES = ("qsm", "baselines", "analysis")
SCRIPTS = "workflow/scripts"


def import_graph() -> dict[str, frozenset]:
    """{module: the suite modules it imports anywhere, function-local imports included}, for
    every module of the packages and every script of workflow/scripts (read statically, as the
    code versions are: qsm.contract.identity)."""
    graph = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            graph[module] = identity.imports_of(module)
    for path in sorted((ROOT / SCRIPTS).glob("*.py")):
        graph[f"{SCRIPTS}/{path.name}"] = frozenset(identity._script_imports(path))
    return graph


def run_python(code: str) -> str:
    """What `code` prints, run in a fresh interpreter of the suite's environment."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=python_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def cycles(graph) -> list[list[str]]:
    """Every set of modules that import one another in a circle (strongly connected components
    of more than one module; imports_of leaves out a module importing itself)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    assert {"qsm.declare.catalog", "qsm.declare.hparams", "baselines.dql",
            "analysis.records.manifest", f"{SCRIPTS}/official_baseline.py"} <= set(graph)
    assert cycles(graph) == []


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_catalog_loads_no_torch():
    """What the pipeline does at DAG time: every declaration imported, every agent resolved."""
    code = ("import sys\n"
            "from qsm.declare.catalog import agent_catalog\n"
            "for name, entry in agent_catalog().items():\n"
            "    entry.resolve('cheetah_run', {})\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'dm_control', 'mujoco', 'numpy'))\n"
            "print(len(agent_catalog()), heavy)\n")
    count, heavy = run_python(code).split(" ", 1)
    assert int(count) >= 4 and heavy.strip() == "[]"


def test_the_plotting_kit_loads_no_statistics():
    """analysis.plotting draws tables: importing it loads neither rliable, the statistics nor the
    benchmark figures."""
    code = ("import sys\n"
            "import analysis.plotting\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rliable' or m in "
            "('analysis.benchmark.stats', 'analysis.benchmark.figures')))\n")
    assert run_python(code) == "[]"


def test_only_the_benchmark_imports_its_figures():
    """Every other figure takes its kit from analysis.plotting, not from analysis.benchmark.figures
    (which only the benchmark's command and its tests use)."""
    graph = import_graph()
    for folder in ("benchmarks", "scripts"):
        for path in sorted((ROOT / folder).glob("*.py")):
            graph[f"{folder}/{path.name}"] = frozenset(identity._script_imports(path))
    assert "analysis.plotting" in graph["analysis.benchmark.figures"]
    assert sorted(m for m, imported in graph.items()
                  if "analysis.benchmark.figures" in imported) == []


# -- the folders are the layers (docs/architecture.md) ---------------------------------------------

def test_every_package_says_what_it_holds_and_its_init_computes_nothing():
    """Each package's __init__.py has a docstring, and holds only imports and constant assignments
    (a version, re-exports, the checkout's path): what lets the code versions leave every
    __init__.py out (qsm.contract.identity.is_numeric)."""
    import ast
    inits = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("__init__.py"))
    assert len(inits) >= 12
    for path in inits:
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path.relative_to(ROOT)}: no docstring"
        for node in tree.body[1:]:
            assert isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)), (
                f"{path.relative_to(ROOT)}:{node.lineno}: an __init__.py computes nothing")
        module = ".".join(path.relative_to(ROOT).parent.parts)
        assert not identity.is_numeric(module)


def test_the_harness_reaches_the_learners_only_through_the_registry():
    """No module of qsm/harness imports a learner (qsm/learners, qsm/agent.py, baselines): the loop
    trains whatever the registry gives it. The learners take from the harness only their per-seed
    random streams and the diagnostics log they fill."""
    graph = import_graph()
    learners = ("qsm.learners", "qsm.agent", "baselines")
    harness = [m for m in graph if m.startswith("qsm.harness.")]
    assert "qsm.harness.loop" in harness
    for m in harness:
        assert not [i for i in graph[m] if i.startswith(learners)], m
    for m in (m for m in graph if m.startswith(learners)):
        assert {i for i in graph[m] if i.startswith("qsm.harness")} <= {
            "qsm.harness.seeding", "qsm.harness.metrics"}, m


def test_declarations_and_the_contract_load_no_torch():
    """qsm/declare and qsm/contract are read at DAG time and by the analysis: importing every
    module of both loads neither torch nor an environment."""
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts)
                     for sub in ("declare", "contract") for p in (ROOT / "qsm" / sub).glob("*.py")
                     if p.stem != "__init__")
    assert "qsm.declare.catalog" in modules and "qsm.contract.rundir" in modules
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'dm_control', 'mujoco')))\n")
    assert run_python(code) == "[]"


def test_the_analysis_reads_runs_through_the_contract():
    """What the analysis takes from qsm: the contract and the declarations, metrics.csv's columns
    and the machine's numerics fingerprint; the oracle alone runs the agent's sampler on a toy,
    and loads a run's learned denoiser through qsm.policy (the loader of a kept policy) to tell
    which step of the sampler makes the run differ from it."""
    graph = import_graph()
    allowed = ("qsm.contract", "qsm.declare", "qsm.harness.metrics", "qsm.runtime.numerics")
    found = {m: sorted(i for i in graph[m] if i.startswith("qsm.") and not i.startswith(allowed)
                       and identity.module_path(i).name != "__init__.py")
             for m in graph if m.startswith("analysis")}
    assert {m: i for m, i in found.items() if i} == {
        "analysis.audit.oracle": ["qsm.harness.envs", "qsm.harness.seeding",
                                  "qsm.learners.diffusion", "qsm.policy"]}
