"""Metrics from Kubernetes runs: the test plays the kubelet, running the pod's own command
(the shipped run wrapper around the job, with the Job's environment) on this machine and
streaming its output into the emulated pod log as it comes; the runner takes the wrapper's
metric lines out of the log and stores the points while the pod runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from launch_jupyter.api import Launch
from launch_jupyter.runners.build import support_files

from ..conftest import CLI, wait_for, write_script
from .cluster import Controller, JobHandle
from .conftest import make_queue


def kubelet(root: Path, files: list[tuple[str, bytes]]):
    """A scenario that runs the pod's container command here, with ``/launch`` mapped to
    ``root`` (the ConfigMap's job and lib files written under ``root/src``)."""
    for rel, content in [*(("src/job/" + p, c) for p, c in files),
                         *(("src/lib/" + p, c) for p, c in support_files())]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)

    def here(text: str) -> str:
        return str(root) + text[len("/launch"):] if text.startswith("/launch/") else text

    def scenario(ctl: Controller, job: JobHandle) -> None:
        container = job.job["spec"]["template"]["spec"]["containers"][0]
        command = [sys.executable if arg == "python3" else here(arg)
                   for arg in container["command"]]
        env = {e["name"]: here(e["value"]) for e in container["env"] if "value" in e}
        env["PATH"] = os.environ["PATH"]
        pod = job.create_pod()
        job.run(pod)
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd=root)
        assert proc.stdout is not None
        while data := os.read(proc.stdout.fileno(), 65536):
            job.log(pod, data.decode())  # as the container writes it
        code = proc.wait()
        job.terminate(pod, code)
        job.complete() if code == 0 else job.fail()

    return scenario


def test_metrics_reach_the_store_while_the_pod_runs_and_none_is_lost(
        client: Launch, tmp_path: Path, cluster: object, controller: Controller,
        cli: CLI) -> None:
    go = tmp_path / "go"
    path = write_script(tmp_path, "train.py", f"""
        import os, time, launch_jupyter
        print("pod starts", flush=True)
        launch_jupyter.log({{"loss": 1.0}})
        deadline = time.time() + 90
        while not os.path.exists({str(go)!r}) and time.time() < deadline:
            time.sleep(0.05)
        for step in range(1, 3000):
            launch_jupyter.log({{"loss": 1.0 / (step + 1)}}, step=step)
        launch_jupyter.log(loss=float("inf"))
        print("pod ends")
    """)
    job = client.create_job(path)
    (tmp_path / "pod").mkdir()
    controller.scenarios.append(kubelet(tmp_path / "pod", [("train.py", path.read_bytes())]))
    queue = make_queue(client)
    item = client.submit(job.ref, queue=queue)
    agent = client.agent([queue]).start()
    try:
        first = wait_for(lambda: cli.json("show", item.id)["metrics"] or item.done, 90,
                         what="the pod's first metric in show --json")
        assert first == {"loss": {"last": 1.0, "min": 1.0, "max": 1.0, "step": 0, "count": 1}}
        assert item.state == "running"
        go.touch()
        assert item.wait(90, progress=False).state == "succeeded", item.logs()
    finally:
        agent.stop()
    points = cli.json("metrics", item.id)
    assert [p["step"] for p in points] == list(range(3000))
    assert points[-1]["value"] == 1.0 / 3000
    log = item.logs()
    assert "pod starts\n" in log and "pod ends\n" in log
    assert "@@launch-jupyter-metrics" not in log
    assert log.count("launch_jupyter.log: skipped 'loss'") == 1
    assert controller.errors == []


def test_the_wrapper_falls_back_to_a_temp_file_when_launch_is_not_writable(
        tmp_path: Path) -> None:
    """An image whose user cannot write /launch (a prebuilt one) still reports metrics."""
    wrapper = tmp_path / "launch_run.py"
    wrapper.write_bytes(dict(support_files())["launch_run.py"])
    lib = tmp_path / "lib"
    (lib / "launch_jupyter").mkdir(parents=True)
    (lib / "launch_jupyter" / "__init__.py").write_bytes(
        dict(support_files())["launch_jupyter/__init__.py"])
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(lib), "LAUNCH_ITEM_ID": "01TEST",
           "LAUNCH_METRICS_FILE": str(tmp_path / "missing" / "metrics.jsonl")}
    code = "import launch_jupyter, os; launch_jupyter.log(acc=0.5); print(os.environ[" \
           "'LAUNCH_METRICS_FILE'])"
    proc = subprocess.run([sys.executable, str(wrapper), "--metrics-marker", "@@M@@", "--",
                           sys.executable, "-c", code], env=env, capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    used = out.splitlines()[0]
    assert used.startswith(os.environ.get("TMPDIR", "/tmp")) and "missing" not in used
    assert '\n@@M@@ [["acc",0,0.5,' in out
