"""Crash recovery with real agent processes: kill -9 of an agent, of a supervisor, and races.

Jobs prove "never two copies at once" themselves: each holds an exclusive flock for its whole
life and records a failure to take it; the kernel frees the lock when a process dies.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from launch_jupyter.api import Launch

from .conftest import (
    CLI,
    SHORT_TTL,
    assert_agents_race_exactly_once,
    pid_alive,
    wait_for,
    write_script,
)

GUARDED_JOB = """
    import fcntl, os, sys, time
    marks, lock, go = {marks!r}, {lock!r}, {go!r}
    attempt = int(os.environ["LAUNCH_ATTEMPT"])
    fd = os.open(lock, os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held = "locked"
    except BlockingIOError:
        held = "OVERLAP"
    def mark(what):
        with open(marks, "a") as fh:
            fh.write(f"{{what}} {{os.getpid()}} {{attempt}} {{held}}\\n")
    mark("start")
    deadline = time.time() + 120
    while not os.path.exists(go + str(attempt)) and time.time() < deadline:
        time.sleep(0.02)
    mark("end")
"""


def _guarded_job(client: Launch, tmp_path: Path) -> tuple[str, Path, Path]:
    marks, go = tmp_path / "marks.txt", tmp_path / "go"
    path = write_script(tmp_path, "guarded.py", GUARDED_JOB.format(
        marks=str(marks), lock=str(tmp_path / "job.lock"), go=str(go)))
    return client.create_job(path).ref, marks, go


def _marks(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_agent_killed_mid_run_item_still_succeeds_once(
    client: Launch, cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAUNCH_JUPYTER_LEASE_TTL", str(SHORT_TTL))
    ref, marks, go = _guarded_job(client, tmp_path)
    agent = cli.popen("agent")
    item = client.submit(ref)
    wait_for(lambda: _marks(marks), 30, what="the job to start")
    os.kill(agent.pid, signal.SIGKILL)
    agent.wait()
    killed_at = time.time()
    cli.popen("agent")  # a second agent must not start another copy
    # Give the second agent more than two lease lifetimes to misbehave.
    wait_for(lambda: time.time() > killed_at + 2.5 * SHORT_TTL
             and any(a["heartbeat_age"] < 1 for a in client.agents()), 30,
             what="a live second agent after two lease lifetimes")
    assert item.state == "running"
    (tmp_path / "go1").touch()
    item.wait(30)
    data = item.info()
    assert data["state"] == "succeeded" and len(data["attempts"]) == 1
    rows = _marks(marks)
    assert [r[0] for r in rows] == ["start", "end"]
    assert all(r[3] == "locked" for r in rows)


def test_supervisor_killed_job_dies_and_another_agent_reruns_it(
    client: Launch, cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAUNCH_JUPYTER_LEASE_TTL", str(SHORT_TTL))
    ref, marks, go = _guarded_job(client, tmp_path)
    (tmp_path / "go2").touch()  # the second attempt finishes at once
    cli.popen("agent")
    item = client.submit(ref)
    wait_for(lambda: _marks(marks), 30, what="the first attempt to start")
    job_pid = int(_marks(marks)[0][1])
    supervisor = wait_for(lambda: item.info()["run"].get("supervisor_pid"), 10,
                          what="the supervisor pid")
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not pid_alive(job_pid), 10, what="the job to die with its supervisor")
    item.wait(60)
    data = item.info()
    assert data["state"] == "succeeded"
    assert [a["attempt"] for a in data["attempts"]] == [1, 2]
    assert "lease lapsed" in data["attempts"][0]["error"]["message"]
    assert data["attempts"][1]["exit_code"] == 0
    rows = _marks(marks)
    assert [(r[0], r[2]) for r in rows] == [("start", "1"), ("start", "2"), ("end", "2")]
    assert all(r[3] == "locked" for r in rows), rows


@pytest.mark.slow
def test_four_agents_racing_over_400_items_run_each_exactly_once(
    client: Launch, cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This test is about claims, not lease recovery: a normal lease on a loaded machine.
    monkeypatch.setenv("LAUNCH_JUPYTER_LEASE_TTL", "30")
    assert_agents_race_exactly_once(client, cli, tmp_path, items=400, agents=4,
                                    agent_args=("--max-jobs", "2"), timeout=600)


def test_sigterm_stops_the_agent_and_leaves_its_run_to_finish(
    client: Launch, cli: CLI, tmp_path: Path
) -> None:
    ref, marks, go = _guarded_job(client, tmp_path)
    agent = cli.popen("agent")
    item = client.submit(ref)
    wait_for(lambda: _marks(marks), 30, what="the job to start")
    queued = client.submit(ref)  # max-jobs 1: this one waits
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(15) == 0
    assert client.agents() == []  # it deregistered
    assert item.state == "running" and queued.state == "queued"
    (tmp_path / "go1").touch()
    item.wait(30)
    assert item.state == "succeeded" and item.info()["attempt"] == 1
    assert queued.info()["attempt"] == 0  # handing back used no attempt
