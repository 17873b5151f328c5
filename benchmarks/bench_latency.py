"""(a) submit -> process-start latency, agent in the same process and in another process.

The job is a script whose first line records ``time.time()``; it then writes that stamp to a
file named after ``LAUNCH_ITEM_ID`` in the folder given as its ``folder`` parameter. Latency is
that stamp minus the time taken just before ``submit()``. Items are submitted one at a time,
each waited for until it finishes. The baseline is ``subprocess.Popen([python, script])`` to
the same first-line stamp: the cost of starting a Python process at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import (
    Figure,
    TempStore,
    log,
    median,
    ms,
    parse_iso,
    pg_temp_store,
    postgres_base_url,
    summary,
    temp_store,
    tool,
    wait_for,
)

SCRIPT = """\
import time; STAMP = time.time()
import os
import launch_jupyter

p = launch_jupyter.parameters(folder="")
with open(os.path.join(p["folder"], os.environ["LAUNCH_ITEM_ID"]), "w") as fh:
    fh.write(repr(STAMP))
"""

QUEUE = "latency"


def write_script(folder: Path) -> Path:
    path = folder / "stamp.py"
    path.write_text(SCRIPT)
    return path


def _read_stamp(path: Path, timeout: float = 30.0) -> float:
    wait_for(lambda: path.exists() and path.stat().st_size > 0, timeout, f"stamp {path}")
    return float(path.read_text())


def baseline_samples(script: Path, stamps: Path, n: int) -> list[float]:
    """Popen(python script) -> first line, in seconds."""
    samples = []
    for i in range(n):
        item_id = f"baseline-{i}"
        env = dict(os.environ, LAUNCH_ITEM_ID=item_id,
                   LAUNCH_PARAMETERS=json.dumps({"folder": str(stamps)}))
        t0 = time.time()
        proc = subprocess.Popen([sys.executable, str(script)], env=env)
        proc.wait()
        samples.append(_read_stamp(stamps / item_id) - t0)
    return samples


def agent_samples(store: TempStore, n: int, *, cross_process: bool,
                  idle_gap: float = 0.0) -> tuple[list[float], dict]:
    """submit() -> first line of the job, with the agent in this process or another one.

    ``idle_gap``: seconds to pause after each item finished before the next submit (0: the
    next one is submitted as soon as ``wait()`` returns).
    """
    from launch_jupyter.api import Launch

    client = Launch(store.url)
    stamps = store.root / "stamps"
    stamps.mkdir()
    job = client.create_job(write_script(store.root), name="stamp")
    client.create_queue(QUEUE)
    agent = proc = None
    if cross_process:
        agent_log = open(store.root / "agent.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([tool("jupyter-launch"), "agent", "--queue", QUEUE],
                                env=store.env(), stdout=agent_log, stderr=subprocess.STDOUT)
        wait_for(lambda: bool(client.agents()), 30, "the agent process to register")
    else:
        agent = client.agent([QUEUE]).start()
    samples: list[float] = []
    claim: list[float] = []
    exit_lag: list[float] = []
    record: list[float] = []
    try:
        for i in range(n + 1):  # the first one warms caches (job files, runner): dropped
            if idle_gap:
                time.sleep(idle_gap)
            t0 = time.time()
            item = client.submit(job, queue=QUEUE, parameters={"folder": str(stamps)})
            item.wait(60, poll=0.01)
            info = item.info()
            if info["state"] != "succeeded":
                raise RuntimeError(f"latency job {item.id} {info['state']}: {item.logs()}")
            stamp = _read_stamp(stamps / item.id)
            if i:
                samples.append(stamp - t0)
                claim.append(parse_iso(info["started_at"]) - t0)
                # The stamp file is the job's last act: from there to the recorded outcome is
                # the supervisor noticing the exit and writing it down.
                record.append(parse_iso(info["finished_at"])
                              - os.stat(stamps / item.id).st_mtime)
            active = agent.active.get(item.id) if agent is not None and idle_gap else None
            if active is not None:
                # Diagnostic: how long the supervisor lives on after recording the outcome.
                wait_for(active.run.done, 30, "the supervisor to exit", poll=0.002)
                exit_lag.append(time.time() - parse_iso(info["finished_at"]))
    finally:
        if agent is not None:
            agent.stop()
        if proc is not None:
            proc.terminate()
            proc.wait(30)
            agent_log.close()
        client.close()
    # started_at is written when the agent has claimed the item and is about to spawn the
    # supervisor; the rest is supervisor + job interpreter start.
    extra = {"submit_to_started_at_p50_ms": ms(median(claim)),
             "job_exit_to_finished_at_p50_ms": ms(median(record))}
    if exit_lag:
        extra["finished_at_to_supervisor_exit_p50_ms"] = ms(median(exit_lag))
    return samples, extra


def run(quick: bool) -> list[Figure]:
    n = 10 if quick else 30
    figures = []
    with temp_store("latency-baseline") as store:
        stamps = store.root / "stamps"
        stamps.mkdir()
        base = baseline_samples(write_script(store.root), stamps, n)
    base_s = summary(base)
    base_ms = {k: (v if k == "n" else ms(v)) for k, v in base_s.items()}
    log(f"  baseline Popen -> first line: p50 {base_ms['p50']} ms, p99 {base_ms['p99']} ms")
    cases = [
        # (agent in another process, seconds between items, label, p50 target in ms, store)
        (False, 0.0, "same-process agent, back to back", 50, temp_store),
        (True, 0.0, "agent process, back to back", 300, temp_store),
        (False, 1.0, "same-process agent, idle agent", 50, temp_store),
        (True, 1.0, "agent process, idle agent", 300, temp_store),
    ]
    if postgres_base_url():
        cases.append((True, 1.0, "agent process, idle agent, PostgreSQL", 200, pg_temp_store))
    else:
        log("  (no LAUNCH_JUPYTER_BENCH_POSTGRES: PostgreSQL latency not measured)")
    for cross, gap, label, target_ms, make_store in cases:
        with make_store("latency") as store:
            samples, extra = agent_samples(store, n, cross_process=cross, idle_gap=gap)
        s = {k: (v if k == "n" else ms(v)) for k, v in summary(samples).items()}
        log(f"  {label}: p50 {s['p50']} ms, p99 {s['p99']} ms {extra}")
        details = {"samples_ms": [ms(x) for x in samples], "summary_ms": s,
                   "baseline_summary_ms": base_ms, "idle_gap_s": gap, **extra}
        figures.append(Figure(
            name=f"submit -> process start p50 ({label})", value=s["p50"], unit="ms",
            baseline_name="Popen(python script) -> first line, p50", baseline=base_ms["p50"],
            target=f"<= {target_ms} ms", met=s["p50"] <= target_ms, details=details))
        figures.append(Figure(
            name=f"submit -> process start p99 ({label})", value=s["p99"], unit="ms",
            baseline_name="Popen(python script) -> first line, p99", baseline=base_ms["p99"],
            target="-", met=None))
    return figures
