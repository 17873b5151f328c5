"""Cell progress of a notebook run, on its way from the executor to the store.

The notebook executor writes one JSON line per cell start ``{"cell": N, "cells": M, "at": t,
"source": first line}`` and per cell end ``{"cell": N, "end": t}`` (N counts from 1 in the
executed notebook, the injected parameters cell included). A local run's supervisor tails that
file (``PROGRESS_FILE`` in the run directory); in a container the shipped executor appends the
same records as ``["@progress", record]`` to the metrics file, and they reach the runner in
the run wrapper's marker lines (``metrics.MarkerSplitter``). ``CellClock`` folds them into the
running cell (one store UPDATE per change) and each cell's seconds (stored once at the end).
"""

from __future__ import annotations

import json
import time
from typing import Any

PROGRESS_FILE = "progress.jsonl"
#: the tag of a progress record among the metric points of a container's side channel
TAG = "@progress"
MAX_SOURCE = 120  # characters of a cell's first line kept


def first_line(source: str) -> str:
    """The first non-blank line of a cell's source, cut to ``MAX_SOURCE`` characters."""
    for line in source.splitlines():
        if line.strip():
            line = line.rstrip()
            return line if len(line) <= MAX_SOURCE else line[:MAX_SOURCE - 1] + "…"
    return ""


def record(raw: object) -> dict | None:
    """``raw`` as a progress record (a start or an end), or None when it is not one."""
    if isinstance(raw, list) and len(raw) == 2 and raw[0] == TAG:
        raw = raw[1]
    if not isinstance(raw, dict):
        return None
    cell = raw.get("cell")
    if type(cell) is not int or cell < 1:
        return None
    if isinstance(raw.get("end"), (int, float)):
        end: dict[str, Any] = {"cell": cell, "end": float(raw["end"])}
        # From a container: the cell's outputs when small (NotebookMirror), else their size.
        if isinstance(raw.get("outputs"), list):
            end["outputs"] = [o for o in raw["outputs"] if isinstance(o, dict)]
            count = raw.get("execution_count")
            end["execution_count"] = count if type(count) is int else None
        elif type(raw.get("omitted")) is int:
            end["omitted"] = raw["omitted"]
        return end
    cells, at = raw.get("cells"), raw.get("at")
    if type(cells) is not int or cells < cell or not isinstance(at, (int, float)):
        return None
    source = raw.get("source")
    return {"cell": cell, "cells": cells, "at": float(at),
            "source": first_line(source) if isinstance(source, str) else ""}


class FileTail:
    """Progress records appended to a file since the last read."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self) -> list[dict]:
        """The records of the complete lines appended since the last read."""
        if not self.path:
            return []
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        self.offset += len(data)
        data = self.partial + data
        end = data.rfind(b"\n") + 1
        self.partial = data[end:]
        found = []
        for line in data[:end].splitlines():
            try:
                one = record(json.loads(line))
            except ValueError:
                continue
            if one is not None:
                found.append(one)
        return found


class CellClock:
    """The running cell and each cell's seconds, from progress records in any batches."""

    def __init__(self) -> None:
        self.current: dict | None = None  # {"cell", "cells", "started", "source"}
        self.started: dict[int, float] = {}
        self.seconds: dict[int, float] = {}
        self.changed = False

    def feed(self, records: list[dict]) -> None:
        """Take cell starts and ends, in the order the executor wrote them."""
        for one in records:
            cell = one["cell"]
            if "end" in one:
                if cell in self.started:
                    self.seconds[cell] = max(0.0, one["end"] - self.started[cell])
                continue
            self.started[cell] = one["at"]
            self.seconds.pop(cell, None)
            self.current = {"cell": cell, "cells": one["cells"], "started": one["at"],
                            "source": one["source"]}
            self.changed = True

    def take_change(self) -> dict | None:
        """The running cell if it changed since the last call, else None."""
        if not self.changed:
            return None
        self.changed = False
        return self.current

    def durations(self, now: float | None = None) -> list[dict[str, Any]] | None:
        """Each cell's ``{"cell", "seconds"}``; a cell still open counts until ``now``."""
        if not self.started:
            return None
        now = time.time() if now is None else now
        return [{"cell": cell,
                 "seconds": round(self.seconds.get(cell, max(0.0, now - started)), 3)}
                for cell, started in sorted(self.started.items())]


class NotebookMirror:
    """The executed notebook of a container run, kept on the agent's host while it runs:
    the input notebook (parameters injected) with each finished cell's outputs from the
    side channel, written to ``path`` (at most every ``every`` s). The container's own copy
    replaces it when the run ends."""

    def __init__(self, source: bytes, parameters: dict, path: str, every: float = 0.5) -> None:
        import nbformat

        from ..jobs.parameters import inject_parameters

        nb = nbformat.reads(source.decode(), as_version=4)
        self.nb = inject_parameters(nb, parameters) if parameters else nb
        self.path = path
        self.every = every
        self.dirty = False
        self.written = 0.0

    def apply(self, records: list[dict]) -> None:
        """Put each finished cell's outputs in place."""
        for one in records:
            index = one["cell"] - 1
            if "end" not in one or not 0 <= index < len(self.nb.cells):
                continue
            cell = self.nb.cells[index]
            if cell.get("cell_type") != "code":
                continue
            if "outputs" in one:
                cell["outputs"] = one["outputs"]
                cell["execution_count"] = one.get("execution_count")
            elif "omitted" in one:
                cell["outputs"] = [{
                    "output_type": "stream", "name": "stdout",
                    "text": f"[launch-jupyter: this cell's output ({one['omitted']} bytes) "
                            "comes with the executed notebook when the run ends]\n"}]
            self.dirty = True

    def write(self, force: bool = False) -> None:
        """Write the notebook if it changed (and ``every`` s passed, unless ``force``)."""
        import os

        if not self.dirty or (not force and time.monotonic() - self.written < self.every):
            return
        folder, name = os.path.split(self.path)
        os.makedirs(folder, exist_ok=True)
        partial = os.path.join(folder, f".{name}.partial")
        with open(partial, "w", encoding="utf-8") as fh:
            json.dump(self.nb, fh, sort_keys=True, indent=1, ensure_ascii=False)
        os.replace(partial, self.path)
        self.dirty = False
        self.written = time.monotonic()


__all__ = ["PROGRESS_FILE", "TAG", "CellClock", "FileTail", "NotebookMirror", "first_line",
           "record"]
