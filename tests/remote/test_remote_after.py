"""Run-after and queue limits through a Jupyter server: `--server URL --token T` with
`submit --after`, `queue create|update --concurrency`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_script

from .conftest import JupyterServer
from .test_remote_cli import Laptop

pytestmark = pytest.mark.slow


def test_after_and_concurrency_work_remotely(server: JupyterServer, client_env: dict,
                                             tmp_path: Path) -> None:
    laptop = Laptop(server, client_env, tmp_path)
    write_script(tmp_path, "step.py", "print('step')\n")
    assert laptop.json("queue", "create", "q", "--concurrency", "2")["concurrency"] == 2
    assert laptop.json("queue", "update", "q", "--concurrency", "0")["concurrency"] is None
    a = laptop.ok("submit", "step.py", "--queue", "q").strip()
    b = laptop.json("submit", "step.py", "--queue", "q", "--after", a)
    assert b["waiting_on"] == [a] and b["after"] == [a]
    missing = laptop("submit", "step.py", "--after", "01NOSUCH")
    assert missing.returncode == 2 and "no such item" in missing.stderr
    laptop.ok("cancel", a)
    shown = laptop.json("show", b["id"])
    assert shown["state"] == "cancelled" and shown["error"]["stage"] == "dependency"
