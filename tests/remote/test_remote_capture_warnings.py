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


def test_remote_job_create_warns_when_another_file_of_the_same_name_makes_a_version(
        remote: RemoteLaunch, tmp_path: Path) -> None:
    for folder, text in (("a", "print('a')"), ("b", "print('b')")):
        nb = new_notebook()
        nb.cells.append(new_code_cell(text))
        (tmp_path / folder).mkdir()
        nbformat.write(nb, tmp_path / folder / "report.ipynb")
    first = remote.create_job(tmp_path / "a" / "report.ipynb")
    assert first.ref == "report:v1" and not first.warnings
    second = remote.create_job(tmp_path / "b" / "report.ipynb")
    assert second.ref == "report:v2"
    assert any(f"captured from {tmp_path / 'a' / 'report.ipynb'}" in w and "--name" in w
               for w in second.warnings), second.warnings
    again = remote.create_job(tmp_path / "b" / "report.ipynb")  # same content: same version
    assert again.ref == "report:v2" and not again.warnings
    named = remote.create_job(tmp_path / "b" / "report.ipynb", name="report-b")
    assert named.ref == "report-b:v1" and not named.warnings


def test_remote_schedule_create_of_a_file_returns_the_captures_warnings(
        remote: RemoteLaunch, tmp_path: Path) -> None:
    (tmp_path / "nightly.py").write_text(f"import {MISSING}\n")
    made = remote.create_schedule("nightly", tmp_path / "nightly.py", cron="@daily")
    assert made["job"] == "nightly:v1"
    assert any(MISSING in w for w in made["warnings"])
    assert "warnings" not in remote.create_schedule("again", "nightly", cron="@daily")
