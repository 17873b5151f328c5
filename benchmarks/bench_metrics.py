"""(m) A job logging 10,000 metric points per second for 10 s: points lost, and how much
slower it runs than the same job without logging (issue #14).

The job does a fixed amount of work: N iterations of a pure-Python loop calibrated here to
take 100 us each (so 10,000 iterations a second, 10 s in all), calling
``launch_jupyter.log({"loss": ...}, step=i)`` once per iteration when its ``log`` parameter
is true. Both variants run as items of one local queue through an in-process agent, in turn
(without, with, without, ...), so a busy machine slows both alike. The figure is the run
time recorded by the store (started -> finished: the supervisor drains the last points before
it records the outcome); the job's own loop time and its process's CPU time (which a busy
machine disturbs least) are printed next to it. Afterwards the store must hold every point,
steps 0..N-1, once each.
"""

from __future__ import annotations

import json
import statistics
import textwrap
import time
from pathlib import Path

from common import Figure, log, parse_iso, temp_store

RATE = 10_000  # points per second
SECONDS = 10.0
TARGET = 1.05  # at most 5 % slower

JOB = textwrap.dedent("""\
    import json, time, launch_jupyter
    p = launch_jupyter.parameters(n=1000, k=100, log=True)
    record = launch_jupyter.log
    t0, cpu0 = time.perf_counter(), time.process_time()
    total = 0
    for i in range(p.n):
        total += sum(range(p.k))  # the job's own work
        if p.log:
            record({"loss": 1.0 / (i + 1)}, step=i)
    print(json.dumps({"loop": time.perf_counter() - t0, "cpu": time.process_time() - cpu0}))
""")


def calibrate(seconds_per_iteration: float) -> int:
    """``k`` such that ``sum(range(k))`` takes ``seconds_per_iteration`` here."""
    k, spent = 1000, 0.0
    while spent < 0.2:
        t0 = time.perf_counter()
        for _ in range(200):
            sum(range(k))
        spent = time.perf_counter() - t0
        if spent < 0.2:
            k *= 2
    return max(1, round(k * seconds_per_iteration / (spent / 200)))


def run_once(client: object, ref: str, n: int, k: int, logging: bool) -> dict:
    item = client.submit(ref, parameters={"n": n, "k": k, "log": logging})  # type: ignore[attr-defined]
    item.wait(SECONDS * 20, progress=False)
    info = item.info()
    assert info["state"] == "succeeded", item.logs()
    timed = json.loads(item.logs().strip().splitlines()[-1])
    run = parse_iso(info["finished_at"]) - parse_iso(info["started_at"])
    points = client.metrics(item.id) if logging else []  # type: ignore[attr-defined]
    lost = n - len({p["step"] for p in points if p["name"] == "loss"}) if logging else 0
    return {"run": run, "loop": timed["loop"], "cpu": timed["cpu"], "lost": lost,
            "stored": len(points), "count": (info["metrics"].get("loss") or {}).get("count", 0)}


def run(quick: bool) -> list[Figure]:
    from launch_jupyter.api import Launch

    seconds = 3.0 if quick else SECONDS
    pairs = 1 if quick else 3
    n = int(RATE * seconds)
    k = calibrate(1.0 / RATE)
    with temp_store("metrics") as store:
        path = Path(store.root) / "train.py"
        path.write_text(JOB)
        client = Launch(store.url, lease_ttl=30.0)
        ref = client.create_job(path).ref
        agent = client.agent(max_jobs=1).start()
        try:
            plain, logged = [], []
            for _ in range(pairs):
                plain.append(run_once(client, ref, n, k, False))
                logged.append(run_once(client, ref, n, k, True))
        finally:
            agent.stop()
            client.close()
    base = statistics.median(r["run"] for r in plain)
    value = statistics.median(r["run"] for r in logged)
    loop_base = statistics.median(r["loop"] for r in plain)
    loop_value = statistics.median(r["loop"] for r in logged)
    cpu_base = statistics.median(r["cpu"] for r in plain)
    cpu_value = statistics.median(r["cpu"] for r in logged)
    lost = max(r["lost"] for r in logged)
    extra = max(r["stored"] - n for r in logged)
    log(f"  {n:,} points at {RATE:,}/s: run {value:.2f} s with log() vs {base:.2f} s without "
        f"({value / base:.3f}x); job loop {loop_value:.2f} s vs {loop_base:.2f} s "
        f"({loop_value / loop_base:.3f}x); job CPU {cpu_value:.2f} s vs {cpu_base:.2f} s "
        f"({cpu_value / cpu_base:.3f}x); points lost {lost}, duplicated {extra}")
    details = {"n": n, "k": k, "pairs": pairs, "plain": plain, "logged": logged}
    return [
        Figure(f"job logging {RATE:,} points/s for {seconds:g} s: run time (started -> "
               "finished)", round(value, 3), "s", "the same job without log()",
               round(base, 3), f"<= {TARGET}x", value / base <= TARGET, details=details),
        Figure("same: the job's own loop time", round(loop_value, 3), "s",
               "the same loop without log()", round(loop_base, 3), f"<= {TARGET}x",
               loop_value / loop_base <= TARGET),
        Figure("same: the job process's CPU time (its flush thread included)",
               round(cpu_value, 3), "s", "the same job without log()", round(cpu_base, 3),
               f"<= {TARGET}x", cpu_value / cpu_base <= TARGET),
        Figure("same: points lost or duplicated", lost + extra, "points", target="0",
               met=lost == 0 and extra == 0),
    ]
