"""Run every benchmark: ``python benchmarks/run.py [--quick] [--only NAME ...]``.

Prints each figure next to its same-run baseline and the ratio, then a summary table, and
writes everything (samples included) as JSON to ``benchmarks/results/``. ``--compare FILE``
prints each ratio beside the one recorded in FILE (the committed ``benchmarks/baseline.json``)
and flags those more than 25 % worse; ``--update-baseline FILE`` records this run's figures in
FILE (replacing the benchmarks that ran, keeping the others).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
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
import bench_envs  # noqa: E402
import bench_kubernetes  # noqa: E402
import bench_latency  # noqa: E402
import bench_metrics  # noqa: E402
import bench_notebook  # noqa: E402
import bench_progress  # noqa: E402
import bench_race  # noqa: E402
import bench_recovery  # noqa: E402
import bench_remote  # noqa: E402
import bench_scale  # noqa: E402
import bench_startup  # noqa: E402
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
    "envs": bench_envs.run,
    "startup": bench_startup.run,
    "scale": bench_scale.run,
    "remote": bench_remote.run,
}
#: the committed baseline ``--compare`` reads by default
BASELINE = HERE / "baseline.json"
#: how much worse than the baseline a ratio may get before ``--compare`` flags it
TOLERANCE = 0.25


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


def _identity(name: str) -> str:
    """A figure's name without its sample count (``p50 of 21``; ``p50 of 7`` with --quick),
    so a quick run compares with a full baseline."""
    return re.sub(r"\b(p50|p99|median) of \d+\b", r"\1", name)


def _figures_of(record: dict) -> dict[tuple[str, str], dict]:
    """(benchmark, figure name without sample count) -> figure, of a results or baseline JSON
    record; ValueError when it is not one (``{"benchmarks": {NAME: {"figures": [...]}}}``)."""
    benchmarks = record.get("benchmarks") if isinstance(record, dict) else None
    if not isinstance(benchmarks, dict) or not all(
            isinstance(data, dict) and isinstance(data.get("figures"), list)
            and all(isinstance(f, dict) and isinstance(f.get("name"), str)
                    and isinstance(f.get("ratio"), (int, float, type(None)))
                    for f in data["figures"]) for data in benchmarks.values()):
        raise ValueError('not a results or baseline file: expected {"benchmarks": {NAME: '
                         '{"figures": [{"name": ..., "ratio": ...}, ...]}}} (benchmarks/'
                         'baseline.json, or a run\'s JSON in benchmarks/results/)')
    return {(bench, _identity(f["name"])): f for bench, data in benchmarks.items()
            for f in data["figures"]}


def _ratio(figure: dict) -> str:
    return "-" if figure.get("ratio") is None else f"{figure['ratio']:.2f}x"


def worse_by(now: dict, then: dict) -> float | None:
    """How much worse ``now``'s ratio is than ``then``'s (0.3: 30 % worse; negative: better),
    or None when either has no ratio. Higher is better for throughput figures."""
    if now.get("ratio") is None or not then.get("ratio"):
        return None
    change = now["ratio"] / then["ratio"] - 1.0
    return -change if now.get("higher_is_better") else change


def compare(record: dict, baseline: dict, *, tolerance: float = TOLERANCE) -> tuple[str, int]:
    """A table of this run's ratios beside the baseline's; and how many are flagged (more
    than ``tolerance`` worse). Figures are matched by benchmark and name, sample counts left
    out; figures the baseline lacks are listed as new, and its figures of a benchmark that
    ran but were not measured now (renamed, dropped) as not measured."""
    then = _figures_of(baseline)
    revision = baseline.get("revision")
    commit = str(revision.get("commit", "?")) if isinstance(revision, dict) else "?"
    rows = [f"ratios against the baseline ({baseline.get('date', '?')}, commit "
            f"{commit[:10]}); flagged: more than "
            f"{tolerance:.0%} worse",
            "| benchmark | figure | ratio now | ratio in baseline | change | flag |",
            "|---|---|---|---|---|---|"]
    flagged = 0
    now = _figures_of(record)
    for (bench, key), figure in now.items():
        name = figure["name"]
        old = then.get((bench, key))
        now_ratio = _ratio(figure)
        if old is None:
            rows.append(f"| {bench} | {name} | {now_ratio} | (new) | - | |")
            continue
        change = worse_by(figure, old)
        old_ratio = _ratio(old)
        bad = change is not None and change > tolerance
        flagged += bad
        shown = ("-" if change is None else "same" if abs(change) < 0.005
                 else f"{change:+.0%} {'worse' if change > 0 else 'better'}")
        rows.append(f"| {bench} | {name} | {now_ratio} | {old_ratio} | {shown} | "
                    f"{'**WORSE**' if bad else ''} |")
    ran = {bench for bench, _ in now}
    for (bench, key), old in then.items():  # renamed or dropped: no longer guarded
        if bench in ran and (bench, key) not in now:
            rows.append(f"| {bench} | {old['name']} | (not measured) | {_ratio(old)} | - | |")
    return "\n".join(rows), flagged


def update_baseline(path: Path, record: dict) -> None:
    """Record this run's benchmarks in the baseline at ``path`` (others stay as they were)."""
    baseline = json.loads(path.read_text()) if path.exists() else {"benchmarks": {}}
    for name, data in record["benchmarks"].items():
        baseline["benchmarks"][name] = {
            "date": record["date"], "commit": record["revision"]["commit"],
            "quick": record["quick"], "figures": [
                {k: f[k] for k in ("name", "value", "unit", "baseline_name", "baseline",
                                   "ratio", "higher_is_better", "target")}
                for f in data["figures"]]}
    baseline.update(date=record["date"], revision=record["revision"], machine=record["machine"])
    path.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")


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
    parser.add_argument("--scale", type=int, metavar="N", default=None,
                        help="items in the scale benchmark's store (default 100,000; --quick "
                             "5,000), 100 log chunks each")
    parser.add_argument("--compare", type=Path, metavar="FILE", nargs="?", const=BASELINE,
                        help="print each ratio beside FILE's (default benchmarks/baseline.json)"
                             " and flag those more than 25%% worse")
    parser.add_argument("--update-baseline", type=Path, metavar="FILE", nargs="?",
                        const=BASELINE, help="record this run's figures in FILE (default "
                                             "benchmarks/baseline.json)")
    args = parser.parse_args(argv)
    baseline = None
    if args.compare is not None:  # read it before spending minutes measuring
        try:
            baseline = json.loads(args.compare.read_text())
            _figures_of(baseline)
        except (OSError, ValueError) as err:
            parser.error(f"--compare {args.compare}: {err}")
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
        if name == "scale":
            result = bench_scale.run(args.quick, scale=args.scale)
        else:
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
    if baseline is not None:
        table, flagged = compare(record, baseline)
        print("\n" + table)
        print(f"\n{flagged} ratio(s) more than {TOLERANCE:.0%} worse than {args.compare}"
              if flagged else f"\nno ratio more than {TOLERANCE:.0%} worse than {args.compare}")
    if args.update_baseline is not None:
        update_baseline(args.update_baseline, record)
        print(f"baseline updated: {args.update_baseline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
