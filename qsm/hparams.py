"""Hyperparameters: each declared once, with its default and its valid range.

An agent's `Config` dataclass declares every field with `hp()`:

    @dataclass
    class Config:
        T: int = hp(5, ge=1, doc="diffusion steps")
        gamma: float = hp(0.99, gt=0, lt=1, doc="discount")
        hidden: tuple = hp((256, 256), sizes=True, doc="hidden layer widths")

Constraints: `gt`, `ge`, `lt`, `le` (numbers), `even` (integers), `sizes` (a non-empty list of
positive integers), `choices` (strings). A class attribute `RELATIONS = (("beta_min", "<=",
"beta_max"),)` states orderings between fields. The type of a field is the type of its default.

The one declaration is read three ways, all through `Spec` and `check()` below:
  * the trainer, from the dataclass (`specs_of(Config)`), before it builds anything;
  * the pipeline, at DAG time, from the agent's source text without importing it or torch
    (`qsm.catalog`), so a bad `hparams:` entry fails before the first job;
  * the option tables of docs/hyperparameters.md (`python -m qsm.hparams --write-docs`).
This module imports nothing heavy on purpose.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

CONSTRAINTS = ("gt", "ge", "lt", "le", "even", "sizes", "choices")
RELATION_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


class HparamError(ValueError):
    """A hyperparameter override that is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class Spec:
    name: str
    default: object
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    even: bool = False
    sizes: bool = False
    choices: tuple | None = None
    doc: str = ""

    @property
    def kind(self) -> str:
        d = self.default
        if isinstance(d, bool):
            return "bool"
        if isinstance(d, int):
            return "int"
        if isinstance(d, float):
            return "float"
        if isinstance(d, (tuple, list)):
            return "sizes"
        if isinstance(d, str):
            return "str"
        raise TypeError(f"hyperparameter {self.name}: unsupported default {d!r}")

    def describe(self) -> str:
        """The valid range in words, e.g. 'integer >= 1', 'number in (0, 1)'."""
        kind = self.kind
        if kind == "bool":
            return "true or false"
        if kind == "str":
            return "one of " + ", ".join(self.choices) if self.choices else "a string"
        if kind == "sizes":
            return "non-empty list of positive integers" if self.sizes else "list of integers"
        noun = ("even integer" if self.even else "integer") if kind == "int" else "number"
        low = (f"({_num(self.gt)}" if self.gt is not None else
               f"[{_num(self.ge)}" if self.ge is not None else None)
        high = (f"{_num(self.lt)})" if self.lt is not None else
                f"{_num(self.le)}]" if self.le is not None else None)
        if low and high:
            return f"{noun} in {low}, {high}"
        if low:
            return f"{noun} {'>' if self.gt is not None else '>='} {low[1:]}"
        if high:
            return f"{noun} {'<' if self.lt is not None else '<='} {high[:-1]}"
        return f"finite {noun}" if kind == "float" else noun

    def coerce(self, value):
        """The value in the field's type; HparamError (naming only the problem) if it is not
        of that type or outside the range."""
        kind = self.kind
        if kind == "bool":
            if not isinstance(value, bool):
                raise HparamError(self._bad(value))
            return value
        if kind == "str":
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise HparamError(self._bad(value))
            return value
        if kind == "sizes":
            if (not isinstance(value, (list, tuple))
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                    or (self.sizes and (not value or min(value) <= 0))):
                raise HparamError(self._bad(value))
            return tuple(value)
        if kind == "float" and isinstance(value, str):
            value = _yaml_float(value)  # YAML 1.1 reads 3e-4 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise HparamError(self._bad(value))
        if kind == "int":
            if not isinstance(value, int):
                raise HparamError(self._bad(value))
        else:
            value = float(value)
            if not math.isfinite(value):
                raise HparamError(self._bad(value))
        ok = ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
              and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le)
              and (not self.even or value % 2 == 0))
        if not ok:
            raise HparamError(self._bad(value))
        return value

    def _bad(self, value) -> str:
        text = self.describe()
        if not text.startswith(("true", "one of")):
            text = ("an " if text[0] in "aeiou" else "a ") + text
        return f"{self.name}={_show(value)} is invalid: {self.name} must be {text}"


def _yaml_float(text: str):
    """The number a YAML 1.1 reader left as text ('3e-4', '-1E5', 'nan'), else the text."""
    try:
        return float(text)
    except ValueError:
        return text


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _show(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def hp(default, *, gt=None, ge=None, lt=None, le=None, even=False, sizes=False, choices=None,
       doc=""):
    """A dataclass field with its default and its valid range (see the module docstring)."""
    spec = dict(gt=gt, ge=ge, lt=lt, le=le, even=even, sizes=sizes,
                choices=tuple(choices) if choices else None, doc=doc)
    return field(default=default, metadata={"hp": spec})


def specs_of(config_cls) -> dict[str, Spec]:
    """{name: Spec} of a Config dataclass, in declaration order."""
    out = {}
    for f in dataclasses.fields(config_cls):
        out[f.name] = Spec(f.name, f.default, **f.metadata.get("hp", {}))
    return out


def relations_of(config_cls) -> tuple:
    return tuple(tuple(r) for r in getattr(config_cls, "RELATIONS", ()))


def resolve(algo: str, specs: dict[str, Spec], relations, task_overrides: dict, overrides: dict,
            task: str = "") -> dict:
    """Defaults, then the agent's per-task defaults, then the user's overrides, every value
    type- and range-checked: {name: value}. Raises HparamError with one line naming the agent,
    the key, the value and the valid range (and where the value came from)."""
    values = {name: s.default for name, s in specs.items()}
    for source, table in ((f"{algo}'s defaults for {task}", task_overrides),
                          ("override", overrides)):
        for key, value in table.items():
            if key not in specs:
                raise HparamError(f"{algo}: unknown hyperparameter {key!r}; valid: "
                                  f"{', '.join(sorted(specs))}")
            try:
                values[key] = specs[key].coerce(value)
            except HparamError as e:
                where = "" if source == "override" else f" (from {source})"
                raise HparamError(f"{algo}: {e}{where}") from None
    for a, op, b in relations:
        if not RELATION_OPS[op](values[a], values[b]):
            raise HparamError(f"{algo}: {a}={_show(values[a])} and {b}={_show(values[b])} are "
                              f"invalid together: {a} must be {op} {b}")
    return values


def markdown_table(algo: str, specs: dict[str, Spec], relations=()) -> str:
    lines = [f"**{algo}**", "", "| key | default | valid | meaning |", "|---|---|---|---|"]
    for s in specs.values():
        lines.append(f"| `{s.name}` | `{_show(s.default)}` | {s.describe()} | {s.doc} |")
    for a, op, b in relations:
        lines.append(f"| | | `{a} {op} {b}` | |")
    return "\n".join(lines)


DOCS_PAGE = "docs/hyperparameters.md"
DOCS_COMMAND = "python -m qsm.hparams --write-docs"

# The worked `hparams:` example of the page; hyperparameters_page() checks it against the
# declarations, so the page cannot show a config the pipeline would refuse.
CONFIG_EXAMPLE = """\
hparams:
  qsm:
    all: {actor_hidden: [256, 256], critic_hidden: [256, 256]}   # every task
    quadruped_walk: {M_q: 120}                                   # this task only
  sac:
    all: {hidden: [64, 64]}
"""

_PAGE_INTRO = """\
# Hyperparameters

<!-- Generated by `{command}` from the agents' declarations:
     edit those and rerun it, not this file. -->

Each agent declares every hyperparameter once, in its `Config` dataclass, with its default (the
paper's setting) and its valid range: `hp(default, range..., doc=...)` from `qsm/hparams.py`,
e.g. `T: int = hp(5, ge=1, doc="diffusion steps")`. Ranges are `gt`, `ge`, `lt`, `le` (numbers),
`even` (integers), `sizes` (a non-empty list of positive integers) and `choices` (strings); a
`RELATIONS` tuple in the `Config` states orderings between fields (the rows of a table that have
only a "valid" entry). The type of a field is the type of its default.

The same declaration is checked twice before anything runs: by the trainer (`python -m
qsm.train`) for every resolved value before it builds an agent, and by the pipeline when it
builds the DAG, from the agents' source text without importing torch. A value that is unknown,
of the wrong type or out of range stops with one line naming the agent, the key, the value and
the valid range, e.g.

    error: {error}

and nothing is written. An agent added to the registry gets the same checks, and a table here,
by declaring its fields with `hp()`.

## Overriding a value

Resolved values are, in order: the defaults below, the agent's per-task defaults (listed under
its table where it has any), then your overrides.

- **One training run**: `--set KEY=VALUE`, repeatable; values are read as YAML (numbers, `true`
  or `false`, strings, lists):

      python -m qsm.train --algo qsm --task cheetah_run --seeds 0 1 --steps 100000 \\
          --out results/manual --set M_q=120 --set actor_hidden=[256,256]

- **The pipeline**: the config's `hparams:` table, `{{algo: {{scope: {{key: value}}}}}}`, where a
  scope is `all` or one task of the config; a task's entry overrides `all` for that task:

{example}
  With this, QSM's networks are 256 wide on every task and `M_q` is 120 on quadruped_walk only;
  a bad entry fails with its key path (`config key hparams.qsm.all.T: ...`). Overridden values
  are part of a run's identity, so changed values train new runs beside the old ones.

## Tables

One table per registered agent: QSM, then the agents of `baselines/` by module name.
`python -m qsm.hparams ALGO` prints one.
"""


def hyperparameters_page(catalog=None) -> str:
    """The whole of docs/hyperparameters.md: the introduction, then one table per registered
    agent in the catalog's order, from the declarations as `qsm.catalog` reads them."""
    import yaml
    if catalog is None:
        from .catalog import agent_catalog
        catalog = agent_catalog()
    for algo, scopes in yaml.safe_load(CONFIG_EXAMPLE)["hparams"].items():
        for scope, table in scopes.items():
            catalog[algo].resolve(scope, table)  # raises if the example went stale
    try:
        catalog["qsm"].resolve("", {"T": 0})
    except ValueError as e:  # not HparamError: under `python -m` this module is __main__
        error = str(e)
    else:
        raise AssertionError("qsm accepted T=0: the page's error example is wrong")
    page = _PAGE_INTRO.format(
        command=DOCS_COMMAND, error=error,
        example="\n".join(("      " + line).rstrip() for line in CONFIG_EXAMPLE.splitlines())
        + "\n")
    parts = [page]
    for name, entry in catalog.items():
        parts.append(markdown_table(name, entry.specs, entry.relations).replace(
            f"**{name}**", f"### {name}", 1))
        for task, table in sorted(entry.task_overrides.items()):
            values = ", ".join(f"`{k}={_show(v)}`" for k, v in table.items())
            parts[-1] += f"\n\nPer-task default on {task}: {values}"
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def main(argv=None) -> int:
    """python -m qsm.hparams [ALGO ...]: print the hyperparameter tables of the agents'
    declarations, read from their source without importing torch. --markdown prints the whole
    of docs/hyperparameters.md; --write-docs writes it."""
    import argparse
    from .catalog import ROOT, agent_catalog
    ap = argparse.ArgumentParser(prog="python -m qsm.hparams", description=main.__doc__)
    ap.add_argument("algos", nargs="*")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--markdown", action="store_true",
                      help=f"print the whole of {DOCS_PAGE}")
    mode.add_argument("--write-docs", action="store_true", help=f"write {DOCS_PAGE}")
    args = ap.parse_args(argv)
    catalog = agent_catalog()
    if args.markdown or args.write_docs:
        if args.algos:
            ap.error("the page has every registered agent; give no ALGO with --markdown or "
                     "--write-docs")
        page = hyperparameters_page(catalog)
        if args.write_docs:
            (ROOT / DOCS_PAGE).write_text(page)
            print(f"wrote {DOCS_PAGE}")
        else:
            print(page, end="")
        return 0
    unknown = [a for a in args.algos if a not in catalog]
    if unknown:
        ap.error(f"unknown algorithm {unknown[0]!r}; registered: {', '.join(sorted(catalog))}")
    for name in args.algos or sorted(catalog):
        entry = catalog[name]
        print(markdown_table(name, entry.specs, entry.relations))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
