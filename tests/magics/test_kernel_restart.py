"""A kernel restarted while its in-kernel agent runs an item: the item still ends, once.

The run belongs to its supervisor (its own session), not to the kernel: a restart, whether the
kernel is killed or shut down politely, leaves the run going, and the agent started in the
restarted kernel must neither run it a second time nor leave it ``running``. The job proves
"never two copies at once" itself with the flock marks of tests/test_recovery.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from tests.conftest import SHORT_TTL, pid_alive, wait_for, write_script
from tests.integrity import assert_store_consistent
from tests.magics.kernel import Kernel
from tests.test_recovery import GUARDED_JOB

AGENT = "__import__('launch_jupyter.magics').magics.kernel_agent()"


def _marks(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("now", [True, False], ids=["killed", "shut-down"])
def test_kernel_restart_mid_run_the_item_still_succeeds_exactly_once(
    start_kernel: Callable[..., Kernel], client: Launch, home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, now: bool,
) -> None:
    monkeypatch.setenv("LAUNCH_JUPYTER_LEASE_TTL", str(SHORT_TTL))  # the kernel's env
    marks, go = tmp_path / "marks.txt", tmp_path / "go"
    path = write_script(tmp_path, "guarded.py", GUARDED_JOB.format(
        marks=str(marks), lock=str(tmp_path / "job.lock"), go=str(go)))
    ref = client.create_job(path).ref
    k = start_kernel()
    k.execute("%load_ext launch_jupyter")
    k.execute("%launch agent start")
    first_agent = k.value(f"{AGENT}.id").strip("'")
    item = client.submit(ref)
    wait_for(lambda: _marks(marks), 60, what="the job to start")
    supervisor = wait_for(lambda: item.info()["run"].get("supervisor_pid"), 30,
                          what="the supervisor pid")
    assert item.state == "running"
    old_kernel = k.pid

    k.km.restart_kernel(now=now)
    k.kc.wait_for_ready(timeout=60)
    wait_for(lambda: old_kernel is None or not pid_alive(old_kernel), 30,
             what="the old kernel process to be gone")
    assert pid_alive(supervisor), "the run must outlive the kernel"
    k.execute("%load_ext launch_jupyter")
    k.execute("%launch agent start")
    second_agent = k.value(f"{AGENT}.id").strip("'")
    assert second_agent != first_agent
    restarted = time.monotonic()
    # More than two lease lifetimes with the new agent serving the queue: it must neither
    # start a second copy nor fail the item the old kernel's agent started.
    wait_for(lambda: time.monotonic() > restarted + 2.5 * SHORT_TTL, 60,
             what="two lease lifetimes")
    assert second_agent in [a["id"] for a in client.agents()]
    data = item.info()
    assert data["state"] == "running" and data["attempt"] == 1, data

    (tmp_path / "go1").touch()
    item.wait(60)
    data = item.info()
    assert data["state"] == "succeeded", data
    assert [a["attempt"] for a in data["attempts"]] == [1]
    assert data["attempts"][0]["agent"] == first_agent
    rows = _marks(marks)
    assert [r[0] for r in rows] == ["start", "end"], rows
    assert all(r[3] == "locked" for r in rows), rows
    assert k.value(f"{AGENT}.error") == "None"
    if not now:  # a polite shutdown deregisters the old agent; a killed one just goes stale
        assert first_agent not in [a["id"] for a in client.agents()]
    items = assert_store_consistent(home / "launch.db")
    assert items[item.id]["state"] == "succeeded"
