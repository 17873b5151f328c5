"""HTML and text renderings of items, shared by the item card, the panels and their fallbacks.

No ipywidgets import here: the item card and the text fallbacks (terminal IPython, nbconvert)
use these without a widget front end.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

#: state -> (colour, icon); the icon keeps the state readable without colour.
STATE_STYLE = {
    "queued": ("#6b7280", "\u25cb"),      # ○
    "leased": ("#2563eb", "\u25d4"),      # ◔
    "running": ("#2563eb", "\u25b6"),     # ▶
    "succeeded": ("#16a34a", "\u2714"),   # ✔
    "failed": ("#dc2626", "\u2716"),      # ✖
    "cancelled": ("#a16207", "\u2298"),   # ⊘
}

_TABLE_CSS = (
    "border-collapse:collapse;font-size:12px;font-family:var(--jp-ui-font-family,sans-serif)"
)
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #e5e7eb;white-space:nowrap"


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _epoch(iso_ts: str | None) -> float | None:
    if not iso_ts:
        return None
    try:
        return datetime.fromisoformat(iso_ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def age(iso_ts: str | None, now: float | None = None) -> str:
    """``12 s``, ``3 min``, ``2 h``, ``4 d`` since ``iso_ts``."""
    then = _epoch(iso_ts)
    if then is None:
        return ""
    return span(max(0.0, (now or time.time()) - then))


def span(seconds: float | None) -> str:
    """A short human duration: ``0.8 s``, ``42 s``, ``3 min``, ``2.5 h``."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


def badge(state: str) -> str:
    """A coloured state with its icon."""
    colour, icon = STATE_STYLE.get(state, ("#6b7280", "?"))
    return (f"<span class='lj-state lj-{esc(state)}' style='color:{colour};font-weight:600'>"
            f"{icon} {esc(state)}</span>")


def short_json(value: Any, width: int = 48) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def params_text(item: dict, width: int = 48) -> str:
    """The overrides as ``k=v`` pairs (the defaults are not news)."""
    over = item.get("overrides") or {}
    text = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(over.items()))
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def error_text(item: dict) -> str:
    err = item.get("error") or {}
    if not err:
        return ""
    cell = f" (cell {err['cell']})" if err.get("cell") is not None else ""
    return f"{err.get('message', '')}{cell}"


def notebook_href(path: str | None, cwd: str | None = None) -> str | None:
    """A link a notebook's HTML output can follow: relative to ``cwd`` when under it."""
    if not path:
        return None
    cwd = os.path.abspath(cwd or os.getcwd())
    full = os.path.abspath(path)
    if full.startswith(cwd + os.sep):
        return os.path.relpath(full, cwd).replace(os.sep, "/")
    return None


def output_notebook(item: dict) -> str | None:
    for out in item.get("outputs") or []:
        if out.get("kind") == "notebook":
            return out.get("path")
    return None


def item_card_html(item: dict, *, log_tail: str | None = None) -> str:
    """The rich card an item handle shows as the last line of a cell."""
    rows: list[tuple[str, str]] = [
        ("job", esc(item["job"])),
        ("queue", esc(item["queue"])),
        ("priority", esc(item["priority"])),
        ("parameters", esc(short_json(item.get("parameters") or {}, 120))),
        ("attempt", f"{item['attempt']}/{item['max_attempts']}"),
        ("age", esc(age(item.get("created_at")))),
    ]
    if item.get("duration") is not None:
        rows.append(("duration", esc(span(item["duration"]))))
    if item.get("sweep_id"):
        rows.append(("sweep", esc(item["sweep_id"])))
    if item.get("requeued_from"):
        rows.append(("requeued from", esc(item["requeued_from"])))
    if item.get("warning"):
        rows.append(("warning", f"<span style='color:#b45309'>{esc(item['warning'])}</span>"))
    if item.get("error"):
        rows.append(("error", f"<span style='color:#dc2626'>{esc(error_text(item))}</span>"))
    nb = output_notebook(item)
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
            f"<div><b>item {esc(item['id'])}</b> &nbsp;{badge(item['state'])}</div>"
            f"<table style='{_TABLE_CSS}'>{body}</table>{tail}</div>")


def item_line(item: dict) -> str:
    """One line of text for an item."""
    _, icon = STATE_STYLE.get(item["state"], ("", "?"))
    extra = f"  {error_text(item)}" if item.get("error") else ""
    return (f"{item['id']}  {icon} {item['state']:<9}  {item['job']:<16}  "
            f"{params_text(item, 40)}{extra}")


ITEM_COLUMNS = ("state", "item", "job", "parameters", "priority", "age", "duration")


def items_table_html(items: Sequence[dict], *, selected: str | None = None,
                     empty: str = "no items") -> str:
    """The queue table; rows carry ``data-item``/``data-state``, sweeps get a header row."""
    if not items:
        return f"<div class='lj-items' style='color:#6b7280;padding:4px'>{esc(empty)}</div>"
    head = "".join(f"<th style='{_CELL};color:#6b7280'>{c}</th>" for c in ITEM_COLUMNS)
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
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts[sweep].items()))
            rows.append(f"<tr class='lj-sweep' data-sweep='{esc(sweep)}'><td colspan="
                        f"{len(ITEM_COLUMNS)} style='{_CELL};background:#f3f4f6'>"
                        f"sweep {esc(sweep)} \u2014 {esc(summary)}</td></tr>")
        elif not item.get("sweep_id"):
            sweep = None
        style = "background:#eff6ff" if item["id"] == selected else ""
        indent = "&nbsp;&nbsp;" if item.get("sweep_id") else ""
        duration = span(item["duration"]) if item.get("duration") is not None else ""
        title = esc(error_text(item)) if item.get("error") else ""
        cells = [badge(item["state"]), f"{indent}<code>{esc(item['id'])}</code>",
                 esc(item["job"]), esc(params_text(item)), esc(item["priority"]),
                 esc(age(item.get("created_at"))), esc(duration)]
        rows.append(f"<tr class='lj-row' data-item='{esc(item['id'])}' "
                    f"data-state='{esc(item['state'])}' title='{title}' style='{style}'>"
                    + "".join(f"<td style='{_CELL}'>{c}</td>" for c in cells) + "</tr>")
    return (f"<table class='lj-items' style='{_TABLE_CSS}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def items_table_text(items: Sequence[dict], *, total: int | None = None) -> str:
    """The queue table as plain text (terminal IPython, text/plain fallbacks)."""
    if not items:
        return "no items"
    lines = [item_line(item) for item in items]
    if total is not None and total > len(items):
        lines.append(f"\u2026 {total - len(items)} more")
    return "\n".join(lines)


def log_tail(text: str, lines: int = 40) -> str:
    """The last ``lines`` lines of a log."""
    parts = text.splitlines()
    return "\n".join(parts[-lines:])


__all__ = ["STATE_STYLE", "age", "badge", "item_card_html", "item_line", "items_table_html",
           "items_table_text", "log_tail", "notebook_href", "output_notebook", "span"]
