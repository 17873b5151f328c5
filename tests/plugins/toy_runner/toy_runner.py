"""A toy launch-jupyter runner: each attempt runs a script job's entrypoint with this
machine's Python in a subprocess, watched by a thread of the agent.

It uses only the documented protocol and helpers of ``launch_jupyter.runners``
(docs/runners.md). Queue config: ``template: {greeting: TEXT}``, written to the log first.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from typing import Any

from launch_jupyter.errors import LaunchError
from launch_jupyter.runners import (
    RunReport,
    RunRequest,
    collect_outputs,
    job_environment,
    outcome,
)


class ToyRun:
    """One attempt: a subprocess, and a thread that streams its output and records the end."""

    self_renewing = False  # the agent renews the lease and tells us if it is lost

    def __init__(self, request: RunRequest, greeting: str) -> None:
        self.request = request
        self.greeting = greeting
        self.report = RunReport(request)
        self.stop_reason: str | None = None  # "cancel" once asked
        self.lost = threading.Event()  # the lease is gone: stop, record nothing
        self.started = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._main, daemon=True,
                                       name=f"toy-{request.item['id']}")
        self.thread.start()

    # -- what the agent calls -------------------------------------------------------------

    def done(self) -> bool:
        return not self.thread.is_alive()

    def cancel(self, grace: float) -> None:
        self.stop_reason = "cancel"
        self._stop()

    def info(self) -> dict[str, Any]:
        return {"runner": "toy", "host": socket.gethostname(),
                "run_dir": str(self.request.run_dir)}

    def lease_renewed(self, until: float) -> None:
        if not until:  # lost: another agent may run the item now, so ours must stop
            self.lost.set()
            self._stop()

    def detach(self) -> None:
        """The agent stops: a toy run does not outlive it (its lease lapses, the item is
        requeued), so it stops too."""
        self.lost.set()
        self._stop()

    # -- the thread -----------------------------------------------------------------------

    def _stop(self) -> None:
        self.started.wait(10)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def _main(self) -> None:
        request = self.request
        work = request.run_dir / "work"
        output = request.run_dir / "output"
        try:
            output.mkdir(parents=True, exist_ok=True)
            for path, content in request.files:
                (work / path).parent.mkdir(parents=True, exist_ok=True)
                (work / path).write_bytes(content)
            env = {**os.environ, **job_environment(request, str(output))}
            self.report.write(f"{self.greeting} from the toy runner: {request.job.ref}\n")
            self.proc = subprocess.Popen(
                [sys.executable, "-u", request.job.spec["entrypoint"]], cwd=work, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except (OSError, LaunchError) as err:
            self.started.set()
            self._record("failed", None, {"message": f"toy runner: {err}", "stage": "start",
                                          "cell": None})
            return
        self.started.set()
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not self.lost.is_set():
                self.report.write(line)
        code = self.proc.wait()
        state, error = outcome(self.stop_reason, code, None, lambda: {
            "message": f"the script exited with code {code}", "stage": "run", "cell": None})
        self._record(state, code, error)

    def _record(self, state: str, code: int | None, error: dict | None) -> None:
        try:
            if not self.lost.is_set():
                self.report.finish(state, exit_code=code, error=error,
                                   outputs=collect_outputs(self.request.run_dir))
        finally:
            self.report.close()


class ToyRunner:
    """Runs script jobs in a subprocess of the agent."""

    name = "toy"
    help = "a script job in a subprocess of the agent (the example of docs/runners.md)"

    def __init__(self) -> None:
        self.runs: list[ToyRun] = []

    @classmethod
    def validate_queue_config(cls, config: dict[str, Any], values: dict[str, Any]) -> None:
        unknown = set(config.get("template") or {}) - {"greeting"}
        if unknown:
            raise LaunchError(f"the toy runner does not know template key(s) "
                              f"{', '.join(sorted(unknown))}; it knows: greeting")

    def check(self, queue_config: dict) -> None:
        """Any machine with Python can run toy queues."""

    def prepare(self) -> None:
        """Nothing to warm."""

    def start(self, request: RunRequest) -> ToyRun:
        if request.job.spec.get("mode") == "notebook":
            raise LaunchError(f"the toy runner runs scripts only; {request.job.ref} is a "
                              "notebook: submit it to a local queue")
        greeting = str((request.queue_config.get("template") or {}).get("greeting") or "hi")
        run = ToyRun(request, greeting)
        self.runs = [r for r in self.runs if not r.done()] + [run]
        return run

    def close(self) -> None:
        for run in self.runs:
            run.detach()
        self.runs.clear()
