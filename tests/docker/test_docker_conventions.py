"""papermill's conventions in a container too: sys.exit(N) is the item's exit code, cells
tagged skip-execution do not run."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from launch_jupyter.api import Launch

from ..conftest import write_notebook
from .conftest import make_queue, unique_name

pytestmark = pytest.mark.slow


def test_sys_exit_and_skip_execution_in_a_container(docker_launch: Launch, agent: object,
                                                   tmp_path: Path) -> None:
    queue = make_queue(docker_launch)
    path = write_notebook(tmp_path, "exits.ipynb", [
        "print('interactive only')", "import sys\nsys.exit(code)", "print('after')"],
        parameters="code = 0")
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["tags"] = ["skip-execution"]
    nbformat.write(nb, path)
    job = docker_launch.create_job(path, name=unique_name("exits"))
    ok = docker_launch.submit(job.ref, queue=queue)
    failed = docker_launch.submit(job.ref, queue=queue, parameters={"code": 5})
    ok, failed = ok.wait(180), failed.wait(180)
    assert ok.state == "succeeded", ok.logs()
    logs = ok.logs()
    assert "interactive only" not in logs and "after" not in logs
    data = failed.info()
    assert data["state"] == "failed" and data["exit_code"] == 5, failed.logs()
    assert "sys.exit(5)" in data["error"]["message"]
