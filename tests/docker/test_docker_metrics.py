"""Metrics from docker runs: the job's launch_jupyter.log (the stand-in under /launch/lib)
writes its file in the container, the run wrapper passes the points through the container's
log, the runner stores them while the run goes and drains them before the outcome."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from launch_jupyter.api import Launch

from ..conftest import CLI, wait_for, write_notebook, write_script
from .conftest import make_queue, unique_name


def test_script_metrics_show_while_the_container_runs_and_every_point_arrives(
        docker_launch: Launch, agent: object, cli: CLI, tmp_path: Path,
        shared_dir: Path) -> None:
    queue = make_queue(docker_launch, template={"volumes": [f"{shared_dir}:/shared"]})
    path = write_script(tmp_path, "train.py", """
        import os, time, launch_jupyter
        print("job starts", flush=True)
        launch_jupyter.log({"loss": 1.0})
        deadline = time.time() + 90
        while not os.path.exists("/shared/go") and time.time() < deadline:
            time.sleep(0.05)
        for step in range(1, 2000):
            launch_jupyter.log({"loss": 1.0 / (step + 1), "acc": step / 2000})
            if step == 1000:
                print("half way", flush=True)
        launch_jupyter.log(acc=float("nan"))
        launch_jupyter.log(acc="high")
        print("job ends")
    """)
    item = docker_launch.submit(docker_launch.create_job(path, name=unique_name("m")).ref,
                                queue=queue)
    first = wait_for(lambda: cli.json("show", item.id)["metrics"], 120,
                     what="the container's first metric in show --json")
    assert first == {"loss": {"last": 1.0, "min": 1.0, "max": 1.0, "step": 0, "count": 1}}
    assert item.state == "running"
    (shared_dir / "go").touch()
    assert item.wait(120, progress=False).state == "succeeded", item.logs()
    points = cli.json("metrics", item.id)
    loss = [p for p in points if p["name"] == "loss"]
    assert [p["step"] for p in loss] == list(range(2000))
    assert loss[-1]["value"] == 1.0 / 2000
    assert sum(p["name"] == "acc" for p in points) == 1999
    log = item.logs()
    assert "job starts\n" in log and "half way\n" in log and "job ends\n" in log
    assert "@@launch-jupyter-metrics" not in log  # the marker lines left the log
    assert log.count("launch_jupyter.log: skipped 'acc'") == 1


def test_notebook_metrics_from_a_container_are_all_stored(
        docker_launch: Launch, agent: object, tmp_path: Path) -> None:
    queue = make_queue(docker_launch)
    path = write_notebook(tmp_path, "nb.ipynb", [
        "import launch_jupyter as lj\nlj.log(loss=1.0)\nprint('cell one')",
        # The kernel is shut down right after the last cell: its points must be in by then.
        "for step in range(1, 500):\n    lj.log({'loss': 1.0 / (step + 1)})",
    ], parameters="lr = 0.1")
    job = docker_launch.create_job(path, name=unique_name("nbm"))
    item = docker_launch.submit(job.ref, queue=queue).wait(180, progress=False)
    assert item.state == "succeeded", item.logs()
    assert [p["step"] for p in docker_launch.metrics(item.id)] == list(range(500))
    assert item.info()["metrics"]["loss"]["count"] == 500
    assert "cell one" in item.logs() and "@@launch-jupyter-metrics" not in item.logs()


def test_an_adopting_agent_stores_the_rest_of_the_points_and_none_twice(
        docker_launch: Launch, cli: CLI, tmp_path: Path, shared_dir: Path) -> None:
    queue = make_queue(docker_launch, template={"volumes": [f"{shared_dir}:/shared"]})
    path = write_script(tmp_path, "long.py", """
        import os, time, launch_jupyter
        for step in range(100):
            launch_jupyter.log(loss=step)
        print("first half", flush=True)
        deadline = time.time() + 120
        while not os.path.exists("/shared/go") and time.time() < deadline:
            time.sleep(0.05)
        for step in range(100, 200):
            launch_jupyter.log(loss=step)
        print("second half")
    """)
    job = docker_launch.create_job(path, name=unique_name("adopt"))
    first = cli.popen("agent", "--queue", queue)
    item = docker_launch.submit(job.ref, queue=queue)
    wait_for(lambda: (item.info()["metrics"].get("loss") or {}).get("count") == 100, 90,
             what="the first 100 points in the store")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    second = docker_launch.agent([queue]).start()
    try:
        wait_for(lambda: item.info()["run"].get("adopted_by") == second.id, 30,
                 what="the new agent to adopt the container")
        (shared_dir / "go").touch()
        assert item.wait(90, progress=False).state == "succeeded", item.logs()
    finally:
        second.stop()
    assert [p["step"] for p in docker_launch.metrics(item.id)] == list(range(200))
    logs = item.logs()
    assert logs.count("first half") == 1 and logs.count("second half") == 1, logs
    assert "@@launch-jupyter-metrics" not in logs
