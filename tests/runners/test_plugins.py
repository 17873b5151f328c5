"""Runners are plug-ins: a package that registers a runner under the ``launch_jupyter.runners``
entry-point group is used by queues and agents like the built-in ones (docs/runners.md).

The toy runner package (tests/plugins/toy_runner) is really installed with pip into a
folder that is then put on the path, so its entry point is found the way an installed
package's would be. Its wheel is built here from its pyproject.toml: this environment has no
wheel-building backend, and a test must not fetch one."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch_jupyter import runners
from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError

from ..conftest import run_to_end, write_script

TOY = Path(__file__).parent.parent / "plugins" / "toy_runner"

SCRIPT = """
    import os, launch_jupyter
    p = launch_jupyter.parameters(lr=0.1)
    print("toy job", os.environ["LAUNCH_JOB"], os.environ["LAUNCH_QUEUE"], p.lr)
    with open(os.path.join(os.environ["LAUNCH_OUTPUT_DIR"], "result.txt"), "w") as fh:
        fh.write(str(p.lr * 2))
"""


def build_wheel(project: Path, dest: Path) -> Path:
    """The wheel (PEP 427) of a project of plain modules: its modules, and the metadata and
    entry points its pyproject.toml declares."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    meta = pyproject["project"]
    dist = f"{meta['name'].replace('-', '_')}-{meta['version']}"
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items())
        for group, points in meta.get("entry-points", {}).items())
    files = {f"{module}.py": (project / f"{module}.py").read_bytes()
             for module in pyproject["tool"]["setuptools"]["py-modules"]}
    files.update({
        f"{dist}.dist-info/METADATA": (f"Metadata-Version: 2.1\nName: {meta['name']}\n"
                                       f"Version: {meta['version']}\n").encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: launch-jupyter tests\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}.dist-info/entry_points.txt": entry_points.encode(),
    })

    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = "".join(f"{path},sha256={digest(data)},{len(data)}\n"
                     for path, data in files.items()) + f"{dist}.dist-info/RECORD,,\n"
    wheel = dest / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in [*files.items(), (f"{dist}.dist-info/RECORD", record.encode())]:
            archive.writestr(path, data)
    return wheel


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed toy runner package (module and dist-info)."""
    target = tmp_path_factory.mktemp("site")
    wheel = build_wheel(TOY, tmp_path_factory.mktemp("wheel"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(target), str(wheel)],
                   check=True, timeout=300, capture_output=True)
    assert list(target.glob("launch_jupyter_toy_runner-*.dist-info"))
    return target


@pytest.fixture
def toy(toy_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The toy runner installed and visible to this process."""
    monkeypatch.syspath_prepend(str(toy_site))
    runners.rescan()
    yield toy_site
    monkeypatch.undo()
    sys.modules.pop("toy_runner", None)
    runners.rescan()


def test_builtin_runners_come_from_entry_points_with_their_help() -> None:
    assert {"local", "docker", "kubernetes"} <= set(runners.names())
    helps = runners.runner_help()
    assert all(helps[name] for name in ("local", "docker", "kubernetes"))


def test_unknown_runner_names_the_installed_ones_and_how_to_add_one(client: Launch) -> None:
    with pytest.raises(LaunchError) as err:
        client.create_queue("gpu", runner="slurm")
    message = str(err.value)
    assert "unknown runner 'slurm'" in message
    assert "local" in message and "kubernetes" in message and "docs/runners.md" in message
    assert "gpu" not in [q["name"] for q in client.queues()]


def test_an_installed_runner_package_runs_an_item_through_an_agent(
        toy: Path, client: Launch, tmp_path: Path) -> None:
    assert "toy" in runners.names()
    assert runners.runner_help()["toy"].startswith("a script job")
    client.create_queue("toys", runner="toy", config={"template": {"greeting": "hello"}})
    job = client.create_job(write_script(tmp_path, "train.py", SCRIPT))
    item = client.submit(job.ref, queue="toys", parameters={"lr": 0.25})
    done = run_to_end(client, item, queues=["toys"])
    data = done.info()
    assert data["state"] == "succeeded", done.logs()
    assert data["run"]["runner"] == "toy"
    logs = done.logs()
    assert logs.startswith("hello from the toy runner: train:v1\n")
    assert "toy job train:v1 toys 0.25\n" in logs
    [result] = [o for o in data["outputs"] if o["name"] == "result.txt"]
    assert Path(result["path"]).read_text() == "0.5"


def test_a_runner_refuses_a_queue_config_it_cannot_use(toy: Path, client: Launch) -> None:
    with pytest.raises(LaunchError, match="toy runner does not know template key.*colour"):
        client.create_queue("toys", runner="toy", config={"template": {"colour": "red"}})
    assert "toys" not in [q["name"] for q in client.queues()]


def test_a_cli_agent_runs_toy_items_in_its_own_process(toy: Path, client: Launch,
                                                       tmp_path: Path) -> None:
    client.create_queue("toys", runner="toy")
    job = client.create_job(write_script(tmp_path, "train.py", SCRIPT))
    item = client.submit(job.ref, queue="toys")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(toy), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-m", "launch_jupyter.cli", "agent", "--queue",
                           "toys", "--until-idle"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    done = client.item(item.id)
    assert done.state == "succeeded", done.logs()
    assert done.logs().startswith("hi from the toy runner")


def test_importing_the_registry_imports_no_runner_until_one_is_used() -> None:
    code = ("import json, sys; from launch_jupyter import runners; runners.names(); "
            "runners.check_queue_config('local', {}, {}); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith("
            "('launch_jupyter.runners.', 'docker', 'kubernetes')))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded = json.loads(proc.stdout)
    assert "launch_jupyter.runners.local" in loaded
    assert not [m for m in loaded if "docker" in m or "kubernetes" in m], loaded


def test_the_documented_example_is_the_tested_toy_runner() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "runners.md").read_text()
    assert f"```python\n{(TOY / 'toy_runner.py').read_text()}```" in doc
    assert f"```toml\n{(TOY / 'pyproject.toml').read_text()}```" in doc
