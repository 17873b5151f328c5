"""Words and numbers as every view shows them: durations, ages, parameters, errors."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from typing import Any

ELLIPSIS = "\u2026"


def _epoch(iso_ts: str | None) -> float | None:
    if not iso_ts:
        return None
    try:
        return datetime.fromisoformat(iso_ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


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


def age(iso_ts: str | None, now: float | None = None) -> str:
    """``12 s``, ``3 min``, ``2 h``, ``4 d`` since ``iso_ts``."""
    then = _epoch(iso_ts)
    if then is None:
        return ""
    return span(max(0.0, (now or time.time()) - then))


def seconds(item: dict) -> str:
    """An item's duration as the CLI's tables print it (``12.3s``), or nothing."""
    d = item.get("duration")
    return "" if d is None else f"{d:.1f}s"


def short(value: Any, width: int = 40) -> str:
    """``value`` as one line (JSON unless a string), cut to ``width`` with an ellipsis."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS


def params_text(item: dict, width: int = 48) -> str:
    """The overrides as ``k=v`` pairs (the defaults are not news)."""
    over = item.get("overrides") or {}
    text = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(over.items()))
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS


def error_text(item: dict) -> str:
    """The item's error message with its failing cell, or nothing."""
    err = item.get("error") or {}
    message = str(err.get("message") or "")
    if not err or message.strip().lower() == str(item.get("state", "")).lower():
        return ""  # "cancelled" says no more than the state beside it
    cell = err.get("cell")
    if cell is None or re.search(rf"\bcell {cell}\b", message):
        return message  # "cell 3 raised ValueError" already names it
    return f"{message} (cell {cell})"


def log_tail(text: str, lines: int = 40) -> str:
    """The last ``lines`` lines of a log."""
    return "\n".join(text.splitlines()[-lines:])


def output_notebook(item: dict) -> str | None:
    """Path of the item's executed notebook, once there is one."""
    for out in item.get("outputs") or []:
        if out.get("kind") == "notebook":
            return out.get("path")
    return None


def notebook_href(path: str | None, cwd: str | None = None) -> str | None:
    """A link a notebook's HTML output can follow: relative to ``cwd`` when under it."""
    if not path:
        return None
    cwd = os.path.abspath(cwd or os.getcwd())
    full = os.path.abspath(path)
    if full.startswith(cwd + os.sep):
        return os.path.relpath(full, cwd).replace(os.sep, "/")
    return None


def state_counts(counts: dict[str, int]) -> str:
    """``1 running, 2 queued`` for the non-zero states (by name)."""
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)


__all__ = ["age", "error_text", "log_tail", "notebook_href", "output_notebook",
           "params_text", "seconds", "short", "span", "state_counts"]
