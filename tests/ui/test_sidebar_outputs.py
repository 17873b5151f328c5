"""The sidebar opens an item's output file in Lab (real JupyterLab, real Chromium): the run
folder lies outside the server's root, so the sidebar's POST copies the file under it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from launch_jupyter.api import Launch
from tests.conftest import wait_for, write_script
from tests.ui.lab import open_browser, require_chromium, start_lab
from tests.ui.test_sidebar import SIDEBAR, item_row

pytestmark = pytest.mark.slow

WRITER = """\
import os
from pathlib import Path

Path(os.environ["LAUNCH_OUTPUT_DIR"], "summary.txt").write_text("best loss 0.042 at epoch 7\\n")
print("wrote summary", flush=True)
"""


def test_sidebar_opens_an_output_file_in_a_lab_tab(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    require_chromium()
    root = tmp_path / "root"
    root.mkdir()
    env = {
        "LAUNCH_JUPYTER_STORE": f"sqlite:///{tmp_path}/launch.db",
        "LAUNCH_JUPYTER_DATA_DIR": str(tmp_path / "runs"),  # outside the root dir
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("LAUNCH_ITEM_ID", raising=False)
        launch = Launch()
        if "local" not in {q["name"] for q in launch.queues()}:
            launch.create_queue("local")
        (tmp_path / "jobs").mkdir()
        job = launch.create_job(write_script(tmp_path / "jobs", "writer.py", WRITER))
        try:
            item = launch.submit(job.ref, queue="local")
            agent = launch.agent(["local"]).start()
            try:
                wait_for(lambda: item.done, timeout=120, what="the writer item to finish")
            finally:
                agent.stop()
            assert item.state == "succeeded", item.info()
            with start_lab(tmp_path, env) as lab, open_browser(tmp_path / "profile") as page:
                open_output(page, lab.lab_url(), item.id)
                editor = page.locator(".jp-FileEditor:visible")
                expect(editor).to_have_count(1, timeout=30_000)
                expect(editor).to_contain_text("best loss 0.042 at epoch 7", timeout=30_000)
                tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
                expect(tab).to_have_text("summary.txt")
            copy = root / "launch-runs" / item.id / "output" / "summary.txt"
            assert copy.read_text() == "best loss 0.042 at epoch 7\n"
        finally:
            launch.close()


def open_output(page: Any, url: str, item_id: str) -> None:
    """Show the sidebar, select the item and click its output file."""
    from playwright.sync_api import expect

    page.goto(url)
    tab = page.locator('.jp-SideBar.jp-mod-left li[data-id="launch-jupyter-sidebar"]')
    expect(tab).to_be_visible(timeout=60_000)
    tab.click()
    item_row(page, item_id).click()
    outputs = page.locator(f"{SIDEBAR} .jp-LaunchSidebar-outputs")
    expect(outputs).to_contain_text("summary.txt", timeout=30_000)
    outputs.get_by_text("summary.txt").click()
