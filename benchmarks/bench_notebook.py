"""(c) a trivial two-cell notebook (``x = 1`` / ``print(x)``), submit -> succeeded.

An in-process agent is already running; each sample is measured from just before
``submit()`` to ``item.wait()`` returning (and to the item's ``finished_at``). Baselines on the
same notebook: the ``papermill in.ipynb out.ipynb`` command, and ``papermill.execute_notebook``
in-process (warm: one call first). The executed notebook's cell timings split each run into
claim, start-up (supervisor + notebook runner + kernel), cells, and wind-down. Measured twice:
with the agent's kernel pool off (every run starts its kernel) and on (``kernel_pool_size=1``:
the first run, dropped, makes the pool start a kernel; each later run takes the warm one,
and the next starts in the background during a 3 s pause).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

import nbformat
from common import Figure, log, ms, parse_iso, temp_store, tool
from nbformat.v4 import new_code_cell, new_notebook

QUEUE = "notebooks"
#: what launch-jupyter's notebook runner passes too: no TCP-transport warning per start
QUIET = ["--IPKernelApp.log_level=ERROR"]


def write_notebook(path: Path) -> Path:
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("print(x)")], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.write(nb, path)
    return path


def _cell_times(path: str) -> tuple[float, float] | None:
    """(first cell's execute_input, last cell's execute_reply) from nbclient's timings."""
    nb = nbformat.read(path, as_version=4)
    timings = [c.metadata.get("execution", {}) for c in nb.cells if c.cell_type == "code"]
    try:
        return (parse_iso(timings[0]["iopub.execute_input"]),
                parse_iso(timings[-1]["shell.execute_reply"]))
    except (KeyError, IndexError):
        return None


def launch_samples(n: int, pool: int = 0) -> tuple[list[float], list[float], dict]:
    """Samples of submit -> wait() and -> finished_at, and the phase medians; ``pool``: the
    agent's ``kernel_pool_size``."""
    from launch_jupyter.api import Launch

    with temp_store("notebook") as store:
        client = Launch(store.url)
        client.config.kernel_pool_size = pool
        job = client.create_job(write_notebook(store.root / "two_cells.ipynb"), name="two-cells")
        client.create_queue(QUEUE)
        agent = client.agent([QUEUE]).start()
        waited: list[float] = []
        finished: list[float] = []
        phases: dict[str, list[float]] = {"claim": [], "startup": [], "cells": [],
                                          "wind_down": [], "kernel_shutdown_and_write": [],
                                          "runner_exit_and_record": []}
        try:
            for i in range(n + 1):  # the first warms the agent's job cache: dropped
                # Let the agent reap the previous supervisor (see README), and the pool start
                # its next kernel: that takes 0.7-1.5 s on a loaded machine.
                time.sleep(3.0 if pool else 1.0)
                t0 = time.time()
                item = client.submit(job, queue=QUEUE)
                item.wait(120, poll=0.01)
                t1 = time.time()
                info = item.info()
                if info["state"] != "succeeded":
                    raise RuntimeError(f"notebook item {item.id} {info['state']}: "
                                       f"{info['error']}\n{item.logs()}")
                if not i:
                    continue
                waited.append(t1 - t0)
                end = parse_iso(info["finished_at"])
                finished.append(end - t0)
                started = parse_iso(info["started_at"])
                cells = _cell_times(item.output_notebook or "")
                if cells is not None:
                    phases["claim"].append(started - t0)
                    phases["startup"].append(cells[0] - started)
                    phases["cells"].append(cells[1] - cells[0])
                    phases["wind_down"].append(end - cells[1])
                    # The runner writes the executed notebook after the kernel shut down.
                    written = os.stat(item.output_notebook or "").st_mtime
                    phases["kernel_shutdown_and_write"].append(written - cells[1])
                    phases["runner_exit_and_record"].append(end - written)
        finally:
            agent.stop()
            client.close()
    return waited, finished, {f"{k}_p50_ms": ms(median(v)) for k, v in phases.items() if v}


def papermill_cli_samples(n: int, nb: Path) -> list[float]:
    out = nb.with_name("out-cli.ipynb")
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([tool("papermill"), str(nb), str(out), "--no-progress-bar"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - t0)
    return samples


def papermill_api_samples(n: int, nb: Path) -> list[float]:
    import papermill

    out = nb.with_name("out-api.ipynb")
    papermill.execute_notebook(str(nb), str(out), progress_bar=False,
                               extra_arguments=QUIET)  # warm: imports, engines
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        papermill.execute_notebook(str(nb), str(out), progress_bar=False,
                               extra_arguments=QUIET)
        samples.append(time.perf_counter() - t0)
    return samples


def kernel_start_samples(n: int) -> list[float]:
    """jupyter_client.manager.start_new_kernel alone (returns once the kernel is ready)."""
    from jupyter_client.manager import start_new_kernel

    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        km, kc = start_new_kernel(kernel_name="python3", extra_arguments=QUIET)
        samples.append(time.perf_counter() - t0)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return samples


def run(quick: bool) -> list[Figure]:
    n = 3 if quick else 5
    waited, finished, phases = launch_samples(n)
    pooled, pooled_finished, pooled_phases = launch_samples(2 * n, pool=1)
    with temp_store("papermill") as store:
        nb = write_notebook(store.root / "in.ipynb")
        cli = papermill_cli_samples(n, nb)
        api = papermill_api_samples(n, nb)
    kernel = kernel_start_samples(n)
    w, f, c, a, k = (ms(median(x)) for x in (waited, finished, cli, api, kernel))
    pw, pf = ms(median(pooled)), ms(median(pooled_finished))
    log(f"  launch submit -> wait() returned: {w} ms (-> finished_at {f} ms) {phases}")
    log(f"  same, warm kernel pool: {pw} ms (-> finished_at {pf} ms) {pooled_phases}")
    log(f"  papermill CLI {c} ms, papermill.execute_notebook {a} ms, kernel start alone {k} ms")
    details = {"wait_samples_ms": [ms(x) for x in waited],
               "finished_at_samples_ms": [ms(x) for x in finished],
               "papermill_cli_samples_ms": [ms(x) for x in cli],
               "papermill_api_samples_ms": [ms(x) for x in api],
               "kernel_start_samples_ms": [ms(x) for x in kernel],
               "kernel_start_p50_ms": k, **phases,
               "pooled_wait_samples_ms": [ms(x) for x in pooled],
               "pooled_finished_at_samples_ms": [ms(x) for x in pooled_finished],
               **{f"pooled_{name}": value for name, value in pooled_phases.items()}}
    return [
        Figure(name="notebook submit -> wait() returned, p50", value=w, unit="ms",
               baseline_name="papermill.execute_notebook (in-process, warm)", baseline=a,
               target="<= 1000 ms; stretch <= 1.15x execute_notebook", met=w <= 1000,
               details=details),
        Figure(name="notebook submit -> wait() returned, p50, warm kernel pool", value=pw,
               unit="ms", baseline_name="papermill.execute_notebook (in-process, warm)",
               baseline=a, target="<= 400 ms and <= 0.35x execute_notebook",
               met=pw <= 400 and pw <= 0.35 * a),
        Figure(name="notebook submit -> finished_at, p50, warm kernel pool", value=pf,
               unit="ms", baseline_name="papermill.execute_notebook (in-process, warm)",
               baseline=a, target="<= 400 ms and <= 0.35x execute_notebook",
               met=pf <= 400 and pf <= 0.35 * a),
        Figure(name="notebook submit -> finished_at, p50", value=f, unit="ms",
               baseline_name="papermill.execute_notebook (in-process, warm)", baseline=a,
               target="<= 1.15x execute_notebook (stretch)", met=f <= 1.15 * a),
        Figure(name="notebook submit -> wait() returned, p50 (vs CLI)", value=w, unit="ms",
               baseline_name="`papermill in.ipynb out.ipynb`", baseline=c, target="-",
               met=None),
        Figure(name="kernel start alone (start_new_kernel), p50", value=k, unit="ms",
               baseline_name="papermill.execute_notebook (in-process, warm)", baseline=a,
               target="-", met=None),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    for figure in run(quick="--quick" in sys.argv):
        print(figure.as_json())
