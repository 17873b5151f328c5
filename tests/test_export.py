"""``jupyter launch job export REF DIR``: a job re-runs from plain files, without the store
(service/export.py, runners/shipped/export_run.py); docker images install the lock."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.runners.build import plan_image
from tests.conftest import CLI, run_to_end, write_notebook, write_script

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart.ipynb"


@pytest.mark.slow
def test_exported_quickstart_reruns_in_a_fresh_venv_with_plain_pip(client: Launch, cli: CLI,
                                                                   tmp_path: Path):
    job = client.create_job(QUICKSTART, name="quickstart")
    folder = tmp_path / "fresh" / "quickstart"
    report = json.loads(cli("job", "export", job.ref, str(folder), "--json", check=True).stdout)
    assert report["dir"] == str(folder)
    requirements = (folder / "requirements.txt").read_text().splitlines()
    for dist in ("scikit-learn", "numpy", "scipy", "joblib", "threadpoolctl"):
        assert f"{dist}=={importlib.metadata.version(dist)}" in requirements
    assert json.loads((folder / "parameters.json").read_text()) == job.spec["parameters"]
    assert (folder / "quickstart.ipynb").is_file()
    assert json.loads((folder / ".launch-jupyter" / "job.json").read_text())["ref"] == job.ref
    assert "python -m venv .venv" in report["command"]
    (folder / "parameters.json").write_text(json.dumps({**job.spec["parameters"], "C": 0.5}))
    # What the export says to do, step by step: nothing from this environment leaks in.
    subprocess.run([sys.executable, "-m", "venv", ".venv"], cwd=folder, check=True)
    pip = subprocess.run([".venv/bin/pip", "install", "-q", "-r", "requirements.txt"],
                         cwd=folder, capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    ran = subprocess.run([".venv/bin/python", "run_job.py"], cwd=folder, capture_output=True,
                         text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "C=0.5 max_iter=200: accuracy" in ran.stdout
    metrics = json.loads((folder / "output" / "metrics.json").read_text())
    assert metrics["parameters"]["C"] == 0.5 and metrics["accuracy"] > 0.9


def test_export_carries_an_items_parameters_and_the_runtime_standin(client: Launch,
                                                                    cli: CLI,
                                                                    tmp_path: Path):
    script = write_script(tmp_path, "train.py", """
        import os, launch_jupyter
        p = launch_jupyter.parameters(lr=0.1, epochs=2)
        print("lr", p.lr, "epochs", p.epochs)
        open(os.path.join(os.environ["LAUNCH_OUTPUT_DIR"], "done.txt"), "w").write("ok")
    """)
    job = client.create_job(script)
    item = client.submit(job.ref, overrides=["lr=0.5"])
    assert run_to_end(client, item).info()["state"] == "succeeded"
    folder = tmp_path / "out"
    shown = cli("job", "export", job.ref, str(folder), "--item", item.id, check=True).stdout
    assert f"exported {job.ref} to {folder}" in shown and "run_job.py" in shown
    assert json.loads((folder / "parameters.json").read_text()) == {"lr": 0.5, "epochs": 2}
    # Any Python runs it: launch_jupyter comes from the export's lib/ stand-in.
    ran = subprocess.run([sys.executable, "-I", "run_job.py"], cwd=folder,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "lr 0.5 epochs 2" in ran.stdout
    assert (folder / "output" / "done.txt").read_text() == "ok"


def test_export_refuses_to_overwrite_a_job_file_with_its_own(client: Launch, cli: CLI,
                                                              tmp_path: Path):
    (tmp_path / "requirements.txt").write_text("numpy\n")
    job = client.create_job(write_script(tmp_path, "a.py", "print(1)\n"),
                            include=["requirements.txt"])
    refused = cli("job", "export", job.ref, str(tmp_path / "x"))
    assert refused.returncode == 2
    assert "requirements.txt would be overwritten" in refused.stderr


def test_export_refuses_a_folder_that_holds_files(client: Launch, cli: CLI, tmp_path: Path):
    job = client.create_job(write_script(tmp_path, "a.py", "print(1)\n"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    refused = cli("job", "export", job.ref, str(tmp_path / "busy"))
    assert refused.returncode == 2
    assert "exists and is not an empty folder" in refused.stderr
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    missing = cli("job", "export", "nosuch", str(tmp_path / "x"))
    assert missing.returncode == 2 and "nosuch" in missing.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("call", "code"), [("sys.exit(0)", 0), ("sys.exit(3)", 3)])
def test_exported_notebook_follows_the_sys_exit_convention(client: Launch, cli: CLI,
                                                          tmp_path: Path, call: str, code: int):
    nb = write_notebook(tmp_path, "stop.ipynb", [f"import sys\nprint('before')\n{call}",
                                                 "open('after.txt', 'w').write('ran')"])
    folder = tmp_path / "out"
    cli("job", "export", client.create_job(nb).ref, str(folder), check=True)
    ran = subprocess.run([sys.executable, "-I", "run_job.py"], cwd=folder,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == code, ran.stderr
    assert f"{call}: the run ends here, exit code {code}" in ran.stderr
    assert not (folder / "after.txt").exists()
    assert (folder / "output" / "stop.ipynb").is_file()


def test_exported_notebook_without_nbclient_runs_its_cell_magics_as_ipython_would(
        client: Launch, cli: CLI, tmp_path: Path):
    nb = write_notebook(tmp_path, "magics.ipynb", [
        "%%writefile wmod.py\nX = 40", "%%writefile -a wmod.py\nY = 2",
        "%%bash\necho from bash", "%%time\nimport wmod\nprint('sum', wmod.X + wmod.Y)",
        "if 'google.colab' in str(globals()):\n    !pip install x\nprint('block kept')"])
    folder = tmp_path / "out"
    cli("job", "export", client.create_job(nb).ref, str(folder), check=True)
    # -S: no site-packages, so no nbclient: the code cells run in order in one namespace.
    ran = subprocess.run([sys.executable, "-I", "-S", "run_job.py"], cwd=folder,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "sum 42" in ran.stdout and "block kept" in ran.stdout
    assert "cell 3: IPython cell left out: %%bash" in ran.stderr
    assert (folder / "wmod.py").read_text() == "X = 40\nY = 2\n"


def test_export_refuses_the_parameters_of_another_jobs_item(client: Launch, cli: CLI,
                                                            tmp_path: Path):
    first = client.create_job(write_script(tmp_path, "a.py", "print(1)\n"))
    other = client.create_job(write_script(tmp_path, "b.py", "import launch_jupyter\n"
                                             "p = launch_jupyter.parameters(lr=0.1)\n"))
    item = client.submit(other.ref, overrides=["lr=0.5"])
    refused = cli("job", "export", first.ref, str(tmp_path / "x"), "--item", item.id)
    assert refused.returncode == 2, refused.stderr
    assert f"item {item.id} ran job {other.ref}, not {first.ref}" in refused.stderr
    assert not (tmp_path / "x").exists()


def test_docker_images_install_the_lock(client: Launch):
    job = client.create_job(QUICKSTART, name="quickstart")
    files = client.store.job_files(job.id)
    plan = plan_image(job, files, {})
    context = dict(plan.context)
    installed = context["requirements.txt"].decode().splitlines()
    assert installed == job.spec["lock"]["packages"]
    assert f"scipy=={importlib.metadata.version('scipy')}" in installed
    assert "pip install" in plan.dockerfile
