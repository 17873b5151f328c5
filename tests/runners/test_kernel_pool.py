"""Warm kernels for notebook runs (runners/kernelpool.py): real agents, fork server, kernels."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import nbformat
import pytest

from launch_jupyter.api import Launch

from ..conftest import CLI, _processes_mentioning, pid_alive, wait_for, write_notebook

#: prints the kernel's pid: which kernel ran the notebook
PID_CELLS = ["import os", "print('kernel', os.getpid())"]


def _kernels(home: Path) -> list[int]:
    """Kernel processes started for this test's store (their environment names it)."""
    found = []
    for pid in _processes_mentioning(str(home)):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if b"ipykernel" in cmdline and pid_alive(pid):
            found.append(pid)
    return found


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(") ", 1)[1].split()[1])


def _warm_kernel(home: Path, not_in: set[int] = frozenset()) -> int:  # type: ignore[assignment]
    """Wait for the pool's one waiting kernel (not one of ``not_in``) and return its pid."""
    def one() -> int | None:
        kernels = [pid for pid in _kernels(home) if pid not in not_in]
        return kernels[0] if len(kernels) == 1 else None

    return int(wait_for(one, 60, 0.1, "a warm kernel in the pool"))  # type: ignore[arg-type]


def _kernel_of(item: object) -> int:
    """The pid the run's kernel printed."""
    logs = item.logs()  # type: ignore[attr-defined]
    [line] = [line for line in logs.splitlines() if line.startswith("kernel ")]
    return int(line.split()[1])


def _run(client: Launch, ref: str) -> object:
    item = client.submit(ref).wait(120)
    assert item.state == "succeeded", item.logs()
    return item


@pytest.mark.slow
def test_a_pooled_kernel_serves_exactly_one_run(client: Launch, home: Path,
                                                tmp_path: Path) -> None:
    client.config.kernel_pool_size = 1
    ref = client.create_job(write_notebook(tmp_path, "pid.ipynb", PID_CELLS)).ref
    agent = client.agent().start()
    try:
        first = _kernel_of(_run(client, ref))  # no kernel seen yet: a cold start
        warm = _warm_kernel(home, {first})
        second = _kernel_of(_run(client, ref))
        assert second == warm  # the run got the kernel started before it was submitted
        wait_for(lambda: not pid_alive(warm), 30, what="the used kernel to be shut down")
        refill = _warm_kernel(home, {first, warm})
        third = _kernel_of(_run(client, ref))
        assert third == refill and len({first, second, third}) == 3
    finally:
        agent.stop()


@pytest.mark.slow
def test_a_dead_pooled_kernel_is_not_handed_out(client: Launch, home: Path,
                                                tmp_path: Path) -> None:
    client.config.kernel_pool_size = 1
    ref = client.create_job(write_notebook(tmp_path, "pid.ipynb", PID_CELLS)).ref
    agent = client.agent().start()
    try:
        first = _kernel_of(_run(client, ref))
        warm = _warm_kernel(home, {first})
        os.kill(warm, signal.SIGKILL)
        wait_for(lambda: not pid_alive(warm), 10, what="the pooled kernel to die")
        used = _kernel_of(_run(client, ref))  # submitted at once: before any refill
        assert used not in (first, warm)
    finally:
        agent.stop()


@pytest.mark.slow
def test_the_pool_drains_when_the_agent_stops(client: Launch, home: Path,
                                              tmp_path: Path) -> None:
    client.config.kernel_pool_size = 1
    ref = client.create_job(write_notebook(tmp_path, "pid.ipynb", PID_CELLS)).ref
    agent = client.agent().start()
    try:
        _run(client, ref)
        warm = _warm_kernel(home)
        executor = _parent(warm)
        supervisor = _parent(executor)
    finally:
        agent.stop()
    for pid in (warm, executor, supervisor):
        wait_for(lambda pid=pid: not pid_alive(pid), 15, what=f"pool process {pid} to end")
    assert _kernels(home) == []


@pytest.mark.slow
def test_a_killed_agent_process_leaves_no_pooled_kernel(client: Launch, cli: CLI, home: Path,
                                                       tmp_path: Path) -> None:
    ref = client.create_job(write_notebook(tmp_path, "pid.ipynb", PID_CELLS)).ref
    agent = cli.popen("agent")  # kernel_pool_size: the default, 1
    _run(client, ref)
    warm = _warm_kernel(home)
    executor = _parent(warm)
    supervisor = _parent(executor)
    os.kill(agent.pid, signal.SIGKILL)  # no clean stop: the fork server dies with it
    agent.wait()
    for pid in (warm, executor, supervisor):
        wait_for(lambda pid=pid: not pid_alive(pid), 15, what=f"pool process {pid} to end")
    assert _kernels(home) == []


@pytest.mark.slow
def test_cancel_stops_a_pooled_run_and_its_kernel(client: Launch, home: Path,
                                                  tmp_path: Path) -> None:
    client.config.kernel_pool_size = 1
    ref = client.create_job(write_notebook(tmp_path, "pid.ipynb", PID_CELLS)).ref
    long = client.create_job(write_notebook(
        tmp_path, "long.ipynb", [*PID_CELLS, "import time\ntime.sleep(120)"])).ref
    agent = client.agent().start()
    try:
        _run(client, ref)  # the key is seen: the pool starts a kernel for the next run
        warm = _warm_kernel(home)
        item = client.submit(long)
        wait_for(lambda: "kernel " in item.logs(), 60, what="the first cells to run")
        assert _kernel_of(item) == warm
        item.cancel()
        item.wait(30)
        assert item.state == "cancelled"
        wait_for(lambda: not pid_alive(warm), 15, what="the run's kernel to be stopped")
    finally:
        agent.stop()


@pytest.mark.slow
def test_pool_off_starts_no_kernel_ahead(client: Launch, home: Path, tmp_path: Path) -> None:
    client.config.kernel_pool_size = 0
    ref = client.create_job(write_notebook(tmp_path, "pid.ipynb", PID_CELLS)).ref
    agent = client.agent().start()
    try:
        _run(client, ref)
        wait_for(lambda: _kernels(home) == [], 15, what="the run's kernel to end")
        _run(client, ref)
        assert _kernels(home) == []
    finally:
        agent.stop()


#: what a run could notice about its kernel: folder, environment, history, namespace
PROBE_CELLS = [
    "import os, sys",
    "print(os.path.basename(os.getcwd()))\n"
    "print(os.getcwd() == os.path.join(os.path.dirname(os.environ['LAUNCH_OUTPUT_DIR']),"
    " 'work'))",
    "import helper\nprint(helper.VALUE, open('helper.py').read().strip())",
    "print(list(os.environ))\n"  # names in the same order
    "print(os.environ['LAUNCH_JOB'], os.environ['LAUNCH_PARAMETERS'], os.environ['MARKER'])",
    "print(int(os.environ['JPY_PARENT_PID']) == os.getppid())",
    "print([str(d) for d in _dh] == [os.getcwd()], get_ipython().starting_dir == os.getcwd())",
    "print(get_ipython().execution_count, len(In), [k for k in globals() if not"
    " k.startswith('_')])",
    "print('' in sys.path)",
    "print(sorted(m for m in sys.modules if m.startswith('launch')))",
]


def _comparable(path: str) -> dict:
    """The executed notebook without its timestamps."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        data = dict(cell)
        data["metadata"] = {k: v for k, v in cell.metadata.items() if k != "execution"}
        cells.append(data)
    return {"metadata": dict(nb.metadata), "cells": cells}


@pytest.mark.slow
def test_a_pooled_run_gives_the_same_executed_notebook(client: Launch, home: Path,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKER", "agent-env")
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    path = write_notebook(tmp_path, "probe.ipynb", ["print('kernel', os.getpid())"]
                          + PROBE_CELLS[1:], parameters="import os, sys\nlr = 0.1")
    ref = client.create_job(path).ref

    client.config.kernel_pool_size = 0
    agent = client.agent().start()
    try:
        cold = client.submit(ref, parameters={"lr": 0.5}).wait(120)
    finally:
        agent.stop()
    assert cold.state == "succeeded", cold.logs()

    client.config.kernel_pool_size = 1
    agent = client.agent().start()
    try:
        _run(client, ref)
        warm = _warm_kernel(home)
        pooled = client.submit(ref, parameters={"lr": 0.5}).wait(120)
        assert pooled.state == "succeeded", pooled.logs()
        assert _kernel_of(pooled) == warm
    finally:
        agent.stop()

    expected, got = _comparable(cold.output_notebook), _comparable(pooled.output_notebook)
    pid_cell = 2  # the injected parameters cell comes first, then the one printing the pid
    for nb in (expected, got):
        assert nb["cells"][pid_cell]["outputs"][0]["text"].startswith("kernel ")
        nb["cells"][pid_cell]["outputs"] = []
    assert got == expected
    outputs = "".join(o.get("text", "") for c in got["cells"] for o in c.get("outputs", []))
    assert "work\nTrue\n" in outputs and "42 VALUE = 42" in outputs
    assert outputs.count("True") >= 5 and "False" not in outputs


def test_the_pool_key_leaves_out_only_per_run_variables() -> None:
    from launch_jupyter.runners.kernelpool import pool_key

    def spec(env: dict[str, str], kernel: str = "python3") -> dict:
        command = [sys.executable, "-m", "launch_jupyter.runners.notebook", "--kernel", kernel]
        return {"command": command, "env": env}

    run = {"PATH": "/bin", "LAUNCH_JUPYTER_KERNEL_LOG_LEVEL": "ERROR"}
    key = pool_key(spec({**run, "LAUNCH_ITEM_ID": "a", "LAUNCH_PARAMETERS": "{}"}))
    assert key == pool_key(spec({**run, "LAUNCH_ITEM_ID": "b", "LAUNCH_PARAMETERS": '{"x": 1}'}))
    assert key != pool_key(spec({**run, "OMP_NUM_THREADS": "1"}))  # a job's own variable
    assert key != pool_key(spec({**run, "LAUNCH_JUPYTER_KERNEL_LOG_LEVEL": "DEBUG"}))
    assert key != pool_key(spec(run, kernel="other"))
    assert pool_key({"command": [sys.executable, "-u", "job.py"], "env": run}) is None
    assert pool_key({**spec(run), "fork_executor": False}) is None


def test_the_pool_size_is_a_setting_with_an_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from traitlets import TraitError

    from launch_jupyter.config import LaunchConfig

    monkeypatch.delenv("LAUNCH_JUPYTER_KERNEL_POOL_SIZE", raising=False)
    assert LaunchConfig.load().kernel_pool_size == 1
    monkeypatch.setenv("LAUNCH_JUPYTER_KERNEL_POOL_SIZE", "0")
    assert LaunchConfig.load().kernel_pool_size == 0
    with pytest.raises(TraitError, match="kernel_pool_size must be 0"):
        LaunchConfig(kernel_pool_size=-1)
