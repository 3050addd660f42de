"""The hyper-parameter search space: named dimensions, each a distribution over one setting.

A dimension in `conf/base/parameters_hpo.yml` reads

    hidden: {path: model.hidden, type: categorical, choices: [16, 32, 64]}
    lr_scale: {path: "phases.*.lr", type: float, low: 0.3, high: 3.0, log: true, mode: scale}

`path` is a dotted path into the `training` parameter block; `*` matches every key at that level
(`phases.*.lr` is the learning rate of every phase). `mode: scale` multiplies the configured value
(so the phases keep their relative learning rates) instead of replacing it. The path `graph.k` is
the neighbours per node of the correlation graph, searched by sub-sampling the built graph
(`atft_kedro.hpo.graph_k`). Types: `float` (low, high, log), `int` (low, high, step, log),
`categorical` (choices; a list is a valid choice, e.g. a set of FAN windows).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import optuna

GRAPH_K = "graph.k"


@dataclass(frozen=True)
class Dimension:
    """One searched setting."""

    name: str
    path: str
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    step: int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    mode: Literal["set", "scale"] = "set"

    def __post_init__(self) -> None:
        where = f"hpo.search_space.{self.name}"
        if self.type not in ("float", "int", "categorical"):
            raise ValueError(f"{where}: type must be float, int or categorical, got {self.type!r}")
        if self.type == "categorical" and not self.choices:
            raise ValueError(f"{where}: a categorical dimension needs `choices`")
        if self.type != "categorical" and (self.low is None or self.high is None):
            raise ValueError(f"{where}: a {self.type} dimension needs `low` and `high`")
        if self.mode not in ("set", "scale"):
            raise ValueError(f"{where}: mode must be set or scale, got {self.mode!r}")

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a float or int dimension (both set: checked in ``__post_init__``)."""
        if self.low is None or self.high is None:
            raise ValueError(f"hpo.search_space.{self.name}: a {self.type} dimension has no bounds")
        return self.low, self.high

    @property
    def labels(self) -> list[Any]:
        """Optuna-storable categorical choices: lists and dicts become their JSON text."""
        return [json.dumps(c) if isinstance(c, list | tuple | dict) else c for c in self.choices]

    def decode(self, stored: Any) -> Any:
        """The setting's value from what Optuna stores (the JSON label of a list choice)."""
        if self.type != "categorical":
            return stored
        return {label: choice for label, choice in zip(self.labels, self.choices, strict=True)}[
            stored
        ]

    def encode(self, value: Any) -> Any:
        """What Optuna stores for a setting's value (inverse of `decode`)."""
        if self.type == "categorical" and isinstance(value, list | tuple | dict):
            return json.dumps(list(value) if isinstance(value, tuple) else value)
        return value


def parse_space(space: Mapping[str, Mapping[str, Any]]) -> list[Dimension]:
    """Dimensions from the `hpo.search_space` block (name → spec), in the block's order."""
    dims = []
    for name, spec in space.items():
        spec = dict(spec)
        if "path" not in spec:
            raise ValueError(f"hpo.search_space.{name}: missing `path` (e.g. model.hidden)")
        spec["choices"] = tuple(spec.get("choices") or ())
        dims.append(Dimension(name=name, **spec))
    return dims


def suggest(trial: optuna.Trial, dims: list[Dimension]) -> dict[str, Any]:
    """Sample one value per dimension from `trial`; returns decoded values (lists stay lists)."""
    values: dict[str, Any] = {}
    for d in dims:
        if d.type == "float":
            low, high = d.bounds
            values[d.name] = trial.suggest_float(d.name, low, high, log=d.log)
        elif d.type == "int":
            low, high = d.bounds
            values[d.name] = trial.suggest_int(
                d.name, int(low), int(high), step=int(d.step or 1), log=d.log
            )
        else:
            values[d.name] = d.decode(trial.suggest_categorical(d.name, d.labels))
    return values


def _matches(tree: Any, parts: list[str], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Concrete key paths in `tree` matched by `parts` (`*` = every key at that level)."""
    if not parts:
        return [prefix]
    head, rest = parts[0], parts[1:]
    if not isinstance(tree, Mapping):
        return [prefix + tuple(parts)]
    keys = [str(k) for k in tree] if head == "*" else [head]
    found = []
    for key in keys:
        child = tree.get(key, tree.get(int(key)) if key.isdigit() else None)
        found += _matches(child if child is not None else {}, rest, prefix + (key,))
    return found


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(tree, Mapping):
            return None
        tree = tree.get(key, tree.get(int(key)) if key.isdigit() else None)
    return tree


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _resolved(training: Mapping[str, Any], d: Dimension, value: Any) -> dict[tuple[str, ...], Any]:
    """{concrete path: new value} of one dimension applied to `training`."""
    out: dict[tuple[str, ...], Any] = {}
    for path in _matches(training, d.path.split(".")):
        if d.mode == "scale":
            base = _get(training, path)
            if base is None:
                raise KeyError(f"hpo.search_space.{d.name}: training.{'.'.join(path)} is not set")
            out[path] = float(base) * float(value)
        else:
            out[path] = list(value) if isinstance(value, tuple) else value
    return out


def training_dims(dims: list[Dimension]) -> list[Dimension]:
    """The dimensions that live in the `training` block (all but `graph.k`)."""
    return [d for d in dims if d.path != GRAPH_K]


def apply_values(
    training: Mapping[str, Any], dims: list[Dimension], values: Mapping[str, Any]
) -> dict[str, Any]:
    """A deep copy of `training` with every searched setting replaced (or scaled)."""
    out = copy.deepcopy(dict(training))
    phases = out.get("phases")
    if isinstance(phases, dict):  # YAML may give int phase keys; paths use strings
        out["phases"] = {str(k): v for k, v in phases.items()}
    for d in training_dims(dims):
        for path, value in _resolved(out, d, values[d.name]).items():
            _set(out, path, value)
    return out


def best_fragment(
    training: Mapping[str, Any], dims: list[Dimension], values: Mapping[str, Any]
) -> dict[str, Any]:
    """Only the changed settings, nested as in conf/base: `{"training": {...}, "graph": {...}}`.

    Paste it into parameters_training.yml / parameters_graph.yml, or save it as
    `conf/<env>/parameters.yml` and run with `--env <env>` (the loader merges nested keys).
    """
    base = apply_values(training, [], {})
    fragment: dict[str, Any] = {"training": {}}
    for d in training_dims(dims):
        for path, value in _resolved(base, d, values[d.name]).items():
            _set(fragment["training"], path, value)
    if any(d.path == GRAPH_K for d in dims):
        fragment["graph"] = {"k": int(next(values[d.name] for d in dims if d.path == GRAPH_K))}
    return fragment


def default_values(
    training: Mapping[str, Any], graph: Mapping[str, Any], dims: list[Dimension]
) -> dict[str, Any] | None:
    """The configured (untuned) value of every dimension, or None if one lies outside its range.

    `scale` dimensions default to 1; `graph.k` to `graph.k`; others to the first concrete match.
    """
    base = apply_values(training, [], {})
    values: dict[str, Any] = {}
    for d in dims:
        if d.mode == "scale":
            value = 1.0
        elif d.path == GRAPH_K:
            value = int(graph.get("k", 20))
        else:
            value = _get(base, _matches(base, d.path.split("."))[0])
        if d.type == "categorical":
            if d.encode(value) not in d.labels:
                return None
        elif value is None or not d.bounds[0] <= value <= d.bounds[1]:
            return None
        values[d.name] = value
    return values
