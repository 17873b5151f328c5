"""The lock: the closure of installed distributions a job's imports need (jobs/lock.py)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from launch_jupyter.jobs import capture
from launch_jupyter.jobs.lock import job_lock, lock_for, lock_hash, requirements_txt


def _dist(site: Path, name: str, version: str, requires: list[str] = ()) -> None:
    """A real installed distribution (a .dist-info folder) on a sys.path entry."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    return folder


def test_capture_locks_the_dependencies_of_what_the_notebook_imports(make_notebook):
    nb = make_notebook(["from sklearn.linear_model import LogisticRegression"])
    job = capture(nb)
    sklearn = importlib.metadata.version("scikit-learn")
    assert job.requirements == [f"scikit-learn=={sklearn}"]
    lock = job.spec()["lock"]
    assert lock["direct"] == [f"scikit-learn=={sklearn}"]
    for dist in ("numpy", "scipy", "joblib", "threadpoolctl"):
        assert f"{dist}=={importlib.metadata.version(dist)}" in lock["packages"]
    assert lock["unlocked"] == []
    assert lock["python"] == job.python
    assert lock["hash"] == lock_hash(lock)


def test_markers_are_evaluated_and_extras_followed(site: Path):
    _dist(site, "alpha-pkg", "1.0", ['beta-pkg>=2', 'gamma-pkg; python_version < "3"',
                                      'delta-pkg==0.5; extra == "fast"',
                                      'linuxonly-pkg; sys_platform == "nonexistent-os"'])
    _dist(site, "beta-pkg", "2.1", ["epsilon-pkg"])
    _dist(site, "gamma-pkg", "1.0")
    _dist(site, "delta-pkg", "0.5")
    _dist(site, "epsilon-pkg", "3.0")
    plain = lock_for(["alpha-pkg==1.0"])
    assert plain["packages"] == ["alpha-pkg==1.0", "beta-pkg==2.1", "epsilon-pkg==3.0"]
    assert plain["direct"] == ["alpha-pkg==1.0"]
    fast = lock_for(["alpha-pkg[fast]==1.0"])
    assert "delta-pkg==0.5" in fast["packages"]
    assert "gamma-pkg==1.0" not in fast["packages"]
    assert fast["hash"] != plain["hash"]


def test_a_pip_line_for_another_version_is_left_to_the_builder(make_notebook):
    installed = importlib.metadata.version("pyyaml")
    wanted = "6.0.1" if installed != "6.0.1" else "6.0.2"
    nb = make_notebook([f"%pip install pyyaml=={wanted}\nimport yaml"])
    lock = capture(nb).spec()["lock"]
    assert f"pyyaml=={wanted}" in lock["packages"]
    assert f"PyYAML=={installed}" not in lock["packages"]
    assert lock["unlocked"] == [f"pyyaml=={wanted}"]


def test_a_missing_dependency_stays_unpinned(site: Path):
    _dist(site, "needy-pkg", "1.0", ["absent-pkg-qq>=1"])
    lock = lock_for(["needy-pkg"])
    assert lock["packages"] == ["absent-pkg-qq>=1", "needy-pkg==1.0"]
    assert lock["unlocked"] == ["absent-pkg-qq>=1"]


def test_same_environment_same_lock_same_version(make_notebook):
    nb = make_notebook(["import numpy"])
    assert capture(nb).digest == capture(nb).digest


def test_a_changed_closure_is_a_new_version(make_notebook, site: Path):
    _dist(site, "root-pkg", "1.0", ["leaf-pkg"])
    leaf = site / "leaf_pkg-1.0.dist-info"
    _dist(site, "leaf-pkg", "1.0")
    first = lock_for(["root-pkg"])
    (leaf / "METADATA").write_text("Metadata-Version: 2.1\nName: leaf-pkg\nVersion: 1.1\n")
    leaf.rename(site / "leaf_pkg-1.1.dist-info")
    importlib.invalidate_caches()
    second = lock_for(["root-pkg"])
    assert "leaf-pkg==1.1" in second["packages"]
    assert first["hash"] != second["hash"]


def test_requirements_txt_and_old_jobs():
    spec = {"python": "3.11.4", "requirements": ["numpy==2.0.0"]}
    lock = job_lock(spec)
    assert lock["packages"] == ["numpy==2.0.0"] and lock["python"] == "3.11.4"
    text = requirements_txt(lock)
    assert text.splitlines()[1:] == ["numpy==2.0.0"]
    assert text.startswith("# launch-jupyter lock")
