"""The magics show what a capture could not record, and ``--strict`` refuses it."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from launch_jupyter.api import Launch
from tests.magics.kernel import Kernel

MISSING = "launch_test_not_installed_pkg"


def test_job_create_and_submit_show_capture_warnings(kernel: Kernel, client: Launch,
                                                    tmp_path: Path) -> None:
    nb = new_notebook()
    nb.cells.append(new_code_cell(f"import {MISSING}\nprint('hi')"))
    nbformat.write(nb, tmp_path / "drops.ipynb")
    created = kernel.execute("%launch job create drops.ipynb")
    assert "drops:v1" in created.stdout
    assert f"warning: module '{MISSING}' is imported but not installed" in created.stderr
    refused = kernel.execute("%launch job create drops.ipynb --strict --name strict-one",
                             allow_error=True)
    assert "strict capture refused" in refused.stdout + refused.stderr
    assert [j.name for j in client.jobs()] == ["drops"]
    kernel.execute("%launch queue create local")
    submitted = kernel.execute("item = %launch submit drops.ipynb --name drops-submitted")
    assert f"module '{MISSING}'" in submitted.stderr
