"""(b) throughput: N trivial script jobs through an agent running two at a time.

All N items are submitted first; then an agent with ``max_jobs=2`` and ``until_idle`` drains
the queue: ``jupyter launch agent --max-jobs 2 --until-idle`` as a process (wall time of the
whole command, agent start included) and an in-process ``Agent.run()``. The ceiling is
spawning ``python -c pass`` two at a time for the same N: one bare interpreter per job, no
supervisor, no store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from common import Figure, TempStore, log, parse_iso, temp_store, tool

QUEUE = "throughput"
JOB = "print('ok')\n"


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy so far (Linux /proc/stat; else 0)."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and of its children that ended and were waited for (the
    agent process, its fork server, the supervisors and jobs under it): unlike
    ``busy_cpu_seconds``, other work on the machine does not count."""
    import resource

    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                          resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ceiling(n: int, width: int = 2) -> float:
    """Seconds to run ``python -c pass`` n times, ``width`` at a time."""
    t0 = time.perf_counter()
    running: list[subprocess.Popen] = []
    started = 0
    while started < n or running:
        while started < n and len(running) < width:
            running.append(subprocess.Popen([sys.executable, "-c", "pass"]))
            started += 1
        running[0].wait()
        running = [p for p in running if p.poll() is None]
    return time.perf_counter() - t0


def _fill(store: TempStore, n: int) -> None:
    from launch_jupyter.api import Launch

    client = Launch(store.url)
    script = store.root / "noop.py"
    script.write_text(JOB)
    job = client.create_job(script, name="noop")
    client.create_queue(QUEUE)
    for _ in range(n):
        client.submit(job, queue=QUEUE)
    client.close()


def _check(store: TempStore, n: int) -> dict:
    """All items succeeded; also the span first start -> last finish, from the store."""
    from launch_jupyter.api import Launch

    client = Launch(store.url)
    items = client.items(queue=QUEUE)
    client.close()
    states = {i["state"] for i in items}
    if len(items) != n or states != {"succeeded"}:
        raise RuntimeError(f"throughput run ended with {len(items)} items in states {states}")
    first = min(parse_iso(i["started_at"]) for i in items)
    last = max(parse_iso(i["finished_at"]) for i in items)
    durations = sorted(i["duration"] for i in items)
    return {"store_span_s": round(last - first, 3),
            "item_duration_p50_s": durations[len(durations) // 2],
            # share of the span the two slots were busy with a run (started -> finished)
            "slot_utilisation": round(sum(durations) / (2 * (last - first)), 3)}


def agent_process(store: TempStore, n: int) -> tuple[float, dict]:
    _fill(store, n)
    t0, cpu0 = time.perf_counter(), tree_cpu_seconds()
    subprocess.run([tool("jupyter-launch"), "agent", "--queue", QUEUE, "--max-jobs", "2",
                    "--until-idle"], env=store.env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed, cpu = time.perf_counter() - t0, tree_cpu_seconds() - cpu0
    return elapsed, {**_check(store, n), "tree_cpu_ms_per_job": round(cpu / n * 1000, 1)}


def agent_in_process(store: TempStore, n: int) -> tuple[float, dict]:
    from launch_jupyter.api import Launch

    _fill(store, n)
    client = Launch(store.url)
    t0, cpu0 = time.perf_counter(), tree_cpu_seconds()
    agent = client.agent([QUEUE], max_jobs=2, until_idle=True)
    agent.run()
    elapsed, cpu = time.perf_counter() - t0, tree_cpu_seconds() - cpu0
    client.close()
    return elapsed, {**_check(store, n), "tree_cpu_ms_per_job": round(cpu / n * 1000, 1)}


def run(quick: bool) -> list[Figure]:
    n = 12 if quick else 100
    cpu0, tree0 = busy_cpu_seconds(), tree_cpu_seconds()
    base = ceiling(n)
    base_cpu = (busy_cpu_seconds() - cpu0) / n
    base_tree = (tree_cpu_seconds() - tree0) / n
    base_rate = n / base
    log(f"  ceiling: {n} x `python -c pass`, 2 at a time: {base:.2f} s = {base_rate:.1f} jobs/s")
    figures = []
    for label, func in (("`jupyter launch agent --max-jobs 2 --until-idle`", agent_process),
                        ("in-process Agent(max_jobs=2).run()", agent_in_process)):
        with temp_store("throughput") as store:
            cpu0 = busy_cpu_seconds()
            elapsed, extra = func(store, n)
            # All processes on the machine, the agent's start-up and store checks included.
            extra["machine_cpu_ms_per_job"] = round((busy_cpu_seconds() - cpu0) / n * 1000, 1)
            extra["ceiling_machine_cpu_ms_per_job"] = round(base_cpu * 1000, 1)
            # tree_cpu_ms_per_job (func): only the agent's run and the processes under it,
            # submits left out: the same figure without the other work on a shared machine.
            extra["ceiling_tree_cpu_ms_per_job"] = round(base_tree * 1000, 1)
        rate = n / elapsed
        log(f"  {label}: {elapsed:.2f} s = {rate:.2f} jobs/s ({rate / base_rate:.0%} of "
            f"ceiling) {extra}")
        figures.append(Figure(
            name=f"throughput, {n} trivial jobs, {label}", value=round(rate, 2), unit="jobs/s",
            baseline_name="`python -c pass` x N, 2 at a time", baseline=round(base_rate, 2),
            target=">= 60% of ceiling", met=rate >= 0.6 * base_rate, higher_is_better=True,
            details={"n": n, "elapsed_s": round(elapsed, 3), "ceiling_s": round(base, 3),
                     **extra}))
        # The same run without the agent's own start-up (imports, fork server): from the
        # first item started to the last one finished, as the store recorded them.
        steady = n / extra["store_span_s"]
        log(f"  {label}, steady state: {steady:.2f} jobs/s ({steady / base_rate:.0%} of "
            "ceiling)")
        figures.append(Figure(
            name=f"throughput, {n} trivial jobs, {label}, steady state (first start -> last "
                 "finish)", value=round(steady, 2), unit="jobs/s",
            baseline_name="`python -c pass` x N, 2 at a time", baseline=round(base_rate, 2),
            target=">= 60% of ceiling", met=steady >= 0.6 * base_rate, higher_is_better=True))
        figures.append(Figure(
            name=f"CPU per trivial job, {label} (rusage of the agent and the processes under it, "
                 f"start-up and {n} jobs)",
            value=extra["tree_cpu_ms_per_job"], unit="ms",
            baseline_name="`python -c pass` (rusage)", baseline=extra[
                "ceiling_tree_cpu_ms_per_job"], target="<= 2x", met=extra[
                "tree_cpu_ms_per_job"] <= 2 * extra["ceiling_tree_cpu_ms_per_job"]))
        figures.append(Figure(
            name=f"machine CPU per trivial job, {label} (all processes on the machine)",
            value=extra["machine_cpu_ms_per_job"], unit="ms",
            baseline_name="`python -c pass` (machine)", baseline=extra[
                "ceiling_machine_cpu_ms_per_job"], target="<= 2x", met=extra[
                "machine_cpu_ms_per_job"] <= 2 * extra["ceiling_machine_cpu_ms_per_job"]))
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    for figure in run(quick="--quick" in sys.argv):
        print(figure.as_json())
