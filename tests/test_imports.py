"""The suite's imports: no module imports one that imports it back, the agent catalog that the
pipeline reads at DAG time loads no torch, and the plotting kit loads no statistics."""
import subprocess
import sys

from conftest import ROOT, python_env
from qsm import identity

PACKAGES = ("qsm", "baselines", "analysis")
SCRIPTS = "workflow/scripts"


def import_graph() -> dict[str, frozenset]:
    """{module: the suite modules it imports anywhere, function-local imports included}, for
    every module of the packages and every script of workflow/scripts (read statically, as the
    code versions are: qsm.identity)."""
    graph = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            graph[module] = identity.imports_of(module)
    for path in sorted((ROOT / SCRIPTS).glob("*.py")):
        graph[f"{SCRIPTS}/{path.name}"] = frozenset(identity._script_imports(path))
    return graph


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
    assert {"qsm.catalog", "qsm.hparams", "baselines.dql", "analysis.manifest",
            f"{SCRIPTS}/official_baseline.py"} <= set(graph)
    assert cycles(graph) == []


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_catalog_loads_no_torch():
    """What the pipeline does at DAG time: every declaration imported, every agent resolved."""
    code = ("import sys\n"
            "from qsm.catalog import agent_catalog\n"
            "for name, entry in agent_catalog().items():\n"
            "    entry.resolve('cheetah_run', {})\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'dm_control', 'mujoco', 'numpy'))\n"
            "print(len(agent_catalog()), heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=python_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    count, heavy = proc.stdout.split(" ", 1)
    assert int(count) >= 4 and heavy.strip() == "[]"


def test_the_plotting_kit_loads_no_statistics():
    """analysis.plotting draws tables: importing it loads neither rliable, the statistics nor the
    benchmark figures."""
    code = ("import sys\n"
            "import analysis.plotting\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rliable' or m in "
            "('analysis.stats', 'analysis.figures')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=python_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_only_the_benchmark_imports_its_figures():
    """Every other figure takes its kit from analysis.plotting, not from analysis.figures (which
    only the benchmark's command and its tests use)."""
    graph = import_graph()
    for folder in ("benchmarks", "scripts"):
        for path in sorted((ROOT / folder).glob("*.py")):
            graph[f"{folder}/{path.name}"] = frozenset(identity._script_imports(path))
    assert "analysis.plotting" in graph["analysis.figures"]
    assert sorted(m for m, imported in graph.items() if "analysis.figures" in imported) == []
