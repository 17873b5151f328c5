"""The submit dialog in a real JupyterLab shows what capturing the notebook could not record
(POST /launch/api/jobs answers the warnings) above the form, and still submits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from tests.conftest import wait_for, write_notebook
from tests.ui.lab import LabServer, open_browser, require_chromium, start_lab

pytestmark = pytest.mark.slow

MISSING = "launch_test_not_installed_pkg"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabServer, Launch]]:
    """A lab server on a store of its own, with queue ``local``."""
    require_chromium()
    base = tmp_path_factory.mktemp("warnings")
    env = {"LAUNCH_JUPYTER_STORE": f"sqlite:///{base}/launch.db",
           "LAUNCH_JUPYTER_DATA_DIR": str(base / "runs")}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("LAUNCH_ITEM_ID", raising=False)
        launch = Launch()
        if "local" not in {q["name"] for q in launch.queues()}:
            launch.create_queue("local")
        try:
            with start_lab(base, env) as server:
                yield server, launch
        finally:
            launch.close()


def test_submit_dialog_lists_the_captures_warnings(lab: tuple[LabServer, Launch],
                                                   tmp_path: Path) -> None:
    from playwright.sync_api import expect

    server, launch = lab
    write_notebook(server.root, "drops.ipynb", [f"import {MISSING}", "!pip install {pkg}"])
    with open_browser(tmp_path / "chromium-profile") as page:
        page.goto(server.lab_url("lab/tree/drops.ipynb"))
        button = page.locator('.jp-NotebookPanel-toolbar '
                              '[data-command="launch-jupyter:submit-notebook"]')
        expect(button).to_be_visible(timeout=60_000)
        button.click()
        dialog = page.locator(".jp-Dialog .jp-LaunchSubmit-form")
        expect(dialog).to_contain_text("drops:v1", timeout=30_000)
        notes = dialog.locator(".jp-LaunchSubmit-warnings li")
        expect(notes.filter(has_text=f"module '{MISSING}' is imported but not installed")
               ).to_have_count(1)
        expect(notes.filter(has_text="{pkg}")).to_have_count(1)
        page.locator(".jp-Dialog").get_by_role("button", name="Submit").click()
        expect(page.locator(".jp-Dialog")).to_have_count(0)
    # The dialog closes first, then the extension posts the item.
    [item] = wait_for(launch.items, timeout=30, what="the submitted item")
    assert item["job"] == "drops:v1"
