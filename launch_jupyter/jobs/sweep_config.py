"""W&B sweep configurations: parsed, checked against a job's parameters, normalised.

The keys are W&B's (``method``, ``metric``, ``parameters``, ``run_cap``, ``early_terminate``)
plus our ``parallel`` (how many trials of the sweep may run at once). W&B's keys that only
matter to W&B (``program``, ``name``, ``description``, ``project``, ``entity``, ``command``)
are accepted and ignored with one note; any other key, or a bad value, is refused before
anything is written, with a message naming the key. ``SweepConfig.to_json`` is what the store
keeps; ``SweepConfig.from_json`` reads it back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from launch_jupyter.errors import ParameterError
from launch_jupyter.jobs.parameters import validate_parameters

METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
#: W&B's top-level keys that say nothing about the search: accepted, ignored, noted once.
IGNORED_KEYS = ("program", "name", "description", "project", "entity", "command")
TOP_KEYS = ("method", "metric", "parameters", "run_cap", "early_terminate", "parallel")
PARAMETER_KEYS = ("values", "value", "distribution", "probabilities", "min", "max", "mu",
                  "sigma", "q", "parameters")
DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "uniform", "q_uniform",
                 "log_uniform", "log_uniform_values", "q_log_uniform", "q_log_uniform_values",
                 "inv_log_uniform", "inv_log_uniform_values", "normal", "q_normal",
                 "log_normal", "q_log_normal")
#: distributions drawn between ``min`` and ``max``
RANGED = ("int_uniform", "uniform", "q_uniform", "log_uniform", "log_uniform_values",
          "q_log_uniform", "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values")
#: distributions drawn around ``mu`` with ``sigma``
NORMAL = ("normal", "q_normal", "log_normal", "q_log_normal")
#: the most trials a grid may have (as for ``--grid``)
MAX_GRID = 10_000


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ParamSpec:
    """One swept parameter (``path`` is ``("name",)`` or ``("group", "name")`` when nested)."""

    path: tuple[str, ...]
    distribution: str
    values: tuple[Any, ...] = ()
    value: Any = None
    low: float | None = None
    high: float | None = None
    q: float | None = None
    mu: float = 0.0
    sigma: float = 1.0
    probabilities: tuple[float, ...] = ()

    @property
    def key(self) -> str:
        """``name`` or ``group.name``: how results, proposals and messages name it."""
        return ".".join(self.path)

    def to_json(self) -> dict:
        data: dict[str, Any] = {"path": list(self.path), "distribution": self.distribution}
        if self.distribution == "constant":
            data["value"] = self.value
        elif self.distribution == "categorical":
            data["values"] = list(self.values)
            if self.probabilities:
                data["probabilities"] = list(self.probabilities)
        elif self.distribution in RANGED:
            data.update(min=self.low, max=self.high)
        else:
            data.update(mu=self.mu, sigma=self.sigma)
        if self.q is not None:
            data["q"] = self.q
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParamSpec:
        return cls(path=tuple(data["path"]), distribution=data["distribution"],
                   values=tuple(data.get("values", ())), value=data.get("value"),
                   low=data.get("min"), high=data.get("max"), q=data.get("q"),
                   mu=data.get("mu", 0.0), sigma=data.get("sigma", 1.0),
                   probabilities=tuple(data.get("probabilities", ())))

    def quantize(self, x: float) -> float | int:
        """``round(x / q) * q`` (an int when ``q`` and the bounds are ints)."""
        q = self.q if self.q is not None else 1
        value = round(x / q) * q
        ints = _is_int(q) and all(b is None or float(b).is_integer()
                                  for b in (self.low, self.high))
        return int(round(value)) if ints else float(value)

    def extremes(self) -> list[Any]:
        """Values the job may be given at the edges of this distribution (for the schema
        check): every value, the constant, or the range's two ends; a normal's mean."""
        d = self.distribution
        if d == "constant":
            return [self.value]
        if d == "categorical":
            return list(self.values)
        if d in NORMAL:
            centre = math.exp(self.mu) if d.startswith(("log", "q_log")) else self.mu
            return [self.quantize(centre) if d.startswith("q_") else float(centre)]
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        if d == "int_uniform":
            return [int(self.low), int(self.high)]  # type: ignore[arg-type]
        if d in ("log_uniform", "q_log_uniform", "inv_log_uniform"):
            low, high = math.exp(low), math.exp(high)
        ends = [low, high]
        return [self.quantize(v) for v in ends] if d.startswith("q_") else ends


@dataclass(frozen=True)
class Hyperband:
    """``early_terminate: {type: hyperband, ...}``: the iteration counts ("brackets") at which
    a run's metric is compared with the other runs' values at the same count."""

    eta: float = 3.0
    min_iter: int | None = None
    max_iter: int | None = None
    s: int | None = None
    strict: bool = False

    def brackets(self, up_to: int) -> list[int]:
        """The brackets (ascending) not beyond ``up_to`` iterations."""
        if self.min_iter is not None:
            found, rung = [], float(self.min_iter)
            while rung <= up_to:
                found.append(int(rung))
                rung *= self.eta
            return sorted(set(found))
        assert self.max_iter is not None and self.s is not None
        rungs = {int(self.max_iter / self.eta ** k) for k in range(1, self.s + 1)}
        return sorted(r for r in rungs if 1 <= r <= up_to)

    def to_json(self) -> dict:
        data: dict[str, Any] = {"type": "hyperband", "eta": self.eta, "strict": self.strict}
        for key in ("min_iter", "max_iter", "s"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class SweepConfig:
    """A checked sweep configuration (see the module docstring)."""

    method: str
    parameters: tuple[ParamSpec, ...] = ()
    metric: str | None = None
    goal: str = "minimize"
    target: float | None = None
    run_cap: int | None = None
    parallel: int | None = None
    early_terminate: Hyperband | None = None
    #: explicit points (``--grid`` / ``--random``): trial N runs ``points[N]``
    points: tuple[dict, ...] | None = None
    #: W&B keys that were accepted and ignored
    ignored: tuple[str, ...] = field(default=(), compare=False)

    @property
    def swept(self) -> list[str]:
        """Names (``group.name`` when nested) of the parameters that are not constant."""
        if self.points is not None:
            return sorted({k for p in self.points for k in p
                           if len({repr(q.get(k)) for q in self.points}) > 1})
        return [p.key for p in self.parameters if p.distribution != "constant"]

    def grid_size(self) -> int | None:
        """How many points the grid has (None for random and bayes)."""
        if self.points is not None:
            return len(self.points)
        if self.method != "grid":
            return None
        return math.prod(len(p.values) if p.distribution == "categorical" else 1
                         for p in self.parameters)

    def trial_cap(self) -> int | None:
        """How many trials the sweep proposes at most (None: until stopped)."""
        size = self.grid_size()
        if size is None:
            return self.run_cap
        return size if self.run_cap is None else min(size, self.run_cap)

    def concurrency(self) -> int:
        """``parallel``, else: all of a grid or of a capped random sweep at once; bayes and an
        uncapped random sweep one at a time (bayes learns from each finished trial)."""
        if self.parallel is not None:
            return self.parallel
        cap = self.trial_cap()
        if self.method == "bayes" or cap is None:
            return 1
        return max(1, cap)

    def note(self) -> str | None:
        """The one note about W&B keys that were ignored, if any."""
        if not self.ignored:
            return None
        return (f"note: ignored W&B key(s) {', '.join(self.ignored)}: launch-jupyter runs the "
                "job itself, with the swept values as its parameters")

    def to_json(self) -> dict:
        data: dict[str, Any] = {"method": self.method,
                                "parameters": [p.to_json() for p in self.parameters],
                                "run_cap": self.run_cap, "parallel": self.parallel}
        if self.metric is not None:
            data["metric"] = {"name": self.metric, "goal": self.goal}
            if self.target is not None:
                data["metric"]["target"] = self.target
        if self.early_terminate is not None:
            data["early_terminate"] = self.early_terminate.to_json()
        if self.points is not None:
            data["points"] = list(self.points)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepConfig:
        metric = data.get("metric") or {}
        et = data.get("early_terminate")
        return cls(
            method=data["method"],
            parameters=tuple(ParamSpec.from_json(p) for p in data.get("parameters", ())),
            metric=metric.get("name"), goal=metric.get("goal", "minimize"),
            target=metric.get("target"), run_cap=data.get("run_cap"),
            parallel=data.get("parallel"),
            early_terminate=None if et is None else Hyperband(
                eta=et.get("eta", 3.0), min_iter=et.get("min_iter"),
                max_iter=et.get("max_iter"), s=et.get("s"), strict=et.get("strict", False)),
            points=None if data.get("points") is None else tuple(data["points"]),
        )


# -- parsing ----------------------------------------------------------------------------------

def _positive_int(value: Any, key: str) -> int:
    if not _is_int(value) or value < 1:
        raise ParameterError(f"sweep config: {key} must be a positive integer, got {value!r}")
    return value


def _number(value: Any, key: str) -> float:
    if not _is_number(value):
        raise ParameterError(f"sweep config: {key} must be a number, got {value!r}")
    return value


def _parse_metric(raw: Any) -> tuple[str, str, float | None]:
    if not isinstance(raw, Mapping):
        raise ParameterError("sweep config: metric must be a mapping like "
                             "{name: val_loss, goal: minimize}")
    unknown = sorted(set(raw) - {"name", "goal", "target"})
    if unknown:
        raise ParameterError(f"sweep config: unknown key metric.{unknown[0]}; metric takes "
                             "name, goal and target")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ParameterError("sweep config: metric.name must be the name of a logged metric")
    goal = raw.get("goal", "minimize")
    if goal not in GOALS:
        raise ParameterError(f"sweep config: metric.goal must be minimize or maximize, "
                             f"got {goal!r}")
    target = raw.get("target")
    if target is not None:
        target = _number(target, "metric.target")
    return name, goal, target


def _infer_distribution(spec: Mapping[str, Any], where: str) -> str:
    if "distribution" in spec:
        dist = spec["distribution"]
        if dist not in DISTRIBUTIONS:
            raise ParameterError(f"sweep config: {where}.distribution {dist!r} is not one of "
                                 f"{', '.join(DISTRIBUTIONS)}")
        return dist
    if "values" in spec:
        return "categorical"
    if "value" in spec:
        return "constant"
    if "min" in spec and "max" in spec:
        both_int = _is_int(spec["min"]) and _is_int(spec["max"])
        return "int_uniform" if both_int else "uniform"
    if "mu" in spec or "sigma" in spec:
        return "normal"
    raise ParameterError(f"sweep config: {where} needs values, value, or min and max (with "
                         "an optional distribution)")


def _parse_parameter(path: tuple[str, ...], raw: Any) -> list[ParamSpec]:
    where = "parameters." + ".".join(path)
    if not isinstance(raw, Mapping):
        raise ParameterError(f"sweep config: {where} must be a mapping such as "
                             "{values: [1, 2]} or {min: 0.001, max: 0.1}")
    unknown = sorted(set(raw) - set(PARAMETER_KEYS))
    if unknown:
        raise ParameterError(f"sweep config: unknown key {where}.{unknown[0]}; a parameter "
                             f"takes {', '.join(PARAMETER_KEYS)}")
    if "parameters" in raw:
        nested = raw["parameters"]
        if not isinstance(nested, Mapping) or not nested or set(raw) != {"parameters"}:
            raise ParameterError(f"sweep config: {where}.parameters must be a non-empty "
                                 "mapping of nested parameters, and alone")
        found: list[ParamSpec] = []
        for name, sub in nested.items():
            found += _parse_parameter((*path, str(name)), sub)
        return found
    dist = _infer_distribution(raw, where)
    # A key of another kind of parameter ({values, min, max}, {value, values}) would be
    # silently ignored: refuse it, naming it.
    own = ({"value"} if dist == "constant" else {"values", "probabilities"}
           if dist == "categorical" else {"min", "max", "q"} if dist in RANGED
           else {"mu", "sigma", "q"})
    stray = sorted(set(raw) - own - {"distribution"})
    if stray:
        raise ParameterError(f"sweep config: {where}.{stray[0]} does not go with "
                             f"{'distribution ' + dist if 'distribution' in raw else dist}; a "
                             f"{dist} parameter takes {', '.join(sorted(own))}")
    q = raw.get("q")
    if q is not None and (_number(q, f"{where}.q") <= 0):
        raise ParameterError(f"sweep config: {where}.q must be positive, got {q!r}")
    if dist == "constant":
        if "value" not in raw:
            raise ParameterError(f"sweep config: {where} (constant) needs value")
        return [ParamSpec(path, dist, value=raw["value"])]
    if dist == "categorical":
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise ParameterError(f"sweep config: {where}.values must be a non-empty list")
        probs = raw.get("probabilities")
        if probs is not None and (not isinstance(probs, list) or len(probs) != len(values)
                or not all(_is_number(p) and p >= 0 for p in probs)
                or abs(sum(probs) - 1) > 1e-6):
            raise ParameterError(f"sweep config: {where}.probabilities must be one "
                                 "non-negative number per value, adding up to 1")
        return [ParamSpec(path, dist, values=tuple(values), probabilities=tuple(probs or ()))]
    if dist in RANGED:
        if "min" not in raw or "max" not in raw:
            raise ParameterError(f"sweep config: {where} ({dist}) needs min and max")
        low, high = _number(raw["min"], f"{where}.min"), _number(raw["max"], f"{where}.max")
        if low > high:
            raise ParameterError(f"sweep config: {where}.min ({low}) is above its max ({high})")
        if dist == "int_uniform" and not (_is_int(low) and _is_int(high)):
            raise ParameterError(f"sweep config: {where} (int_uniform) needs integer min and "
                                 f"max, got {low!r} and {high!r}")
        if dist in ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values") \
                and low <= 0:
            raise ParameterError(f"sweep config: {where} ({dist}) needs min > 0, got {low!r}")
        return [ParamSpec(path, dist, low=low, high=high, q=q)]
    mu = _number(raw.get("mu", 0.0), f"{where}.mu")
    sigma = _number(raw.get("sigma", 1.0), f"{where}.sigma")
    if sigma <= 0:
        raise ParameterError(f"sweep config: {where}.sigma must be positive, got {sigma!r}")
    return [ParamSpec(path, dist, mu=mu, sigma=sigma, q=q)]


def _parse_early_terminate(raw: Any) -> Hyperband:
    if not isinstance(raw, Mapping):
        raise ParameterError("sweep config: early_terminate must be a mapping like "
                             "{type: hyperband, min_iter: 3}")
    unknown = sorted(set(raw) - {"type", "min_iter", "max_iter", "s", "eta", "strict"})
    if unknown:
        raise ParameterError(f"sweep config: unknown key early_terminate.{unknown[0]}; it "
                             "takes type, min_iter, max_iter, s, eta and strict")
    if raw.get("type") != "hyperband":
        raise ParameterError(f"sweep config: early_terminate.type must be hyperband, got "
                             f"{raw.get('type')!r}")
    eta = _number(raw.get("eta", 3), "early_terminate.eta")
    if eta <= 1:
        raise ParameterError(f"sweep config: early_terminate.eta must be above 1, got {eta!r}")
    strict = raw.get("strict", False)
    if not isinstance(strict, bool):
        raise ParameterError("sweep config: early_terminate.strict must be true or false")
    if raw.get("min_iter") is not None:
        return Hyperband(eta=eta, min_iter=_positive_int(raw["min_iter"],
                                                         "early_terminate.min_iter"),
                         strict=strict)
    if raw.get("max_iter") is None or raw.get("s") is None:
        raise ParameterError("sweep config: early_terminate needs min_iter, or max_iter and s "
                             "(e.g. {type: hyperband, min_iter: 3})")
    return Hyperband(eta=eta, max_iter=_positive_int(raw["max_iter"], "early_terminate.max_iter"),
                     s=_positive_int(raw["s"], "early_terminate.s"), strict=strict)


def parse_sweep_config(raw: Any) -> SweepConfig:
    """Check a W&B sweep configuration (a mapping) and normalise it; nothing is written."""
    if not isinstance(raw, Mapping):
        raise ParameterError(f"a sweep config must be a mapping of W&B sweep keys, got "
                             f"{type(raw).__name__}")
    unknown = sorted(set(raw) - set(TOP_KEYS) - set(IGNORED_KEYS))
    if unknown:
        raise ParameterError(f"sweep config: unknown key {unknown[0]!r}; the keys are "
                             f"{', '.join(TOP_KEYS)} (and W&B's {', '.join(IGNORED_KEYS)}, "
                             "which are ignored)")
    method = raw.get("method")
    if method not in METHODS:
        raise ParameterError(f"sweep config: method must be grid, random or bayes, got "
                             f"{method!r}")
    params = raw.get("parameters")
    if not isinstance(params, Mapping) or not params:
        raise ParameterError("sweep config: parameters must be a non-empty mapping of "
                             "parameter name -> {values: [...]} or {min: .., max: ..}")
    specs: list[ParamSpec] = []
    for name, spec in params.items():
        specs += _parse_parameter((str(name),), spec)
    metric, goal, target = (None, "minimize", None)
    if raw.get("metric") is not None:
        metric, goal, target = _parse_metric(raw["metric"])
    run_cap = None if raw.get("run_cap") is None else _positive_int(raw["run_cap"], "run_cap")
    parallel = (None if raw.get("parallel") is None
                else _positive_int(raw["parallel"], "parallel"))
    early = (None if raw.get("early_terminate") is None
             else _parse_early_terminate(raw["early_terminate"]))
    if method == "bayes" and metric is None:
        raise ParameterError("sweep config: method bayes needs metric: {name: ..., goal: "
                             "minimize|maximize}")
    if early is not None and metric is None:
        raise ParameterError("sweep config: early_terminate needs metric.name (the metric "
                             "whose logged values are compared)")
    if method == "grid":
        for spec in specs:
            if spec.distribution not in ("categorical", "constant"):
                raise ParameterError(
                    f"sweep config: parameters.{spec.key} ({spec.distribution}) cannot be "
                    "gridded: a grid needs values or value (W&B's grid never ends on a range)")
        size = math.prod(len(s.values) for s in specs if s.distribution == "categorical")
        if size > MAX_GRID:
            raise ParameterError(f"sweep config: the grid has {size} points, more than "
                                 f"{MAX_GRID}; use fewer values or method random")
    ignored = tuple(k for k in IGNORED_KEYS if k in raw)
    return SweepConfig(method=method, parameters=tuple(specs), metric=metric, goal=goal,
                       target=target, run_cap=run_cap, parallel=parallel,
                       early_terminate=early, ignored=ignored)


def points_config(method: str, points: Sequence[dict], *, parallel: int | None = None
                  ) -> SweepConfig:
    """The sweep of ``--grid`` / ``--random``: trial N runs ``points[N]``."""
    if parallel is not None:
        parallel = _positive_int(parallel, "parallel")
    return SweepConfig(method=method, points=tuple(points), run_cap=len(points),
                       parallel=parallel)


# -- the job's parameters ---------------------------------------------------------------------

def nest(flat: Mapping[str, Any], specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Job parameters from ``key -> value`` (nested specs become dicts)."""
    out: dict[str, Any] = {}
    paths = {s.key: s.path for s in specs}
    for key, value in flat.items():
        path = paths.get(key, (key,))
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def check_against_schema(config: SweepConfig, schema: dict,
                         fixed: Mapping[str, Any] | None = None) -> None:
    """Every swept parameter exists in the job and every value it may take fits its schema."""
    props = schema.get("properties") or {}
    fixed = dict(fixed or {})
    for spec in config.parameters:
        top = spec.path[0]
        if top not in props:
            known = ", ".join(props) or "none"
            raise ParameterError(f"sweep config: parameters.{spec.key}: the job has no "
                                 f"parameter {top!r}; its parameters: {known}")
        if top in fixed:
            raise ParameterError(f"parameter {top!r} is both fixed (-p) and swept; drop one")
        for value in spec.extremes():
            point = {top: nest({spec.key: value}, [spec])[top]} if len(spec.path) > 1 \
                else {top: value}
            if len(spec.path) > 1:
                default = props[top].get("default")
                if isinstance(default, Mapping):
                    point[top] = {**default, **point[top]}
            try:
                validate_parameters(point, schema)
            except ParameterError as err:
                raise ParameterError(f"sweep config: parameters.{spec.key} may give "
                                     f"{value!r}, which the job refuses: {err}") from None


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def load_sweep_file(path: str) -> dict:
    """Read a sweep config from YAML or JSON; ``1e-5`` is a number (YAML 1.2), as in W&B."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except OSError as err:
        raise ParameterError(f"cannot read the sweep config {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ParameterError(f"the sweep config {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ParameterError(f"the sweep config {path} must hold a mapping of W&B sweep keys")
    return data


__all__ = ["DISTRIBUTIONS", "Hyperband", "IGNORED_KEYS", "METHODS", "ParamSpec",
           "SweepConfig", "check_against_schema", "load_sweep_file", "nest",
           "parse_sweep_config", "points_config"]
