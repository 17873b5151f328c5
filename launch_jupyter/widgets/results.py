"""The results panel: a sweep's (or a queue's) results table sorted by a metric with the best
run highlighted, and the comparison chart, refreshed from a background thread."""

from __future__ import annotations

import json
import threading
from typing import Any

import ipywidgets as w

from ..errors import LaunchError, NotFoundError
from ..views.charts import MIME, comparison_chart
from ..views.html import ResultsView, esc, results_table_html
from .refresh import Refresher, set_options

DEFAULT = "default"
#: rows the table shows (the chart plots every row)
TABLE_ROWS = 200


def chart_output(spec: dict | None, text: str) -> tuple[dict, ...]:
    """The ``outputs`` of an ipywidgets Output showing ``spec`` (set as a trait: a refresh
    thread may not call ``display``)."""
    if spec is None:
        return ()
    return ({"output_type": "display_data", "metadata": {},
             "data": {MIME: spec, "text/plain": text}},)


class ResultsPanel(w.VBox):
    """Live results of sweep ``sweep_id`` (or of ``queue``, or of every item).

    ``sort`` is ``METRIC[:min|:max]`` (default: the sweep's metric and goal); ``interval``
    seconds between refreshes.
    """

    def __init__(self, client: Any, sweep_id: str | None = None, *, queue: str | None = None,
                 sort: str | None = None, interval: float = 1.0, **kwargs: Any) -> None:
        self.client = client
        self.sweep_id = sweep_id
        self.queue = queue
        self.rows: list[dict] = []
        self.best: str | None = None
        self._lock = threading.RLock()
        self._shown = ""
        self.metric, self.goal = None, None
        self._setting = False  # the panel itself is setting the sort options
        if sweep_id is not None:
            try:
                record = client.sweep_record(sweep_id)
                self.metric, self.goal = record["metric"], record["goal"]
            except NotFoundError:  # items grouped by a sweep id from before durable sweeps
                client.page(sweep=sweep_id, limit=0)
        title = (f"sweep {sweep_id}" if sweep_id else f"queue {queue}" if queue
                 else "all items")
        if self.metric:
            title += f" \u00b7 {self.metric} ({self.goal})"
        self.title = w.HTML(f"<b>results of {esc(title)}</b>")
        self.sort = w.Dropdown(options=[DEFAULT], value=DEFAULT, description="sort",
                               layout=w.Layout(width="240px"))
        self.feedback = w.HTML()
        self.table = w.HTML(layout=w.Layout(overflow="auto", max_height="24em"))
        self.chart = w.Output()
        if sort is not None:
            self.sort.options = [DEFAULT, sort]
            self.sort.value = sort
        self.sort.observe(lambda _: self._setting or self.refresh(), names="value")
        header = w.HBox([self.title, self.sort, self.feedback],
                        layout=w.Layout(align_items="center"))
        super().__init__([header, self.table, self.chart], **kwargs)
        self.refresh()
        self.refresher = Refresher(self, self.refresh, interval).start()

    @property
    def sorted_by(self) -> tuple[str | None, str | None]:
        """(metric, goal) of the table and chart: the sort chosen, else the sweep's."""
        if self.sort.value == DEFAULT:
            return self.metric, self.goal
        name, _, way = self.sort.value.rpartition(":")
        return (name, "maximize" if way == "max" else "minimize") if name else (way, None)

    def refresh(self) -> None:
        """Re-read the rows; redraw the table and chart only when a row changed."""
        with self._lock:
            sort = None if self.sort.value == DEFAULT else self.sort.value
            try:
                rows = self.client.result_rows(sweep=self.sweep_id, queue=self.queue,
                                               sort=sort)
            except LaunchError as err:
                self.feedback.value = f"<span style='color:#dc2626'>{esc(err)}</span>"
                return
            if self.feedback.value:
                self.feedback.value = ""
            best = self.client.best_result(rows, sweep=self.sweep_id, sort=sort)
            shown = json.dumps([rows, best, sort], default=str)
            if shown == self._shown:
                return
            self._shown, self.rows, self.best = shown, rows, best
            self._sort_options(rows)
            more = (f"<div style='color:#6b7280;font-size:12px'>showing {TABLE_ROWS} of "
                    f"{len(rows)}</div>" if len(rows) > TABLE_ROWS else "")
            self.table.value = results_table_html(rows[:TABLE_ROWS], best=best) + more
            metric, goal = self.sorted_by
            spec = comparison_chart(rows, metric, goal, best=best)
            self.chart.outputs = chart_output(spec, f"{metric} by parameter")

    def _sort_options(self, rows: list[dict]) -> None:
        metrics = sorted({name for row in rows for name in row["metrics"]})
        options = [DEFAULT, *(f"{m}:{way}" for m in metrics for way in ("max", "min"))]
        if self.sort.value not in options:
            options.append(self.sort.value)
        set_options(self, self.sort, options)  # the user's sort stays

    def close(self) -> None:
        """Close the panel and stop its refresh thread."""
        self.refresher.stop()
        for child in (self.title, self.sort, self.feedback, self.table, self.chart):
            child.close()
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None:  # for front ends without widgets (nbconvert, terminal)
            view = ResultsView(self.rows, self.best)
            data["text/plain"] = repr(view)
            data["text/html"] = view._repr_html_()
        return data


__all__ = ["ResultsPanel"]
