"""The local runner: each attempt runs under a supervisor process on this machine.

The supervisor (``launch_jupyter.runners.supervisor``) lives in its own session, so it
outlives the agent and a kernel restart; it owns the job's process group, streams output into
the store, renews the lease and records the outcome. See DESIGN.md, "Who holds the lease".
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import LaunchError
from .base import RunRequest


def materialize(files: list[tuple[str, bytes]], dest: Path) -> None:
    """Write a job's files under ``dest`` (refusing paths that would escape it)."""
    root = dest.resolve()
    for rel, content in files:
        target = (root / rel).resolve()
        if root not in target.parents:
            raise LaunchError(f"job file path {rel!r} escapes the run directory; recapture the job")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def job_command(request: RunRequest, work: Path, run_dir: Path) -> list[str]:
    """The argument list that runs the job (never a shell string)."""
    spec = request.job.spec
    entry = spec["entrypoint"]
    if spec.get("mode") == "notebook":
        return [
            sys.executable, "-m", "launch_jupyter.runners.notebook",
            "--input", str(work / entry),
            "--output", str(run_dir / "executed" / Path(entry).name),
            "--kernel", spec.get("kernel") or "python3",
            "--parameters", json.dumps(request.item["parameters"]),
            "--error-file", str(run_dir / "error.json"),
        ]
    return [sys.executable, "-u", str(work / entry)]


def job_environment(request: RunRequest, run_dir: Path) -> dict[str, str]:
    """The agent's environment + the job's captured variables + the LAUNCH_* variables."""
    env = dict(os.environ)
    env.update(request.job.spec.get("env") or {})
    env.update(request.extra_env)
    env.update({
        "LAUNCH_ITEM_ID": request.item["id"],
        "LAUNCH_QUEUE": request.item["queue"],
        "LAUNCH_JOB": request.job.ref,
        "LAUNCH_PARAMETERS": json.dumps(request.item["parameters"]),
        "LAUNCH_OUTPUT_DIR": str(run_dir / "output"),
        "LAUNCH_ATTEMPT": str(request.attempt),
        "PYTHONUNBUFFERED": "1",
    })
    return env


class LocalRun:
    """A supervisor process started by this agent."""

    self_renewing = True

    def __init__(self, proc: subprocess.Popen, run_dir: Path) -> None:
        self.proc = proc
        self.run_dir = run_dir

    def done(self) -> bool:
        return self.proc.poll() is not None

    def cancel(self, grace: float) -> None:
        # The supervisor sees the cancel flag in the store; nothing to signal from here.
        pass

    def info(self) -> dict[str, Any]:
        return {"runner": "local", "host": socket.gethostname(),
                "supervisor_pid": self.proc.pid, "run_dir": str(self.run_dir)}


class LocalRunner:
    """Runs each attempt as a process on this machine, in the current Python environment."""

    name = "local"

    def start(self, request: RunRequest) -> LocalRun:
        run_dir = request.run_dir
        if run_dir.exists():
            shutil.rmtree(run_dir)
        work = run_dir / "work"
        (run_dir / "output").mkdir(parents=True)
        materialize(request.files, work)
        spec = {
            "store": request.store_url,
            "item_id": request.item["id"],
            "attempt": request.attempt,
            "token": request.token,
            "ttl": request.lease_ttl,
            "grace": request.cancel_grace,
            "timeout": request.item.get("timeout"),
            "max_log_bytes": request.max_log_bytes,
            "mode": request.job.spec.get("mode"),
            "requirements": request.job.spec.get("requirements", []),
            "command": job_command(request, work, run_dir),
            "cwd": str(work),
            "env": job_environment(request, run_dir),
            "run_dir": str(run_dir),
            "agent_wake": request.agent_wake,
        }
        spec_path = run_dir / "supervisor.json"
        # The spec holds the environment: keep it private to this user.
        fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(spec, fh)
        log = open(run_dir / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "launch_jupyter.runners.supervisor", str(spec_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )
        finally:
            log.close()
        return LocalRun(proc, run_dir)

