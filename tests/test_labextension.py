"""The JupyterLab extension: its jest suite (model, polling, log tail, forms) passes, and the
built extension is one JupyterLab lists as enabled and OK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.lab import (
    LABEXTENSION_OUT,
    LABEXTENSION_SRC,
    ensure_labextension_built,
    ensure_node_modules,
)

pytestmark = pytest.mark.slow


def test_jest_suite_passes() -> None:
    tool = ensure_node_modules()
    proc = subprocess.run([tool, "test", "--ci"], cwd=LABEXTENSION_SRC, capture_output=True,
                          text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"jlpm test exited {proc.returncode}:\n{output[-8000:]}"
    assert "failed" not in output.split("Tests:")[-1].splitlines()[0], output[-2000:]


def test_built_extension_is_listed_enabled_and_ok(tmp_path: Path) -> None:
    built = ensure_labextension_built()
    meta = json.loads((built / "package.json").read_text())
    assert meta["name"] == "launch-jupyter"
    assert meta["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    data = tmp_path / "data"
    (data / "labextensions").mkdir(parents=True)
    (data / "labextensions" / "launch-jupyter").symlink_to(LABEXTENSION_OUT)
    env = dict(os.environ, JUPYTER_DATA_DIR=str(data), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                          capture_output=True, text=True, env=env, timeout=120)
    listing = proc.stdout + proc.stderr
    line = next((ln for ln in listing.splitlines() if "launch-jupyter" in ln), "")
    assert "enabled" in line and "OK" in line, listing
