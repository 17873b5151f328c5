"""Capture tells the truth (issue 16): every class of notebook the survey of public notebooks
found, as a real notebook file written by the test, captured, and checked for what the job
records and what the user is told."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from launch_jupyter.api import Launch
from launch_jupyter.errors import CaptureError
from launch_jupyter.jobs import capture
from launch_jupyter.jobs.cells import shell_words
from launch_jupyter.jobs.deps import install_line

MISSING = "launch_test_not_installed_pkg"  # a module no environment here has


@pytest.fixture(params=["sqlite", "postgresql"])
def both(request: pytest.FixtureRequest, home: Path) -> Launch:
    """A client on a fresh store of each backend."""
    url = (f"sqlite:///{home}/both.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    launch = Launch(url)
    request.addfinalizer(launch.close)
    return launch


def said(job: object, *words: str) -> bool:
    """Some warning of ``job`` mentions every one of ``words``."""
    return any(all(w in warning for w in words) for warning in job.warnings)  # type: ignore


def entry_source(job: object, cell: int) -> str:
    """The source of code cell ``cell`` (0-based, among all cells) in the job's notebook."""
    nb = nbformat.reads(job.file(job.entrypoint).content.decode(), as_version=4)  # type: ignore
    return nb.cells[cell].source


# -- 1. silent drops: unresolved imports are recorded and said -------------------------------


def test_an_import_that_is_not_installed_is_recorded_as_unresolved_and_warned(
        make_notebook) -> None:
    job = capture(make_notebook([f"import {MISSING}\nimport numpy"]))
    assert job.unresolved == [MISSING] and job.unresolved_conditional == []
    assert job.spec()["unresolved"] == [MISSING]
    assert said(job, MISSING, "not installed", "%pip install")
    assert any(r.startswith("numpy==") for r in job.requirements)


def test_imports_under_if_or_try_importerror_are_conditional(make_notebook) -> None:
    job = capture(make_notebook([
        f"try:\n    import {MISSING}\nexcept ImportError:\n    pass",
        "if False:\n    import launch_test_other_missing",
        "from contextlib import suppress\nwith suppress(ImportError):\n    import third_missing",
    ]))
    assert sorted(job.unresolved_conditional) == sorted(job.unresolved)
    assert set(job.unresolved) == {MISSING, "launch_test_other_missing", "third_missing"}
    job.refuse_unresolved()  # strict accepts conditional imports


def test_strict_refuses_an_unconditional_unresolved_import(make_notebook) -> None:
    job = capture(make_notebook([f"import {MISSING}"]))
    with pytest.raises(CaptureError, match=f"strict capture refused.*{MISSING}"):
        job.refuse_unresolved()


def test_a_pip_line_covers_an_import_that_is_not_installed(make_notebook) -> None:
    job = capture(make_notebook([f"%pip install {MISSING}==1.0\nimport {MISSING}",
                                 "!pip install scikit-image\nimport skimage"]))
    assert job.unresolved == []
    assert f"{MISSING}==1.0" in job.requirements


def test_modules_the_notebook_writes_itself_are_not_reported(make_notebook) -> None:
    job = capture(make_notebook([
        "%%writefile helper_written.py\ndef f():\n    return 1",
        "%%writefile -a pkg_written/__init__.py\nX = 1",
        "import helper_written\nimport pkg_written\nprint(helper_written.f())",
    ]))
    assert job.unresolved == [] and not said(job, "helper_written")


def test_imports_of_a_module_the_notebook_writes_and_uses_are_scanned(make_notebook) -> None:
    job = capture(make_notebook([
        f"%%writefile train_written.py\nimport {MISSING}\nimport nbformat\nimport util_written",
        "%%writefile util_written.py\nimport jsonschema",
        f"%%writefile remote_written.py\nimport {MISSING}_remote",  # never imported nor run
        "%run train_written.py",
    ]))
    assert job.unresolved == [MISSING] and said(job, MISSING, "not installed")
    names = {r.split("==")[0].lower() for r in job.requirements}
    assert {"nbformat", "jsonschema"} <= names
    assert not said(job, "remote") and not said(job, "_written")
    with pytest.raises(CaptureError, match=MISSING):
        job.refuse_unresolved()  # --strict sees it too


def test_imports_of_a_written_script_run_with_bang_python_are_scanned(make_notebook) -> None:
    job = capture(make_notebook([
        f"%%writefile train_sh.py\nimport {MISSING}\nimport nbformat",
        "!python train_sh.py --epochs 3 > log.txt && echo done",
        f"%%writefile other_sh.py\nimport {MISSING}_other",
        "!python -m other_sh",  # a module run: not a file the shell line names
    ]))
    assert job.unresolved == [MISSING] and said(job, MISSING, "not installed")
    assert any(r.lower().startswith("nbformat==") for r in job.requirements)


# -- 2. cells parsed as IPython parses them -----------------------------------------------


def test_automagic_pip_and_bang_continuations_keep_the_cells_imports(make_notebook) -> None:
    job = capture(make_notebook([
        f"pip install {MISSING}\nimport numpy",
        f"!pip install -q {MISSING}b \\\n    {MISSING}c\nimport nbformat",
        "nbformat?\nimport jsonschema",
    ]))
    assert not said(job, "does not parse")
    assert {MISSING, f"{MISSING}b", f"{MISSING}c"} <= set(job.requirements)
    names = {r.split("==")[0].lower() for r in job.requirements}
    assert {"numpy", "nbformat", "jsonschema"} <= names


def test_a_pip_line_installing_from_a_vcs_url_covers_its_import(make_notebook) -> None:
    job = capture(make_notebook([
        "!pip install -q git+https://github.com/org/launch_test_vcs_pkg.git@v1.0",
        "%pip install 'git+https://github.com/org/other.git#egg=launch_test_egg_pkg'",
        "import launch_test_vcs_pkg\nimport launch_test_egg_pkg\nimport launch_test_uncovered",
    ]))
    assert job.unresolved == ["launch_test_uncovered"]
    assert "git+https://github.com/org/launch_test_vcs_pkg.git@v1.0" in job.requirements


def test_automagic_in_a_cell_of_more_lines_warns_it_fails_as_in_ipython(make_notebook) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    longer, alone = f"import os\npip install {MISSING}", f"pip install {MISSING}\n"
    shell = InteractiveShell.instance()  # IPython's automagic: only a cell of one line
    try:
        assert "run_line_magic" in shell.transform_cell(alone)
        assert "run_line_magic" not in shell.transform_cell(longer)
    finally:
        InteractiveShell.clear_instance()  # no get_ipython() for the tests that follow
    job = capture(make_notebook([alone, longer]))
    assert said(job, f"cell 2, line 2: 'pip install {MISSING}' runs as a magic only in a cell "
                     f"of its own", f"write %pip install {MISSING}")
    assert not said(job, "cell 1")
    assert MISSING in job.requirements


def test_time_timeit_and_capture_bodies_are_scanned(make_notebook) -> None:
    job = capture(make_notebook([
        f"%%time\nimport {MISSING}",
        "%%timeit -n 1\nimport launch_test_timeit_missing",
        "%%capture out\n%pip install captured-req==2\nimport launch_test_capture_missing",
        "%time import launch_test_line_time_missing",
    ]))
    assert set(job.unresolved) == {MISSING, "launch_test_timeit_missing",
                                   "launch_test_capture_missing",
                                   "launch_test_line_time_missing"}
    assert "captured-req==2" in job.requirements


def test_every_pip_command_of_a_shell_line_is_recorded(make_notebook) -> None:
    job = capture(make_notebook([
        "!pip install -q launch-test-a > /dev/null && pip install launch-test-b || echo no",
        "%pip install launch-test-c; uv pip install launch-test-d",
        "!echo '&& pip install not-a-command'",
    ]))
    assert {"launch-test-a", "launch-test-b", "launch-test-c"} <= set(job.requirements)
    assert not any("launch-test-d" in r or "not-a-command" in r for r in job.requirements)
    assert said(job, "uv line 'uv pip install launch-test-d' is not recorded")


@pytest.mark.parametrize(("command", "specifiers"), [
    ("pip install t > /dev/null", ["t"]),
    ("pip install t 2>&1 | tail -1", ["t"]),
    ("pip install a && echo done", ["a"]),
    ("pip install a; pip install b", ["a"]),
    ("pip install 'x>=1' # a comment", ["x>=1"]),
    ("pip install a \\\n  b", ["a", "b"]),
    ("{sys.executable} -m pip install jinja2", ["jinja2"]),
    ("python3 -m pip install -U req", ["req"]),
])
def test_pip_lines_stop_at_shell_operators_and_join_continuations(command: str,
                                                                  specifiers: list) -> None:
    line = install_line(command)
    assert line is not None and line.tool == "pip"
    assert line.specifiers == specifiers


def test_shell_words_drop_the_redirected_descriptor() -> None:
    assert shell_words("pip install a 2>/dev/null") == ["pip", "install", "a"]


def test_pip_lines_with_variables_and_conda_or_uv_lines_are_warned(make_notebook) -> None:
    job = capture(make_notebook([
        "pkg = 'x'\n!pip install {pkg}\n!pip install $PKG fixed-req",
        "!conda install -y launch-conda-pkg",
        "%conda install launch-conda-magic",
        "!uv pip install launch-uv-pkg",
    ]))
    assert "fixed-req" in job.requirements
    assert not any("{pkg}" in r or "$PKG" in r for r in job.requirements)
    assert said(job, "{pkg}", "fills in") and said(job, "$PKG")
    assert said(job, "conda line", "launch-conda-pkg") and said(job, "launch-conda-magic")
    assert said(job, "uv line", "launch-uv-pkg")
    assert not any("launch-conda" in r or "launch-uv" in r for r in job.requirements)


def test_run_file_is_shipped_and_scanned_like_a_local_module(make_notebook,
                                                             tmp_path: Path) -> None:
    (tmp_path / "setup_helpers.py").write_text(f"import {MISSING}\nimport nbformat\n")
    job = capture(make_notebook(["%run -i setup_helpers.py --fast", "%run missing_script.py"]))
    assert job.file("setup_helpers.py").content.startswith(b"import")
    assert MISSING in job.unresolved
    assert any(r.lower().startswith("nbformat==") for r in job.requirements)
    assert said(job, "%run missing_script.py", "no such file")


def test_load_ext_counts_as_an_import(make_notebook) -> None:
    job = capture(make_notebook([f"%load_ext {MISSING}", "%load_ext launch_jupyter"]))
    assert job.unresolved == [MISSING]


def test_run_without_py_suffix_ships_the_py_file_as_ipython_finds_it(make_notebook,
                                                                     tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text(f"import {MISSING}\n")
    job = capture(make_notebook(["%run helpers", "%%writefile made.py\nX = 1", "%run made"]))
    assert job.file("helpers.py").content == f"import {MISSING}\n".encode()
    assert job.unresolved == [MISSING]
    assert not said(job, "no such file")


def test_run_of_a_file_named_by_a_variable_warns_it_is_not_shipped(make_notebook) -> None:
    job = capture(make_notebook(["script = 'setup.py'\n%run $script", "%run -i {script}"]))
    assert said(job, "cell 1: %run $script names its file with $script", "not shipped")
    assert said(job, "cell 2: %run -i {script} names its file with {script}")
    assert not said(job, "no such file")


def test_load_ext_of_an_extension_ipython_ships_needs_ipython(make_notebook) -> None:
    job = capture(make_notebook(["%load_ext autoreload\n%autoreload 2",
                                 "%reload_ext storemagic"]))
    assert job.unresolved == [] and not said(job, "autoreload") and not said(job, "storemagic")
    assert any(r.lower().startswith("ipython==") for r in job.requirements)
    job.refuse_unresolved()  # --strict accepts it


def test_markdown_attachments_are_kept(make_notebook) -> None:
    path = make_notebook([("md", "![plot](attachment:plot.png)"), "print(1)"])
    nb = nbformat.read(path, as_version=4)
    nb.cells[0]["attachments"] = {"plot.png": {"image/png": "iVBORw0KGgo="}}
    nbformat.write(nb, path)
    job = capture(path)
    kept = nbformat.reads(job.file("train.ipynb").content.decode(), as_version=4)
    assert kept.cells[0]["attachments"] == {"plot.png": {"image/png": "iVBORw0KGgo="}}


# -- 3. kernels ---------------------------------------------------------------------------


def test_a_kernelspec_that_is_not_installed_warns_at_capture(make_notebook) -> None:
    job = capture(make_notebook(["print(1)"], kernel="conda_pytorch_p39"))
    assert job.kernel == "conda_pytorch_p39"
    assert said(job, "'conda_pytorch_p39' is not installed here", "python3")
    assert not said(capture(make_notebook(["print(1)"], name="ok.ipynb")), "kernel")


def test_a_non_python_notebook_says_its_imports_are_not_scanned(tmp_path: Path) -> None:
    nb = new_notebook(metadata={
        "kernelspec": {"name": "ir", "display_name": "R", "language": "R"},
        "language_info": {"name": "R"}})
    nb.cells.append(new_code_cell("library(ggplot2)\nx <- 1"))
    nb.cells.append(new_code_cell("x = 2", metadata={"tags": ["parameters"]}))
    path = tmp_path / "analysis.ipynb"
    nbformat.write(nb, path)
    job = capture(path)
    assert said(job, "language is r", "imports are not scanned")
    assert said(job, "kernel 'ir' (r) is not installed here")
    assert not said(job, "does not parse")
    assert job.requirements == [] and job.parameters == {}


# -- 4. papermill's conventions at capture ------------------------------------------------


def test_a_broken_parameters_line_keeps_the_other_parameters(make_notebook) -> None:
    job = capture(make_notebook([
        ("parameters", "msg = None\na: float = 0.5  # launch: minimum=0\nb = 1\n"
                       "c = (1 +\nd = 'x'\nbroken line here\ne = [1,\n     2]"),
        "print(a)"]))
    assert job.parameters == {"msg": None, "a": 0.5, "b": 1, "d": "x", "e": [1, 2]}
    assert job.schema["properties"]["a"]["minimum"] == 0
    assert said(job, "line 4 does not parse") and said(job, "line 6 does not parse")


@pytest.mark.parametrize("line", ["h = %launch submit other --queue q",
                                  "h=%launch", "    item = %launch submit x"])
def test_launch_assignments_are_inert_in_the_job(make_notebook, line: str) -> None:
    source = f"if True:\n{line}" if line.startswith(" ") else line
    job = capture(make_notebook(["x = 1", source]))
    kept = entry_source(job, 1)
    assert "launch-jupyter: %launch line left out" in kept
    assert "= %launch" not in kept and "=%launch" not in kept
    target = line.split("=")[0].strip()
    assert f"{target} = None" in kept
    compile(kept, "cell", "exec")


def test_metadata_only_changes_keep_the_same_version(make_notebook, both: Launch) -> None:
    client = both
    path = make_notebook(["print(1)"])
    first = client.create_job(path)
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"]["display_name"] = "Python 3 (ipykernel)"
    nb.metadata["language_info"] = {"name": "python", "version": "3.12.1",
                                    "mimetype": "text/x-python"}
    nbformat.write(nb, path)
    assert client.create_job(path).ref == first.ref == "train:v1"


# -- the doors: every warning reaches the user --------------------------------------------


def test_job_create_prints_warnings_on_stderr_and_in_json(cli, tmp_path: Path) -> None:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "P",
                                               "language": "python"}})
    nb.cells.append(new_code_cell(f"import {MISSING}"))
    path = tmp_path / "drops.ipynb"
    nbformat.write(nb, path)
    proc = cli("job", "create", str(path), check=True)
    assert proc.stdout.strip() == "drops:v1"
    assert f"warning: module '{MISSING}' is imported but not installed" in proc.stderr
    data = json.loads(cli("job", "create", str(path), "--json", check=True).stdout)
    assert data["unresolved"] == [MISSING]
    assert any(MISSING in w for w in data["warnings"])
    shown = cli("job", "show", "drops", check=True).stdout
    assert "unresolved imports" in shown and MISSING in shown
    assert json.loads(cli("job", "show", "drops", "--json", check=True).stdout
                      )["unresolved"] == [MISSING]
    refused = cli("job", "create", str(path), "--strict", "--name", "strict-drops")
    assert refused.returncode != 0 and "strict capture refused" in refused.stderr
    assert "strict-drops" not in cli("job", "list").stdout


def test_create_job_strict_takes_a_bool_only(home: Path, make_notebook) -> None:
    from launch_jupyter.errors import ParameterError

    client = Launch(f"sqlite:///{home}/strict.db")
    try:
        with pytest.raises(ParameterError, match="strict must be true or false, got 'no'"):
            client.create_job(make_notebook(["print(1)"]), strict="no")  # type: ignore[arg-type]
        assert client.jobs() == []
    finally:
        client.close()


def test_a_default_name_clashing_with_another_files_job_warns(both: Launch,
                                                              tmp_path: Path) -> None:
    client = both
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        nb = new_notebook()
        nb.cells.append(new_code_cell(f"print({folder!r})"))
        nb.cells.append(new_markdown_cell(folder))
        nbformat.write(nb, tmp_path / folder / "report.ipynb")
    first = client.create_job(tmp_path / "a" / "report.ipynb")
    assert not any("--name" in w for w in first.warnings)
    second = client.create_job(tmp_path / "b" / "report.ipynb")
    assert second.ref == "report:v2"
    assert any(str(tmp_path / "a" / "report.ipynb") in w and "--name" in w
               for w in second.warnings)
    again = client.create_job(tmp_path / "a" / "report.ipynb", name="report")
    assert not any("--name" in w for w in again.warnings)  # a name the user chose


def test_submitting_a_file_returns_the_captures_warnings(both: Launch,
                                                        tmp_path: Path) -> None:
    client = both
    nb = new_notebook()
    nb.cells.append(new_code_cell(f"import {MISSING}"))
    nbformat.write(nb, tmp_path / "sub.ipynb")
    item = client.submit(str(tmp_path / "sub.ipynb"), queue="local")
    assert any(MISSING in w for w in item.warnings)
    stored = client.job_info("sub")  # the store keeps unresolved, not the warnings
    assert stored["unresolved"] == [MISSING] and stored["warnings"] == []


def test_a_magic_line_in_the_parameters_cell_is_no_broken_line(make_notebook) -> None:
    job = capture(make_notebook([("parameters", "%matplotlib inline\nlr = 0.1\nbad = (\nn = 2"),
                                 "print(lr)"]))
    assert job.parameters == {"lr": 0.1, "n": 2}
    assert said(job, "line 3 does not parse") and not said(job, "line 1")


def test_script_mode_refuses_ipython_syntax_it_cannot_run(make_notebook) -> None:
    with pytest.raises(CaptureError, match="automagic"):
        capture(make_notebook(["pip install x\nprint(1)"]), mode="script")
    script = capture(make_notebook(["%pip install x\nh = %launch submit y\nprint(1)"]),
                     mode="script")
    text = script.file("train.py").content.decode()
    assert "h = None  # launch-jupyter: %launch line left out" in text
    compile(text, "train.py", "exec")


def test_script_mode_leaves_out_cells_tagged_skip_execution(make_notebook,
                                                            tmp_path: Path) -> None:
    import subprocess
    import sys

    script = capture(make_notebook([
        "print('runs')",
        ("skip-execution", "print('interactive only')\nraise SystemError('must not run')"),
        "print('also runs')",
    ]), mode="script")
    path = tmp_path / "out" / "train.py"
    path.parent.mkdir()
    path.write_bytes(script.file("train.py").content)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["runs", "also", "runs"]


@pytest.mark.slow
def test_run_in_the_foreground_prints_the_captures_warnings(cli, tmp_path: Path) -> None:
    nb = new_notebook()
    nb.cells.append(new_code_cell(f"try:\n    import {MISSING}\nexcept ImportError:\n    pass"))
    nbformat.write(nb, tmp_path / "fg.ipynb")
    proc = cli("run", str(tmp_path / "fg.ipynb"), check=True)
    assert f"warning: module '{MISSING}' is imported under a condition" in proc.stderr


def test_a_sweep_of_a_file_notes_the_captures_warnings(client: Launch, tmp_path: Path) -> None:
    nb = new_notebook()
    nb.cells.append(new_code_cell("lr = 0.1", metadata={"tags": ["parameters"]}))
    nb.cells.append(new_code_cell(f"import {MISSING}"))
    nbformat.write(nb, tmp_path / "swept.ipynb")
    sweep = client.sweep(str(tmp_path / "swept.ipynb"), grid=["lr=0.1,0.2"])
    assert sweep.note is not None and f"warning: module '{MISSING}'" in sweep.note
