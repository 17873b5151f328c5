"""Cron schedules through a Jupyter server: a laptop that knows only the server's URL and
token creates, lists, pauses, resumes and deletes a schedule, and the agent beside the
server fires it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for, write_script

from .test_remote_cli import Laptop, laptop  # noqa: F401 - the laptop fixture

pytestmark = pytest.mark.slow


def test_a_schedule_made_from_a_laptop_fires_on_the_server(laptop: Laptop,  # noqa: F811
                                                            server_agent: Any) -> None:
    write_script(laptop.cwd, "tick.py", """
        import launch_jupyter
        p = launch_jupyter.parameters(n=1)
        print("tick", p.n)
    """)
    made = laptop.json("schedule", "create", "tick", "--job", "tick.py", "--cron",
                       "* * * * * */2", "--queue", "local", "-p", "n=3")
    assert made["job"] == "tick:v1" and made["parameters"] == {"n": 3}
    assert [s["name"] for s in laptop.json("schedule", "list")] == ["tick"]
    items = wait_for(lambda: [i for i in laptop.json("items") if i["schedule"] == "tick"],
                     60, 0.5, "a firing")
    assert laptop.json("show", items[0]["id"])["schedule"] == "tick"
    assert laptop.json("schedule", "pause", "tick")["state"] == "paused"
    assert laptop.json("schedule", "resume", "tick")["state"] == "active"
    assert "deleted schedule tick" in laptop.ok("schedule", "delete", "tick")
    gone = laptop("schedule", "show", "tick")
    assert gone.returncode == 2 and "does not exist" in gone.stderr


def test_bad_schedules_from_a_laptop_exit_2(laptop: Laptop, tmp_path: Path) -> None:  # noqa: F811
    bad = laptop("schedule", "create", "x", "--job", "nosuch", "--cron", "* * * * *",
                 "--queue", "local")
    assert bad.returncode == 2 and "nosuch" in bad.stderr
