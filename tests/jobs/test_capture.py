from __future__ import annotations

import ast
import importlib.metadata
import json

import nbformat
import pytest

from launch_jupyter.errors import CaptureError, InvalidNameError, ParameterError, SecretError
from launch_jupyter.jobs import capture, capture_cells, inject_parameters
from tests.conftest import write_notebook

PARAMS_CELL = (
    "lr = 0.01  # launch: minimum=0, maximum=1\n"
    "epochs: int = 3\n"
    'optimizer = "adam"  # launch: enum=["adam", "sgd"], description="which one"\n'
    "sizes = (64, 32)\n"
    "data = load()\n"
)


def _pinned(dist: str) -> str:
    return f"{dist}=={importlib.metadata.version(dist)}"


# -- digest ---------------------------------------------------------------------------------


def test_same_notebook_gives_same_digest(make_notebook):
    path = make_notebook([("parameters", "lr = 0.1"), "import numpy\nprint(lr)"])
    assert capture(path).digest == capture(path).digest


def test_reexecuted_notebook_keeps_its_digest(make_notebook):
    path = make_notebook([("md", "# Train"), ("parameters", "lr = 0.1"), "print(lr)"])
    before = capture(path)
    nb = nbformat.read(path, as_version=4)
    for count, cell in enumerate(nb.cells, start=1):
        cell.id = f"fresh-{count}"
        cell.metadata["execution"] = {"iopub.status.busy": f"2024-05-0{count}T10:00:00Z"}
        cell.metadata["collapsed"] = True
        if cell.cell_type == "code":
            cell.execution_count = count * 7
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="0.1\n")]
    nb.metadata["widgets"] = {"state": {}}
    nb.metadata["language_info"]["version"] = "3.11.8"
    nbformat.write(nb, path)
    after = capture(path)
    assert after.digest == before.digest
    assert after.file("train.ipynb").content == before.file("train.ipynb").content


def test_edited_cell_changes_the_digest(make_notebook):
    path = make_notebook(["print(1)"])
    before = capture(path).digest
    make_notebook(["print(2)"])
    assert capture(path).digest != before


def test_digest_ignores_name_and_source_path(make_notebook, tmp_path):
    path = make_notebook(["print(1)"])
    other = make_notebook(["print(1)"], name="copy/train.ipynb")
    assert capture(path, name="a").digest == capture(other, name="b").digest


def test_spec_is_json_and_describes_the_files(make_notebook):
    job = capture(make_notebook(["print(1)"]))
    spec = json.loads(json.dumps(job.spec()))
    assert spec["files"] == {"train.ipynb": job.file("train.ipynb").sha256}
    assert spec["source_path"] == job.source_path
    assert spec["digest"] == job.digest
    assert "warnings" not in spec
    canonical = json.loads(job.canonical())
    assert "source_path" not in canonical and "name" not in canonical
    assert canonical["python"].count(".") == 1


def test_canonical_notebook_is_clean_and_keeps_kernel(make_notebook):
    path = make_notebook(["print(1)"], kernel="ir")
    job = capture(path)
    assert job.kernel == "ir" and job.mode == "notebook" and job.entrypoint == "train.ipynb"
    nb = nbformat.reads(job.file("train.ipynb").content.decode(), as_version=4)
    nbformat.validate(nb)
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert nb.metadata.language_info == {"name": "python"}
    assert capture(path, kernel="python3").kernel == "python3"


# -- parameters -----------------------------------------------------------------------------


def test_parameters_and_schema_from_the_parameters_cell(make_notebook):
    job = capture(make_notebook([("parameters", PARAMS_CELL), "print(lr)"]))
    assert job.parameters == {"lr": 0.01, "epochs": 3, "optimizer": "adam", "sizes": [64, 32]}
    props = job.schema["properties"]
    assert props["lr"] == {"type": "number", "minimum": 0, "maximum": 1, "default": 0.01}
    assert props["optimizer"]["enum"] == ["adam", "sgd"]
    assert props["optimizer"]["description"] == "which one"
    assert props["epochs"]["type"] == "integer"
    assert props["sizes"]["type"] == "array"
    assert any("data is skipped as a parameter" in w for w in job.warnings)


def test_captured_schema_validates_overrides_and_injection(make_notebook):
    from launch_jupyter.jobs import parse_overrides

    job = capture(make_notebook([("parameters", PARAMS_CELL), "print(lr)"]))
    with pytest.raises(ParameterError, match=r"must be <= 1"):
        parse_overrides(["lr=2"], job.schema)
    values = parse_overrides(["lr=0.5", "optimizer=sgd"], job.schema)
    nb = nbformat.reads(job.file("train.ipynb").content.decode(), as_version=4)
    injected = inject_parameters(nb, values).cells[1]
    assert injected.source.endswith("lr = 0.5\noptimizer = 'sgd'")


def test_non_json_literal_defaults_are_skipped_with_a_warning(make_notebook):
    job = capture(make_notebook([("parameters", "tags = {'a', 'b'}\nraw = b'x'\nn = 1")]))
    assert job.parameters == {"n": 1}
    assert sum("is skipped as a parameter" in w for w in job.warnings) == 2


def test_notebook_without_parameters_cell_has_none(make_notebook):
    job = capture(make_notebook(["x = 1"]))
    assert job.parameters == {} and job.schema["properties"] == {}


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("lr = 0.01  # launch: minimum=", "malformed constraint comment"),
        ("lr = 0.01  # launch: maximum=0.001", "default contradicts"),
        ("a = b = 1  # launch: minimum=0", "several parameters"),
        ("# launch: minimum=0\nlr = 0.01", "not on a parameter's line"),
    ],
)
def test_bad_constraint_comments_name_the_problem(make_notebook, cell, message):
    with pytest.raises(ParameterError, match=message):
        capture(make_notebook([("parameters", cell)]))


def test_script_parameters_from_launch_jupyter_call(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "import launch_jupyter\n"
        "import numpy\n\n"
        "params = launch_jupyter.parameters(\n"
        "    lr=0.01,  # launch: minimum=0\n"
        '    optimizer="adam",  # launch: enum=["adam", "sgd"]\n'
        "    layers=[1, 2],\n"
        ")\n"
        "print(params.lr)\n"
    )
    job = capture(script)
    assert job.mode == "script" and job.kernel is None and job.entrypoint == "train.py"
    assert job.parameters == {"lr": 0.01, "optimizer": "adam", "layers": [1, 2]}
    assert job.schema["properties"]["optimizer"]["enum"] == ["adam", "sgd"]
    assert job.schema["properties"]["lr"]["minimum"] == 0
    assert job.file("train.py").content == script.read_bytes()
    assert _pinned("numpy") in job.requirements
    assert not any(r.lower().startswith("launch") for r in job.requirements)


def test_script_parameters_with_imported_function(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("from launch_jupyter import parameters as P\np = P(n=3)\n")
    assert capture(script).parameters == {"n": 3}


def test_script_parameter_default_must_be_a_literal(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import launch_jupyter\np = launch_jupyter.parameters(n=compute())\n")
    with pytest.raises(CaptureError, match="parameter 'n' must be a literal"):
        capture(script)


def test_script_parameter_default_must_be_json_like(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import launch_jupyter\np = launch_jupyter.parameters(n={1, 2})\n")
    with pytest.raises(CaptureError, match="parameter 'n' must be a literal"):
        capture(script)


def test_script_cannot_be_captured_in_notebook_mode(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print(1)\n")
    with pytest.raises(CaptureError, match="run as scripts"):
        capture(script, mode="notebook")


# -- script mode ----------------------------------------------------------------------------


def test_notebook_in_script_mode(make_notebook):
    path = make_notebook(
        [
            ("md", "# hi"),
            ("parameters", "lr = 0.01"),
            "%pip install foo==1.0\n%load_ext launch_jupyter\nprint(lr)",
            "%launch submit train -p lr=0.2",
        ]
    )
    job = capture(path, mode="script")
    assert job.entrypoint == "train.py" and job.kernel is None
    source = job.file("train.py").content.decode()
    ast.parse(source)
    assert "# %% [cell 2]" in source and "# %% [cell 4]" in source and "# hi" not in source
    assert "# launch-jupyter: recorded as requirement: %pip install foo==1.0" in source
    assert "%launch submit" not in source
    assert "foo==1.0" in job.requirements


def test_script_mode_applies_overrides_from_the_environment(make_notebook, monkeypatch):
    path = make_notebook([("parameters", "lr = 0.01"), "result = lr * 2"])
    source = capture(path, mode="script").file("train.py").content.decode()
    monkeypatch.setenv("LAUNCH_PARAMETERS", json.dumps({"lr": 0.5}))
    namespace: dict = {}
    exec(compile(source, "train.py", "exec"), namespace)  # noqa: S102 - the job itself
    assert namespace["result"] == 1.0
    monkeypatch.delenv("LAUNCH_PARAMETERS")
    namespace = {}
    exec(compile(source, "train.py", "exec"), namespace)  # noqa: S102
    assert namespace["result"] == 0.02


@pytest.mark.parametrize(
    ("cell", "where"),
    [("print(1)\n!ls -l", "cell 1, line 2: '!ls -l'"), ("%timeit f()", "cell 1, line 1"),
     ("%%bash\necho hi", "cell 1 starts with the cell magic '%%bash'"),
     ("files = !ls", "cell 1, line 1")],
)
def test_script_mode_refuses_other_ipython_syntax(make_notebook, cell, where):
    with pytest.raises(CaptureError, match="notebook mode") as err:
        capture(make_notebook([cell]), mode="script")
    assert where in str(err.value)


def test_launch_lines_never_run_inside_the_job(make_notebook):
    path = make_notebook(["print(1)", "%load_ext launch_jupyter\n%launch submit train -p lr=1"])
    job = capture(path)
    nb = nbformat.reads(job.file("train.ipynb").content.decode(), as_version=4)
    assert "%launch submit" not in nb.cells[1].source
    # editing the submit command does not make a new version
    make_notebook(["print(1)", "%load_ext launch_jupyter\n%launch submit train -p lr=2"])
    assert capture(path).digest == job.digest


# -- dependencies ---------------------------------------------------------------------------


def test_imports_become_pinned_requirements(make_notebook):
    path = make_notebook(
        ["import numpy as np\nimport os, json", "from nbformat import v4\nimport __future__"]
    )
    job = capture(path)
    assert job.requirements == sorted([_pinned("numpy"), _pinned("nbformat")], key=str.lower)


def test_unknown_import_is_a_warning(make_notebook):
    job = capture(make_notebook(["import surely_not_installed_module_xyz"]))
    assert job.requirements == []
    assert any("'surely_not_installed_module_xyz' is imported but not installed" in w
               for w in job.warnings)


def test_local_modules_travel_with_the_job(make_notebook, tmp_path):
    (tmp_path / "helpers.py").write_text("import mathutils\nimport numpy\n")
    (tmp_path / "mathutils.py").write_text("from pkg import sub\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub.py").write_text("import nbformat\n")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "sub.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "unused.py").write_text("")
    job = capture(make_notebook(["import helpers"]))
    paths = [f.path for f in job.files]
    assert paths == ["helpers.py", "mathutils.py", "pkg/__init__.py", "pkg/sub.py", "train.ipynb"]
    assert job.requirements == sorted([_pinned("numpy"), _pinned("nbformat")], key=str.lower)
    assert not any("helpers" in w or "mathutils" in w for w in job.warnings)


def test_python2_cell_does_not_break_capture(make_notebook):
    job = capture(make_notebook(['print "hello"', "import numpy"]))
    assert _pinned("numpy") in job.requirements
    assert any("cell 1 does not parse as Python" in w for w in job.warnings)


def test_pip_install_lines_are_recorded(make_notebook):
    job = capture(make_notebook(["%pip install -q foo==1.0 'bar>=2'\n!pip install baz", "x=1"]))
    assert job.requirements == ["bar>=2", "baz", "foo==1.0"]


def test_pip_install_replaces_the_environment_pin(make_notebook):
    job = capture(make_notebook(["%pip install numpy==1.26.0\nimport numpy"]))
    assert job.requirements == ["numpy==1.26.0"]


def test_capture_of_200_cells_pins_each_import_once(make_notebook):
    """A long notebook: each distinct import is resolved once (its speed is a benchmark
    figure, ``benchmarks/run.py --only capture``, not a timed test)."""
    imports = ["numpy", "nbformat", "json", "os", "re", "traitlets", "pytest", "ast", "io", "sys"]
    cells = [f"import {imports[i % 10]}\nx{i} = {i}\nprint(x{i})" for i in range(200)]
    job = capture(make_notebook(cells))
    pinned = {r.split("==")[0].lower() for r in job.requirements}
    assert {"numpy", "nbformat", "traitlets", "pytest"} <= pinned
    assert len(job.requirements) == len(pinned)  # one pin per distribution
    assert not {"json", "os", "re", "ast", "io", "sys"} & pinned  # the standard library


# -- include --------------------------------------------------------------------------------


def test_include_globs_add_files(make_notebook, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("1")
    (tmp_path / "data" / "deep").mkdir()
    (tmp_path / "data" / "deep" / "b.csv").write_text("2")
    (tmp_path / "config.yaml").write_text("x: 1")
    job = capture(make_notebook(["print(1)"]), include=["data", "*.yaml", "**/*.ipynb"])
    assert [f.path for f in job.files] == [
        "config.yaml", "data/a.csv", "data/deep/b.csv", "train.ipynb"
    ]
    assert job.file("data/deep/b.csv").content == b"2"


def test_one_include_or_env_given_as_a_string_is_one(make_notebook, tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text("x: 1")
    monkeypatch.setenv("LAUNCH_TEST_ONE_VAR", "v")
    job = capture(make_notebook(["print(1)"]), include="*.yaml", env="LAUNCH_TEST_ONE_VAR")
    assert [f.path for f in job.files] == ["config.yaml", "train.ipynb"]
    assert list(job.env) == ["LAUNCH_TEST_ONE_VAR"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("*.nothing", "matches nothing"), ("../secret", "outside"), ("/etc/passwd", "outside")],
)
def test_bad_include_patterns_are_refused(make_notebook, pattern, message):
    with pytest.raises(CaptureError, match=message):
        capture(make_notebook(["print(1)"]), include=[pattern])


# -- confinement: hidden files and links out (security row 6) --------------------------------


@pytest.fixture
def secrets_beside(tmp_path):
    """Hidden files beside the notebook, and a secret outside its folder."""
    (tmp_path / ".env").write_text("API_TOKEN=hunter2")
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "secret.py").write_text("TOKEN = 'outside-secret'\n")
    (outside / "data").mkdir()
    (outside / "data" / "passwd").write_text("root:x:0:0")
    return outside


@pytest.mark.parametrize("pattern", [".env", ".ssh", ".ssh/id_ed25519", ".e*", ".*",
                                     "**/.env", "./.env"])
def test_includes_obey_the_hidden_file_rule(make_notebook, secrets_beside, pattern):
    with pytest.raises(CaptureError, match="hidden") as caught:
        capture(make_notebook(["print(1)"]), include=[pattern])
    assert ".env" in str(caught.value) or ".ssh" in str(caught.value)


def test_a_hidden_include_is_captured_only_when_allowed(make_notebook, secrets_beside):
    job = capture(make_notebook(["print(1)"]), include=[".env"], allow_hidden=True)
    assert job.file(".env").content == b"API_TOKEN=hunter2"


def test_hidden_files_inside_an_included_folder_are_left_out_with_a_warning(
        make_notebook, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("1")
    (tmp_path / "data" / ".token").write_text("secret")
    (tmp_path / "data" / ".cache").mkdir()
    (tmp_path / "data" / ".cache" / "b.csv").write_text("2")
    job = capture(make_notebook(["print(1)"]), include=["data"])
    assert [f.path for f in job.files] == ["data/a.csv", "train.ipynb"]
    assert any("data/.token" in w and "hidden" in w for w in job.warnings), job.warnings


@pytest.mark.parametrize("pattern", [
    "../x", "data/../../x", "\uff0e\uff0e/x",  # fullwidth dots: NFKC '..'
    "\u2025/x",  # two-dot leader: NFKC '..'
    "\uff0fetc/passwd",  # fullwidth solidus: NFKC '/'
])
def test_includes_cannot_climb_out_even_by_look_alikes(make_notebook, secrets_beside, pattern):
    with pytest.raises(CaptureError, match="outside"):
        capture(make_notebook(["print(1)"]), include=[pattern])


def test_a_look_alike_of_a_hidden_name_counts_as_hidden(make_notebook, tmp_path):
    (tmp_path / "\uff0eenv").write_text("API_TOKEN=x")  # '．env' looks like '.env'
    with pytest.raises(CaptureError, match="hidden"):
        capture(make_notebook(["print(1)"]), include=["\uff0eenv"])


def test_an_included_link_to_outside_is_refused(make_notebook, tmp_path, secrets_beside):
    (tmp_path / "passwd").symlink_to(secrets_beside / "data" / "passwd")
    with pytest.raises(CaptureError, match="outside") as caught:
        capture(make_notebook(["print(1)"]), include=["passwd"])
    assert str(secrets_beside / "data" / "passwd") in str(caught.value)


def test_an_included_linked_folder_pointing_outside_is_refused(make_notebook, tmp_path,
                                                                 secrets_beside):
    (tmp_path / "data").symlink_to(secrets_beside / "data", target_is_directory=True)
    for pattern in ("data", "data/*", "*/passwd"):
        with pytest.raises(CaptureError, match="outside"):
            capture(make_notebook(["print(1)"]), include=[pattern])


def test_an_included_link_to_a_hidden_file_is_refused(make_notebook, tmp_path, secrets_beside):
    (tmp_path / "settings.txt").symlink_to(tmp_path / ".env")
    with pytest.raises(CaptureError, match="hidden"):
        capture(make_notebook(["print(1)"]), include=["settings.txt"])


def test_a_symlinked_local_module_pointing_outside_is_refused(make_notebook, tmp_path,
                                                                secrets_beside):
    (tmp_path / "helper.py").symlink_to(secrets_beside / "secret.py")
    with pytest.raises(CaptureError, match="local module helper.py links to") as caught:
        capture(make_notebook(["import helper"]))
    assert "outside" in str(caught.value)


def test_a_local_package_linked_outside_is_refused(make_notebook, tmp_path, secrets_beside):
    (secrets_beside / "pkg").mkdir()
    (secrets_beside / "pkg" / "__init__.py").write_text("TOKEN = 'outside-secret'\n")
    (tmp_path / "pkg").symlink_to(secrets_beside / "pkg", target_is_directory=True)
    with pytest.raises(CaptureError, match="outside"):
        capture(make_notebook(["import pkg"]))


def test_links_inside_the_root_are_followed(make_notebook, tmp_path, secrets_beside):
    """A link to a file elsewhere under the confinement root (the server's root dir for REST)
    is fine: its content travels under the link's name."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "util.py").write_text("X = 1\n")
    nb_dir = tmp_path / "work"
    nb_dir.mkdir()
    (nb_dir / "util.py").symlink_to(shared / "util.py")
    nb = write_notebook(nb_dir, "nb.ipynb", ["import util"])
    with pytest.raises(CaptureError, match="outside"):
        capture(nb)  # default root: the notebook's own folder
    job = capture(nb, root=tmp_path)
    assert job.file("util.py").content == b"X = 1\n"


# -- broken input ---------------------------------------------------------------------------


def test_missing_notebook(tmp_path):
    with pytest.raises(CaptureError, match=r"missing\.ipynb: no such file"):
        capture(tmp_path / "missing.ipynb")


def test_truncated_notebook(make_notebook):
    path = make_notebook(["print(1)"])
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CaptureError, match="not valid JSON.*truncated"):
        capture(path)


def test_non_json_notebook(tmp_path):
    path = tmp_path / "n.ipynb"
    path.write_text("print('I am a script')")
    with pytest.raises(CaptureError, match="n.ipynb: it is not valid JSON"):
        capture(path)


@pytest.mark.parametrize("content", ["[1, 2]", '{"cells": []}', '{"nbformat": 4}'])
def test_json_that_is_not_a_notebook(tmp_path, content):
    path = tmp_path / "n.ipynb"
    path.write_text(content)
    with pytest.raises(CaptureError, match="n.ipynb: .*not a .*notebook"):
        capture(path)


def test_notebook_without_code(make_notebook):
    with pytest.raises(CaptureError, match="no code cell"):
        capture(make_notebook([("md", "# only text"), "   \n"]))


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    with pytest.raises(CaptureError, match=r"\.ipynb notebooks and \.py scripts"):
        capture(path)


# -- names and env --------------------------------------------------------------------------


def test_job_name_is_validated_and_defaults_to_the_stem(make_notebook):
    path = make_notebook(["print(1)"])
    assert capture(path).name == "train"
    assert capture(path, name="other").name == "other"
    with pytest.raises(InvalidNameError):
        capture(path, name="../x")


@pytest.mark.parametrize(
    "name", ["PASS_TOKEN", "AWS_ACCESS_KEY_ID", "db_password", "GITHUB_AUTH", "MY_SECRET"]
)
def test_secret_looking_env_vars_are_refused(make_notebook, monkeypatch, name):
    monkeypatch.setenv(name, "hunter2")
    with pytest.raises(SecretError, match=f"refusing to capture {name}: it looks like a secret.*"
                       "secretKeyRef for kubernetes queues"):
        capture(make_notebook(["print(1)"]), env=[name])


def test_plain_env_vars_are_captured(make_notebook, monkeypatch):
    monkeypatch.setenv("DATASET", "mnist")
    job = capture(make_notebook(["print(1)"]), env=["DATASET", "MODE=fast"])
    assert job.env == {"DATASET": "mnist", "MODE": "fast"}
    assert capture(make_notebook(["print(1)"])).digest != job.digest


def test_missing_or_invalid_env_var(make_notebook, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = make_notebook(["print(1)"])
    with pytest.raises(CaptureError, match="NOT_SET_ANYWHERE is not set"):
        capture(path, env=["NOT_SET_ANYWHERE"])
    with pytest.raises(CaptureError, match="invalid environment variable name '1X'"):
        capture(path, env=["1X=2"])


# -- cells ----------------------------------------------------------------------------------


def test_capture_cells_builds_a_notebook_job(tmp_path):
    (tmp_path / "helpers.py").write_text("X = 1\n")
    job = capture_cells(
        ["lr = 0.1", "import helpers\nimport numpy\nprint(lr)"],
        name="exp",
        folder=tmp_path,
        parameters_cell=0,
    )
    assert job.entrypoint == "exp.ipynb" and job.source_path == "<cells>"
    assert job.parameters == {"lr": 0.1}
    assert [f.path for f in job.files] == ["exp.ipynb", "helpers.py"]
    assert _pinned("numpy") in job.requirements
    nb = nbformat.reads(job.file("exp.ipynb").content.decode(), as_version=4)
    assert nb.cells[0].metadata.tags == ["parameters"]
    again = capture_cells(["lr = 0.1", "import helpers\nimport numpy\nprint(lr)"], name="exp",
                          folder=tmp_path, parameters_cell=0)
    assert again.digest == job.digest


def test_capture_cells_in_script_mode(tmp_path):
    job = capture_cells(["print(1)"], name="one", folder=tmp_path, mode="script")
    assert job.entrypoint == "one.py" and job.kernel is None
