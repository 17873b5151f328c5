"""Sweeps: the points of a parameter grid, or random points drawn from a job's schema.

A grid is written ``name=v1,v2,v3`` (each value typed by the parameter's schema, like ``-p``) or,
when values hold commas, ``name=[JSON array]``. The grid's points are the cartesian product of
its axes, in the order the axes were given. ``--random N`` draws N points instead: numbers and
integers uniformly between their ``minimum`` and ``maximum`` (exclusive bounds respected),
enums and booleans uniformly among their options. Parameters without such bounds keep their
defaults (or their ``-p`` value).
"""

from __future__ import annotations

import itertools
import json
import math
import random as _random
from collections.abc import Mapping, Sequence
from typing import Any

from launch_jupyter.errors import ParameterError
from launch_jupyter.jobs.parameters import parse_overrides, validate_parameters
from launch_jupyter.jobs.sweep_config import nest

#: more points than this is almost always a typo (``--grid x=1,...`` with a huge list).
MAX_POINTS = 10_000


def _split_values(name: str, text: str) -> list[str] | list[Any]:
    """``1,2,3`` -> strings to parse by type; ``[...]`` -> already-typed JSON values."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            values = json.loads(stripped)
        except ValueError as err:
            raise ParameterError(
                f"--grid {name}={text}: not a JSON array ({err}); write --grid {name}=a,b,c or "
                f'--grid {name}=\'["a,1", "b,2"]\''
            ) from None
        if not isinstance(values, list):
            raise ParameterError(f"--grid {name}={text}: expected a JSON array")
        return values
    return [part.strip() for part in text.split(",")]


def parse_grid(specs: Sequence[str], schema: dict) -> dict[str, list]:
    """Parse ``name=v1,v2`` grid axes into typed, validated values per parameter."""
    grid: dict[str, list] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise ParameterError(
                f"malformed grid axis {spec!r}; write --grid name=v1,v2,v3, e.g. "
                "--grid lr=0.001,0.01,0.1"
            )
        if name in grid:
            raise ParameterError(f"--grid {name} is given twice; list all its values in one axis")
        raw = _split_values(name, text)
        if any(isinstance(v, str) and v == "" for v in raw) and not text.strip().startswith("["):
            raise ParameterError(f"--grid {spec!r} has an empty value; remove the extra comma")
        values = []
        for value in raw:
            if isinstance(value, str) and not text.strip().startswith("["):
                values.append(parse_overrides([f"{name}={value}"], schema)[name])
            else:
                values.append(validate_parameters({name: value}, schema)[name])
        grid[name] = values
    return grid


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict]:
    """Cartesian product of the axes: one dict per point, axes varying last-fastest."""
    if not grid:
        return []
    names = list(grid)
    for name in names:
        if not grid[name]:
            raise ParameterError(f"grid axis {name!r} has no values")
    total = math.prod(len(grid[name]) for name in names)
    if total > MAX_POINTS:
        raise ParameterError(
            f"the grid has {total} points, more than {MAX_POINTS}; use fewer values or --random"
        )
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(grid[n] for n in names))]


def _sampler(name: str, prop: dict) -> Any:
    """A function drawing one value for ``prop``, or None if it has no bounds to draw from."""
    if "enum" in prop:
        options = list(prop["enum"])
        return lambda rng: rng.choice(options)
    ptype = prop.get("type")
    if ptype == "boolean":
        return lambda rng: rng.choice([False, True])
    if ptype not in ("number", "integer"):
        return None
    low = prop.get("minimum", prop.get("exclusiveMinimum"))
    high = prop.get("maximum", prop.get("exclusiveMaximum"))
    if low is None or high is None:
        return None
    if ptype == "integer":
        lo = math.ceil(low) + (1 if "minimum" not in prop and low == math.ceil(low) else 0)
        hi = math.floor(high) - (1 if "maximum" not in prop and high == math.floor(high) else 0)
        if lo > hi:
            return None
        return lambda rng: rng.randint(lo, hi)

    def draw(rng: _random.Random) -> float:
        while True:  # exclusive bounds: redraw the (measure-zero) endpoints
            value = rng.uniform(float(low), float(high))
            if ("exclusiveMinimum" in prop and value <= low) or (
                    "exclusiveMaximum" in prop and value >= high):
                continue
            return value

    return draw


def sampled_parameters(schema: dict, exclude: Sequence[str] = ()) -> list[str]:
    """Names of the parameters ``random_points`` can draw (bounded numbers, enums, booleans)."""
    return [name for name, prop in (schema.get("properties") or {}).items()
            if name not in exclude and _sampler(name, prop) is not None]


def random_points(schema: dict, n: int, *, exclude: Sequence[str] = (),
                  seed: int | None = None) -> list[dict]:
    """``n`` points drawn from the bounds of the schema's parameters (see module docstring)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"--random must be a positive number of points, got {n!r}")
    if n > MAX_POINTS:
        raise ParameterError(f"--random {n} is more than {MAX_POINTS} points")
    names = sampled_parameters(schema, exclude)
    if not names:
        raise ParameterError(
            "--random has nothing to draw: no parameter has both a minimum and a maximum, an "
            "enum or a boolean type. Add bounds in the parameters cell, e.g. "
            "lr = 0.01  # launch: minimum=0.0001, maximum=1 , or use --grid"
        )
    rng = _random.Random(seed)
    props = schema["properties"]
    samplers = {name: _sampler(name, props[name]) for name in names}
    points = []
    for _ in range(n):
        point = {name: draw(rng) for name, draw in samplers.items()}
        points.append(validate_parameters(point, schema))
    return points


def sweep_points(schema: dict, *, grid: Sequence[str] | Mapping[str, Sequence[Any]] = (),
                 random: int | None = None, fixed: Mapping[str, Any] | None = None,
                 seed: int | None = None) -> list[dict]:
    """The typed parameter points of a sweep: a grid (strings or a dict) or ``random`` points.

    ``fixed`` values (already validated ``-p`` overrides) are added to every point; a name
    cannot be both fixed and swept.
    """
    fixed = dict(fixed or {})
    if isinstance(grid, Mapping):
        axes = {name: [validate_parameters({name: v}, schema)[name] for v in values]
                for name, values in grid.items()}
    else:
        axes = parse_grid(list(grid), schema)
    if axes and random is not None:
        raise ParameterError("use --grid or --random, not both")
    if not axes and random is None:
        raise ParameterError(
            "a sweep needs --config SWEEP.yaml, --grid name=v1,v2 (repeatable) or --random N; "
            "e.g. --grid lr=0.001,0.01,0.1"
        )
    both = sorted(set(axes) & set(fixed))
    if both:
        raise ParameterError(
            f"{', '.join(both)} is both fixed with -p and swept with --grid; pick one"
        )
    points = grid_points(axes) if axes else random_points(schema, random, exclude=list(fixed),
                                                          seed=seed)
    return [{**fixed, **point} for point in points]


# -- trials of a durable sweep (docs/usage.md "Sweeps") -----------------------------------------
#
# A sweep's state lives in the store; whichever agent serves its queue asks ``next_trial`` for
# trial N when there is room, and inserts it under a guarded update of the sweep's proposed
# count. Everything here is pure: the same sweep, trial number and finished trials give the
# same proposal, which is what lets any agent (or a test) replay it.

#: Bayes: how many finished trials TPE waits for before it models (its ``n_startup_trials``);
#: until then Optuna draws the trials at random.
BAYES_STARTUP = 4


def bayes_sampler(seed: int) -> Any:
    """The Optuna TPE sampler every bayes proposal uses (``seed``: the sweep's, plus the trial
    number)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.samplers.TPESampler(n_startup_trials=BAYES_STARTUP, seed=seed,
                                      multivariate=False, constant_liar=False)


def optuna_distributions(config: Any) -> dict[str, Any]:
    """Each swept parameter as an Optuna distribution over its *suggested* value: the index of
    a categorical value, the exponent of a ``log_uniform``, the raw draw before quantizing."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict[str, Any] = {}
    for spec in config.parameters:
        d = spec.distribution
        if d == "constant":
            continue
        if d == "categorical":
            found[spec.key] = CategoricalDistribution(list(range(len(spec.values))))
        elif d == "int_uniform":
            found[spec.key] = IntDistribution(int(spec.low), int(spec.high))
        elif d in ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"):
            found[spec.key] = FloatDistribution(float(spec.low), float(spec.high), log=True)
        elif d in ("uniform", "q_uniform", "log_uniform", "q_log_uniform", "inv_log_uniform"):
            found[spec.key] = FloatDistribution(float(spec.low), float(spec.high))
        else:  # normal family: TPE needs bounds, so mu +- 3 sigma
            found[spec.key] = FloatDistribution(spec.mu - 3 * spec.sigma,
                                                spec.mu + 3 * spec.sigma)
    return found


def _draw(spec: Any, rng: _random.Random) -> Any:
    """A suggested value for ``spec`` drawn the way W&B's random search draws it."""
    d = spec.distribution
    if d == "categorical":
        weights = list(spec.probabilities) or None
        return rng.choices(range(len(spec.values)), weights=weights)[0]
    if d == "int_uniform":
        return rng.randint(int(spec.low), int(spec.high))
    if d in ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"):
        return math.exp(rng.uniform(math.log(spec.low), math.log(spec.high)))
    if d in ("uniform", "q_uniform", "log_uniform", "q_log_uniform", "inv_log_uniform"):
        return rng.uniform(float(spec.low), float(spec.high))
    return rng.gauss(spec.mu, spec.sigma)


def job_value(spec: Any, suggested: Any) -> Any:
    """The job's value for a suggested one (see ``optuna_distributions``)."""
    d = spec.distribution
    if d == "constant":
        return spec.value
    if d == "categorical":
        return spec.values[int(suggested)]
    if d == "int_uniform":
        return int(suggested)
    x = float(suggested)
    if d in ("log_uniform", "q_log_uniform", "log_normal", "q_log_normal"):
        x = math.exp(x)
    elif d == "inv_log_uniform":
        x = math.exp(-x)
    return spec.quantize(x) if d.startswith("q_") else x


def _grid_suggestion(config: Any, trial: int) -> dict | None:
    swept = [s for s in config.parameters if s.distribution == "categorical"]
    sizes = [len(s.values) for s in swept]
    if trial >= math.prod(sizes):
        return None
    suggested = {}
    for spec, size in zip(reversed(swept), reversed(sizes), strict=True):
        trial, index = divmod(trial, size)  # the last axis varies fastest, as --grid does
        suggested[spec.key] = index
    return {s.key: suggested[s.key] for s in swept}


def _bayes_suggestion(config: Any, history: Sequence[Mapping[str, Any]], seed: int
                      ) -> tuple[dict, str]:
    distributions = optuna_distributions(config)
    study = replay_study(config, history, seed)
    complete = sum(1 for h in history if h["state"] == "complete")
    trial = study.ask(distributions)
    how = "random-startup" if complete < BAYES_STARTUP else "tpe"
    return dict(trial.params), how


def replay_study(config: Any, history: Sequence[Mapping[str, Any]], seed: int) -> Any:
    """An in-memory Optuna study holding the finished trials ``history`` (each
    ``{"suggested", "state": complete|pruned|fail, "value", "values"}``), sampled by
    ``bayes_sampler(seed)``: what a bayes proposal asks."""
    import optuna
    from optuna.trial import TrialState, create_trial

    direction = "maximize" if config.goal == "maximize" else "minimize"
    study = optuna.create_study(direction=direction, sampler=bayes_sampler(seed))
    distributions = optuna_distributions(config)
    for h in history:
        params = {k: v for k, v in (h.get("suggested") or {}).items() if k in distributions}
        if set(params) != set(distributions):
            continue  # proposed under another config: Optuna cannot place it
        state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(
            h["state"], TrialState.FAIL)
        values = h.get("values") or []
        study.add_trial(create_trial(
            state=state, params=params, distributions=distributions,
            value=h.get("value") if state == TrialState.COMPLETE else None,
            intermediate_values={i: v for i, v in enumerate(values)}
            if state == TrialState.PRUNED else None))
    return study


def next_trial(config: Any, trial: int, seed: int,
               history: Sequence[Mapping[str, Any]] = ()) -> dict | None:
    """Trial number ``trial`` of a sweep: ``{"parameters", "suggested", "sampler", "seed",
    "history"}``, or None when a grid has no points left.

    ``history``: the sweep's finished trials as ``replay_study`` takes them (plus ``"item"``),
    in trial order; only bayes reads them.
    """
    trial_seed = (seed + trial) % 2**32
    if config.points is not None:
        if trial >= len(config.points):
            return None
        return {"parameters": dict(config.points[trial]), "suggested": {},
                "sampler": config.method, "seed": trial_seed, "history": []}
    used: list[str] = []
    if config.method == "grid":
        suggested = _grid_suggestion(config, trial)
        if suggested is None:
            return None
        how = "grid"
    elif config.method == "random":
        rng = _random.Random(trial_seed)
        suggested = {s.key: _draw(s, rng) for s in config.parameters
                     if s.distribution != "constant"}
        how = "random"
    else:
        suggested, how = _bayes_suggestion(config, history, trial_seed)
        used = [h["item"] for h in history if "item" in h]
    flat = {s.key: job_value(s, suggested.get(s.key)) for s in config.parameters}
    return {"parameters": nest(flat, config.parameters), "suggested": suggested,
            "sampler": how, "seed": trial_seed, "history": used}


def hyperband_verdict(config: Any, values: Sequence[float],
                      others: Sequence[Sequence[float]]) -> str | None:
    """Why a running trial should stop, or None to let it go on.

    ``values``: the metric as the trial logged it, in order; ``others``: the same for the
    sweep's other trials. W&B counts brackets in logged iterations, not step numbers; at the
    highest bracket the trial reached, it must be among the best ``1/eta`` of the trials that
    reached it (Optuna's successive-halving rule: while fewer than ``eta`` trials got there,
    it must be the best of them)."""
    hb = config.early_terminate
    if hb is None or not values:
        return None
    brackets = hb.brackets(len(values))
    if not brackets:
        return None
    rung = brackets[-1]
    value = values[rung - 1]
    competing = sorted([v[rung - 1] for v in others if len(v) >= rung] + [value],
                       reverse=config.goal == "maximize")
    keep = max(0, int(len(competing) // hb.eta) - 1)
    bar = competing[keep]
    worse = value < bar if config.goal == "maximize" else value > bar
    if not worse:
        return None
    return (f"hyperband: {config.metric} {value:g} after {rung} iterations is not among the "
            f"best 1/{hb.eta:g} of the {len(competing)} trials there (needs "
            f"{'>=' if config.goal == 'maximize' else '<='} {bar:g})")


__all__ = ["BAYES_STARTUP", "MAX_POINTS", "bayes_sampler", "grid_points", "hyperband_verdict",
           "job_value", "next_trial", "optuna_distributions", "parse_grid", "random_points",
           "replay_study", "sampled_parameters", "sweep_points"]
