"""Cell progress in real JupyterLab and Chromium: while a notebook item's third code cell waits,
the sidebar's row and detail and the %launch panel's card show "cell 4 of 6" over a bar, and
"Open executed notebook" opens the outputs so far. Screenshots of both go to
$LAUNCH_JUPYTER_SCREENSHOTS (docs/ when refreshing them) or a temporary folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from launch_jupyter.api import Launch
from tests.conftest import wait_for, write_notebook
from tests.test_progress import waiting_notebook
from tests.ui.lab import LabServer, open_browser, require_chromium, start_lab

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("LAUNCH_JUPYTER_SCREENSHOTS") or tempfile.mkdtemp(prefix="shots-"))
SIDEBAR = "#launch-jupyter-sidebar"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[LabServer, Launch, Any, Path]]:
    """A lab server and an agent on one store; a notebook item waiting in its cell 4 of 6."""
    require_chromium()
    root = tmp_path / "root"
    root.mkdir()
    env = {"LAUNCH_JUPYTER_STORE": f"sqlite:///{tmp_path}/launch.db",
           "LAUNCH_JUPYTER_DATA_DIR": str(root / "launch-runs")}
    go = tmp_path / "go"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("LAUNCH_ITEM_ID", raising=False)
        launch = Launch()
        jobs = tmp_path / "jobs"
        jobs.mkdir()
        job = launch.create_job(waiting_notebook(jobs))
        with start_lab(tmp_path, env) as lab:
            agent = launch.agent(["local"]).start()
            try:
                item = launch.submit(job.ref, parameters={"go": str(go)})
                wait_for(lambda: (item.info()["progress"] or {}).get("cell") == 4, 90,
                         what="the waiting cell to run")
                yield lab, launch, item, go
                go.touch()
                item.wait(60, progress=False)
            finally:
                go.touch()
                agent.stop()
                launch.close()


def run_all_cells(page: Any) -> None:
    """Run every cell (Shift+Enter from the first), again while the kernel was not ready to
    take them (a fresh kernel can drop the first requests); the panel cell's prompt shows [n]
    once it ran."""
    cells = page.locator(".jp-NotebookPanel:visible .jp-Cell")
    prompt = cells.nth(1).locator(".jp-InputPrompt")  # the %launch panel cell
    expect_ran = 'el => /\\[\\d+\\]/.test(el.textContent)'
    for _ in range(6):
        cells.first.locator(".jp-InputPrompt").click()
        for _cell in range(2):
            page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(f"(el) => ({expect_ran})(el)", arg=prompt.element_handle(),
                                   timeout=10_000)
            return
        except Exception:  # playwright's TimeoutError: try again
            continue
    raise AssertionError("the notebook's cells never ran")


def test_sidebar_and_panel_show_the_running_cell(running: tuple, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    lab, launch, item, go = running
    SHOTS.mkdir(parents=True, exist_ok=True)
    with open_browser(tmp_path / "chromium-profile") as page:
        page.set_viewport_size({"width": 1100, "height": 700})
        page.goto(lab.lab_url())
        tab = page.locator('.jp-SideBar.jp-mod-left li[data-id="launch-jupyter-sidebar"]')
        expect(tab).to_be_visible(timeout=60_000)
        tab.click()
        sidebar = page.locator(SIDEBAR)
        row = sidebar.locator(f'.jp-LaunchSidebar-item[data-item-id="{item.id}"]')
        bar = row.locator(".jp-LaunchSidebar-progress")
        expect(bar).to_contain_text("cell 4 of 6", timeout=30_000)
        expect(bar).to_have_attribute("data-cell", "4")
        row.click()
        detail = sidebar.locator(".jp-LaunchSidebar-facts .jp-LaunchSidebar-progress")
        expect(detail).to_contain_text("cell 4 of 6")
        expect(sidebar.locator(".jp-LaunchSidebar-cellSource")).to_have_text("import os, time")
        sidebar.screenshot(path=str(SHOTS / "sidebar-progress.png"))

        # The executed notebook opens mid-run with the outputs so far.
        sidebar.get_by_role("button", name="Open executed notebook").click()
        notebook = page.locator(".jp-NotebookPanel:visible")
        expect(notebook).to_have_count(1, timeout=30_000)
        outputs = notebook.locator(".jp-OutputArea-output")
        expect(outputs.first).to_have_text("one", timeout=30_000)
        expect(outputs).to_have_count(1)  # cell 3's; the waiting cell has printed nothing

        # The %launch panel in a notebook: its item card shows the same progress.
        write_notebook(lab.root, "panel.ipynb", ["%load_ext launch_jupyter",
                                                 "%launch panel local --interval 0.5"])
        page.goto(lab.lab_url("lab/tree/panel.ipynb"))
        run_all_cells(page)
        card = page.locator(f".lj-item[data-item='{item.id}']").first
        progress = card.locator(".lj-progress")
        expect(progress).to_contain_text("cell 4 of 6", timeout=60_000)
        expect(progress).to_have_attribute("data-cells", "6")
        expect(page.locator(f"tr.lj-row[data-item='{item.id}'] .lj-row-progress").first
               ).to_have_text("cell 4/6")
        panel = page.locator(".jp-OutputArea-output:has(.lj-item)").first
        panel.screenshot(path=str(SHOTS / "panel-progress.png"))
    assert item.state == "running" and not go.exists()
