"""The submit dialog in a real JupyterLab starts from what the server is configured with (read
from GET /launch/api/meta): the configured default queue, although another queue is listed
first, and the default priority; the sidebar shows the server's state symbols.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.views.states import DEFAULT_PRIORITY, symbol
from tests.conftest import write_notebook
from tests.ui.lab import LabServer, open_browser, require_chromium, start_lab

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("LAUNCH_JUPYTER_SCREENSHOTS") or tempfile.mkdtemp(prefix="shots-"))
SIDEBAR = "#launch-jupyter-sidebar"
DEFAULT_QUEUE = "train"  # listed after "local": a dialog that took the first queue would be wrong


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabServer, Launch]]:
    """A lab server whose LaunchConfig.default_queue is ``train``, with queues local and train."""
    require_chromium()
    base = tmp_path_factory.mktemp("defaults")
    env = {
        "LAUNCH_JUPYTER_STORE": f"sqlite:///{base}/launch.db",
        "LAUNCH_JUPYTER_DATA_DIR": str(base / "runs"),
        "LAUNCH_JUPYTER_DEFAULT_QUEUE": DEFAULT_QUEUE,
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("LAUNCH_ITEM_ID", raising=False)
        launch = Launch()
        for name in ("local", DEFAULT_QUEUE):
            if name not in {q["name"] for q in launch.queues()}:
                launch.create_queue(name)
        try:
            with start_lab(base, env) as server:
                yield server, launch
        finally:
            launch.close()


def test_submit_dialog_preselects_the_configured_default_queue(
        lab: tuple[LabServer, Launch], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    server, launch = lab
    names = [q["name"] for q in launch.queues()]
    assert names.index(DEFAULT_QUEUE) > 0, names  # the default is not the first queue listed
    write_notebook(server.root, "report.ipynb", ["print(n)"], parameters="n = 3")
    with open_browser(tmp_path / "chromium-profile") as page:
        page.goto(server.lab_url("lab/tree/report.ipynb"))
        button = page.locator('.jp-NotebookPanel-toolbar '
                              '[data-command="launch-jupyter:submit-notebook"]')
        expect(button).to_be_visible(timeout=60_000)
        button.click()

        dialog = page.locator(".jp-Dialog .jp-LaunchSubmit-form")
        expect(dialog).to_contain_text("report:v1", timeout=30_000)
        queue = dialog.locator('select[name="queue"]')
        expect(queue.locator("option")).to_have_count(len(names))
        expect(queue.locator("option").first).to_have_attribute("value", names[0])
        expect(queue).to_have_value(DEFAULT_QUEUE)
        priority = dialog.locator('select[name="priority"]')
        expect(priority).to_have_value(DEFAULT_PRIORITY)
        expect(priority.locator("option")).to_have_text(["critical", "high", "medium", "low"])
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "submit-default-queue.png"))

        page.locator(".jp-Dialog").get_by_role("button", name="Submit").click()
        expect(page.locator(".jp-Dialog")).to_have_count(0)
        detail = page.locator(f"{SIDEBAR} .jp-LaunchSidebar-detail")
        expect(detail).to_be_visible()
        item = launch.item(detail.get_attribute("data-item-id") or "").info()
        assert item["queue"] == DEFAULT_QUEUE
        assert item["priority"] == DEFAULT_PRIORITY
        # No agent serves the queue: the item waits, shown with the server's symbol.
        badge = detail.locator(".jp-LaunchSidebar-facts .jp-LaunchState")
        expect(badge).to_have_attribute("data-state", "queued")
        expect(badge.locator(".jp-LaunchState-symbol")).to_have_text(symbol("queued"))
