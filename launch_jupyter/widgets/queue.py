"""The queue panel: items with state, job:version, parameters, priority, age and duration;
a state filter, paging, an item detail below, and auto-refresh from a background thread."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import ipywidgets as w

from ..views.format import params_text
from ..views.html import ItemsView, badge, esc, items_table_html
from ..views.states import STATES, label
from .item import ItemDetail
from .refresh import Refresher, set_options, widgets_available

ALL = "all"
NEWEST = "newest"
#: items a metric sort reads (it orders across pages, so it reads them all, up to this)
SORTED_ITEMS = 1000


def row_label(item: dict) -> str:
    """One clickable line of the rows list: id, state, job and the overrides."""
    progress = item.get("progress")
    state = label(item) + (f" cell {progress['cell']}/{progress['cells']}" if progress else "")
    params = params_text(item, 40)
    return f"{item['id']}  {state:<18} {item['job']}" + (f"  {params}" if params else "")


class QueuePanel(w.VBox):
    """Live table of a queue's items (all queues when ``queue`` is None).

    Parameters: ``state`` filter, ``sweep_id`` to show one sweep, ``page_size`` rows per page,
    ``interval`` seconds between refreshes.
    """

    def __init__(self, client: Any, queue: str | None = None, *, state: str | None = None,
                 sweep_id: str | None = None, page_size: int = 20, interval: float = 1.0,
                 **kwargs: Any) -> None:
        self.client = client
        self.queue = queue
        self.sweep_id = sweep_id
        self.page_size = max(1, int(page_size))
        self.page = 0
        self.total = 0
        self.rows: list[dict] = []
        self._lock = threading.RLock()
        self._picked: str | None = None  # an item the user chose; else follow the newest
        self._setting = False  # the panel itself is setting the rows list or sort options
        title = f"queue {queue}" if queue else "all queues"
        if sweep_id:
            title += f" \u00b7 sweep {sweep_id}"
        self.title = w.HTML(f"<b>{esc(title)}</b>")
        self.counts = w.HTML()
        self.state_filter = w.Dropdown(options=[ALL, *STATES], value=state or ALL,
                                       description="state", layout=w.Layout(width="180px"))
        self.table = w.HTML(layout=w.Layout(overflow="auto"))
        # Metric columns sort from here: the table is HTML, its headers cannot take clicks.
        self.sort = w.Dropdown(options=[NEWEST], value=NEWEST, description="sort",
                               layout=w.Layout(width="200px"))
        self.prev_button = w.Button(description="\u2039 prev", layout=w.Layout(width="70px"))
        self.next_button = w.Button(description="next \u203a", layout=w.Layout(width="70px"))
        self.page_label = w.Label()
        # One line per row of the page: clicking a line shows that item below.
        self.item_picker = w.Select(options=[], rows=min(self.page_size, 8),
                                    layout=w.Layout(width="100%"))
        # A click on a table row: the row writes "<id> <time>" into this hidden box of this
        # panel (found by the panel's own class), whose value reaches the kernel as any
        # widget's does; the time makes a second click on the same row a change too.
        self._mark = f"lj-panel-{uuid.uuid4().hex[:12]}"
        self.row_click = w.Text(layout=w.Layout(display="none"))
        self.row_click.add_class("lj-row-click")
        self._onclick = (
            f"var b=this.closest('.{self._mark}');"
            "var t=b&&b.querySelector('.lj-row-click input');"
            "if(t){t.value=this.dataset.item+' '+Date.now();"
            "t.dispatchEvent(new Event('input',{bubbles:true}));}")
        self.detail = ItemDetail(client, auto_refresh=False)
        self.detail.on_select = self.select
        self.state_filter.observe(self._on_filter, names="value")
        self.sort.observe(self._on_filter, names="value")
        self.prev_button.on_click(lambda _: self.go(self.page - 1))
        self.next_button.on_click(lambda _: self.go(self.page + 1))
        self.item_picker.observe(self._on_pick, names="value")
        self.row_click.observe(self._on_row_click, names="value")
        header = w.HBox([self.title, self.counts, self.state_filter, self.sort],
                        layout=w.Layout(align_items="center", justify_content="space-between"))
        pager = w.HBox([self.prev_button, self.page_label, self.next_button],
                       layout=w.Layout(align_items="center"))
        hint = w.HTML("<span style='color:#6b7280;font-size:11px'>click a row of the table "
                      "or of this list to show its item below</span>")
        super().__init__([header, self.table, pager, hint, self.item_picker, self.detail,
                          self.row_click], **kwargs)
        self.add_class(self._mark)
        self.refresh()
        self.refresher = Refresher(self, self.refresh, interval).start()

    # -- state ----------------------------------------------------------------------------

    @property
    def state(self) -> str | None:
        value = self.state_filter.value
        return None if value == ALL else value

    def _on_filter(self, change: dict) -> None:
        if self._setting:
            return
        self.page = 0
        self.refresh()

    def _on_pick(self, change: dict) -> None:
        if self._setting:
            return
        if change["new"] is not None and change["new"] != self.detail.item_id:
            self._picked = change["new"]
            self.detail.show(change["new"])
            self.refresh()

    def _on_row_click(self, change: dict) -> None:
        item_id = (change["new"] or "").split(" ")[0]
        if item_id and item_id in {r["id"] for r in self.rows}:
            self.select(item_id)

    def select(self, item_id: str) -> None:
        """Show item ``item_id`` below the table and keep it chosen (a click, a requeue)."""
        with self._lock:
            self._picked = item_id
            self.refresh()

    def go(self, page: int) -> None:
        """Show page ``page`` (0-based; clamped)."""
        pages = max(1, -(-self.total // self.page_size))
        self.page = min(max(0, page), pages - 1)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the page and the counts; set only the traits whose value changed."""
        with self._lock:
            page = self._page()
            if not page["items"] and page["total"] and self.page:
                self.page = max(0, -(-page["total"] // self.page_size) - 1)
                page = self._page()
            rows, total = page["items"], page["total"]
            self.rows, self.total = rows, total
            selected = self._picked if self._picked else (rows[0]["id"] if rows else None)
            empty = "no items yet" if self.state is None else f"no {self.state} items"
            sort = None if self.sort.value == NEWEST else self.sort.value
            html = items_table_html(rows, selected=selected, empty=empty, sort=sort,
                                    row_onclick=self._onclick)
            self._sort_options(rows)
            if self.table.value != html:
                self.table.value = html
            counts = " ".join(f"{badge(s)}&nbsp;{n}" for s, n in page["counts"].items() if n)
            if self.counts.value != counts:
                self.counts.value = counts
            pages = max(1, -(-total // self.page_size))
            label = f"page {self.page + 1} of {pages} \u00b7 {total} items"
            if self.page_label.value != label:
                self.page_label.value = label
            self.prev_button.disabled = self.page == 0
            self.next_button.disabled = self.page >= pages - 1
            options = [(row_label(r), r["id"]) for r in rows]
            if self._picked and self._picked not in {r["id"] for r in rows}:
                options.append((self._picked, self._picked))
            self._setting = True
            try:
                if list(self.item_picker.options) != options:
                    self.item_picker.options = options
                if selected is not None and self.item_picker.value != selected:
                    self.item_picker.value = selected
            finally:
                self._setting = False
            if self.detail.item_id != selected:
                self.detail.show(selected)
            else:
                self.detail.refresh()

    def _page(self) -> dict:
        """This page of the items, with the total and per-state counts (one paging rule);
        sorted by a metric, the page is cut from every item ordered by its last value."""
        if self.sort.value == NEWEST:
            return self.client.page(queue=self.queue, state=self.state, sweep=self.sweep_id,
                                    limit=self.page_size, offset=self.page * self.page_size)
        page = self.client.page(queue=self.queue, state=self.state, sweep=self.sweep_id,
                                limit=SORTED_ITEMS)
        name, _, way = self.sort.value.rpartition(":")
        having = [i for i in page["items"] if name in (i.get("metrics") or {})]
        having.sort(key=lambda i: i["metrics"][name]["last"], reverse=way == "max")
        ordered = having + [i for i in page["items"] if name not in (i.get("metrics") or {})]
        start = self.page * self.page_size
        return dict(page, items=ordered[start:start + self.page_size])

    def _sort_options(self, rows: list[dict]) -> None:
        """Offer a max/min sort of every metric seen so far (options only grow)."""
        seen = {o.rpartition(":")[0] for o in self.sort.options if o != NEWEST}
        seen |= {name for row in rows for name in row.get("metrics") or {}}
        options = [NEWEST, *(f"{m}:{way}" for m in sorted(seen) for way in ("max", "min"))]
        set_options(self, self.sort, options)  # the user's sort stays

    # -- lifecycle and fallbacks ----------------------------------------------------------

    def close(self) -> None:
        """Close the panel and stop its refresh thread."""
        self.refresher.stop()
        for child in (self.title, self.counts, self.state_filter, self.sort, self.table,
                      self.prev_button, self.next_button, self.page_label, self.item_picker,
                      self.row_click):
            child.close()
        self.detail.close()
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None:  # for front ends without widgets (nbconvert, terminal)
            view = ItemsView(self.rows, self.total)
            data["text/plain"] = repr(view)
            data["text/html"] = view._repr_html_()
        return data


__all__ = ["ItemsView", "QueuePanel", "row_label", "widgets_available"]
