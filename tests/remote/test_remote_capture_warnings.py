"""A capture sent to a server still tells the truth: warnings, unresolved, --strict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from launch_jupyter.api import Launch
from launch_jupyter.errors import CaptureError
from launch_jupyter.service.remote import RemoteLaunch

from .conftest import JupyterServer

MISSING = "launch_test_not_installed_pkg"


@pytest.fixture
def remote(server: JupyterServer) -> Iterator[RemoteLaunch]:
    client = Launch(server.url, token=server.token)
    yield client
    client.close()


def test_remote_job_create_returns_the_captures_warnings(remote: RemoteLaunch,
                                                         tmp_path: Path) -> None:
    nb = new_notebook()
    nb.cells.append(new_code_cell(f"import {MISSING}"))
    nbformat.write(nb, tmp_path / "drops.ipynb")
    with pytest.raises(CaptureError, match="strict capture refused"):
        remote.create_job(tmp_path / "drops.ipynb", strict=True)
    job = remote.create_job(tmp_path / "drops.ipynb")
    assert any(MISSING in w for w in job.warnings)
    assert remote.job("drops").to_json()["unresolved"] == [MISSING]
