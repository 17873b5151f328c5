"""Results: one row per item with the parameters that vary and each metric's last value,
sorted by the sweep's metric (or ``--sort``). Every door shows these rows; the filtering is
the one paging rule's (``Launch.page``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError
from . import checks

if TYPE_CHECKING:
    from .client import Launch


def parse_sort(sort: str) -> tuple[str, str]:
    """``METRIC``, ``METRIC:min`` or ``METRIC:max`` -> (metric, minimize|maximize)."""
    if not isinstance(sort, str) or not sort.strip():
        raise ParameterError(f"--sort must be METRIC, METRIC:min or METRIC:max, got {sort!r}")
    name, sep, way = sort.strip().rpartition(":")
    if not sep:
        return way, "minimize"
    if way not in ("min", "max") or not name:
        raise ParameterError(f"--sort {sort}: write METRIC, METRIC:min or METRIC:max "
                             "(e.g. --sort accuracy:max)")
    return name, "maximize" if way == "max" else "minimize"


def varying(items: Sequence[dict]) -> list[str]:
    """Names of the parameters whose values are not the same in every item (sorted)."""
    names = sorted({name for item in items for name in item["parameters"]})
    return [name for name in names
            if len({json.dumps(item["parameters"].get(name), sort_keys=True)
                    for item in items}) > 1]


def order(rows: list[dict], metric: str, goal: str) -> list[dict]:
    """Rows with ``metric`` best first by ``goal``; rows without it after, as they were."""
    having = [r for r in rows if isinstance(r["metrics"].get(metric), int | float)]
    having.sort(key=lambda r: r["metrics"][metric], reverse=goal == "maximize")
    return having + [r for r in rows if not isinstance(r["metrics"].get(metric), int | float)]


def sorted_by(client: Launch, sweep: str | None, sort: str | None) -> tuple[str, str] | None:
    """(metric, goal) the rows are sorted by: ``sort``, else the sweep's metric, else None."""
    if sort is not None:
        return parse_sort(sort)
    if sweep is not None:
        record = client.sweep_record(sweep)
        if record["metric"]:
            return record["metric"], record["goal"] or "minimize"
    return None


def best_result(client: Launch, rows: Sequence[dict], *, sweep: str | None = None,
                sort: str | None = None) -> str | None:
    """The id of the best of ``rows`` (sorted by ``result_rows``), or None when they are not
    sorted by a metric or none has it."""
    by = sorted_by(client, sweep, sort)
    if by is None or not rows or not isinstance(rows[0]["metrics"].get(by[0]), int | float):
        return None
    return rows[0]["id"]


def result_rows(client: Launch, *, sweep: str | None = None, queue: str | None = None,
                job: str | None = None, state: str | Sequence[str] | None = None,
                sort: str | None = None, limit: int | None = None,
                max_limit: int | None = None) -> list[dict]:
    """The rows of ``Launch.results``: ``{"id", "state", "job", "parameters": {varying},
    "metrics": {NAME: last}, "duration"}``; ``state`` is ``pruned`` for a pruned trial."""
    from ..views.states import label

    limit, _ = checks.bounds(limit, 0, max_limit=max_limit)
    by = sorted_by(client, sweep, sort)
    items = client.page(sweep=sweep, queue=queue, job=job, state=state)["items"]
    names = varying(items)
    rows = [{"id": item["id"], "state": label(item), "job": item["job"],
             "parameters": {name: item["parameters"].get(name) for name in names},
             "metrics": {name: m["last"] for name, m in sorted(item["metrics"].items())},
             "duration": item["duration"]} for item in items]
    if by is not None:
        rows = order(rows, *by)
    return rows if limit is None else rows[:limit]


def as_frame(rows: list[dict]) -> Any:
    """A pandas DataFrame of the rows (the CSV's columns) when pandas is importable, else
    the rows themselves."""
    try:
        import pandas
    except ImportError:
        return rows
    from ..views.text import result_columns

    headers, table = result_columns(rows)
    return pandas.DataFrame(table, columns=headers)


__all__ = ["as_frame", "best_result", "order", "parse_sort", "result_rows", "sorted_by",
           "varying"]
