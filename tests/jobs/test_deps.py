from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from launch_jupyter.jobs import check_requirements, imported_modules, resolve_requirements
from launch_jupyter.jobs.deps import environment_stamp, pip_install_specifiers

ROOT = Path(__file__).resolve().parents[2]


def test_imported_modules_are_top_level_names():
    source = (
        "import os.path, numpy as np\n"
        "from nbformat.v4 import new_notebook\n"
        "from . import sibling\n"
        "def f():\n"
        "    import json\n"
        "try:\n"
        "    import ujson\n"
        "except ImportError:\n"
        "    pass\n"
    )
    assert imported_modules(source) == {"os", "numpy", "nbformat", "json", "ujson"}


def test_imported_modules_raises_on_non_python():
    with pytest.raises(SyntaxError):
        imported_modules('print "x"')


def test_resolve_requirements_pins_installed_versions():
    requirements, unresolved = resolve_requirements(
        ["numpy", "nbformat", "os", "__future__", "launch_jupyter", "no_such_module_qq"]
    )
    assert requirements == [
        f"nbformat=={importlib.metadata.version('nbformat')}",
        f"numpy=={importlib.metadata.version('numpy')}",
    ]
    assert unresolved == ["no_such_module_qq"]


def test_check_requirements_reports_mismatches():
    numpy = importlib.metadata.version("numpy")
    problems = check_requirements(
        [f"numpy=={numpy}", "nbformat==0.0.1", "not-a-real-dist-qq==1.0", "pytest>=1", "foo"]
    )
    assert problems == [
        f"nbformat==0.0.1 is pinned but {importlib.metadata.version('nbformat')} is installed",
        "not-a-real-dist-qq==1.0 is pinned but not installed",
    ]


@pytest.mark.parametrize(
    ("line", "specifiers"),
    [
        ("%pip install foo==1.0", ["foo==1.0"]),
        ("!pip install -q -U 'bar>=2' baz", ["bar>=2", "baz"]),
        ("%pip install -r requirements.txt qux", ["qux"]),
        ("!python -m pip install x", ["x"]),
        ("%pip list", None),
        ("%time f()", None),
    ],
)
def test_pip_install_lines(line, specifiers):
    parsed = pip_install_specifiers(line)
    assert (parsed[0] if parsed else None) == specifiers


def test_distribution_map_is_cached_on_disk(tmp_path):
    """A fresh process writes the cache under $XDG_CACHE_HOME; the next one reuses it."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    code = (
        "import json; from launch_jupyter.jobs import resolve_requirements;"
        "print(json.dumps(resolve_requirements(['numpy'])))"
    )
    run = {"env": env, "cwd": ROOT, "capture_output": True, "text": True, "check": True}
    first = subprocess.run([sys.executable, "-c", code], **run)
    caches = list((tmp_path / "launch-jupyter").glob("dists-*.json"))
    assert len(caches) == 1
    data = json.loads(caches[0].read_text())
    assert "numpy" in data["modules"]
    second = subprocess.run([sys.executable, "-c", code], **run)
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert list((tmp_path / "launch-jupyter").glob("dists-*.json")) == caches


def test_environment_stamp_changes_when_a_distribution_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The agent checks a job's pins once per stamp: an install must change it.
    site = tmp_path / "site"
    site.mkdir()
    os.utime(site, ns=(0, 0))
    monkeypatch.syspath_prepend(str(site))
    before = environment_stamp()
    assert environment_stamp() == before
    assert check_requirements(["launch-stamp-probe==1.0"]) != []
    info = site / "launch_stamp_probe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: launch-stamp-probe\n"
                                   "Version: 1.0\n")
    assert environment_stamp() != before
    assert check_requirements(["launch-stamp-probe==1.0"]) == []
