"""What recording cell progress costs a notebook run: a notebook of 200 trivial cells on the
local runner, with progress recorded (each cell's start and end, the executed notebook
rewritten after cells, the running cell stored) and with it off, alternately, same sitting.

``python benchmarks/bench_progress.py [--quick]`` (or ``run.py --only progress``). Each
sample is the item's run, ``started_at`` -> ``finished_at`` in the store (kernel start
included, as a user waits for it), and the executor's cells alone (first cell's
``execute_input`` to the last cell's ``execute_reply``, nbclient's timings). On a shared
machine run-to-run noise is larger than the effect, so the minimum is reported beside the
median, and the recording's own work is timed alone too: 200 starts and ends written to the
progress file and the executed notebook of 200 cells written once (the executor writes it
at most every 0.5 s).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import median
from typing import Any

import nbformat
from common import Figure, log, ms, parse_iso, temp_store
from nbformat.v4 import new_code_cell, new_notebook

CELLS = 200
TARGET = 0.05  # at most 5 % of the run's duration


def write_notebook(path: Path) -> Path:
    nb = new_notebook(cells=[new_code_cell(f"x = {i}") for i in range(CELLS)], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    })
    nbformat.write(nb, path)
    return path


def _cell_span(path: str) -> tuple[float, float]:
    """(first cell's execute_input, last cell's execute_reply), epoch seconds."""
    nb = nbformat.read(path, as_version=4)
    timings = [c.metadata.get("execution", {}) for c in nb.cells if c.cell_type == "code"]
    return (parse_iso(timings[0]["iopub.execute_input"]),
            parse_iso(timings[-1]["shell.execute_reply"]))


def _recording(runner: Any, on: bool) -> None:
    """Turn progress recording on or off for the runs ``runner`` starts next: the
    supervisor's spec says ``progress`` (it is on unless a spec says otherwise)."""
    original = type(runner)._spawn

    def spawn(self: Any, spec_path: Path, run_dir: Path) -> Any:
        spec = json.loads(spec_path.read_text())
        spec["progress"] = on
        spec_path.write_text(json.dumps(spec))
        return original(self, spec_path, run_dir)

    runner._spawn = spawn.__get__(runner)


def samples(n: int) -> dict[str, dict[str, list[float]]]:
    from launch_jupyter.api import Launch
    from launch_jupyter.runners import get_runner

    found: dict[str, dict[str, list[float]]] = {
        mode: {"run": [], "cells": [], "startup": [], "wind_down": []}
        for mode in ("on", "off")}
    with temp_store("progress") as store:
        client = Launch(store.url)
        job = client.create_job(write_notebook(store.root / "cells.ipynb"), name="cells")
        agent = client.agent(["local"])
        runner = get_runner("local")
        agent._runners["local"] = runner
        agent.start()
        try:
            client.submit(job.ref).wait(120, progress=False)  # warm the fork server
            for i in range(2 * n):
                mode = ("on", "off")[i % 2]
                _recording(runner, mode == "on")
                item = client.submit(job.ref).wait(300, progress=False)
                data = item.info()
                if data["state"] != "succeeded":
                    raise SystemExit(f"the benchmark run failed: {data['error']}")
                started, finished = (parse_iso(data["started_at"]),
                                     parse_iso(data["finished_at"]))
                first, last = _cell_span(data["executed_notebook"])
                found[mode]["run"].append(finished - started)
                found[mode]["cells"].append(last - first)
                found[mode]["startup"].append(first - started)
                found[mode]["wind_down"].append(finished - last)
                if mode == "on":
                    assert [c["cell"] for c in data["cells"]] == list(range(1, CELLS + 1))
                else:
                    assert data["cells"] is None
                log(f"  {mode:>3}: " + ", ".join(f"{part} {ms(values[-1])} ms"
                                                 for part, values in found[mode].items()))
        finally:
            agent.stop()
            client.close()
    return found


def parts() -> dict[str, float]:
    """Seconds of the recording's own work, timed alone (best of 5)."""
    import os
    import tempfile
    import time

    from launch_jupyter.runners.notebook import Progress, save_notebook

    nb = nbformat.v4.new_notebook(cells=[new_code_cell(f"x = {i}") for i in range(CELLS)])
    for cell in nb.cells:
        cell.outputs, cell.execution_count = [], 1
    best = {"starts_and_ends": 1e9, "notebook_write": 1e9}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(5):
            progress = Progress(nb, os.path.join(tmp, "out.ipynb"),
                                os.path.join(tmp, "progress.jsonl"))
            progress.written = float("inf")  # time the lines alone (no notebook writes)
            progress.pending = True
            began = time.perf_counter()
            for i in range(CELLS):
                progress.start(i, nb.cells[i].source)
                progress.end(i)
            best["starts_and_ends"] = min(best["starts_and_ends"], time.perf_counter() - began)
            began = time.perf_counter()
            save_notebook(nb, os.path.join(tmp, "out.ipynb"))
            best["notebook_write"] = min(best["notebook_write"], time.perf_counter() - began)
    return best


def run(quick: bool = False) -> list[Figure]:
    n = 3 if quick else 12
    log(f"progress: {CELLS} trivial cells, {n} runs with progress recorded and {n} without")
    found = samples(n)
    figures = []
    for part, name in (("run", "run, started -> finished"),
                       ("cells", "cells alone, first input -> last reply")):
        for stat, pick in (("p50", median), ("min", min)):
            on, off = pick(found["on"][part]), pick(found["off"][part])
            overhead = (on - off) / off
            figures.append(Figure(
                name=f"{CELLS}-cell notebook with progress recorded, {name}, {stat}",
                value=ms(on), unit="ms", baseline_name="progress off", baseline=ms(off),
                target="<= 1.05x" if part == "run" else "",
                met=overhead <= TARGET if part == "run" else None,
                details={"overhead": round(overhead, 4), "samples": found}))
            log(f"  {part} {stat}: on {ms(on)} ms, off {ms(off)} ms: {overhead:+.1%}")
    pairs = [(a - b) / b for a, b in zip(found["on"]["run"], found["off"]["run"], strict=True)]
    paired = median(pairs)
    log(f"  run, paired (each 'on' run against the 'off' run after it): median {paired:+.1%}")
    figures.append(Figure(
        name=f"{CELLS}-cell notebook, run with progress recorded vs the next run without, "
             "paired, median of the differences", value=round(100 * paired, 2), unit="%",
        target="<= 5 %", met=paired <= TARGET, details={"pairs": pairs}))
    alone = parts()
    log(f"  alone: {CELLS} starts and ends {ms(alone['starts_and_ends'])} ms, one write of "
        f"the {CELLS}-cell notebook {ms(alone['notebook_write'])} ms")
    figures.append(Figure(
        name=f"recording alone: {CELLS} cell starts and ends + one executed-notebook write",
        value=ms(alone["starts_and_ends"] + alone["notebook_write"]), unit="ms",
        baseline_name="run with progress off, p50", baseline=ms(median(found["off"]["run"])),
        target="<= 0.05x", met=(alone["starts_and_ends"] + alone["notebook_write"])
        <= TARGET * median(found["off"]["run"]), details=alone))
    return figures


if __name__ == "__main__":
    run("--quick" in sys.argv)
