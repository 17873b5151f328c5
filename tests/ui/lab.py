"""Browser-test parts: the built lab extension, a real ``jupyter lab`` on loopback that loads it,
and a fresh headless Chromium driven by Playwright.

The extension is found by a link in the server's own ``JUPYTER_DATA_DIR/labextensions``, so an
editable install works without ``jupyter labextension develop`` touching the environment.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION_SRC = REPO / "labextension"
LABEXTENSION_OUT = REPO / "launch_jupyter" / "labextension"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def jlpm() -> str:
    """The path of ``jlpm`` (JupyterLab's pinned yarn), or skip/fail when node or it is absent."""
    path = shutil.which("jlpm")
    if path is None or shutil.which("node") is None:
        require_service("node and jlpm", "install Node.js 20 and jupyterlab (which provides jlpm)")
    return path  # type: ignore[return-value]


def _newest_source_mtime() -> float:
    files = [LABEXTENSION_SRC / "package.json", LABEXTENSION_SRC / "yarn.lock"]
    for folder in ("src", "style", "schema"):
        files.extend(p for p in (LABEXTENSION_SRC / folder).rglob("*") if p.is_file())
    return max(p.stat().st_mtime for p in files)


def ensure_node_modules() -> str:
    """``jlpm install --immutable`` when node_modules is missing; the jlpm path."""
    tool = jlpm()
    if not (LABEXTENSION_SRC / "node_modules" / ".yarn-state.yml").exists():
        _run([tool, "install", "--immutable"], "jlpm install --immutable")
    return tool


def ensure_labextension_built() -> Path:
    """The built extension folder, rebuilt first when missing or older than its sources."""
    built = LABEXTENSION_OUT / "package.json"
    if built.exists() and built.stat().st_mtime >= _newest_source_mtime():
        return LABEXTENSION_OUT
    tool = ensure_node_modules()
    _run([tool, "build"], "jlpm build")
    if not built.exists():
        raise AssertionError(f"jlpm build wrote no {built}")
    return LABEXTENSION_OUT


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, cwd=LABEXTENSION_SRC, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"{what} exited {proc.returncode} in {LABEXTENSION_SRC}:\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")


def require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        require_service("Chromium", f"{CHROMIUM} is missing; `apt-get install -y chromium`")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require_service("Playwright", "pip install playwright (the Python package)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running ``jupyter lab``: where it is, its token, its root dir and its log file."""

    url: str
    token: str
    root: Path
    log: Path
    pid: int

    def lab_url(self, path: str = "lab") -> str:
        """``path`` with the token, and ``reset`` so every page starts from a clean layout."""
        return f"{self.url}{path}?reset&token={self.token}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def _wait_ready(server: LabServer, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"{server.url}launch/api/queues",
                                     headers={"Authorization": f"token {server.token}"})
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited {proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"jupyter lab did not answer /launch/api/queues in {timeout}s:\n"
                                 f"{server.log_tail()}")
        time.sleep(0.2)


@contextmanager
def start_lab(base: Path, env: dict[str, str]) -> Iterator[LabServer]:
    """Start ``jupyter lab`` with every Jupyter dir under ``base``; stop it by pid afterwards.

    ``env`` adds to the environment (the store URL, the data dir); the launch server extension
    is enabled on the command line and the built lab extension is linked into the data dir.
    """
    ensure_labextension_built()
    root = base / "root"
    root.mkdir(parents=True, exist_ok=True)
    dirs = {name: base / name for name in ("config", "data", "runtime", "settings",
                                           "workspaces")}
    for folder in dirs.values():
        folder.mkdir(exist_ok=True)
    (dirs["data"] / "labextensions").mkdir(exist_ok=True)
    link = dirs["data"] / "labextensions" / "launch-jupyter"
    if not link.exists():
        link.symlink_to(LABEXTENSION_OUT, target_is_directory=True)
    # No news or update checks: they would reach for the network and pop notifications.
    notification = dirs["settings"] / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = free_port(), secrets.token_hex(16)
    full_env = dict(os.environ, **env, JUPYTER_CONFIG_DIR=str(dirs["config"]),
                    JUPYTER_DATA_DIR=str(dirs["data"]), JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
                    JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
                    JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]))
    log_path = base / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser",
             "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
             '--ServerApp.jpserver_extensions={"launch_jupyter": True}'],
            stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}/", token, root, log_path, proc.pid)
    try:
        _wait_ready(server, proc)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def open_browser(profile: Path) -> Iterator[object]:
    """A Playwright page in a fresh headless Chromium profile at ``profile``."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 800})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            context.close()
