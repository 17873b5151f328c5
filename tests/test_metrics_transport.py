"""The metric channel of container logs (runners/metrics.py): the real run wrapper's marker
lines come out of a log cut anywhere, the job's own output stays byte for byte, malformed
points are dropped, and an adopting agent resumes the raw log where the stored one ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from launch_jupyter.runners.build import support_files
from launch_jupyter.runners.metrics import (
    FileTail,
    MarkerSplitter,
    metrics_marker,
    point,
    raw_overlap,
)

MARKER = metrics_marker("01TEST", 1)


def wrapped(tmp: Path, code: str) -> bytes:
    """stdout of the shipped wrapper around ``python -c code`` run as a job (stand-in log)."""
    lib = tmp / "lib"
    for rel, content in support_files():
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        (lib / rel).write_bytes(content)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(lib), "LAUNCH_ITEM_ID": "01TEST",
           "LAUNCH_METRICS_FILE": str(tmp / "metrics.jsonl")}
    proc = subprocess.run([sys.executable, str(lib / "launch_run.py"), "--metrics-marker",
                           MARKER, "--", sys.executable, "-c", code], env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


#: job output that looks like the start of a marker line, UTF-8 and bytes that are not
TEXT = ("\n@@launch-jupyter-metr\u00e9 \n" + MARKER[:-3] + "\n").encode() + b"\xff\x00 no newline"
_RAW: list[bytes] = []


def raw_log(tmp: Path) -> bytes:
    """The real wrapper's stdout for a job printing TEXT around 600 points (run once)."""
    if not _RAW:
        _RAW.append(wrapped(tmp, (
            "import sys, time, launch_jupyter as lj\n"
            f"sys.stdout.buffer.write({TEXT!r}); sys.stdout.flush()\n"
            "for i in range(300):\n"
            "    lj.log({'loss': i / 7, 'a name with \\u00e9': -i}, step=i)\n"
            "    if i == 150:\n"
            f"        sys.stdout.buffer.write({TEXT!r}); sys.stdout.flush(); time.sleep(0.3)\n")))
    return _RAW[0]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(0, 40000), max_size=40))
def test_the_wrappers_metric_lines_leave_a_log_cut_anywhere(tmp_path_factory,
                                                            cuts: list[int]) -> None:
    raw = raw_log(tmp_path_factory.mktemp("wrap"))
    assert raw.count(MARKER.encode()) >= 2  # several batches: each write under 4 KiB
    assert all(len(line) < 4096 for line in raw.split(b"\n") if MARKER.encode() in line)
    splitter = MarkerSplitter(MARKER)
    log = b"".join(splitter.feed(chunk) for chunk in split(raw, cuts)) + splitter.finish()
    assert log == TEXT + TEXT  # the job's output, byte for byte
    points = splitter.take()
    assert [(name, step) for name, step, _, _ in points] == [
        (name, i) for i in range(300) for name in ("loss", "a name with \u00e9")]
    assert points[2][2] == 1 / 7 and points[3][2] == -1.0


def test_malformed_points_are_dropped_and_a_stray_marker_stays_in_the_log() -> None:
    assert point(["loss", 3, 0.5, 1_800_000_000_000]) == ("loss", 3, 0.5, 1_800_000_000.0)
    for bad in (["", 0, 1, 1], ["x" * 256, 0, 1, 1], ["a", -1, 1, 1], ["a", True, 1, 1],
                ["a", 0, float("nan"), 1], ["a", 0, "1", 1], ["a", 0, 1], "a", None):
        assert point(bad) is None, bad
    splitter = MarkerSplitter(MARKER)
    payload = json.dumps([["ok", 1, 2.5, 1], ["bad", -1, 0, 0], 7]).encode()
    out = splitter.feed(b"job\n" + f"\n{MARKER} ".encode() + payload + b"\nmore\n")
    out += splitter.feed(f"\n{MARKER} not json\n".encode()) + splitter.finish()
    assert out == b"job\nmore\n"
    assert splitter.take() == [("ok", 1, 2.5, 0.001)]
    stray = MarkerSplitter(MARKER)
    unterminated = f"\n{MARKER} ".encode() + b"x" * 70_000
    assert stray.feed(unterminated) + stray.finish() == unterminated  # not ours: kept


def test_an_adopting_agent_resumes_the_raw_log_after_what_is_stored() -> None:
    line = f"\n{MARKER} [[\"loss\",0,1.0,1]]\n".encode()
    raw = b"first\n" + line + b"second\n" + line + b"third\n"
    assert raw_overlap(b"...first\n", raw, MARKER) == len(b"first\n" + line)
    assert raw_overlap(b"first\nsecond\n", raw, MARKER) == len(raw) - len(b"third\n")
    assert raw_overlap(b"first\nsecond\nthird\n", raw, MARKER) == len(raw)
    assert raw_overlap(b"", raw, MARKER) == 0


def test_the_file_tail_reads_complete_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = FileTail(str(path))
    assert tail.read() == []  # no file yet
    path.write_text('["a",0,1,1000]\n["a",1,')
    assert tail.read() == [("a", 0, 1.0, 1.0)]
    with path.open("a") as fh:
        fh.write('2,2000]\nnot json\n["b",0,3,3000]\n')
    assert tail.drain() == [("a", 1, 2.0, 2.0), ("b", 0, 3.0, 3.0)]
