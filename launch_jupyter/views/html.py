"""HTML views: the item card, the items table, the agents table and the wait line.

Shared by the item handle, the magics and the ipywidgets panels; no ipywidgets import.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from .format import (
    age,
    error_text,
    notebook_href,
    output_notebook,
    params_text,
    short,
    span,
    state_counts,
)
from .progress import progress_bar_html, progress_note
from .states import colour, label, symbol

TABLE_CSS = (
    "border-collapse:collapse;font-size:12px;font-family:var(--jp-ui-font-family,sans-serif)"
)
CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #e5e7eb;white-space:nowrap"
_TABLE_CSS, _CELL = TABLE_CSS, CELL


def esc(value: Any) -> str:
    """``value`` as HTML text (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def badge(state: str) -> str:
    """A coloured state with its symbol."""
    return (f"<span class='lj-state lj-{esc(state)}' style='color:{colour(state)};"
            f"font-weight:600'>{symbol(state)} {esc(state)}</span>")


def item_card_html(item: dict, *, log_tail: str | None = None) -> str:
    """The rich card an item handle shows as the last line of a cell."""
    rows: list[tuple[str, str]] = [
        ("job", esc(item["job"])),
        ("queue", esc(item["queue"])),
        ("priority", esc(item["priority"])),
        ("parameters", esc(short(item.get("parameters") or {}, 120))),
        ("attempt", f"{item['attempt']}/{item['max_attempts']}"),
        ("age", esc(age(item.get("created_at")))),
    ]
    if item.get("duration") is not None:
        rows.append(("duration", esc(span(item["duration"]))))
    if item.get("sweep_id"):
        rows.append(("sweep", esc(item["sweep_id"])))
    if item.get("schedule"):
        rows.append(("schedule", esc(item["schedule"])))
    if item.get("requeued_from"):
        rows.append(("requeued from", esc(item["requeued_from"])))
    gpus = (item.get("run") or {}).get("gpus")
    if gpus:
        rows.append(("GPUs", esc(",".join(map(str, gpus)))))
    if item.get("waiting_on"):
        rows.append(("waiting on", esc(", ".join(item["waiting_on"]))))
    if item.get("warning"):
        rows.append(("warning", f"<span style='color:#b45309'>{esc(item['warning'])}</span>"))
    if item.get("error"):
        rows.append(("error", f"<span style='color:#dc2626'>{esc(error_text(item))}</span>"))
    nb = item.get("executed_notebook") or output_notebook(item)
    if nb:
        href = notebook_href(nb)
        link = f"<a href='{esc(href)}' target='_blank'>{esc(nb)}</a>" if href else esc(nb)
        rows.append(("executed notebook", link))
    files = [o for o in item.get("outputs") or [] if o.get("kind") == "file"]
    if files:
        rows.append(("outputs", esc(", ".join(o["name"] for o in files[:8])
                                    + (" \u2026" if len(files) > 8 else ""))))
    # Two fields per row keeps the card short enough to sit above the log and buttons.
    errors = [r for r in rows if r[0] in ("warning", "error", "executed notebook", "outputs")]
    pairs = [r for r in rows if r not in errors]
    th = f"{_CELL};color:#6b7280;font-weight:normal"
    body = "".join(
        "<tr>" + "".join(f"<th style='{th}'>{k}</th><td style='{_CELL}'>{v}</td>"
                         for k, v in pairs[i:i + 2]) + "</tr>"
        for i in range(0, len(pairs), 2))
    body += "".join(f"<tr><th style='{th}'>{k}</th><td colspan=3 style='{_CELL};"
                    f"white-space:normal'>{v}</td></tr>" for k, v in errors)
    tail = ""
    if log_tail:
        tail = (f"<pre style='max-height:12em;overflow:auto;background:#f9fafb;padding:4px;"
                f"margin:4px 0;font-size:11px'>{esc(log_tail)}</pre>")
    return (f"<div class='lj-item' data-item='{esc(item['id'])}' data-state='{esc(item['state'])}'"
            f" style='border:1px solid #e5e7eb;border-radius:4px;padding:6px 8px;"
            f"display:inline-block;min-width:28em'>"
            f"<div><b>item {esc(item['id'])}</b> &nbsp;{badge(label(item))}</div>"
            f"{progress_bar_html(item)}"
            f"<table style='{_TABLE_CSS}'>{body}</table>{tail}</div>")


ITEM_COLUMNS = ("state", "item", "job", "parameters", "priority", "age", "duration")


def items_table_html(items: Sequence[dict], *, selected: str | None = None,
                     empty: str = "no items", sort: str | None = None,
                     row_onclick: str | None = None) -> str:
    """The queue table; rows carry ``data-item``/``data-state``, sweeps get a header row, and
    each metric the items logged is a column of last values (``sort``: the sorted one).
    ``row_onclick``: JavaScript each item row runs when clicked (``this`` is the row)."""
    if not items:
        return f"<div class='lj-items' style='color:#6b7280;padding:4px'>{esc(empty)}</div>"
    metrics = sorted({name for item in items for name in item.get("metrics") or {}})
    head = "".join(f"<th style='{_CELL};color:#6b7280'>{c}</th>" for c in ITEM_COLUMNS)
    head += "".join(f"<th class='lj-metric' data-metric='{esc(m)}' style='{_CELL};color:"
                    f"#6b7280'>{esc(m)}{sort_mark(m, sort)}</th>" for m in metrics)
    rows = []
    sweep = None
    counts: dict[str, dict[str, int]] = {}
    for item in items:
        if item.get("sweep_id"):
            per = counts.setdefault(item["sweep_id"], {})
            per[item["state"]] = per.get(item["state"], 0) + 1
    for item in items:
        if item.get("sweep_id") and item["sweep_id"] != sweep:
            sweep = item["sweep_id"]
            summary = state_counts(counts[sweep])
            rows.append(f"<tr class='lj-sweep' data-sweep='{esc(sweep)}'><td colspan="
                        f"{len(ITEM_COLUMNS) + len(metrics)} style='{_CELL};background:#f3f4f6'>"
                        f"sweep {esc(sweep)} \u2014 {esc(summary)}</td></tr>")
        elif not item.get("sweep_id"):
            sweep = None
        style = "background:#eff6ff" if item["id"] == selected else ""
        click = ""
        if row_onclick:
            style += ";cursor:pointer"
            click = f" onclick='{esc(row_onclick)}'"
        indent = "&nbsp;&nbsp;" if item.get("sweep_id") else ""
        duration = span(item["duration"]) if item.get("duration") is not None else ""
        title = esc(error_text(item)) if item.get("error") else ""
        waiting = (f" <span class='lj-waiting' title='{esc(item['waiting'])}' style='color:"
                   f"#b45309;font-size:11px'>no agent</span>" if item.get("waiting") else "")
        if item.get("waiting_on") and not item.get("waiting"):  # run-after: not its turn yet
            waiting = (f" <span class='lj-after' title='waiting on "
                       f"{esc(', '.join(item['waiting_on']))}' style='color:#6b7280;"
                       f"font-size:11px'>after {len(item['waiting_on'])}</span>")
        cells = [badge(label(item)) + progress_note(item) + waiting,
                 f"{indent}<code>{esc(item['id'])}</code>",
                 esc(item["job"]), esc(params_text(item)), esc(item["priority"]),
                 esc(age(item.get("created_at"))), esc(duration)]
        cells += [esc(_number((item.get("metrics") or {}).get(m, {}).get("last")))
                  for m in metrics]
        rows.append(f"<tr class='lj-row' data-item='{esc(item['id'])}' "
                    f"data-state='{esc(item['state'])}' title='{title}' style='{style}'"
                    f"{click}>"
                    + "".join(f"<td style='{_CELL}'>{c}</td>" for c in cells) + "</tr>")
    return (f"<table class='lj-items' style='{_TABLE_CSS}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


def sort_mark(metric: str, sort: str | None) -> str:
    """`` ▼``/`` ▲`` after the header of the metric ``sort`` (``METRIC:max|min``) orders."""
    if not sort or sort.rpartition(":")[0] != metric:
        return ""
    return " \u25bc" if sort.endswith(":max") else " \u25b2"


def agents_html(kernel_status: dict | None, agents: list[dict]) -> str:
    """This kernel's agent, then every live agent of the store."""
    if kernel_status is None:
        mine = "<i style='color:#6b7280'>no agent in this kernel</i>"
    else:
        active = ", ".join(kernel_status["active"]) or "none"
        err = (f" <span style='color:#dc2626'>error: {esc(kernel_status['error'])}</span>"
               if kernel_status.get("error") else "")
        unserved = "".join(
            f"<div style='color:#b45309'>not serving queue <b>{esc(name)}</b> (its items wait "
            f"for another agent): {esc(problem)}</div>"
            for name, problem in (kernel_status.get("unserved") or {}).items())
        mine = (f"this kernel: <b>{esc(kernel_status['id'])}</b> serving "
                f"{esc(', '.join(kernel_status['queues']))} (max {kernel_status['max_jobs']})"
                f"; running items: <code>{esc(active)}</code>{err}{unserved}")
    head = "".join(f"<th style='{_CELL};color:#6b7280'>{h}</th>"
                   for h in ("agent", "host", "pid", "queues", "running", "heartbeat"))
    rows = "".join(
        f"<tr data-agent='{esc(a['id'])}'>"
        + "".join(f"<td style='{_CELL}'>{esc(v)}</td>" for v in (
            a["id"], a["host"], a["pid"], ", ".join(a["queues"]), a["running"],
            f"{span(a['heartbeat_age'])} ago"))
        + "</tr>" for a in agents)
    table = (f"<table style='{_TABLE_CSS}'><thead><tr>{head}</tr></thead><tbody>{rows}"
             f"</tbody></table>" if agents else
             "<i style='color:#6b7280'>no live agents in the store</i>")
    return f"<div>{mine}</div>{table}"


def items_view_html(items: Sequence[dict], total: int) -> str:
    """A static items table with a "showing N of M" line when there are more."""
    more = (f"<div style='color:#6b7280;font-size:12px'>showing {len(items)} of "
            f"{total}</div>" if total > len(items) else "")
    return items_table_html(items) + more


def wait_line(item: dict, elapsed: float, last_line: str | None = None) -> str:
    """The line ``Item.wait`` updates in place: state, elapsed time, last log line."""
    head = (f"<div class='lj-wait' data-state='{esc(item['state'])}'>")
    if last_line is None:
        return (f"{head}item <code>{esc(item['id'])}</code> {badge(item['state'])} after "
                f"{span(elapsed)}</div>")
    return (f"{head}waiting for item <code>{esc(item['id'])}</code> {badge(item['state'])} "
            f"<span style='color:#6b7280'>{span(elapsed)}</span>{progress_bar_html(item)}"
            f"<pre style='margin:2px 0;font-size:11px;color:#374151'>{esc(last_line)}</pre>"
            "</div>")


def sweep_line(sweep_id: str, finished: int, total: int, counts: dict[str, int]) -> str:
    """The line ``Sweep.wait`` updates in place."""
    return (f"<div class='lj-wait'>sweep <code>{esc(sweep_id)}</code>: {finished}/{total} "
            f"finished ({esc(state_counts(counts))})</div>")


def results_table_html(rows: Sequence[dict], *, best: str | None = None) -> str:
    """The results table (``%launch results``, ``Sweep.results``): one row per item with
    ``data-item``/``data-state``; the best row has class ``lj-best`` and ``data-best``."""
    from .text import result_columns

    if not rows:
        return "<div class='lj-results' style='color:#6b7280;padding:4px'>no results</div>"
    headers, cells = result_columns(rows)
    head = "".join(f"<th style='{_CELL};color:#6b7280'>{esc(h)}</th>" for h in headers)
    body = []
    for line in cells:
        is_best = line[0] == best
        marks = " lj-best' data-best='true" if is_best else ""
        look = " style='background:#dcfce7;font-weight:600'" if is_best else ""
        shown = [f"<code>{esc(line[0])}</code>", badge(line[1]),
                 *(esc("" if v is None else f"{v:.6g}" if isinstance(v, float) else v)
                   for v in line[2:-1]),
                 esc(span(line[-1]) if line[-1] is not None else "")]
        body.append(f"<tr class='lj-row{marks}' data-item='{esc(line[0])}' "
                    f"data-state='{esc(line[1])}'{look}>"
                    + "".join(f"<td style='{_CELL}'>{c}</td>" for c in shown) + "</tr>")
    return (f"<table class='lj-results' style='{_TABLE_CSS}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def sweep_results_html(sweep_id: str, counts: dict[str, int], rows: Sequence[dict], *,
                       best: str | None = None) -> str:
    """A sweep's heading (its items per state) over its results table, best row marked."""
    summary = state_counts(counts) if counts else "no items yet"
    return (f"<div class='lj-sweep-results' data-sweep='{esc(sweep_id)}'>"
            f"<div style='font-size:12px;margin:2px 0'><b>sweep {esc(sweep_id)}</b> "
            f"— {esc(summary)}</div>{results_table_html(rows, best=best)}</div>")


class ResultsView:
    """Results rows shown as a table: HTML in a notebook, text in a terminal; ``best`` is
    the id of the best row (the first, when the rows are sorted by a metric)."""

    def __init__(self, rows: Sequence[dict], best: str | None = None) -> None:
        self.rows = list(rows)
        self.best = best

    def __len__(self) -> int:
        return len(self.rows)

    def _repr_html_(self) -> str:
        return results_table_html(self.rows, best=self.best)

    def __repr__(self) -> str:
        from .text import results_table

        return results_table(self.rows, best=self.best)


class ItemsView:
    """A static items table: HTML in a notebook, text in a terminal (``%launch items``)."""

    def __init__(self, items: Sequence[dict], total: int | None = None) -> None:
        self.items = list(items)
        self.total = len(self.items) if total is None else total

    def __len__(self) -> int:
        return len(self.items)

    def _repr_html_(self) -> str:
        return items_view_html(self.items, self.total)

    def __repr__(self) -> str:
        from .text import items_lines

        return items_lines(self.items, total=self.total)


__all__ = ["CELL", "TABLE_CSS", "ItemsView", "ResultsView", "agents_html", "badge", "esc",
           "item_card_html", "items_table_html", "items_view_html", "results_table_html",
           "sweep_line", "sweep_results_html", "wait_line"]
