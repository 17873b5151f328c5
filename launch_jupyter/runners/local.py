"""The local runner: each attempt runs under a supervisor process on this machine.

The supervisor (``launch_jupyter.runners.supervisor``) lives in its own session, so it
outlives the agent and a kernel restart; it owns the job's process group, streams output into
the store, renews the lease and records the outcome. See docs/architecture.md, "Who holds
the lease".
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
from .base import RunRequest, job_environment
from .envs import environment_of, isolate
from .gpus import gpus_per_item


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


def local_environment(request: RunRequest, run_dir: Path) -> dict[str, str]:
    """The agent's environment under the job's (``base.job_environment``)."""
    return {**os.environ, **job_environment(request, str(run_dir / "output"),
                                            upstream=request.upstream)}


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[-1][:1] != "Z"
    except OSError:
        return True


class LocalRun:
    """A supervisor process started for this agent."""

    self_renewing = True

    def __init__(self, pid: int, run_dir: Path, proc: subprocess.Popen | None = None) -> None:
        self.pid = pid
        self.proc = proc
        self.run_dir = run_dir

    def done(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is not None
        return not _alive(self.pid)

    def cancel(self, grace: float) -> None:
        # The supervisor sees the cancel flag in the store; nothing to signal from here.
        pass

    def info(self) -> dict[str, Any]:
        return {"runner": "local", "host": socket.gethostname(),
                "supervisor_pid": self.pid, "run_dir": str(self.run_dir)}


class ForkServer:
    """The warm parent that forks supervisors (see ``forkserver.py``)."""

    def __init__(self, kernel_pool_size: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "launch_jupyter.runners.forkserver"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
            start_new_session=True, close_fds=True,
            env={**os.environ, "LAUNCH_FORKSERVER_PARENT": str(os.getpid()),
                 "LAUNCH_FORKSERVER_KERNEL_POOL": str(kernel_pool_size)},
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            self.close()
            raise OSError("the supervisor fork server did not start")

    def spawn(self, spec_path: Path) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{spec_path}\n".encode())
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().decode().strip()
        if not answer.isdigit():
            raise OSError(f"the fork server could not start a supervisor: {answer or 'gone'}")
        return int(answer)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Close the server's pipes and wait for it: it drains its warm kernels first."""
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class LocalRunner:
    """Runs each attempt as a process on this machine, in the current Python environment."""

    name = "local"
    help = ("a process on the agent's machine, in the agent's Python environment (or, with "
            "environment: isolated, a virtualenv built from the job's lock)")

    def __init__(self, use_fork_server: bool = True) -> None:
        self.use_fork_server = use_fork_server and sys.platform.startswith("linux")
        self._server: ForkServer | None = None
        #: warm kernels per (kernelspec, environment) seen in the last hour, kept by the
        #: fork server (runners/kernelpool.py); the agent sets it from its config
        self.kernel_pool_size = 0

    @classmethod
    def validate_queue_config(cls, config: dict[str, Any], values: dict[str, Any]) -> None:
        """A local queue uses no template; its own options are checked here
        (``gpus_per_item``: runners/gpus.py)."""
        gpus_per_item(config)
        environment_of(config)  # current | isolated (runners/envs.py)

    def check(self, queue_config: dict) -> None:
        """A local queue can always run here."""

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def prepare(self) -> None:
        """Start the fork server now, so a lease granted next is not spent waiting for it."""
        if self.use_fork_server and (self._server is None or not self._server.alive()):
            try:
                self._server = ForkServer(self.kernel_pool_size)
            except OSError:
                self.use_fork_server = False

    def _spawn(self, spec_path: Path, run_dir: Path) -> LocalRun:
        if self.use_fork_server:
            try:
                self.prepare()
                assert self._server is not None
                return LocalRun(self._server.spawn(spec_path), run_dir)
            except (OSError, AssertionError):
                self.close()  # fall back to a plain process below
        log = open(run_dir / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "launch_jupyter.runners.supervisor", str(spec_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )
        finally:
            log.close()
        return LocalRun(proc.pid, run_dir, proc)

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
            "lease_until": request.lease_until,
            "grace": request.cancel_grace,
            "timeout": request.item.get("timeout"),
            "max_log_bytes": request.max_log_bytes,
            "mode": request.job.spec.get("mode"),
            "requirements": request.job.spec.get("requirements", []),
            "requirement_warnings": request.requirement_warnings,
            "command": job_command(request, work, run_dir),
            "cwd": str(work),
            "env": local_environment(request, run_dir),
            "run_dir": str(run_dir),
            "agent_wake": request.agent_wake,
        }
        if environment_of(request.queue_config) == "isolated":
            # The job's own virtualenv (runners/envs.py): the agent's versions do not matter.
            spec["command"], spec["env"], spec["build"], spec["env_path"] = isolate(
                request, spec["command"], spec["env"], run_dir)
            spec["requirement_warnings"] = []
        spec_path = run_dir / "supervisor.json"
        # The spec holds the environment: keep it private to this user.
        fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(spec, fh)
        return self._spawn(spec_path, run_dir)
