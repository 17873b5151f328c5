"""(f) A job printing 200 MB: memory of the agent and the supervisor, the stored log, and how
fast the logs REST route answers for that item.

The agent is a ``jupyter launch agent`` process. A sampler reads ``VmRSS`` and ``VmHWM`` (the
kernel's own peak-RSS record, so nothing between two samples is missed) from
``/proc/PID/status`` of the agent and of the item's supervisor every 50 ms while the item
runs. Baselines from the same run: the idle agent before anything is submitted, and the
supervisor of a one-line job. Then a ``jupyter server`` with the launch extension is started
on the store and ``GET /launch/api/items/{id}/logs`` is timed over one kept-alive HTTP
connection, for the first 1 MiB page and for the last page of the capped 50 MiB log; the
baseline is ``GET /api/status`` (Jupyter's own cheapest authenticated route) on that server.
The job's wall time (submit -> finished) is compared with ``python job.py > /dev/null``.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from common import Figure, TempStore, log, ms, parse_iso, summary, temp_store, tool, wait_for

OUTPUT_MB = 200
RSS_BOUND_MB = 150  # the bound tests/server/test_big_output.py asserts
MARKER = "[launch-jupyter: log truncated at"

JOB = f"""\
import sys
line = "x" * 1023 + "\\n"
for _ in range({OUTPUT_MB} * 1024):  # {OUTPUT_MB} MB
    sys.stdout.write(line)
print("the end")
"""


def status_kb(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of ``pid`` in KiB ({} once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class PeakSampler:
    """Samples the agent and the item's supervisor until stopped; keeps the peaks (KiB)."""

    def __init__(self, agent_pid: int, supervisor_pid: Callable[[], int | None]) -> None:
        self.agent_pid = agent_pid
        self.supervisor_pid = supervisor_pid
        self.peak = {"agent": 0, "supervisor": 0}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        supervisor = None
        while not self._stop.is_set():
            supervisor = supervisor or self.supervisor_pid()
            for name, pid in (("agent", self.agent_pid), ("supervisor", supervisor)):
                if pid:
                    kb = status_kb(pid)
                    self.peak[name] = max(self.peak[name], kb.get("VmHWM", 0),
                                          kb.get("VmRSS", 0))
            self.samples += 1
            self._stop.wait(0.05)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _run_item(client, agent_pid: int, ref: str) -> tuple[dict, PeakSampler, float]:
    item = client.submit(ref)
    t0 = time.perf_counter()
    with PeakSampler(agent_pid, lambda: item.info()["run"].get("supervisor_pid")) as sampler:
        item.wait(600, progress=False)
    return item.info(), sampler, time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(store: TempStore) -> tuple[subprocess.Popen, int, str, Path]:
    port, token = _free_port(), secrets.token_hex(16)
    root = store.root / "server-root"
    root.mkdir()
    log_path = store.root / "server.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser",
             "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             '--ServerApp.jpserver_extensions={"launch_jupyter": True}'],
            stdout=out, stderr=subprocess.STDOUT, env=store.env(), start_new_session=True)

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter server exited:\n{log_path.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/launch/api/queues", headers={"Authorization": f"token {token}"})
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    wait_for(ready, 90, "jupyter server to answer")
    return proc, port, token, log_path


def _time_route(port: int, token: str, path: str, n: int) -> tuple[list[float], dict]:
    """Seconds per GET of ``path`` (answer read in full), over one kept-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"token {token}"}
    samples, body = [], {}
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            data = response.read()
            samples.append(time.perf_counter() - t0)
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}: {data[:300]!r}")
            body = json.loads(data)
    finally:
        conn.close()
    return samples, body


def run(quick: bool) -> list[Figure]:
    from launch_jupyter.api import Launch

    n = 10 if quick else 20
    figures: list[Figure] = []
    with temp_store("bigoutput") as store:
        script = store.root / "loud.py"
        script.write_text(JOB)
        tiny = store.root / "tiny.py"
        tiny.write_text("print('hello')\n")
        client = Launch(store.url)
        loud_ref, tiny_ref = client.create_job(script).ref, client.create_job(tiny).ref
        agent = subprocess.Popen([tool("jupyter-launch"), "agent"], env=store.env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 start_new_session=True)
        try:
            wait_for(lambda: client.agents(), 60, "the agent to register")
            time.sleep(1.0)  # let the fork server finish warming up before the idle figure
            idle_agent = status_kb(agent.pid)["VmRSS"]
            tiny_item, tiny_sampler, _ = _run_item(client, agent.pid, tiny_ref)
            log("running the 200 MB job")
            item, sampler, wall = _run_item(client, agent.pid, loud_ref)
        finally:
            os.killpg(agent.pid, signal.SIGTERM)
            agent.wait(30)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(script)], stdout=subprocess.DEVNULL, check=True)
        bare = time.perf_counter() - t0
        text, _ = client.logs(item["id"], max(0, item["log_bytes"] - 4096))
        capped_ok = (item["state"] == "succeeded" and MARKER in text
                     and "the end" not in text
                     and item["log_bytes"] <= client.config.max_log_bytes + 200)
        log(f"state {item['state']}, log {item['log_bytes']:,} bytes, capped {capped_ok}, "
            f"{sampler.samples} samples")
        client.close()

        server, port, token, _log = _start_server(store)
        try:
            base = "/launch/api/items/" + item["id"] + "/logs"
            first, page = _time_route(port, token, base, n)
            last_offset = max(0, item["log_bytes"] - 1024 * 1024)
            last, tail = _time_route(port, token, f"{base}?offset={last_offset}", n)
            status, _ = _time_route(port, token, "/api/status", n)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        assert page["text"] and tail["done"], (len(page["text"]), tail.get("done"))

    mb = 1024.0
    details = {"item": item["id"], "log_bytes": item["log_bytes"], "samples": sampler.samples,
               "duration_store": parse_iso(item["finished_at"]) - parse_iso(item["started_at"])}
    figures.append(Figure(
        "agent peak RSS, 200 MB job", round(sampler.peak["agent"] / mb, 1), "MiB",
        "the same agent idle", round(idle_agent / mb, 1), f"< {RSS_BOUND_MB} MiB",
        sampler.peak["agent"] / mb < RSS_BOUND_MB, details=details))
    figures.append(Figure(
        "supervisor peak RSS, 200 MB job", round(sampler.peak["supervisor"] / mb, 1), "MiB",
        "supervisor of a one-line job", round(tiny_sampler.peak["supervisor"] / mb, 1),
        f"< {RSS_BOUND_MB} MiB", sampler.peak["supervisor"] / mb < RSS_BOUND_MB))
    figures.append(Figure(
        "log stored for 200 MB of output", round(item["log_bytes"] / 1024 / 1024, 2), "MiB",
        target="capped at max_log_bytes (50 MiB) with the marker", met=capped_ok))
    figures.append(Figure(
        "200 MB job, submit -> finished", round(wall, 2), "s",
        "python job.py > /dev/null", round(bare, 2)))
    for name, samples in (("logs route p50, first 1 MiB page", first),
                          ("logs route p50, last page", last)):
        stats = {k: ms(v) if k != "n" else v for k, v in summary(samples).items()}
        figures.append(Figure(
            name, ms(summary(samples)["p50"]), "ms", "GET /api/status p50",
            ms(summary(status)["p50"]), "< 1000 ms", summary(samples)["p50"] < 1.0,
            details=stats))
    return figures
