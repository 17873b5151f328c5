"""Cell progress of a notebook run on Kubernetes (the emulator): the test plays the kubelet by
running the pod's own programs (the shipped run wrapper and notebook executor, from the
ConfigMap the runner made) on this machine and streaming their output as the pod's log."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from launch_jupyter.api import Launch
from launch_jupyter.runners import build

from ..conftest import wait_for
from ..test_progress import assert_waiting_at_cell_4, outputs_text, waiting_notebook
from .cluster import ClusterServer, Controller, JobHandle
from .conftest import make_queue


def run_pod_programs(cluster: ClusterServer, job: JobHandle, pod: str, folder: Path) -> int:
    """What the container would run, here: the wrapper with the Job's metrics marker around
    the executor on the ConfigMap's notebook; its stdout goes to the pod's log as it comes."""
    [configmap] = [b for p, b in cluster.cluster.created if p == "configmaps"
                   and b["metadata"]["name"] == job.name]
    notebook = next(base64.b64decode(v) for v in configmap["binaryData"].values()
                    if b"injected-parameters" in base64.b64decode(v))
    command = job.job["spec"]["template"]["spec"]["containers"][0]["command"]
    marker = command[command.index("--metrics-marker") + 1]
    lib = folder / "lib"
    for rel, content in build.support_files():
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        (lib / rel).write_bytes(content)
    (folder / "wait.ipynb").write_bytes(notebook)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["LAUNCH_METRICS_FILE"] = str(folder / "metrics.jsonl")
    proc = subprocess.Popen(
        [sys.executable, str(lib / "launch_run.py"), "--metrics-marker", marker, "--",
         sys.executable, str(lib / "launch_notebook.py"), "--input", str(folder / "wait.ipynb"),
         "--output", str(folder / "executed" / "wait.ipynb"),
         "--error-file", str(folder / "error.json")],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    while data := os.read(proc.stdout.fileno(), 65536):
        job.log(pod, data.decode(errors="replace"))
    return proc.wait()


def test_running_cell_and_outputs_so_far_while_a_pod_cell_waits(
    client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller
) -> None:
    go = tmp_path / "go"
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    exit_codes: list[int] = []

    def kubelet(ctl: Controller, job: JobHandle) -> None:
        pod = job.create_pod()
        job.run(pod)
        code = run_pod_programs(cluster, job, pod, pod_dir)
        exit_codes.append(code)
        job.terminate(pod, code)
        job.complete() if code == 0 else job.fail()

    controller.scenarios.append(kubelet)
    queue = make_queue(client)
    item = client.submit(client.create_job(waiting_notebook(tmp_path)).ref, queue=queue,
                         parameters={"go": str(go)})
    agent = client.agent([queue]).start()
    try:
        wait_for(lambda: (item.info()["progress"] or {}).get("cell") == 4, 120,
                 what="the waiting cell to be reported running")
        record = item.info()
        assert_waiting_at_cell_4(record)
        executed = record["executed_notebook"]
        texts = wait_for(lambda: Path(executed).is_file() and (t := outputs_text(executed))[2]
                         and t, 10, what="the host's executed notebook to hold cell 3's output")
        assert texts[2] == "one\n" and texts[3] == ""
        go.touch()
        data = item.wait(120, progress=False).info()
    finally:
        agent.stop()
    assert exit_codes == [0]
    assert data["state"] == "succeeded", client.logs(item.id)[0]
    assert data["progress"] is None
    assert [c["cell"] for c in data["cells"]] == [1, 2, 3, 4, 5, 6]
    log = client.logs(item.id)[0]
    assert "one\nreleased\nafter\ndone\n" in log and "@@launch-jupyter" not in log
