"""Item detail panel: state, parameters, error with the failing cell, live log tail, and
cancel / requeue / copy-the-executed-notebook buttons with feedback."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..errors import LaunchError
from ..views.charts import metric_chart
from ..views.format import log_tail, output_notebook
from ..views.html import esc, item_card_html
from ..views.states import is_terminal
from .refresh import Refresher

LOG_LINES = 200


def executed_notebook(data: dict) -> str | None:
    """The item's executed notebook once a file is there (mid-run: the cells so far)."""
    path = data.get("executed_notebook") or output_notebook(data)
    return path if path and os.path.isfile(path) else None


class ItemDetail(w.VBox):
    """Live view of one item. ``auto_refresh=False`` when a parent panel drives ``refresh``."""

    def __init__(self, client: Any, item_id: str | None = None, *, interval: float = 1.0,
                 auto_refresh: bool = True, **kwargs: Any) -> None:
        self.client = client
        self.item_id: str | None = None
        self._lock = threading.RLock()
        self._log = ""
        self._reader: Any = None
        self._data: dict | None = None
        self._cancelling = False  # "cancel requested" is showing until the item ends
        self.on_select: Callable[[str], Any] | None = None  # a parent panel follows requeues
        self.card = w.HTML()
        self.cancel_button = w.Button(description="Cancel", icon="stop", button_style="danger",
                                      tooltip="cancel this item", disabled=True)
        self.requeue_button = w.Button(description="Requeue", icon="redo", disabled=True,
                                       tooltip="submit the same job and parameters again")
        self.copy_button = w.Button(description="Copy notebook here", icon="copy", disabled=True,
                                    tooltip="copy the executed notebook next to this one")
        self.feedback = w.HTML()
        # The widget's own element scrolls, so the browser keeps a user's scroll position when
        # the value changes; a reversed column keeps an unscrolled box on its newest line.
        self.log_view = w.HTML(layout=w.Layout(max_height="16em", overflow="auto",
                                               display="flex", flex_flow="column-reverse"))
        self.log_view.add_class("lj-log-box")
        self.chart = w.Output()
        self._points_seen: object = None
        self._points: list[dict] = []  # the shown attempt's points, read on by cursor
        self._cursor = 0
        # A click that arrives once its button is disabled (a double click: the first one
        # showed the new, queued item) does nothing, rather than fail on that item.
        self.cancel_button.on_click(lambda b: None if b.disabled else self.cancel())
        self.requeue_button.on_click(lambda b: None if b.disabled else self.requeue())
        self.copy_button.on_click(lambda _: self.copy_notebook())
        buttons = w.HBox([self.cancel_button, self.requeue_button, self.copy_button,
                          self.feedback])
        super().__init__([self.card, self.chart, buttons, self.log_view], **kwargs)
        self.refresher = None
        if item_id is not None:
            self.show(item_id)
        if auto_refresh:
            self.refresher = Refresher(self, self.refresh, interval).start()

    def show(self, item_id: str | None) -> None:
        """Switch to another item (None: show nothing)."""
        with self._lock:
            if item_id != self.item_id:
                self.item_id = item_id
                self._log, self._reader, self._data = "", None, None
                self._points_seen = None
                self._points, self._cursor = [], 0
                self.feedback.value = ""
                self._cancelling = False
            self.refresh()

    def refresh(self) -> None:
        """Re-read the item and its new log bytes; sets traits only when something changed."""
        with self._lock:
            if self.item_id is None:
                self.card.value = "<i style='color:#6b7280'>no item selected</i>"
                self.log_view.value = ""
                self.chart.outputs = ()
                for button in (self.cancel_button, self.requeue_button, self.copy_button):
                    button.disabled = True
                return
            data = self.client.item_info(self.item_id)
            if self._reader is None:
                self._reader = self.client.log_reader(self.item_id)
            text = self._reader.read()
            if text:
                joined = self._log + text
                # log_tail drops the last newline: keep it, or the next chunk joins its line.
                self._log = log_tail(joined, LOG_LINES) + ("\n" if joined.endswith("\n") else "")
            self._data = data
            card = item_card_html(data)
            if self.card.value != card:
                self.card.value = card
            self._refresh_chart(data)
            logs = (f"<pre class='lj-log' style='margin:0;font-size:11px;line-height:1.35;"
                    f"padding:4px;background:#f9fafb'>{esc(self._log)}</pre>"
                    if self._log else "<i style='color:#6b7280'>no log output yet</i>")
            if self.log_view.value != logs:
                self.log_view.value = logs
            finished = is_terminal(data["state"])
            if self._cancelling and finished:
                self._cancelling = False
                self._say(f"cancel done: the item is {data['state']}")
            self.cancel_button.disabled = finished or data["cancel_requested"]
            self.requeue_button.disabled = not finished
            # The executed notebook grows cell by cell: it can be copied mid-run too.
            self.copy_button.disabled = executed_notebook(data) is None

    def _refresh_chart(self, data: dict) -> None:
        """Redraw the metrics chart, only when the item's point counts changed."""
        from .results import chart_output

        seen = (data.get("attempt"), sorted((name, m["count"]) for name, m in
                                            (data.get("metrics") or {}).items()))
        if seen == self._points_seen:
            return
        if self._points_seen is None or self._points_seen[0] != seen[0]:
            self._points, self._cursor = [], 0  # a new attempt starts from no points
        self._points_seen = seen
        while seen[1]:  # only the points stored since the last read
            page = self.client.metric_page(data["id"], after=self._cursor, limit=10_000)
            self._points += page["points"]
            self._cursor = page["next"]
            if len(page["points"]) < 10_000:
                break
        spec = metric_chart(self._points) if seen[1] else None
        self.chart.outputs = chart_output(spec, f"metrics of item {data['id']}")

    def _say(self, message: str, ok: bool = True) -> None:
        colour = "#16a34a" if ok else "#dc2626"
        self.feedback.value = f"<span style='color:{colour}'>{esc(message)}</span>"

    def cancel(self) -> None:
        """The Cancel button: request the cancel and say what happens next."""
        if self.item_id is None:
            return
        try:
            data = self.client.cancel(self.item_id)
        except LaunchError as err:
            self._say(str(err), ok=False)
            return
        if data["state"] == "cancelled":
            self._say("cancelled")
        else:
            self._say(f"cancel requested: stopping the {data['state']} run\u2026")
            self._cancelling = True
        self.refresh()

    def requeue(self) -> Any:
        """The Requeue button: a new item with the same job and parameters, shown at once;
        "requeued as X" stays until another item is chosen. One idempotency key per click."""
        if self.item_id is None:
            return None
        old = self.item_id
        try:
            new = self.client.requeue(old, idempotency_key=uuid.uuid4().hex)
        except LaunchError as err:
            self._say(str(err), ok=False)
            return None
        with self._lock:
            self.show(new.id)
            self._say(f"requeued {old} as {new.id}")
        if self.on_select is not None:
            self.on_select(new.id)
        return new

    def copy_notebook(self, folder: str | None = None) -> str | None:
        """Copy the executed notebook to ``folder`` (default ``./launch-runs``)."""
        data = self._data or (self.client.item_info(self.item_id) if self.item_id else {})
        path = executed_notebook(data) if data else None
        if path is None:
            self._say("no executed notebook yet", ok=False)
            return None
        target_dir = folder or os.path.join(os.getcwd(), "launch-runs")
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, f"{self.item_id}.ipynb")
        shutil.copyfile(path, target)
        self._say(f"copied to {os.path.relpath(target)}: open it from the file browser")
        return target

    def close(self) -> None:
        if self.refresher is not None:
            self.refresher.stop()
        for child in (self.card, self.cancel_button, self.requeue_button, self.copy_button,
                      self.feedback, self.log_view, self.chart):
            child.close()
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None and self._data is not None:
            data["text/html"] = item_card_html(self._data)
            data["text/plain"] = f"item {self._data['id']} {self._data['state']}"
        return data


__all__ = ["ItemDetail"]
