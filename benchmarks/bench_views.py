"""How long the result views take to refresh with 1,000 items of 5 metrics each (a grid sweep
whose trials are leased, given 5 metrics x 20 steps each and finished straight in the store).

``python benchmarks/bench_views.py [--quick]`` (or ``run.py --only views``). Each figure is the
median of repeated refreshes, timed in-process on a SQLite store:

- the queue panel (``QueuePanel.refresh``: a page of 20 rows with metric columns and counts,
  and the selected item's detail with its chart), newest first and sorted by a metric (which
  reads every item to order them across pages);
- the sweep's results panel (``ResultsPanel.refresh`` redrawn: every row, the table and the
  comparison chart);
- the lab Results view's refresh on the server: ``GET /launch/api/charts/results?sweep=``'s
  answer (rows, best row and the Vega-Lite spec) built and encoded as JSON, as its handler does.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from common import Figure, log, median, ms, temp_store

ITEMS = 1000
METRICS = 5
STEPS = 20
TARGET = 0.100  # seconds


def populate(client: Any, items: int) -> str:
    """A finished grid sweep of ``items`` trials, each with METRICS metrics x STEPS steps."""
    import os
    import tempfile

    folder = tempfile.mkdtemp(prefix="lj-bench-views-job-")
    script = os.path.join(folder, "objective.py")
    with open(script, "w") as f:
        f.write("import launch_jupyter\np = launch_jupyter.parameters(x=0.5, layers=2)\n")
    client.create_job(script, name="objective")
    sweep = client.sweep("objective", config={
        "method": "grid", "metric": {"name": "m0", "goal": "minimize"},
        "parameters": {"x": {"values": [i / items for i in range(items // 2)]},
                       "layers": {"values": [2, 4]}}})
    store, now = client.store, time.time()
    queue = client.config.default_queue
    for n in range(items):
        item = store.claim(queue, "bench", 600)
        assert item is not None, f"only {n} items were queued"
        x = item["parameters"]["x"]
        points = [(f"m{k}", step, (x - 0.5) ** 2 + k + 1 / (step + 1), now)
                  for k in range(METRICS) for step in range(STEPS)]
        assert store.add_metrics(item["id"], "bench", item["attempt"], points)
        assert store.finish(item["id"], "bench", "succeeded", exit_code=0)
    return sweep.id


def timed(fn: Any, repeat: int) -> list[float]:
    """Seconds of each of ``repeat`` calls (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def run(quick: bool = False) -> list[Figure]:
    from launch_jupyter.api import Launch
    from launch_jupyter.config import LaunchConfig
    from launch_jupyter.server.manager import LaunchManager
    from launch_jupyter.widgets.queue import QueuePanel
    from launch_jupyter.widgets.results import ResultsPanel

    repeat = 5 if quick else 15
    figures = []
    with temp_store("views") as ts:
        import os

        os.environ["LAUNCH_JUPYTER_STORE"] = ts.url
        os.environ["LAUNCH_JUPYTER_DATA_DIR"] = str(ts.root)
        client = Launch()
        start = time.perf_counter()
        sweep_id = populate(client, ITEMS)
        log(f"views: {ITEMS} items x {METRICS} metrics x {STEPS} steps stored in "
            f"{time.perf_counter() - start:.1f} s")

        queue = QueuePanel(client, client.config.default_queue, page_size=20, interval=3600)
        newest = timed(queue.refresh, repeat)
        queue.sort.value = "m0:min"
        by_metric = timed(queue.refresh, repeat)
        queue.close()

        results = ResultsPanel(client, sweep_id, interval=3600)

        def redraw() -> None:
            results._shown = ""  # as if a row changed: the table and chart are rebuilt
            results.refresh()

        panel = timed(redraw, repeat)
        rows = len(results.rows)
        results.close()

        manager = LaunchManager(ts.root, LaunchConfig.load(store=ts.url))

        def answer() -> None:
            json.dumps(manager.results_chart(sweep=sweep_id))

        rest = timed(answer, repeat)
        size = len(json.dumps(manager.results_chart(sweep=sweep_id)))
        client.close()

    for name, samples, extra in (
            ("queue panel refresh (page of 20, metric columns, item detail), newest first",
             newest, {}),
            ("queue panel refresh sorted by a metric (all 1,000 items ordered)", by_metric, {}),
            ("sweep results panel refresh, redrawn (every row: table + comparison chart)",
             panel, {"rows": rows}),
            ("Results view refresh on the server: GET charts/results answer (rows + best + "
             "Vega-Lite spec) built and JSON-encoded", rest, {"bytes": size})):
        value = median(samples)
        log(f"  {name}: median {ms(value)} ms (min {ms(min(samples))}, max {ms(max(samples))})")
        figures.append(Figure(
            name=f"{name}, {ITEMS} items x {METRICS} metrics, median of {repeat}",
            value=ms(value), unit="ms", target="<= 100 ms", met=value <= TARGET,
            details={"samples": samples, **extra}))
    return figures


if __name__ == "__main__":
    run("--quick" in sys.argv)
