"""The queue panel in real JupyterLab, rendered by Chromium: its table shows the items, and the
screenshot a user would see is written to a temporary folder, or to
$LAUNCH_JUPYTER_SCREENSHOTS (``LAUNCH_JUPYTER_SCREENSHOTS=docs`` refreshes docs/panel.png)."""

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
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from tests.conftest import wait_for, write_notebook, write_script

CHROMIUM = "/usr/bin/chromium"
# Screenshots go to a temporary folder; LAUNCH_JUPYTER_SCREENSHOTS=docs refreshes docs/.
SHOTS = os.environ.get("LAUNCH_JUPYTER_SCREENSHOTS")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

TRAIN = """\
import time
import launch_jupyter
p = launch_jupyter.parameters(
    lr=0.01,  # launch: minimum=0.0001, maximum=1
    layers=2,  # launch: minimum=1, maximum=8
    seconds=0.2,
)
print(f"training lr={p.lr} layers={p.layers}", flush=True)
time.sleep(p.seconds)
if p.lr > 0.5:
    raise SystemExit("diverged: loss is nan")
print("done", flush=True)
"""


def _chromium_or_skip() -> None:
    if os.path.exists(CHROMIUM):
        return
    reason = f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}: the panel screenshot test cannot run")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(home: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real ``jupyter lab`` on loopback with its own config/data/runtime dirs."""
    _chromium_or_skip()
    root, dirs = tmp_path / "root", {}
    root.mkdir()
    for name in ("config", "data", "runtime", "settings", "workspaces"):
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
    notification = dirs["settings"] / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(dirs["config"]),
               JUPYTER_DATA_DIR=str(dirs["data"]), JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
               JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
               JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]))
    log = open(tmp_path / "lab.log", "wb")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                return True
        except OSError:
            return proc.poll() is not None
    try:
        wait_for(up, 90, 0.3, what="jupyter lab to answer")
        assert proc.poll() is None, (tmp_path / "lab.log").read_text()
        yield f"{url}/lab/tree/panel.ipynb?token={token}", root
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def test_queue_panel_in_jupyterlab_shows_the_items(
        lab: tuple[str, Path], client: Launch, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, root = lab
    write_script(tmp_path, "train.py", TRAIN)
    job = client.create_job(tmp_path / "train.py")
    # A few finished items, a failed one, a sweep, one running and one waiting.
    client.submit(job, overrides=["lr=0.05"], priority="high")
    client.submit(job, overrides=["lr=0.9"])
    sweep = client.sweep(job, grid=["lr=0.001,0.01", "layers=2,4"])
    agent = client.agent(max_jobs=2, until_idle=True)
    agent.run()
    running = client.submit(job, overrides=["seconds=300", "layers=6"])
    queued = client.submit(job, overrides=["lr=0.2"], priority="low")
    busy = client.agent(max_jobs=1).start()
    try:
        wait_for(lambda: running.state == "running", 30, what="an item running")
        write_notebook(root, "panel.ipynb", ["%load_ext launch_jupyter", "%launch panel"])
        ids = [i["id"] for i in client.items()]
        assert len(ids) == 8 and queued.state == "queued"
        with sync_playwright() as pw:
            # A fresh profile (a new --user-data-dir, as playwright wants it).
            browser = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium"), executable_path=CHROMIUM, args=FLAGS,
                headless=True, viewport={"width": 1280, "height": 1000})
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            page.wait_for_function("window.jupyterapp && document.querySelector("
                                   "'.jp-Notebook .jp-Cell')", timeout=60_000)
            try:
                page.wait_for_function(
                    "window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel"
                    "?.status === 'idle'", timeout=60_000)
                page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_selector("table.lj-items tr.lj-row", timeout=60_000)
            except Exception:
                page.screenshot(path=str(tmp_path / "failed.png"))
                raise AssertionError(f"the panel did not render; see {tmp_path}/failed.png "
                                     f"and {tmp_path}/lab.log") from None
            wait_for(lambda: len(page.query_selector_all("table.lj-items tr.lj-row")) == 8, 30,
                     what="all 8 rows in the panel")
            rows = {r.get_attribute("data-item"): r.get_attribute("data-state")
                    for r in page.query_selector_all("table.lj-items tr.lj-row")}
            assert set(rows) == set(ids)
            assert rows[running.id] == "running" and rows[queued.id] == "queued"
            assert sorted(rows.values()).count("succeeded") == 5
            assert "failed" in rows.values()
            assert page.query_selector(f"tr.lj-sweep[data-sweep='{sweep.id}']") is not None
            # A click on a table row shows that item below the table (the panel's row-click
            # box carries it to the kernel). Not the newest: that one is shown already.
            assert page.query_selector(f".lj-item[data-item='{running.id}']") is None
            page.locator(f"table.lj-items tr.lj-row[data-item='{running.id}']").click()
            page.wait_for_selector(f".lj-item[data-item='{running.id}']", timeout=30_000)
            # Pick the failed item in the panel, as a user would, to show its error and log.
            failed = next(i for i, state in rows.items() if state == "failed")
            # The panel's rows list is an ipywidgets Select whose lines start "<id>  <state>";
            # find it by its options (the refresh thread may still be filling them in) and
            # click the failed item's line.
            find = ("(id) => { const sels = [...document.querySelectorAll('select')];"
                    " return sels.findIndex(s => [...s.options].some("
                    " o => o.textContent.startsWith(id))); }")
            page.wait_for_function(f"({find})({failed!r}) >= 0", timeout=60_000)
            index = page.evaluate(find, failed)
            line = page.locator("select").nth(index).locator("option").filter(
                has_text=f"{failed}  failed")
            page.locator("select").nth(index).select_option(label=line.inner_text().strip())
            page.wait_for_selector(f".lj-item[data-item='{failed}']", timeout=30_000)
            page.wait_for_selector("pre.lj-log", timeout=30_000)
            page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
            time.sleep(1.5)  # one more refresh so durations tick and layout settles
            shot = Path(SHOTS) / "panel.png" if SHOTS else tmp_path / "panel.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=False)
            browser.close()
        assert shot.stat().st_size > 10_000
    finally:
        client.cancel(running.id)
        busy.stop()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)
