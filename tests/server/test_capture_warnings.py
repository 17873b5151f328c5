"""POST /launch/api/jobs tells what the capture could not record, and refuses with strict."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from .conftest import Api

MISSING = "launch_test_not_installed_pkg"


def _notebook(root: Path) -> str:
    nb = new_notebook(metadata={"kernelspec": {"name": "conda_pytorch_p39",
                                               "display_name": "PyTorch", "language": "python"}})
    nb.cells.append(new_code_cell(f"import {MISSING}\n!pip install t > /dev/null"))
    nbformat.write(nb, root / "drops.ipynb")
    return "drops.ipynb"


async def test_the_answer_carries_the_captures_warnings_and_unresolved(
        api: Api, jp_root_dir: Path) -> None:
    status, job = await api("POST", "jobs", body={"path": _notebook(jp_root_dir)})
    assert status == 201, job
    assert job["unresolved"] == [MISSING] and job["requirements"] == ["t"]
    assert any(MISSING in w for w in job["warnings"])
    assert any("conda_pytorch_p39" in w for w in job["warnings"])
    status, versions = await api("GET", "jobs", "drops")
    assert status == 200 and versions[0]["unresolved"] == [MISSING]


async def test_strict_refuses_unresolved_imports_with_400(api: Api, jp_root_dir: Path) -> None:
    status, body = await api("POST", "jobs", body={"path": _notebook(jp_root_dir),
                                                   "strict": True})
    assert status == 400 and "strict capture refused" in body["message"], body
    status, body = await api("POST", "jobs", body={"path": "drops.ipynb", "strict": "yes"})
    assert status == 400 and "strict" in body["message"], body
    status, jobs = await api("GET", "jobs")
    assert status == 200 and jobs == []
