"""Cell progress of a notebook run as every door shows it: the text line (``show``, ``items``),
the HTML progress bar (item card, panel), the cell boundary of ``logs -f`` and where the time
went once a run is over. ``progress`` is the item's ``progress`` record (show --json)."""

from __future__ import annotations

import time
from typing import Any

from .format import _epoch, span

BAR_COLOUR = "#2563eb"


def elapsed(item: dict, now: float | None = None) -> float | None:
    """Seconds since the item's run started, or None before it did."""
    started = _epoch(item.get("started_at"))
    return None if started is None else max(0.0, (now or time.time()) - started)


def progress_line(item: dict, now: float | None = None) -> str | None:
    """``cell 4 of 6 · 31 s elapsed · import os, time`` while a notebook item runs, else
    None."""
    progress = item.get("progress")
    if not progress:
        return None
    parts = [f"cell {progress['cell']} of {progress['cells']}"]
    took = elapsed(item, now)
    if took is not None:
        parts.append(f"{span(took)} elapsed")
    if progress.get("source"):
        parts.append(progress["source"])
    return " \u00b7 ".join(parts)


def progress_bar_html(item: dict, now: float | None = None) -> str:
    """A bar filled by the cells done, labelled "cell N of M" and the elapsed time; empty
    when the item has no progress."""
    import html  # its entity table would cost the text commands (`items`, `show`) ~2 ms

    progress = item.get("progress")
    if not progress:
        return ""
    cell, cells = int(progress["cell"]), max(1, int(progress["cells"]))
    percent = round(100 * (cell - 1) / cells)
    took = elapsed(item, now)
    label = f"cell {cell} of {cells}" + (f" \u00b7 {span(took)}" if took is not None else "")
    source = html.escape(progress.get("source") or "", quote=True)
    # The label first and a bar of fixed width: a wide card never pushes the words away.
    return (f"<div class='lj-progress' data-cell='{cell}' data-cells='{cells}' title='{source}'"
            f" style='display:flex;align-items:center;gap:8px;font-size:12px;margin:4px 0'>"
            f"<span class='lj-progress-label' style='white-space:nowrap;color:#374151'>"
            f"{html.escape(label)}</span>"
            f"<div style='width:16em;height:6px;background:#e5e7eb;flex:none;"
            f"border-radius:3px;overflow:hidden'><div class='lj-progress-fill' "
            f"style='width:{percent}%;height:100%;background:{BAR_COLOUR}'></div></div>"
            f"<code style='color:#6b7280;font-size:11px;white-space:nowrap;overflow:hidden;"
            f"text-overflow:ellipsis;max-width:24em'>{source}</code></div>")


def progress_note(item: dict) -> str:
    """`` cell 4/6`` after a running notebook item's state in a table row, else nothing."""
    progress = item.get("progress")
    if not progress:
        return ""
    return (f" <span class='lj-row-progress' style='color:#6b7280;font-size:11px'>"
            f"cell {progress['cell']}/{progress['cells']}</span>")


def cell_boundary(progress: dict) -> str:
    """The line ``logs -f`` prints when a cell starts: ``── cell 3 of 5: x = 1 ──``."""
    source = f": {progress['source']}" if progress.get("source") else ""
    return f"\u2500\u2500 cell {progress['cell']} of {progress['cells']}{source} \u2500\u2500"


def slowest_cells(cells: list[dict[str, Any]] | None, count: int = 3) -> str | None:
    """``cell 4 12.0 s, cell 2 0.8 s`` (the slowest ``count`` cells of a finished run)."""
    if not cells:
        return None
    slow = sorted(cells, key=lambda c: -c["seconds"])[:count]
    return ", ".join(f"cell {c['cell']} {span(c['seconds'])}" for c in slow)


__all__ = ["cell_boundary", "elapsed", "progress_bar_html", "progress_line", "progress_note",
           "slowest_cells"]
