"""papermill's and nbclient's conventions, end to end: real notebooks captured, run by a real
agent on a real kernel, and the item's state, exit code, error and log checked."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from launch_jupyter.api import Launch

pytestmark = pytest.mark.slow


def notebook(folder: Path, name: str, cells: list, kernel: str = "python3") -> Path:
    """A notebook file: a str is a code cell, (tag, source) a code cell with that tag."""
    nb = new_notebook(metadata={
        "kernelspec": {"name": kernel, "display_name": kernel, "language": "python"},
        "language_info": {"name": "python"},
    })
    for spec in cells:
        if isinstance(spec, str):
            nb.cells.append(new_code_cell(spec))
        else:
            nb.cells.append(new_code_cell(spec[1], metadata={"tags": [spec[0]]}))
    path = folder / name
    nbformat.write(nb, path)
    return path


def run(client: Launch, path: Path, **submit: object) -> dict:
    item = client.submit(client.create_job(path).ref, **submit).wait(120)
    data = item.info()
    data["log"] = item.logs()
    return data


def test_sys_exit_0_ends_the_item_succeeded_and_runs_no_further_cell(
        client: Launch, agent: object, tmp_path: Path) -> None:
    path = notebook(tmp_path, "exit0.ipynb", [
        "print('before')", "import sys\nsys.exit(0)", "print('after')"])
    data = run(client, path)
    assert data["state"] == "succeeded", data["log"]
    assert data["exit_code"] == 0
    assert "before" in data["log"] and "after" not in data["log"]
    assert "cell 2 called sys.exit(0)" in data["log"]


def test_bare_sys_exit_ends_the_item_succeeded(client: Launch, agent: object,
                                                tmp_path: Path) -> None:
    data = run(client, notebook(tmp_path, "exit.ipynb", ["import sys; sys.exit()"]))
    assert data["state"] == "succeeded", data["log"]


def test_sys_exit_n_fails_the_item_with_exit_code_n(client: Launch, agent: object,
                                                    tmp_path: Path) -> None:
    path = notebook(tmp_path, "exit3.ipynb", ["x = 1", "import sys\nsys.exit(3)", "print('no')"])
    data = run(client, path)
    assert data["state"] == "failed"
    assert data["exit_code"] == 3
    assert data["error"]["cell"] == 2
    assert "sys.exit(3)" in data["error"]["message"]


def test_cells_tagged_skip_execution_do_not_run_in_the_job(client: Launch, agent: object,
                                                            tmp_path: Path) -> None:
    path = notebook(tmp_path, "skip.ipynb", [
        "print('runs')",
        ("skip-execution", "print('interactive only')\nraise SystemError('must not run')"),
        "print('also runs')",
    ])
    data = run(client, path)
    assert data["state"] == "succeeded", data["log"]
    assert "runs" in data["log"] and "also runs" in data["log"]
    assert "interactive only" not in data["log"]


def test_a_broken_line_in_the_parameters_cell_keeps_the_others_and_fails_the_run_there(
        client: Launch, agent: object, tmp_path: Path) -> None:
    path = notebook(tmp_path, "params.ipynb", [
        ("parameters", "msg = 'hi'\na: float = 1.5\nb = 2\nc = 3 +\nd = [1,\n     2]"),
        "print(msg, a, b, d)",
    ])
    job = client.create_job(path)
    assert job.spec["parameters"] == {"msg": "hi", "a": 1.5, "b": 2, "d": [1, 2]}
    assert any("line 4 does not parse" in w for w in job.warnings)
    data = run(client, path, parameters={"b": 5})
    assert data["state"] == "failed"
    assert data["error"]["cell"] == 1  # the parameters cell, on its broken line
    assert "SyntaxError" in data["error"]["message"]


def test_launch_lines_and_assignments_are_inert_in_the_job(client: Launch, agent: object,
                                                           tmp_path: Path) -> None:
    path = notebook(tmp_path, "launch.ipynb", [
        "%load_ext launch_jupyter",
        "h = %launch submit other --queue local\nh2=%launch\nprint('h is', h, h2)",
    ])
    data = run(client, path)
    assert data["state"] == "succeeded", data["log"]
    assert "h is None None" in data["log"]


def test_a_python_kernel_missing_here_falls_back_to_python3_with_a_note(
        client: Launch, agent: object, tmp_path: Path) -> None:
    path = notebook(tmp_path, "conda.ipynb", ["print('ran')"], kernel="conda_pytorch_p39")
    job = client.create_job(path)
    assert any("kernel 'conda_pytorch_p39' is not installed here" in w for w in job.warnings)
    data = run(client, path)
    assert data["state"] == "succeeded", data["log"]
    assert "kernel 'conda_pytorch_p39' is not installed on this runner" in data["log"]
    assert "ran" in data["log"]


@pytest.mark.parametrize(("cells", "code", "state_line"), [
    (["import sys; sys.exit(0)", "print('after')"], 0, "ends here, successfully"),
    (["import sys; sys.exit(4)", "print('after')"], 4, None),
    ([("skip-execution", "raise SystemError"), "print('ran')"], 0, None),
])
def test_the_container_executor_follows_the_same_conventions(
        tmp_path: Path, cells: list, code: int, state_line: str | None) -> None:
    """The executor shipped into docker and kubernetes containers (run here as they run it:
    a plain python3 with launch_notebook.py and nothing of launch_jupyter on the path)."""
    import os
    import subprocess
    import sys

    from launch_jupyter.runners import build

    lib = tmp_path / "lib"
    for rel, content in build.support_files():
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        (lib / rel).write_bytes(content)
    source = notebook(tmp_path, "in.ipynb", cells, kernel="conda_pytorch_p39")
    executed, error = tmp_path / "executed" / "out.ipynb", tmp_path / "error.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LAUNCH_PARAMETERS")}
    proc = subprocess.run([sys.executable, str(lib / "launch_notebook.py"), "--input",
                           str(source), "--output", str(executed), "--error-file", str(error),
                           "--kernel", "conda_pytorch_p39"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == code, proc.stderr
    assert "not installed on this runner" in proc.stderr
    assert "after" not in proc.stdout
    # The executed notebook names the kernel that ran, not the one that was missing.
    assert json.loads(executed.read_text())["metadata"]["kernelspec"]["name"] == "python3"
    if state_line:
        assert state_line in proc.stderr
    if code:
        assert f"sys.exit({code})" in json.loads(error.read_text())["message"]
    else:
        assert not error.exists()
