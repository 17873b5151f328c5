"""``jupyter launch job export REF DIR``: a job as plain files, to re-run without the store.

``DIR`` gets the job's files as they are laid out in the job (the notebook at the top),
``requirements.txt`` (its lock, ``jobs/lock.py``), ``parameters.json`` (the defaults, or an
item's effective parameters), ``run_job.py`` (``runners/shipped/export_run.py``), and
``.launch-jupyter/`` with the job's spec (``job.json``: lock and git facts included) and the
stand-in ``launch_jupyter`` module containers get (``lib/``).
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
REQUIREMENTS = "requirements.txt"
PARAMETERS = "parameters.json"
META = ".launch-jupyter"


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
    ours = {REQUIREMENTS, PARAMETERS, RUN_PROGRAM}
    clash = sorted(rel for rel, _ in files if rel in ours or rel.split("/")[0] == META)
    if clash:
        raise LaunchError(f"cannot export {job.ref}: its file(s) {', '.join(clash)} would be "
                          f"overwritten by the export's own {', '.join(sorted(ours))}")
    written: list[str] = []
    for rel, content in files:
        target = (root / rel).resolve()
        if root.resolve() not in target.parents:
            raise LaunchError(f"job file path {rel!r} escapes the export folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(rel)
    lock = job_lock(job.spec)
    values = dict(job.spec.get("parameters") or {}) if parameters is None else parameters
    spec = {**job.spec, "ref": job.ref, "lock": lock}
    meta = root / META
    (meta / "lib").mkdir(parents=True)
    (root / REQUIREMENTS).write_text(requirements_txt(lock))
    (root / PARAMETERS).write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")
    (meta / "job.json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
    for rel, content in support_files():
        if rel.startswith("launch_jupyter/") or rel == "launch_notebook.py":  # exit_status
            (meta / "lib" / rel).parent.mkdir(parents=True, exist_ok=True)
            (meta / "lib" / rel).write_bytes(content)
    program = importlib.resources.files("launch_jupyter.runners.shipped") / "export_run.py"
    (root / RUN_PROGRAM).write_bytes(program.read_bytes())
    written += [REQUIREMENTS, PARAMETERS, RUN_PROGRAM, f"{META}/job.json"]
    return {"dir": str(root), "files": written, "requirements": list(lock["packages"]),
            "parameters": values, "command": rerun_command(str(root))}
