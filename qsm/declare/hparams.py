"""Hyperparameters: each declared once, with its default and its valid range.

An agent's `Config` dataclass (in its declaration module, `qsm/agent_config.py` or
`baselines/<name>_config.py`: see `qsm.declare.catalog`) declares every field with `hp()`:

    @dataclass
    class SACConfig:
        gamma: float = hp(0.99, gt=0, lt=1, doc="discount")
        hidden: tuple = hp((256, 256), sizes=True, doc="hidden layer widths")

Constraints: `gt`, `ge`, `lt`, `le` (numbers), `even` (integers), `sizes` (a non-empty list of
positive integers), `choices` (strings). `implicit=True` marks a field added after runs were
recorded without it: at its default it is left out of a run's identity (`identity_values`), so
that those runs, trained at that default, keep their identities. A class attribute `RELATIONS = (("beta_min", "<=",
"beta_max"),)` states orderings between fields. The type of a field is the type of its default.
A Config may extend another; its fields are the dataclass's, inherited ones first.

The one declaration is read three ways, all through `Spec` and `resolve()` below:
  * the trainer, from the learner's `Config` (`specs_of(Config)`), before it builds anything;
  * the pipeline, at DAG time, from the same class imported from the torch-free declaration
    (`qsm.declare.catalog`), so a bad `hparams:` entry fails before the first job;
  * the option tables of docs/hyperparameters.md
    (`python -m qsm.declare.hparams_docs --write-docs`).
This module imports nothing heavy on purpose, and nothing of the suite (the catalog imports it).
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
    implicit: bool = False

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
        return f"{self.name}={show_value(value)} is invalid: {self.name} must be {text}"


def _yaml_float(text: str):
    """The number a YAML 1.1 reader left as text ('3e-4', '-1E5', 'nan'), else the text."""
    try:
        return float(text)
    except ValueError:
        return text


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def show_value(value) -> str:
    """A value as a user writes it in --set or YAML: [512,512], 'official', true, 0.0003."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show_value(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def hp(default, *, gt=None, ge=None, lt=None, le=None, even=False, sizes=False, choices=None,
       doc="", implicit=False):
    """A dataclass field with its default and its valid range (see the module docstring)."""
    spec = dict(gt=gt, ge=ge, lt=lt, le=le, even=even, sizes=sizes,
                choices=tuple(choices) if choices else None, doc=doc, implicit=implicit)
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
            raise HparamError(f"{algo}: {a}={show_value(values[a])} and "
                              f"{b}={show_value(values[b])} are invalid together: "
                              f"{a} must be {op} {b}")
    return values


def identity_values(specs: dict[str, Spec], values: dict) -> dict:
    """The resolved values as they enter a run's identity: every field, except an `implicit`
    one at its default (runs recorded before it existed were trained at that default)."""
    return {k: v for k, v in values.items()
            if not (specs[k].implicit and v == specs[k].default)}


def markdown_table(algo: str, specs: dict[str, Spec], relations=()) -> str:
    lines = [f"**{algo}**", "", "| key | default | valid | meaning |", "|---|---|---|---|"]
    for s in specs.values():
        lines.append(f"| `{s.name}` | `{show_value(s.default)}` | {s.describe()} | {s.doc} |")
    for a, op, b in relations:
        lines.append(f"| | | `{a} {op} {b}` | |")
    return "\n".join(lines)
