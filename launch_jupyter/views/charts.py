"""Vega-Lite v5 charts of results: each metric against step, and a sweep's metric against its
parameters. Plain dicts with the data inline, so one code base draws them everywhere: the
notebook's Vega renderer (``application/vnd.vegalite.v5+json``) and vega-embed in the lab."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

MIME = "application/vnd.vegalite.v5+json"
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
#: points per metric a chart draws (evenly thinned, the last point kept)
MAX_POINTS = 500
BEST_COLOUR = "#dc2626"
OTHER_COLOUR = "#2563eb"


def field(name: str) -> str:
    """``name`` as a Vega-Lite field reference (dots and brackets would mean nesting)."""
    return "".join("\\" + c if c in ".[]\\" else c for c in name)


def _thin(points: list[dict], cap: int) -> list[dict]:
    """At most ``cap`` of ``points``, evenly spaced, the last one always kept."""
    if len(points) <= cap:
        return points
    stride = len(points) / cap
    kept = [points[int(i * stride)] for i in range(cap - 1)]
    return kept + [points[-1]]


def metric_chart(points: Sequence[dict], *, width: int = 220, height: int = 120,
                 max_points: int = MAX_POINTS) -> dict | None:
    """Each metric against step, one small line chart per metric (own y scale); ``points``
    are ``{"name", "step", "value"}`` as ``Launch.metrics`` gives them. None without points."""
    by_name: dict[str, list[dict]] = {}
    for point in points:
        by_name.setdefault(point["name"], []).append(
            {"name": point["name"], "step": point["step"], "value": point["value"]})
    if not by_name:
        return None
    values = [p for name in sorted(by_name) for p in _thin(by_name[name], max_points)]
    few = max(len(v) for v in by_name.values()) <= 30
    return {
        "$schema": SCHEMA,
        "data": {"values": values},
        "facet": {"field": "name", "type": "nominal", "title": None,
                  "header": {"labelFontWeight": "bold"}},
        "columns": 3,
        "spec": {
            "width": width, "height": height,
            "mark": {"type": "line", "point": few, "tooltip": True},
            "encoding": {
                "x": {"field": "step", "type": "quantitative", "title": "step"},
                "y": {"field": "value", "type": "quantitative", "title": None,
                      "scale": {"zero": False}},
            },
        },
        "resolve": {"scale": {"y": "independent", "x": "independent"}},
    }


def _kind(values: list[Any]) -> str:
    """The Vega-Lite type of a parameter's values: quantitative when all are numbers."""
    numbers = [v for v in values if v is not None]
    if numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        return "quantitative"
    return "nominal"


def _shown(value: Any) -> Any:
    """A parameter value a chart can place: numbers and strings as they are, else JSON."""
    if value is None or isinstance(value, int | float | str) and not isinstance(value, bool):
        return value
    return json.dumps(value, sort_keys=True)


def comparison_chart(rows: Sequence[dict], metric: str | None = None,
                     goal: str | None = None, *, best: str | None = None,
                     width: int = 200, height: int = 160) -> dict | None:
    """``metric`` against each varying parameter, one scatter plot per parameter, the best
    run in red; ``rows`` are ``Launch.result_rows`` rows. Without a ``metric`` the first one
    the rows have; without varying parameters, the metric per item. None when no row has
    the metric."""
    if metric is None:
        metric = next((name for row in rows for name in sorted(row["metrics"])), None)
    having = [r for r in rows if isinstance(r["metrics"].get(metric), int | float)]
    if metric is None or not having:
        return None
    if best is None:
        best = min(having, key=lambda r: r["metrics"][metric]
                   if goal != "maximize" else -r["metrics"][metric])["id"] if goal else None
    params = sorted({name for row in having for name in row["parameters"]})
    # Fixed fields get a prefix so no parameter name can shadow them.
    values = [{"lj_item": r["id"], "lj_state": r["state"], "lj_best": r["id"] == best,
               "lj_value": r["metrics"][metric],
               **{p: _shown(r["parameters"].get(p)) for p in params}} for r in having]
    arrow = {"maximize": " \u2191", "minimize": " \u2193"}.get(goal or "", "")
    y = {"field": "lj_value", "type": "quantitative", "title": metric + arrow,
         "scale": {"zero": False}}
    colour = {"field": "lj_best", "type": "nominal", "legend": None,
              "scale": {"domain": [False, True], "range": [OTHER_COLOUR, BEST_COLOUR]}}
    tooltip = [{"field": "lj_item", "title": "item"}, {"field": "lj_state", "title": "state"},
               {"field": "lj_value", "title": metric},
               *({"field": field(p), "title": p} for p in params)]

    def scatter(x: dict) -> dict:
        return {"width": width, "height": height,
                "mark": {"type": "point", "filled": True, "size": 70},
                "encoding": {"x": x, "y": y, "color": colour, "tooltip": tooltip,
                             "size": {"condition": {"test": "datum.lj_best", "value": 160},
                                      "value": 70}}}

    charts = [scatter({"field": field(p), "type": _kind([v[p] for v in values]), "title": p,
                       **({"scale": {"zero": False}}
                          if _kind([v[p] for v in values]) == "quantitative" else {})})
              for p in params]
    if not charts:
        charts = [scatter({"field": "lj_item", "type": "nominal", "title": "item", "sort": None})]
    spec = {"$schema": SCHEMA, "data": {"values": values},
            "title": {"text": f"{metric} by parameter", "anchor": "start", "fontSize": 12}}
    if len(charts) == 1:
        return {**spec, **charts[0]}
    return {**spec, "hconcat": charts, "resolve": {"scale": {"y": "shared"}}}


def bundle(spec: dict | None, text: str = "") -> dict:
    """A display bundle: the Vega-Lite spec and a text fallback (empty without a spec)."""
    return {} if spec is None else {MIME: spec, "text/plain": text or "<chart>"}


__all__ = ["MIME", "SCHEMA", "bundle", "comparison_chart", "field", "metric_chart"]
