"""kill -9 of an agent mid-run: a new agent adopts the container; it never runs twice."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from launch_jupyter.api import Launch

from ..conftest import CLI, wait_for, write_script
from .conftest import make_queue, unique_name

JOB = """
    import os, time
    attempt = os.environ["LAUNCH_ATTEMPT"]
    def mark(what):
        with open("/shared/marks.txt", "a") as fh:
            fh.write(f"{what} {attempt} {os.environ['HOSTNAME']}\\n")
    mark("start")
    print("first line", flush=True)
    deadline = time.time() + 120
    while not os.path.exists("/shared/go") and time.time() < deadline:
        time.sleep(0.05)
    print("done", flush=True)
    mark("end")
"""


@pytest.mark.parametrize("exits_before_adoption", [False, True],
                         ids=["running", "exited-while-no-agent"])
def test_agent_killed_mid_run_new_agent_adopts_the_container(
    docker_launch: Launch, cli: CLI, tmp_path: Path, shared_dir: Path, docker_client: Any,
    exits_before_adoption: bool,
) -> None:
    # No network: HOSTNAME is the container's id, so each mark names its container.
    queue = make_queue(docker_launch, template={"network": "none",
                                                "volumes": [f"{shared_dir}:/shared"]})
    job = docker_launch.create_job(write_script(tmp_path, "long.py", JOB),
                                   name=unique_name("long"))
    since = int(time.time()) - 1
    first = cli.popen("agent", "--queue", queue)
    item = docker_launch.submit(job.ref, queue=queue)
    wait_for(lambda: "first line" in item.logs(), 90, what="the job to start")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    [container] = docker_client.containers.list(
        filters={"label": f"launch-jupyter.item={item.id}"})
    assert container.status == "running"
    if exits_before_adoption:
        (shared_dir / "go").touch()
        wait_for(lambda: (container.reload(), container.status)[1] == "exited", 30,
                 what="the container to exit")
    second = docker_launch.agent([queue]).start()
    try:
        wait_for(lambda: item.info()["run"].get("adopted_by") == second.id, 30,
                 what="the new agent to adopt the container")
        (shared_dir / "go").touch()
        item.wait(60)
    finally:
        second.stop()
    data = item.info()
    assert data["state"] == "succeeded", item.logs()
    assert data["attempt"] == 1 and data["exit_code"] == 0
    marks = (shared_dir / "marks.txt").read_text().split("\n")
    assert [m.split()[:2] for m in marks if m] == [["start", "1"], ["end", "1"]]
    assert marks[0].split()[2] == marks[1].split()[2] == container.id[:12]
    logs = item.logs()
    assert logs.count("first line") == 1 and logs.count("done") == 1, logs
    assert "adopted container" in logs
    created = list(docker_client.events(
        since=since, until=int(time.time()) + 1, decode=True,
        filters={"type": "container", "event": "create",
                 "label": f"launch-jupyter.item={item.id}"}))
    assert len(created) == 1
    wait_for(lambda: docker_client.containers.list(
        all=True, filters={"label": f"launch-jupyter.item={item.id}"},
        ignore_removed=True) == [], 30,
        what="the adopted container's removal once recorded")


def test_a_lost_lease_stops_the_container(
    docker_launch: Launch, tmp_path: Path, shared_dir: Path, docker_client: Any
) -> None:
    """Fencing: once the agent cannot renew (another holder took the lease), no copy runs."""
    from launch_jupyter.store import schema

    queue = make_queue(docker_launch, template={"volumes": [f"{shared_dir}:/shared"]})
    job = docker_launch.create_job(write_script(tmp_path, "long.py", JOB),
                                   name=unique_name("fenced"))
    agent = docker_launch.agent([queue]).start()
    try:
        item = docker_launch.submit(job.ref, queue=queue)
        wait_for(lambda: "first line" in item.logs(), 90, what="the job to start")
        assert len(docker_client.containers.list(
            filters={"label": f"launch-jupyter.item={item.id}"})) == 1
        with docker_launch.store.write() as conn:
            conn.execute(schema.items.update().where(schema.items.c.id == item.id)
                         .values(lease_owner="someone-else"))
        wait_for(lambda: not docker_client.containers.list(  # removed mid-list: gone
            all=True, filters={"label": f"launch-jupyter.item={item.id}"},
            ignore_removed=True), 15,
            what="the fenced container to be removed")
    finally:
        agent.stop()
    marks = (shared_dir / "marks.txt").read_text().split()
    assert "end" not in marks
