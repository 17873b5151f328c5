"""``python benchmarks/run.py --compare FILE`` (issue #18): each ratio beside the baseline's,
those more than 25 % worse flagged; a bad FILE refused before minutes of measuring."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(*figures: tuple[str, str, float | None, bool]) -> dict:
    benchmarks: dict = {}
    for bench, name, ratio, higher in figures:
        benchmarks.setdefault(bench, {"figures": []})["figures"].append(
            {"name": name, "ratio": ratio, "higher_is_better": higher})
    return {"date": "2026-12-01T11:00:00+00:00", "revision": {"commit": "abc1234def"},
            "benchmarks": benchmarks}


def test_ratios_more_than_25_percent_worse_are_flagged(run: ModuleType) -> None:
    baseline = record(("latency", "submit p50 of 30", 2.0, False),
                      ("latency", "submit p99 of 30", 2.0, False),
                      ("throughput", "jobs/s", 0.8, True),
                      ("startup", "`items` fresh process, p50 of 21", 4.0, False),
                      ("startup", "gone figure", 1.0, False),
                      ("capture", "not run now", 1.0, False))
    now = record(("latency", "submit p50 of 30", 2.6, False),      # +30 %: flagged
                 ("latency", "submit p99 of 30", 2.4, False),      # +20 %: not
                 ("throughput", "jobs/s", 0.5, True),              # lower is worse here
                 ("startup", "`items` fresh process, p50 of 7", 4.0, False),  # --quick
                 ("startup", "a new figure", 1.5, False))
    table, flagged = run.compare(now, baseline)
    lines = {line.split(" | ")[1]: line for line in table.splitlines()[3:]}
    assert flagged == 2, table
    assert "**WORSE**" in lines["submit p50 of 30"] and "+30% worse" in lines["submit p50 of 30"]
    assert "**WORSE**" not in lines["submit p99 of 30"]
    assert "**WORSE**" in lines["jobs/s"] and "0.80x" in lines["jobs/s"]
    assert "| 4.00x | 4.00x | same |" in lines["`items` fresh process, p50 of 7"]
    assert "(new)" in lines["a new figure"]
    assert "(not measured) | 1.00x" in lines["gone figure"]
    assert "not run now" not in table  # a benchmark that did not run is not listed
    assert "commit abc1234def" in table.splitlines()[0]


@pytest.mark.slow
@pytest.mark.parametrize("content, says", [
    ("not json", "Expecting value"),
    ("[]", "not a results or baseline file"),
    ('{"benchmarks": 3}', "not a results or baseline file"),
    ('{"benchmarks": {"latency": {"figures": [{"name": "x", "ratio": "2x"}]}}}',
     "not a results or baseline file"),
])
def test_a_bad_compare_file_is_refused_before_measuring(tmp_path: Path, content: str,
                                                       says: str) -> None:
    bad = tmp_path / "baseline.json"
    bad.write_text(content)
    for path in (bad, tmp_path / "missing.json"):
        proc = subprocess.run([sys.executable, str(RUN), "--compare", str(path), "--only",
                               "throughput", "--out", str(tmp_path / "out")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert f"--compare {path}: " in proc.stderr
        assert (says if path == bad else "No such file") in proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_the_committed_baseline_is_a_valid_compare_file(run: ModuleType) -> None:
    baseline = json.loads(run.BASELINE.read_text())
    figures = run._figures_of(baseline)
    table, flagged = run.compare(baseline, baseline)
    assert figures and flagged == 0 and "**WORSE**" not in table
