"""The local runner end to end: real supervisor and job processes, real kernels."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager

from launch_jupyter.api import Launch

from ..conftest import pid_alive, wait_for, write_notebook, write_script


def test_script_item_runs_end_to_end_through_the_python_api(
    client: Launch, agent: object, tmp_path: Path
) -> None:
    path = write_script(tmp_path, "train.py", """
        import json, os, launch_jupyter
        p = launch_jupyter.parameters(lr=0.01, layers=2, name="x")
        print("params", json.dumps(p, sort_keys=True))
        print("env", os.environ["LAUNCH_JOB"], os.environ["LAUNCH_QUEUE"])
        with open(os.path.join(os.environ["LAUNCH_OUTPUT_DIR"], "metrics.json"), "w") as fh:
            json.dump({"loss": 0.5}, fh)
    """)
    job = client.create_job(path)
    item = client.submit(job.ref, overrides=["lr=1", "name=y z"]).wait(60)
    data = item.info()
    assert data["state"] == "succeeded", item.logs()
    assert data["exit_code"] == 0
    assert data["parameters"] == {"lr": 1.0, "layers": 2, "name": "y z"}
    logs = item.logs()
    assert 'params {"layers": 2, "lr": 1.0, "name": "y z"}' in logs
    assert "env train:v1 local" in logs
    [metrics] = [o for o in data["outputs"] if o["name"] == "metrics.json"]
    assert json.loads(Path(metrics["path"]).read_text()) == {"loss": 0.5}


def test_notebook_item_injects_overrides_and_keeps_the_executed_notebook(
    client: Launch, agent: object, tmp_path: Path
) -> None:
    path = write_notebook(tmp_path, "nb.ipynb", ["print('lr is', lr)"],
                          parameters="lr = 0.01\nepochs = 3")
    item = client.submit(client.create_job(path).ref, parameters={"lr": 0.5}).wait(120)
    assert item.state == "succeeded", item.logs()
    assert "lr is 0.5" in item.logs()
    executed = nbformat.read(item.output_notebook, as_version=4)
    injected = [c for c in executed.cells
                if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "lr = 0.5" in injected[0].source
    printed = executed.cells[-1].outputs[0]["text"]
    assert printed == "lr is 0.5\n"
    # The kernel that ran, named as JupyterLab names it: opening the record rewrites nothing.
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert executed.metadata.kernelspec == {"name": "python3", "display_name": spec.display_name,
                                            "language": "python"}


def test_failing_cell_is_named_in_the_error(client: Launch, agent: object,
                                            tmp_path: Path) -> None:
    path = write_notebook(tmp_path, "bad.ipynb", ["x = 1", "raise ValueError('boom')", "y=2"])
    item = client.submit(client.create_job(path).ref).wait(120)
    data = item.info()
    assert data["state"] == "failed"
    assert data["error"]["cell"] == 2  # 1-based, as JupyterLab numbers the cells
    assert "ValueError: boom" in data["error"]["message"]
    assert data["exit_code"] == 1
    assert item.output_notebook is not None  # the partial run is kept for inspection


def test_logs_stream_while_the_job_runs(client: Launch, agent: object, tmp_path: Path) -> None:
    go = tmp_path / "go"
    path = write_script(tmp_path, "wait.py", f"""
        import os, time
        print("first line", flush=True)
        deadline = time.time() + 60
        while not os.path.exists({str(go)!r}) and time.time() < deadline:
            time.sleep(0.02)
        print("last line")
    """)
    item = client.submit(client.create_job(path).ref)
    wait_for(lambda: "first line" in item.logs(), 30, what="the first log line")
    assert item.state == "running"
    assert "last line" not in item.logs()
    go.touch()
    item.wait(30)
    assert item.state == "succeeded" and "last line" in item.logs()


def _waiting_job(client: Launch, tmp_path: Path, name: str, trap_term: bool = False) -> str:
    pidfile = tmp_path / f"{name}.pid"
    trap = "signal.signal(signal.SIGTERM, signal.SIG_IGN)" if trap_term else ""
    path = write_script(tmp_path, f"{name}.py", f"""
        import os, signal, time
        {trap}
        with open({str(pidfile)!r} + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.rename({str(pidfile)!r} + ".tmp", {str(pidfile)!r})
        time.sleep(120)
    """)
    return client.create_job(path).ref


def test_cancel_stops_a_running_item(client: Launch, agent: object, tmp_path: Path) -> None:
    item = client.submit(_waiting_job(client, tmp_path, "sleepy"))
    pidfile = tmp_path / "sleepy.pid"
    wait_for(pidfile.exists, 30, what="the job to start")
    pid = int(pidfile.read_text())
    item.cancel()
    item.wait(10)
    data = item.info()
    assert data["state"] == "cancelled"
    wait_for(lambda: not pid_alive(pid), 10, what="the job process to end")


def test_job_ignoring_sigterm_is_killed_after_the_grace_period(
    client: Launch, agent: object, tmp_path: Path
) -> None:
    item = client.submit(_waiting_job(client, tmp_path, "stubborn", trap_term=True))
    pidfile = tmp_path / "stubborn.pid"
    wait_for(pidfile.exists, 30, what="the job to start")
    pid = int(pidfile.read_text())
    item.cancel()
    item.wait(15)  # grace is 2 s in the tests
    assert item.state == "cancelled"
    assert not pid_alive(pid)


def test_timeout_fails_an_overrunning_item(client: Launch, agent: object,
                                           tmp_path: Path) -> None:
    item = client.submit(_waiting_job(client, tmp_path, "slow"), timeout=1)
    item.wait(30)
    data = item.info()
    assert data["state"] == "failed"
    assert data["error"]["stage"] == "timeout"
    assert "timed out after 1 s" in data["error"]["message"]


def test_queue_timeout_is_the_default(client: Launch, agent: object, tmp_path: Path) -> None:
    client.create_queue("short", timeout=1)
    item = client.submit(_waiting_job(client, tmp_path, "slow2"), queue="short").wait(30)
    assert item.info()["error"]["stage"] == "timeout"


def test_pinned_version_mismatch_is_reported_at_the_top_of_the_log(
    client: Launch, agent: object, tmp_path: Path
) -> None:
    path = write_notebook(tmp_path, "pins.ipynb",
                          ["%pip install not-a-real-dist-xyz==1.0", "print('ran')"])
    item = client.submit(client.create_job(path).ref).wait(120)
    logs = item.logs()
    assert logs.startswith("[launch-jupyter: warning: not-a-real-dist-xyz==1.0"), logs
    assert "ran" in logs


def test_job_crash_exit_code_is_recorded(client: Launch, agent: object,
                                         tmp_path: Path) -> None:
    path = write_script(tmp_path, "crash.py", "import sys\nprint('bye')\nsys.exit(3)\n")
    item = client.submit(client.create_job(path).ref).wait(30)
    data = item.info()
    assert data["state"] == "failed" and data["exit_code"] == 3
    assert data["error"]["message"] == "the job exited with code 3"


def test_cancel_stops_a_running_notebook_and_its_kernel(
    client: Launch, agent: object, tmp_path: Path
) -> None:
    pidfile = tmp_path / "kernel.pid"
    path = write_notebook(tmp_path, "long.ipynb", [
        f"import os, time\nopen({str(pidfile)!r} + '.tmp', 'w').write(str(os.getpid()))\n"
        f"os.rename({str(pidfile)!r} + '.tmp', {str(pidfile)!r})",
        "time.sleep(120)",
    ])
    item = client.submit(client.create_job(path).ref)
    wait_for(pidfile.exists, 60, what="the kernel to run the first cell")
    kernel_pid = int(pidfile.read_text())
    item.cancel()
    item.wait(15)
    assert item.state == "cancelled"
    wait_for(lambda: not pid_alive(kernel_pid), 10, what="the kernel to be stopped")


def test_huge_output_is_capped_with_a_visible_marker(
    client: Launch, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("LAUNCH_JUPYTER_MAX_LOG_BYTES", str(1024 * 1024))
    capped = Launch(client.config.store)  # reads the cap from the environment
    agent = capped.agent().start()
    try:
        path = write_script(tmp_path, "loud.py", """
            import sys
            line = "x" * 1023 + "\\n"
            for _ in range(50 * 1024):  # 50 MB
                sys.stdout.write(line)
            print("the end")
        """)
        item = capped.submit(capped.create_job(path).ref).wait(120)
        assert item.state == "succeeded"
        logs = item.logs()
        assert "[launch-jupyter: log truncated at 1048576 bytes" in logs
        assert len(logs.encode()) < 1024 * 1024 + 200
        assert "the end" not in logs
    finally:
        agent.stop()
        capped.close()


def test_a_job_whose_supervisor_is_already_gone_never_starts(tmp_path: Path) -> None:
    # The job starts through setpriv --pdeathsig and a parent check (no preexec_fn): when
    # its supervisor died before the death signal was set, the job must not run orphaned.
    import os
    import subprocess
    import sys

    from launch_jupyter.runners.supervisor import _death_wrapper

    wrapper = _death_wrapper()
    assert wrapper, "setpriv (util-linux) and sh are installed on Linux test machines"
    marker = tmp_path / "ran"
    job = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    gone = subprocess.run([*wrapper, "1", *job], process_group=0)
    assert gone.returncode == 137 and not marker.exists()
    alive = subprocess.run([*wrapper, str(os.getpid()), *job], process_group=0)
    assert alive.returncode == 0 and marker.exists()
