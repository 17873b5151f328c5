"""A real ``jupyter server`` with the launch extension on loopback and a token, on the test's
store, with an agent process beside it; and a client environment that knows only the
server's URL and token (no store variable, its own Jupyter data dir)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.magics.conftest import start_kernel  # noqa: F401 - the magics' kernel fixture
from tests.ui.lab import free_port


class JupyterServer:
    """A ``jupyter server`` subprocess that can be stopped and started again on its port."""

    def __init__(self, base: Path, store_url: str) -> None:
        self.root = base / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = base / "server.log"
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = dict(os.environ, LAUNCH_JUPYTER_STORE=store_url,
                        JUPYTER_CONFIG_DIR=str(base / "config"),
                        JUPYTER_DATA_DIR=str(base / "data"),
                        JUPYTER_RUNTIME_DIR=str(base / "runtime"))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser",
                 "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
                 f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                 '--ServerApp.jpserver_extensions={"launch_jupyter": True}'],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        request = urllib.request.Request(f"{self.url}launch/api/meta",
                                         headers={"Authorization": f"token {self.token}"})
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyter server exited {self.proc.returncode}:\n"
                                     f"{self.log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"jupyter server did not answer in {timeout}s:\n"
                                     f"{self.log.read_text()[-4000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


@pytest.fixture
def server(home: Path, store_url: str) -> Iterator[JupyterServer]:
    """The running server (on the ``home`` store), stopped by pid at the end."""
    running = JupyterServer(home / "server", store_url)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def server_agent(home: Path, store_url: str) -> Iterator[subprocess.Popen]:
    """An agent process on the server's store, serving every queue (two runs at once)."""
    with open(home / "agent.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "launch_jupyter.cli", "--store", store_url, "agent",
             "--max-jobs", "2"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def client_env(tmp_path: Path) -> dict[str, str]:
    """The laptop's environment: no store variable, a Jupyter data dir of its own (so not
    even the default SQLite store is the server's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAUNCH_JUPYTER_")}
    data = tmp_path / "laptop-data"
    data.mkdir()
    env["JUPYTER_DATA_DIR"] = str(data)
    return env
