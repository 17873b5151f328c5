"""Run every benchmark: ``python benchmarks/run.py [--quick] [--only NAME ...]``.

Prints each figure next to its same-run baseline and the ratio, then a summary table, and
writes everything (samples included) as JSON to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_bigoutput  # noqa: E402
import bench_breakdown  # noqa: E402
import bench_capture  # noqa: E402
import bench_kubernetes  # noqa: E402
import bench_latency  # noqa: E402
import bench_metrics  # noqa: E402
import bench_notebook  # noqa: E402
import bench_progress  # noqa: E402
import bench_race  # noqa: E402
import bench_recovery  # noqa: E402
import bench_throughput  # noqa: E402
import bench_views  # noqa: E402
from common import Figure, log  # noqa: E402

BENCHMARKS: dict[str, Callable[[bool], list[Figure]]] = {
    "latency": bench_latency.run,
    "throughput": bench_throughput.run,
    "notebook": bench_notebook.run,
    "capture": bench_capture.run,
    "breakdown": bench_breakdown.run,
    "race": bench_race.run,
    "bigoutput": bench_bigoutput.run,
    "recovery": bench_recovery.run,
    "kubernetes": bench_kubernetes.run,
    "metrics": bench_metrics.run,
    "progress": bench_progress.run,
    "views": bench_views.run,
}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def markdown_table(figures: list[Figure]) -> str:
    rows = ["| figure | value | baseline | ratio | target | met? |",
            "|---|---|---|---|---|---|"]
    for f in figures:
        baseline = f"{_fmt(f.baseline)} {f.unit} ({f.baseline_name})" if f.baseline_name else "-"
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
        met = {True: "yes", False: "**no**", None: "-"}[f.met]
        rows.append(f"| {f.name} | {_fmt(f.value)} {f.unit} | {baseline} | {ratio} | "
                    f"{f.target} | {met} |")
    return "\n".join(rows)


def revision() -> dict:
    """The launch_jupyter code measured: commit, and whether the tree had local changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True,
                              text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"),
            "dirty_files": git("status", "--porcelain", "launch_jupyter").splitlines()}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "processor": platform.processor() or None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (about a minute)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=None,
                        help="run only these benchmarks")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="folder for the JSON results (default benchmarks/results)")
    args = parser.parse_args(argv)
    # Every benchmark makes its own store: do not let the caller's settings leak in.
    for var in [v for v in os.environ if v.startswith("LAUNCH_JUPYTER_")
                and not v.startswith(("LAUNCH_JUPYTER_BENCH_", "LAUNCH_JUPYTER_TEST_"))]:
        del os.environ[var]

    started = datetime.now(timezone.utc)
    record: dict = {"date": started.isoformat(timespec="seconds"), "quick": args.quick,
                    "machine": machine(), "revision": revision(), "benchmarks": {}}
    figures: list[Figure] = []
    for name in args.only or list(BENCHMARKS):
        log(f"== {name}")
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        result = BENCHMARKS[name](args.quick)
        seconds = time.perf_counter() - t0
        for f in result:
            ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
            print(f"{name:10}  {f.name}: {_fmt(f.value)} {f.unit}  |  baseline "
                  f"{_fmt(f.baseline)} ({f.baseline_name or '-'})  |  ratio {ratio}  |  "
                  f"target {f.target}  met {f.met}", flush=True)
        record["benchmarks"][name] = {
            "seconds": round(seconds, 1), "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(), "figures": [f.as_json() for f in result]}
        figures.extend(result)
    table = markdown_table(figures)
    record["table"] = table
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    (args.out / "latest.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
