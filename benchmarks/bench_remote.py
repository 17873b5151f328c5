"""(remote) submit -> process start through a Jupyter server's REST API, against a local submit.

One store, one agent process, one ``jupyter server`` with the launch extension on loopback
(token auth). Items are submitted alternately by a local client (on the store) and a remote
client (``Launch(URL, token=...)``), one at a time, each waited for until it finished; the
figure is the remote p50 of submit -> the job's first line (the stamp job of bench_latency),
its baseline the local p50 of the same run. Target: at most 30 ms more.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from bench_latency import QUEUE, _read_stamp, write_script
from common import Figure, TempStore, log, median, ms, summary, temp_store, tool, wait_for

#: The most the remote p50 may exceed the local p50 by, in ms.
TARGET_EXTRA_MS = 30


@contextmanager
def jupyter_server(store: TempStore) -> Iterator[tuple[str, str]]:
    """A ``jupyter server`` on the store, on a free loopback port: (url, token)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}/"
    root = store.root / "server-root"
    root.mkdir()
    env = dict(store.env(), JUPYTER_RUNTIME_DIR=str(store.root / "runtime"))
    with open(store.root / "server.log", "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
             "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             '--ServerApp.jpserver_extensions={"launch_jupyter": True}'],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        request = urllib.request.Request(f"{url}launch/api/meta",
                                         headers={"Authorization": f"token {token}"})

        def answers() -> bool:
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(answers, 60, "the jupyter server to answer", poll=0.2)
        yield url, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def samples(n: int) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """(local, remote) submit -> first line, in seconds, interleaved in one run; and how long
    the submit call itself took on each side."""
    from launch_jupyter.api import Launch

    with temp_store("remote") as store, jupyter_server(store) as (url, token):
        local = Launch(store.url)
        remote = Launch(url, token=token)
        stamps = store.root / "stamps"
        stamps.mkdir()
        job = remote.create_job(write_script(store.root), name="stamp")  # uploaded
        local.create_queue(QUEUE)
        with open(store.root / "agent.log", "wb") as agent_log:
            agent = subprocess.Popen([tool("jupyter-launch"), "agent", "--queue", QUEUE],
                                     env=store.env(), stdout=agent_log,
                                     stderr=subprocess.STDOUT)
        found: dict[str, list[float]] = {"local": [], "remote": []}
        calls: dict[str, list[float]] = {"local": [], "remote": []}
        try:
            wait_for(lambda: bool(local.agents()), 30, "the agent process to register")
            for i in range(2 * n + 2):  # the first of each warms caches: dropped
                side, client = ("local", local) if i % 2 == 0 else ("remote", remote)
                t0 = time.time()
                item = client.submit(job.ref, queue=QUEUE,
                                     parameters={"folder": str(stamps)})
                returned = time.time()
                stamp = _read_stamp(stamps / item.id)
                wait_for(lambda item=item: local.item_info(item.id)["state"] == "succeeded",
                         60, f"item {item.id} to succeed", poll=0.005)
                if i >= 2:
                    found[side].append(stamp - t0)
                    calls[side].append(returned - t0)
        finally:
            agent.terminate()
            agent.wait(30)
            remote.close()
            local.close()
    return found["local"], found["remote"], calls


def run(quick: bool) -> list[Figure]:
    n = 10 if quick else 30
    local, remote, calls = samples(n)
    local_ms = {k: (v if k == "n" else ms(v)) for k, v in summary(local).items()}
    remote_ms = {k: (v if k == "n" else ms(v)) for k, v in summary(remote).items()}
    extra = ms(median(remote) - median(local))
    log(f"  local submit -> first line p50 {local_ms['p50']} ms; remote {remote_ms['p50']} ms "
        f"(+{extra} ms)")
    details = {"local_samples_ms": [ms(x) for x in local],
               "remote_samples_ms": [ms(x) for x in remote],
               "local_summary_ms": local_ms, "remote_summary_ms": remote_ms,
               "remote_minus_local_p50_ms": extra,
               "submit_call_p50_ms": {side: ms(median(v)) for side, v in calls.items()}}
    log("  " + json.dumps({k: details[k] for k in ("remote_minus_local_p50_ms",
                                                    "submit_call_p50_ms")}))
    return [Figure(
        name="remote submit -> process start p50 (REST on loopback, agent process)",
        value=remote_ms["p50"], unit="ms",
        baseline_name="local submit -> process start p50, same run", baseline=local_ms["p50"],
        target=f"<= baseline + {TARGET_EXTRA_MS} ms", met=extra <= TARGET_EXTRA_MS,
        details=details)]
