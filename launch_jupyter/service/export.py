"""``jupyter launch job export REF DIR``: a job as plain files, to re-run without the store.

``DIR/job/`` holds the job's files, ``requirements.txt`` its lock (``jobs/lock.py``),
``parameters.json`` its parameters (the defaults, or an item's effective ones), ``job.json``
its spec (lock and git facts included), ``lib/`` the stand-in ``launch_jupyter`` module
containers get, and ``run_job.py`` the program that runs it (``runners/shipped/export_run.py``).
"""

from __future__ import annotations

import importlib.resources
import json
import os
from pathlib import Path
from typing import Any

from ..errors import LaunchError
from ..jobs.lock import job_lock, requirements_txt
from ..runners.build import support_files

RUN_PROGRAM = "run_job.py"


def rerun_command(folder: str) -> str:
    """The shell commands that re-run an export in a fresh virtualenv."""
    return (f"cd {folder} && python -m venv .venv && .venv/bin/pip install -r requirements.txt"
            f" && .venv/bin/python {RUN_PROGRAM}")


def write_export(job: Any, files: list[tuple[str, bytes]], dest: str | os.PathLike[str],
                 parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``job`` (a JobRecord) and ``files`` under ``dest`` (new or empty); returns
    ``{"dir", "files", "requirements", "parameters", "command"}``."""
    root = Path(dest).expanduser().absolute()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise LaunchError(f"cannot export to {root}: it exists and is not an empty folder; "
                          "give a new folder")
    work = root / "job"
    written: list[str] = []
    for rel, content in files:
        target = (work / rel).resolve()
        if work.resolve() not in target.parents:
            raise LaunchError(f"job file path {rel!r} escapes the export folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(f"job/{rel}")
    lock = job_lock(job.spec)
    values = dict(job.spec.get("parameters") or {}) if parameters is None else parameters
    spec = {**job.spec, "ref": job.ref, "lock": lock}
    (root / "requirements.txt").write_text(requirements_txt(lock))
    (root / "parameters.json").write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")
    (root / "job.json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
    for rel, content in support_files():
        if rel.startswith("launch_jupyter/"):
            (root / "lib" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "lib" / rel).write_bytes(content)
    program = importlib.resources.files("launch_jupyter.runners.shipped") / "export_run.py"
    (root / RUN_PROGRAM).write_bytes(program.read_bytes())
    written += ["requirements.txt", "parameters.json", "job.json", RUN_PROGRAM]
    return {"dir": str(root), "files": written, "requirements": list(lock["packages"]),
            "parameters": values, "command": rerun_command(str(root))}
