"""Agent processes racing over many items on PostgreSQL: every item runs exactly once.

``python benchmarks/run.py --only race``: 8 ``jupyter launch agent --until-idle`` processes
over 2,000 trivial script items (500 with --quick) on a fresh PostgreSQL database. Each job
appends its item id to one file; the figure is the number of items that ran other than
exactly once (target 0) and the throughput, next to the SQLite figure for the same load.
"""

from __future__ import annotations

import collections
import os
import subprocess
import time

from common import Figure, log, pg_temp_store, postgres_base_url, temp_store, tool

JOB = """\
import os
fd = os.open(os.environ["RACE_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, (os.environ["LAUNCH_ITEM_ID"] + "\\n").encode())
"""


def race(make_store, n_items: int, n_agents: int) -> tuple[int, float]:
    """(items not run exactly once, items per second)."""
    from launch_jupyter.api import Launch

    with make_store("race") as store:
        script = store.root / "once.py"
        script.write_text(JOB)
        ran = store.root / "ran.txt"
        client = Launch(store.url)
        job = client.create_job(script)
        ids = [client.submit(job).id for _ in range(n_items)]
        env = store.env()
        env["RACE_FILE"] = str(ran)
        env["LAUNCH_JUPYTER_LEASE_TTL"] = "30"
        t0 = time.perf_counter()
        procs = [subprocess.Popen([tool("jupyter-launch"), "agent", "--until-idle"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(n_agents)]
        for proc in procs:
            proc.wait(timeout=3600)
        elapsed = time.perf_counter() - t0
        counts = collections.Counter(ran.read_text().split()) if ran.exists() else {}
        wrong = sum(1 for i in ids if counts.get(i, 0) != 1)
        client.close()
        os.environ.pop("RACE_FILE", None)
        return wrong, n_items / elapsed


def run(quick: bool) -> list[Figure]:
    n = 500 if quick else 2000
    figures = []
    sqlite_wrong, sqlite_rate = race(temp_store, n, 8)
    log(f"  SQLite, 8 agents, {n} items: {sqlite_wrong} not exactly once, {sqlite_rate:.1f}/s")
    figures.append(Figure(
        name=f"SQLite, 8 agent processes over {n} items: items not run exactly once",
        value=sqlite_wrong, unit="items", target="0", met=sqlite_wrong == 0))
    if not postgres_base_url():
        log("  (no LAUNCH_JUPYTER_BENCH_POSTGRES: PostgreSQL race not measured)")
        return figures
    wrong, rate = race(pg_temp_store, n, 8)
    log(f"  PostgreSQL, 8 agents, {n} items: {wrong} not exactly once, {rate:.1f}/s")
    figures.append(Figure(
        name=f"PostgreSQL, 8 agent processes over {n} items: items not run exactly once",
        value=wrong, unit="items", baseline_name="SQLite, same load", baseline=sqlite_wrong,
        target="0", met=wrong == 0))
    figures.append(Figure(
        name=f"PostgreSQL, 8 agent processes over {n} items: throughput", value=round(rate, 1),
        unit="items/s", baseline_name="SQLite, same load", baseline=round(sqlite_rate, 1),
        target="-", met=None))
    return figures
