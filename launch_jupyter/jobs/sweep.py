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
            "a sweep needs --grid name=v1,v2 (repeatable) or --random N; e.g. "
            "--grid lr=0.001,0.01,0.1"
        )
    both = sorted(set(axes) & set(fixed))
    if both:
        raise ParameterError(
            f"{', '.join(both)} is both fixed with -p and swept with --grid; pick one"
        )
    points = grid_points(axes) if axes else random_points(schema, random, exclude=list(fixed),
                                                          seed=seed)
    return [{**fixed, **point} for point in points]


__all__ = ["MAX_POINTS", "grid_points", "parse_grid", "random_points", "sampled_parameters",
           "sweep_points"]
