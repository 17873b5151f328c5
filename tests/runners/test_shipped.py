"""The programs shipped into containers run on a plain python3 from the files a container
gets under /launch/lib (build.support_files), without launch_jupyter on the path."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from launch_jupyter.runners import build


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    """/launch/lib as a container gets it."""
    folder = tmp_path / "lib"
    for path, content in build.support_files():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(content)
    return folder


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``python3 args`` with nothing of this checkout importable (as in a container)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LAUNCH_PARAMETERS")}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**clean, **env})


def test_shipped_programs_are_the_files_of_the_shipped_package() -> None:
    assert [path for path, _ in build.support_files()] == [
        "launch_notebook.py", "launch_run.py", "launch_jupyter/__init__.py"]
    for _path, content in build.support_files():
        compile(content, "shipped", "exec")


def test_standin_parameters_reads_launch_parameters_over_the_defaults(lib: Path,
                                                                      tmp_path: Path) -> None:
    code = ("import json, launch_jupyter; p = launch_jupyter.parameters(lr=0.1, epochs=3); "
            "print(json.dumps(p, sort_keys=True)); print(p.lr); print(launch_jupyter.__file__)")
    proc = run(["-c", code], tmp_path, PYTHONPATH=str(lib), LAUNCH_PARAMETERS='{"lr": 0.5}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['{"epochs": 3, "lr": 0.5}', "0.5",
                                        str(lib / "launch_jupyter" / "__init__.py")]


def test_standin_refuses_parameters_that_are_not_an_object(lib: Path, tmp_path: Path) -> None:
    proc = run(["-c", "import launch_jupyter; launch_jupyter.parameters(a=1)"], tmp_path,
               PYTHONPATH=str(lib), LAUNCH_PARAMETERS="[1, 2]")
    assert proc.returncode == 1
    assert "LAUNCH_PARAMETERS must be a JSON object" in proc.stderr


def test_executor_runs_a_notebook_and_writes_the_executed_copy(lib: Path,
                                                               tmp_path: Path) -> None:
    source = tmp_path / "in.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 21"), new_code_cell("print(x * 2)")]),
                   source)
    executed, error = tmp_path / "executed" / "out.ipynb", tmp_path / "error.json"
    proc = run([str(lib / "launch_notebook.py"), "--input", str(source), "--output",
                str(executed), "--error-file", str(error)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "42\n"
    assert nbformat.read(executed, as_version=4).cells[1].outputs[0]["text"] == "42\n"
    assert not error.exists()


def test_executor_names_the_failing_cell_as_jupyterlab_numbers_it(lib: Path,
                                                                  tmp_path: Path) -> None:
    injected = new_code_cell("n = 1", metadata={"tags": ["injected-parameters"]})
    source = tmp_path / "in.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("n = 0"), injected,
                                       new_code_cell("raise ValueError(f'bad {n}')")]), source)
    executed, error = tmp_path / "executed" / "out.ipynb", tmp_path / "error.json"
    proc = run([str(lib / "launch_notebook.py"), "--input", str(source), "--output",
                str(executed), "--error-file", str(error)], tmp_path)
    assert proc.returncode == 1
    assert json.loads(error.read_text()) == {
        "message": "cell 3 raised ValueError: bad 1", "stage": "execute", "cell": 3,
        "ename": "ValueError", "evalue": "bad 1"}
    assert executed.exists()


def test_wrapper_keeps_the_exit_status_and_writes_its_marker_block(lib: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "output"
    out.mkdir()
    code = "import os; open(os.path.join('output', 'm.txt'), 'w').write('hi'); print('job')"
    proc = run([str(lib / "launch_run.py"), "--marker", "@@M@@", "--dir", str(out), "--",
                sys.executable, "-c", code + "; raise SystemExit(3)"], tmp_path)
    assert proc.returncode == 3
    lines = proc.stdout.splitlines()
    assert lines[0] == "job" and lines[1] == ""
    assert lines[2].startswith("@@M@@ BEGIN ") and lines[-1] == "@@M@@ END"
    build.extract_tar(base64.b64decode("".join(lines[3:-1])), tmp_path / "back")
    assert (tmp_path / "back" / "output" / "m.txt").read_text() == "hi"


@pytest.mark.parametrize(("evalue", "code"), [
    ("", 0), ("None", 0), ("0", 0), ("False", 0), ("True", 1), ("3", 3), ("300", 1),
    ("'bye'", 1),
])
def test_sys_exit_values_map_to_the_exit_codes_python_gives(evalue: str, code: int) -> None:
    from launch_jupyter.runners.shipped.notebook_executor import exit_status

    assert exit_status(evalue) == code
