"""Capture over REST stays inside the root dir and leaves hidden files out (security row 6):
a refused capture answers 400 naming the path, and no job is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..conftest import write_notebook
from .conftest import Api


@pytest.fixture
def work(jp_root_dir: Path, tmp_path: Path) -> Path:
    """``work/nb.ipynb`` under the root, hidden files beside it, a secret outside the root."""
    folder = jp_root_dir / "work"
    folder.mkdir()
    write_notebook(folder, "nb.ipynb", ["import helper\nprint(helper.X)"])
    (folder / ".env").write_text("API_TOKEN=hunter2")
    (folder / ".ssh").mkdir()
    (folder / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("X = 'outside-secret'\n")
    (outside / "keys").mkdir()
    (outside / "keys" / "key.pem").write_text("PRIVATE KEY")
    return folder


async def refused(api: Api, include: list[str], *words: str) -> dict[str, Any]:
    status, body = await api("POST", "jobs", body={"path": "work/nb.ipynb",
                                                   "include": include})
    assert status == 400, body
    for word in words:
        assert word in body["message"], body["message"]
    assert "hunter2" not in body["message"] and "PRIVATE KEY" not in body["message"]
    status, jobs = await api("GET", "jobs")
    assert status == 200 and jobs == []  # nothing written
    return body


@pytest.mark.parametrize(("include", "names"), [
    ([".env"], ".env"), ([".ssh"], ".ssh"), ([".e*"], ".env"), (["**/.env"], ".env"),
    (["\uff0eenv"], "env"),  # '．env', a look-alike of a hidden name
])
async def test_hidden_includes_are_refused(api: Api, work: Path, include: list[str],
                                           names: str) -> None:
    (work / "helper.py").write_text("X = 1\n")
    (work / "\uff0eenv").write_text("API_TOKEN=hunter2")
    await refused(api, include, "hidden", names)


@pytest.mark.parametrize("include", [["../nb.ipynb"], ["\uff0e\uff0e/x"], ["\u2025/x"]])
async def test_includes_cannot_climb_out(api: Api, work: Path, include: list[str]) -> None:
    (work / "helper.py").write_text("X = 1\n")
    await refused(api, include, "outside")


async def test_a_linked_folder_out_of_the_root_is_refused(api: Api, work: Path,
                                                          tmp_path: Path) -> None:
    (work / "helper.py").write_text("X = 1\n")
    (work / "keys").symlink_to(tmp_path / "outside" / "keys", target_is_directory=True)
    await refused(api, ["keys"], "outside", "key.pem")


async def test_a_local_module_linked_out_of_the_root_is_refused(api: Api, work: Path,
                                                                tmp_path: Path) -> None:
    (work / "helper.py").symlink_to(tmp_path / "outside" / "secret.py")
    body = await refused(api, [], "local module helper.py", "outside")
    assert "outside-secret" not in body["message"]


async def test_a_plain_capture_leaves_hidden_files_behind(api: Api, work: Path) -> None:
    (work / "helper.py").write_text("X = 1\n")
    status, job = await api("POST", "jobs", body={"path": "work/nb.ipynb", "include": ["*"]})
    assert status == 201, job
    assert sorted(job["files"]) == ["helper.py", "nb.ipynb"]
