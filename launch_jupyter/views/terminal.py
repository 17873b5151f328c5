"""Terminal progress of a notebook run (tqdm, for every terminal progress the CLI shows):
a bar "cell N of M" with the elapsed time under the log lines on a terminal, a cell boundary
line per cell when the output is a pipe or a file."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .progress import cell_boundary


class CellProgress:
    """Log text and cell changes of one run, written to ``stream``.

    ``bar`` None: a tqdm bar when ``stream`` is a terminal, boundary lines otherwise."""

    def __init__(self, stream: TextIO | None = None, *, bar: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.use_bar = self.stream.isatty() if bar is None else bar
        self.bar: Any = None
        self.partial = ""
        self.at_line_start = True

    def write(self, text: str) -> None:
        """Log text as it arrives (the bar stays below it)."""
        if self.bar is None:
            self._raw(text)
            return
        text, self.partial = self.partial + text, ""
        lines = text.split("\n")
        self.partial = lines.pop()
        for line in lines:
            self.bar.write(line, file=self.stream)

    def update(self, item: dict) -> None:
        """The running cell changed (``item`` as show --json gives it)."""
        progress = item.get("progress")
        if not progress:
            return
        if not self.use_bar:
            self._raw(("" if self.at_line_start else "\n") + cell_boundary(progress) + "\n")
            return
        from tqdm import tqdm

        desc = f"cell {progress['cell']} of {progress['cells']}"
        source = progress.get("source") or ""
        if self.bar is None:  # made with its words, so its first drawing has them
            self.bar = tqdm(total=progress["cells"], initial=progress["cell"] - 1, desc=desc,
                            postfix=source, file=self.stream, unit="cell", leave=False,
                            dynamic_ncols=True, bar_format="{desc} |{bar}| {elapsed}{postfix}")
            return
        self.bar.total = progress["cells"]
        self.bar.n = progress["cell"] - 1
        self.bar.set_description_str(desc, refresh=False)
        self.bar.set_postfix_str(source, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        """Remove the bar; write what is left of the last line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.partial:
            self._raw(self.partial)
            self.partial = ""

    def _raw(self, text: str) -> None:
        if text:
            self.stream.write(text)
            self.stream.flush()
            self.at_line_start = text.endswith("\n")


__all__ = ["CellProgress"]
