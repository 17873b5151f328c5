"""Handles: ``Item`` and ``Sweep``, what submit returns. They show themselves through the
shared views (a card, a table, a progress line updated in place while waiting)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..store import TERMINAL
from . import checks

if TYPE_CHECKING:
    from .client import Launch


def _notebook_shell() -> Any:
    """The IPython kernel shell when running in one (rich displays work), else None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


class _Progress:
    """A display updated in place while ``wait`` blocks (main thread only), or nothing."""

    def __init__(self, enabled: bool | None) -> None:
        self.handle = None
        if enabled is False or (enabled is None and _notebook_shell() is None):
            return
        from IPython.display import HTML, display

        self._html = HTML
        self.handle = display(HTML(""), display_id=True)
        self.last = ""

    def update(self, markup: str) -> None:
        if self.handle is not None and markup != self.last:
            self.last = markup
            self.handle.update(self._html(markup))


def _panel(kind: str, *args: Any, **kwargs: Any) -> Any:
    """A live panel from the installed panel provider (entry points ``launch_jupyter.panels``;
    launch-jupyter registers its ipywidgets panels there). The service never imports a front
    door: the panel plugs in, as runners do (docs/architecture.md)."""
    from importlib.metadata import entry_points

    from ..errors import LaunchError

    found = list(entry_points(group="launch_jupyter.panels", name=kind))
    if not found:
        raise LaunchError(f"no {kind!r} panel is installed (entry point group "
                          "launch_jupyter.panels); reinstall launch-jupyter with "
                          "`pip install launch-jupyter`, which registers its ipywidgets panels")
    return found[0].load()(*args, **kwargs)


class Item:
    """A handle on one item: its state, logs and outcome, and cancel/requeue.

    Returned by ``Launch.submit``, ``launch_jupyter.submit`` and the ``%launch`` magics; the
    last line of a cell shows it as a card.
    """

    #: what capturing a file on submit warned about (``Launch.submit`` sets it)
    warnings: tuple[str, ...] = ()

    def __init__(self, client: Launch, item_id: str, data: dict | None = None) -> None:
        self.client = client
        self.id = item_id
        self._data = data

    def __repr__(self) -> str:
        return f"<Item {self.id} {self.info().get('state')}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Item) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def info(self, refresh: bool = True) -> dict:
        """The item as ``jupyter launch show --json`` prints it."""
        if refresh or self._data is None:
            self._data = self.client.item_info(self.id)
        return self._data

    @property
    def state(self) -> str:
        return self.info()["state"]

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def parameters(self) -> dict:
        """The effective parameters the run sees."""
        return self.info()["parameters"]

    @property
    def error(self) -> dict | None:
        """``{"message", "stage", "cell"}`` when the item failed, else None."""
        return self.info()["error"]

    def wait(self, timeout: float | None = None, poll: float = 0.2,
             progress: bool | None = None) -> Item:
        """Block until the item is finished; raises TimeoutError after ``timeout`` s.

        In a notebook a progress line (state, elapsed time, last log line) updates in place;
        ``progress=False`` turns it off. The item keeps running if the wait is interrupted.
        """
        from ..views.format import log_tail
        from ..views.html import wait_line
        from .remote import RECONNECT_SECONDS, ServerUnreachableError

        timeout = checks.positive_timeout(timeout)
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        display = _Progress(progress)
        reader = self.client.log_reader(self.id) if display.handle is not None else None
        last_line = ""
        unreachable_since: float | None = None
        try:
            while True:
                try:
                    data = self.info()
                    text = reader.read() if reader is not None else ""
                except ServerUnreachableError:
                    # A remote client's server restarting: ask again, as `logs -f` does.
                    now = time.monotonic()
                    unreachable_since = unreachable_since or now
                    if now - unreachable_since > RECONNECT_SECONDS or (
                            deadline is not None and now > deadline):
                        raise
                    time.sleep(min(2.0, max(poll, now - unreachable_since)))
                    continue
                unreachable_since = None
                if reader is not None:
                    if text.strip():
                        last_line = log_tail(text.rstrip(), 1)[-160:]
                    display.update(wait_line(data, time.monotonic() - start, last_line))
                if data["state"] in TERMINAL:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"item {self.id} still {data['state']} after {timeout} s; "
                                       "it keeps running (wait again, or .cancel() it)")
                time.sleep(poll)
        finally:
            if display.handle is not None and self._data is not None:
                # One line, not the card: the cell's last line usually shows the card.
                display.update(wait_line(self._data, time.monotonic() - start))
        return self

    def logs(self, tail: int | None = None) -> str:
        """The log so far (stdout and stderr); ``tail`` keeps only the last lines."""
        text = self.client.logs(self.id)[0]
        if tail is not None:
            from ..views.format import log_tail

            return log_tail(text, tail)
        return text

    def metrics(self, attempt: int | None = None) -> Any:
        """The points ``launch_jupyter.log`` recorded in the latest attempt (or ``attempt``):
        a pandas DataFrame (columns name, step, value, time) when pandas is importable, else
        a list of ``{"name", "step", "value", "time"}``."""
        points = self.client.metrics(self.id, attempt=attempt)
        try:
            import pandas
        except ImportError:
            return points
        frame = pandas.DataFrame(points, columns=["name", "step", "value", "time"])
        frame["time"] = pandas.to_datetime(frame["time"], utc=True, format="ISO8601")
        return frame

    def cancel(self) -> Item:
        """Cancel: a queued item at once, a running one after its runner stops it."""
        self._data = self.client.cancel(self.id)
        return self

    def requeue(self, idempotency_key: str | None = None) -> Item:
        """Submit the same job, parameters and priority again; returns the NEW item."""
        return self.client.requeue(self.id, idempotency_key=idempotency_key)

    @property
    def outputs(self) -> list[dict]:
        """Files the run wrote to ``LAUNCH_OUTPUT_DIR`` (and the executed notebook)."""
        return list(self.info().get("outputs") or [])

    @property
    def output_notebook(self) -> str | None:
        """Path of the executed notebook (notebook mode), once there is one: mid-run too,
        where it holds the outputs so far (``executed_notebook`` of show --json)."""
        from ..views.format import output_notebook

        info = self.info()
        return output_notebook(info) or info.get("executed_notebook")

    def panel(self) -> Any:
        """A live detail panel (ipywidgets): log tail, error, cancel and requeue buttons."""
        return _panel("item", self.client, self.id)

    def _repr_html_(self, refresh: bool = True) -> str:
        from ..views.format import log_tail
        from ..views.html import item_card_html

        data = self.info(refresh)
        tail = None
        if data["state"] == "failed" or data.get("log_bytes"):
            tail = log_tail(self.client.logs(self.id)[0], 8) or None
        return item_card_html(data, log_tail=tail)

    def chart(self) -> dict | None:
        """A Vega-Lite spec of each metric against step (latest attempt), None without
        metrics; a notebook shows it under the card."""
        from ..views.charts import metric_chart

        return metric_chart(self.client.metrics(self.id))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        # Two outputs: a front end shows one mime type of a bundle, the card or the chart.
        from ..views.text import item_line

        html = self._repr_html_()  # refreshes the record the chart decision reads
        display({"text/html": html, "text/plain": item_line(self.info(refresh=False))},
                raw=True)
        if self.info(refresh=False).get("metrics"):
            display(self._chart_bundle(), raw=True)

    def _chart_bundle(self) -> dict:
        from ..views.charts import bundle

        return bundle(self.chart(), f"metrics of item {self.id}")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from ..views.text import item_line

        p.text(item_line(self.info()))


class Sweep(list):
    """A sweep: the items proposed when it was created (a list of ``Item``), its results,
    its state in the store, and stop/resume. Agents propose its later trials."""

    def __init__(self, client: Launch, sweep_id: str, items: Iterable[Item] = ()) -> None:
        super().__init__(items)
        self.client = client
        self.id = sweep_id
        #: the one note about W&B config keys that were ignored, if any
        self.note: str | None = None

    def info(self) -> dict:
        """The sweep with its config, best trial and trials (``sweep show --json``)."""
        return self.client.sweep_info(self.id)

    def results(self, sort: str | None = None) -> Any:
        """Its results: a DataFrame (pandas) or list of dicts, best first by its metric."""
        return self.client.results(sweep=self.id, sort=sort)

    def stop(self) -> dict:
        """Propose no more trials (running ones go on)."""
        return self.client.stop_sweep(self.id)

    def resume(self) -> dict:
        """Propose trials again."""
        return self.client.resume_sweep(self.id)

    def _proposing(self) -> bool:
        """Whether agents may still propose trials (a running sweep in the store)."""
        from ..errors import NotFoundError

        try:
            record = self.client.sweep_record(self.id)
        except NotFoundError:  # items grouped by a sweep id from before durable sweeps
            return False
        cap = record["run_cap"]
        return record["state"] == "running" and (cap is None or record["proposed"] < cap)

    def __repr__(self) -> str:
        return f"<Sweep {self.id}: {len(self)} items>"

    def refresh(self) -> list[dict]:
        """Current records of the sweep's items, newest first."""
        return self.client.items(sweep=self.id)

    @property
    def states(self) -> dict[str, int]:
        """How many items are in each state (states with none left out)."""
        counts = self.client.page(sweep=self.id, limit=0)["counts"]
        return {state: n for state, n in counts.items() if n}

    @property
    def done(self) -> bool:
        return all(state in TERMINAL for state in self.states)

    def wait(self, timeout: float | None = None, poll: float = 0.3,
             progress: bool | None = None) -> Sweep:
        """Block until every item is finished (progress line in a notebook)."""
        from ..views.format import state_counts
        from ..views.html import sweep_line

        timeout = checks.positive_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        display = _Progress(progress)
        try:
            while True:
                counts = self.states
                total = sum(counts.values())
                finished = sum(n for state, n in counts.items() if state in TERMINAL)
                display.update(sweep_line(self.id, finished, total, counts))
                if finished == total and not self._proposing():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"sweep {self.id}: {finished} of {total} items "
                                       f"finished after {timeout} s ({state_counts(counts)})")
                time.sleep(poll)
        finally:
            if display.handle is not None:
                display.update(self._repr_html_())
        return self

    def panel(self) -> Any:
        """A live results panel (ipywidgets): the table sorted by its metric with the best
        run highlighted, and the comparison chart."""
        return _panel("results", self.client, sweep_id=self.id)

    def result_rows(self) -> list[dict]:
        """Its results as JSON rows, best first by its metric."""
        return self.client.result_rows(sweep=self.id)

    def chart(self, rows: list[dict] | None = None) -> dict | None:
        """A Vega-Lite spec of its metric against each varying parameter, best run in red;
        None before a trial has the metric."""
        from ..views.charts import comparison_chart

        rows, metric, goal, best = self._chart_args(rows)
        return comparison_chart(rows, metric, goal, best=best)

    def _chart_args(self, rows: list[dict] | None) -> tuple[list[dict], str | None,
                                                            str | None, str | None]:
        from ..errors import NotFoundError

        rows = self.result_rows() if rows is None else rows
        try:
            record = self.client.sweep_record(self.id)
            metric, goal = record["metric"], record["goal"]
        except NotFoundError:  # items grouped by a sweep id from before durable sweeps
            metric = goal = None
        return rows, metric, goal, self.client.best_result(rows, sweep=self.id)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        from ..errors import NotFoundError
        from ..views.charts import bundle, comparison_chart
        from ..views.html import sweep_results_html

        try:
            rows, metric, goal, best = self._chart_args(None)
        except NotFoundError:  # items grouped by a sweep id from before durable sweeps
            display({"text/html": self._repr_html_(), "text/plain": repr(self)}, raw=True)
            return
        display({"text/html": sweep_results_html(self.id, self.states, rows, best=best),
                 "text/plain": repr(self)}, raw=True)
        spec = comparison_chart(rows, metric, goal, best=best)
        if spec is not None:
            # The chart's own title: a sweep without a metric charts the first one logged.
            display(bundle(spec, f"sweep {self.id}: {spec['title']['text']}"), raw=True)

    def _repr_html_(self) -> str:
        from ..errors import NotFoundError
        from ..views.html import items_table_html, sweep_results_html

        try:
            rows = self.result_rows()
        except NotFoundError:  # items grouped by a sweep id from before durable sweeps
            return items_table_html(self.refresh())
        return sweep_results_html(self.id, self.states, rows,
                                  best=self.client.best_result(rows, sweep=self.id))

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from ..views.text import items_lines

        p.text(f"sweep {self.id}\n" + items_lines(self.refresh()))


__all__ = ["Item", "Sweep"]
