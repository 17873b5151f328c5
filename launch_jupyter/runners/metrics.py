"""Metric points on their way from a job to the store (``launch_jupyter.log`` in the job).

The job appends JSON lines ``[name, step, value, epoch ms]`` to the file its environment names
(``LAUNCH_METRICS_FILE``). A local run's supervisor tails that file (``FileTail``). In a
container the run wrapper (``shipped/run_wrapper.py``) tails it and writes the points to its
stdout as marker lines ``\\n<marker> [[name, step, value, time], ...]\\n``, one write of less than
4 KiB each; the runner's log follower takes them out of the log again (``MarkerSplitter``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re

#: one point as the store takes it: (name, step, value, time)
Point = tuple[str, int, float, float]

FILE_NAME = "metrics.jsonl"
MAX_NAME = 255
MAX_STEP = 2**63 - 1
READ_LIMIT = 4 * 1024 * 1024  # bytes of the metrics file read per tick
MAX_LINE = 64 * 1024  # a marker line longer than this is not ours: it stays in the log


def metrics_marker(item_id: str, attempt: int) -> str:
    """The word that starts an attempt's metric lines in its container's log."""
    digest = hashlib.sha256(f"metrics/{item_id}/{attempt}".encode()).hexdigest()[:16]
    return f"@@launch-jupyter-metrics-{digest}@@"


def point(raw: object) -> Point | None:
    """``raw`` as a point (time in seconds), or None when it is not ``[name, step, value,
    epoch ms]`` with a name of 1 to 255 characters, a step in 0..2**63-1 and finite numbers."""
    if not isinstance(raw, list) or len(raw) != 4:
        return None
    name, step, value, at = raw
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        return None
    if type(step) is not int or not 0 <= step <= MAX_STEP:
        return None
    for number in (value, at):
        if type(number) not in (int, float) or not math.isfinite(number):
            return None
    return name, step, float(value), at / 1000.0


def parse_lines(data: bytes) -> list[Point]:
    """The points of complete JSON lines; lines that are not points are skipped."""
    points = []
    for line in data.splitlines():
        try:
            found = point(json.loads(line))
        except ValueError:
            continue
        if found is not None:
            points.append(found)
    return points


class FileTail:
    """New complete lines of a metrics file, as points, a read at a time."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self, limit: int = READ_LIMIT) -> list[Point]:
        """Points appended since the last read (at most ``limit`` bytes of the file)."""
        if not self.path:
            return []
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(limit)
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        end = data.rfind(b"\n") + 1
        self.partial = data[end:]
        return parse_lines(data[:end])

    def drain(self) -> list[Point]:
        """Everything left in the file (the job has ended)."""
        points: list[Point] = []
        while True:
            before = self.offset
            points += self.read()
            if self.offset == before:
                return points


class MarkerSplitter:
    """Splits a container's log into the job's output and the metric lines the run wrapper
    wrote into it, whatever the chunk boundaries of the log stream."""

    def __init__(self, marker: str) -> None:
        self.start = f"\n{marker} ".encode()
        self.pending = b""
        self.in_line = False
        self.points: list[Point] = []
        #: other records on the channel: the notebook executor's cell progress (progress.py)
        self.records: list[dict] = []

    def feed(self, data: bytes) -> bytes:
        """The job's output in ``data`` (bytes that may start a marker wait for more)."""
        buf = self.pending + data
        self.pending = b""
        out = bytearray()
        while buf:
            if self.in_line:
                end = buf.find(b"\n")
                if end < 0:
                    if len(buf) > MAX_LINE:  # not ours after all: give it back to the log
                        out += self.start + buf
                        self.in_line = False
                    else:
                        self.pending = buf
                    break
                self._take(buf[:end])
                buf = buf[end + 1:]
                self.in_line = False
                continue
            at = buf.find(self.start)
            if at < 0:
                keep = held_back(buf, self.start)
                out += buf[:len(buf) - keep]
                self.pending = buf[len(buf) - keep:]
                break
            out += buf[:at]
            buf = buf[at + len(self.start):]
            self.in_line = True
        return bytes(out)

    def finish(self) -> bytes:
        """The stream ended: what was held back is output (a cut-off metric line is lost)."""
        tail, self.pending = self.pending, b""
        if self.in_line:
            self.in_line = False
            return b""
        return tail

    def take(self) -> list[Point]:
        """The points read so far, handed over once."""
        points, self.points = self.points, []
        return points

    def _take(self, payload: bytes) -> None:
        try:
            batch = json.loads(payload)
        except ValueError:
            return
        if isinstance(batch, list):
            self.points += [p for p in map(point, batch) if p is not None]
            self.records += [r for r in batch if isinstance(r, dict)]

    def take_records(self) -> list[dict]:
        """The other records read so far (cell progress), handed over once."""
        records, self.records = self.records, []
        return records


def held_back(data: bytes, pattern: bytes) -> int:
    """How many trailing bytes of ``data`` could be the start of ``pattern`` (kept back
    until the next chunk says whether a marker begins there)."""
    for size in range(min(len(data), len(pattern) - 1), 0, -1):
        if data.endswith(pattern[:size]):
            return size
    return 0


def raw_overlap(stored: bytes, output: bytes, marker: str) -> int:
    """Bytes of a container's raw ``output`` (metric lines included) whose job output is
    already at the end of the ``stored`` log: where an adopting agent resumes the stream."""
    from .base import overlap

    spans = [m.span() for m in re.finditer(
        b"\n" + re.escape(marker.encode()) + b" [^\n]*\n", output)]
    kept, raw = bytearray(), 0
    for start, end in spans:
        kept += output[raw:start]
        raw = end
    kept += output[raw:]
    left = overlap(stored, bytes(kept))
    raw = 0
    for start, end in spans:
        if left < start - raw:
            return raw + left
        left -= start - raw
        raw = end  # a metric line right at the boundary was read by the agent before
    return raw + left


__all__ = ["FILE_NAME", "FileTail", "MarkerSplitter", "Point", "metrics_marker",
           "parse_lines", "point", "raw_overlap"]
