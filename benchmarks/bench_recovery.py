"""(g) Time to recover from kill -9, and items lost or run twice, for the local runner.

Each trial runs one item whose job proves "never two copies at once" itself (an exclusive
flock held for its whole life; a second copy would record OVERLAP) and stamps every start
with ``time.time()``. Faults, each repeated (3 trials, 1 with --quick):

- kill -9 of the agent process mid-run, then a new agent: the run goes on under its
  supervisor; the figure is the number of attempts (target 1) and the item must succeed;
- kill -9 of the supervisor, agent alive: the job dies with it, the agent sees the supervisor
  gone and requeues the item; the figure is kill -> the second attempt's first line;
- kill -9 of the agent and then of the supervisor (nothing left alive), a new agent started
  at once: recovery waits for the lease to lapse; the figure is kill -> the second
  attempt's first line, with a 10 s lease (it scales with the lease ttl).

Items lost (not succeeded in the end) and items run twice (OVERLAP, or two copies finishing)
are counted over every trial. The baseline of the recovery times is the lease ttl.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from common import Figure, TempStore, log, median, temp_store, tool, wait_for

TTL = 10.0

JOB = """\
import fcntl, os, time
import launch_jupyter

p = launch_jupyter.parameters(folder="")
item, attempt = os.environ["LAUNCH_ITEM_ID"], os.environ["LAUNCH_ATTEMPT"]
base = os.path.join(p["folder"], item)
fd = os.open(base + ".lock", os.O_CREAT | os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    held = "locked"
except BlockingIOError:
    held = "OVERLAP"
def mark(what):
    with open(base + ".marks", "a") as fh:
        fh.write(f"{what} {attempt} {time.time()!r} {held}\\n")
mark("start")
deadline = time.time() + 300
while not os.path.exists(base + ".go" + attempt) and time.time() < deadline:
    time.sleep(0.01)
mark("end")
"""


def _marks(folder: Path, item_id: str) -> list[list[str]]:
    path = folder / f"{item_id}.marks"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _agent(store: TempStore, ttl: float) -> subprocess.Popen:
    env = store.env()
    env["LAUNCH_JUPYTER_LEASE_TTL"] = str(ttl)
    return subprocess.Popen([tool("jupyter-launch"), "agent"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def trial(fault: str, ttl: float) -> dict:
    """One item through one fault; what happened to it."""
    from launch_jupyter.api import Launch

    with temp_store(f"recovery-{fault}") as store:
        folder = store.root / "marks"
        folder.mkdir()
        script = store.root / "guarded.py"
        script.write_text(JOB)
        client = Launch(store.url)
        agents = [_agent(store, ttl)]
        try:
            wait_for(lambda: client.agents(), 60, "the agent to register")
            item = client.submit(client.create_job(script).ref,
                                 parameters={"folder": str(folder)})
            (folder / f"{item.id}.go2").touch()  # a second attempt finishes at once
            wait_for(lambda: _marks(folder, item.id), 60, "the first attempt to start")
            supervisor = item.info()["run"]["supervisor_pid"]
            killed = time.time()
            if fault in ("agent", "both"):
                _kill(agents[0])
            if fault in ("supervisor", "both"):
                os.kill(supervisor, signal.SIGKILL)
            if fault != "supervisor":
                agents.append(_agent(store, ttl))
            if fault == "agent":
                time.sleep(2 * ttl)  # give the new agent two lease lifetimes to misbehave
                (folder / f"{item.id}.go1").touch()
            item.wait(6 * ttl + 60, poll=0.05, progress=False)
            data = item.info()
        finally:
            for proc in agents:
                _kill(proc)
            client.close()
        marks = _marks(folder, item.id)
        starts = [m for m in marks if m[0] == "start"]
        second = [float(m[2]) for m in starts if m[1] == "2"]
        return {
            "state": data["state"], "attempts": len(data["attempts"]),
            "recovery_s": (second[0] - killed) if second else None,
            "overlap": any(m[3] == "OVERLAP" for m in marks),
            "ends": sum(1 for m in marks if m[0] == "end"),
        }


def run(quick: bool) -> list[Figure]:
    n = 1 if quick else 3
    results: dict[str, list[dict]] = {}
    for fault, ttl in (("agent", TTL), ("supervisor", 30.0), ("both", TTL)):
        results[fault] = []
        for i in range(n):
            outcome = trial(fault, ttl)
            log(f"  kill -9 {fault} (ttl {ttl:g} s), trial {i + 1}: {outcome}")
            results[fault].append(outcome)
    every = [r for rs in results.values() for r in rs]
    lost = sum(1 for r in every if r["state"] != "succeeded")
    twice = sum(1 for r in every if r["overlap"] or r["ends"] > 1)
    figures = [
        Figure(f"items lost over {len(every)} kill -9 faults", lost, "items", target="0",
               met=lost == 0),
        Figure(f"items run twice at once over {len(every)} kill -9 faults", twice, "items",
               target="0", met=twice == 0),
        Figure("kill -9 agent: attempts of the interrupted item (run continues)",
               max(r["attempts"] for r in results["agent"]), "attempts", target="1",
               met=all(r["attempts"] == 1 for r in results["agent"])),
    ]
    for fault, ttl, name in (
            ("supervisor", 30.0, "kill -9 supervisor (agent alive): kill -> attempt 2 runs"),
            ("both", TTL, "kill -9 agent + supervisor: kill -> attempt 2 runs")):
        times = [r["recovery_s"] for r in results[fault] if r["recovery_s"] is not None]
        figures.append(Figure(
            name, round(median(times), 2) if times else float("nan"), "s",
            "lease ttl", ttl, f"< {2 * ttl:g} s", bool(times) and max(times) < 2 * ttl,
            details={"samples_s": [round(t, 2) for t in times]}))
    return figures
