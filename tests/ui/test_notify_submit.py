"""In a real JupyterLab (Chromium): the submit dialog says why Submit is disabled and shows
each field's bounds and choices; an item submitted from this session ends with a JupyterLab
notification whose "Open executed notebook" opens a tab named after the job and the item,
not marked unsaved.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from tests.conftest import wait_for, write_notebook
from tests.ui.lab import LabServer, open_browser, require_chromium, start_lab

pytestmark = pytest.mark.slow

KERNEL_DISPLAY_NAME = "Python 3 (ipykernel)"  # ipykernel's python3 kernelspec
SHOTS = Path(os.environ.get("LAUNCH_JUPYTER_SCREENSHOTS") or tempfile.mkdtemp(prefix="shots-"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabServer, Launch]]:
    require_chromium()
    base = tmp_path_factory.mktemp("notify")
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


def test_disabled_submit_says_why_and_the_ended_item_notifies(
        lab: tuple[LabServer, Launch], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    server, launch = lab
    write_notebook(server.root, "report.ipynb", ["print('n is', n)"],
                   parameters="n = 3  # launch: minimum=1, maximum=5\n"
                              "mode = 'fast'  # launch: enum=['fast', 'slow']")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with open_browser(tmp_path / "chromium-profile") as page:
        page.goto(server.lab_url("lab/tree/report.ipynb"))
        button = page.locator('.jp-NotebookPanel-toolbar '
                              '[data-command="launch-jupyter:submit-notebook"]')
        expect(button).to_be_visible(timeout=60_000)
        button.click()

        dialog = page.locator(".jp-Dialog")
        form = dialog.locator(".jp-LaunchSubmit-form")
        expect(form).to_contain_text("report:v1", timeout=30_000)
        expect(form.locator(".jp-LaunchSubmit-integer .jp-LaunchSubmit-hint")).to_have_text(
            "whole number, ≥ 1, ≤ 5")
        expect(form.locator(".jp-LaunchSubmit-enum .jp-LaunchSubmit-hint")).to_have_text(
            "one of fast, slow")
        submit = dialog.get_by_role("button", name="Submit")
        expect(submit).to_be_enabled()
        expect(form.locator(".jp-LaunchSubmit-why")).to_have_count(0)

        form.locator('input[name="parameter-n"]').fill("9")
        why = form.locator(".jp-LaunchSubmit-why")
        expect(why).to_have_text("Submit is disabled: n: at most 5")
        expect(submit).to_be_disabled()
        expect(submit).to_have_attribute("title", re.compile("n: at most 5"))
        dialog.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "submit-disabled.png"))

        form.locator('input[name="parameter-n"]').fill("4")
        expect(why).to_have_count(0)
        expect(submit).to_be_enabled()
        submit.click()
        expect(dialog).to_have_count(0)
        # The dialog closes first, then the extension posts the item.
        items = wait_for(launch.items, timeout=30, what="the submitted item")
        assert len(items) == 1 and items[0]["overrides"] == {"n": 4}
        item_id = items[0]["id"]

        agent = launch.agent().start()
        try:
            toast = page.locator(".Toastify__toast").filter(
                has_text=f"Launch item {item_id} (report:v1) succeeded")
            expect(toast).to_be_visible(timeout=90_000)
        finally:
            agent.stop()
        page.screenshot(path=str(SHOTS / "notification.png"),
                        clip={"x": 780, "y": 560, "width": 500, "height": 240})
        toast.get_by_role("button", name="Open executed notebook").click()

        tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab").filter(
            has_text=f"report:v1 · item {item_id}")
        expect(tab).to_be_visible(timeout=30_000)
        expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab").filter(
            has_text="report.ipynb")).to_have_count(1)  # the user's own tab keeps its name
        expect(page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output")
               ).to_contain_text("n is 4")
        # The runner recorded the kernel that ran as JupyterLab names it, so the kernel
        # coming up rewrites nothing: once it is up and idle, the tab is not unsaved.
        executed = server.root / "launch-runs" / item_id / "report.ipynb"
        assert executed.is_file()  # not renamed
        kernelspec = json.loads(executed.read_text())["metadata"]["kernelspec"]
        assert kernelspec == {"name": "python3", "display_name": KERNEL_DISPLAY_NAME,
                              "language": "python"}
        expect(page.locator(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator")
               ).to_have_attribute("data-status", "idle", timeout=60_000)
        expect(tab).not_to_have_class("jp-mod-dirty")
        page.wait_for_function(  # two frames after the kernel's info: any rewrite is shown
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        assert "jp-mod-dirty" not in (tab.get_attribute("class") or "")


def test_sidebar_filters_groups_sweeps_wraps_parameters_and_says_why_items_wait(
        lab: tuple[LabServer, Launch], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    server, launch = lab
    for item in launch.items():
        launch.delete(item["id"])
    train = write_notebook(server.root, "train.ipynb", ["print(learning_rate)"],
                           parameters="learning_rate = 0.1\noptimizer_name = 'adam'")
    other = write_notebook(server.root, "other.ipynb", ["print(1)"])
    long_one = launch.submit(train, overrides=["learning_rate=0.000123456789",
                                               "optimizer_name=stochastic_gradient_descent"])
    launch.submit(other)
    sweep = launch.sweep("train", grid={"learning_rate": [0.5, 0.25]})
    with open_browser(tmp_path / "chromium-profile") as page:
        page.goto(server.lab_url("lab"))
        page.get_by_role("tab", name="Launch: queues, runs and agents").click()
        sidebar = page.locator("#launch-jupyter-sidebar")
        rows = sidebar.locator(".jp-LaunchSidebar-item")
        expect(rows).to_have_count(4, timeout=30_000)

        # No agent serves queue local: every row says why it waits.
        expect(rows.locator(".jp-LaunchSidebar-waiting")).to_have_count(4)
        expect(rows.first.locator(".jp-LaunchSidebar-waiting")).to_contain_text(
            "no live agent serves queue local")
        # A sweep's trials sit under one heading.
        heading = sidebar.locator(f".jp-LaunchSidebar-sweep[data-sweep='{sweep.id}']")
        expect(heading).to_have_count(1)
        expect(heading).to_have_text(f"sweep {sweep.id}")
        # The overrides wrap inside the default sidebar width: nothing is cut off.
        params = sidebar.locator(f"[data-item-id='{long_one.id}'] .jp-LaunchSidebar-params")
        expect(params.locator(".jp-LaunchSidebar-param")).to_have_text([
            "learning_rate=0.000123456789", "optimizer_name=\"stochastic_gradient_descent\""])
        fits = params.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
        assert fits, "the parameters are cut off at the default width"

        sidebar.locator("input[name='job']").fill("other")
        sidebar.locator("input[name='job']").press("Enter")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("other:v1")
        sidebar.locator("input[name='job']").fill("")
        sidebar.locator("input[name='job']").press("Enter")
        expect(rows).to_have_count(4)
        sidebar.locator("select[name='state']").select_option("succeeded")
        expect(rows).to_have_count(0)
        expect(sidebar).to_contain_text("No item matches.")
        sidebar.locator("select[name='state']").select_option("queued")
        expect(rows).to_have_count(4)
        sidebar.screenshot(path=str(SHOTS / "sidebar-waiting.png"))


def test_sidebar_error_names_the_cell_once_and_never_repeats_the_state(
        lab: tuple[LabServer, Launch], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from tests.conftest import wait_for
    from tests.test_progress import waiting_notebook

    server, launch = lab
    for item in launch.items():
        launch.delete(item["id"])
    boom = launch.submit(write_notebook(server.root, "boom.ipynb",
                                        ["x = 1", "raise ValueError('bad')"]))
    stuck = launch.submit(waiting_notebook(server.root),
                          parameters={"go": str(tmp_path / "never")})
    agent = launch.agent().start()
    try:
        boom.wait(90, progress=False)
        wait_for(lambda: (stuck.info().get("progress") or {}).get("cell") == 4, 90,
                 what="the waiting cell running")
        launch.cancel(stuck.id)
        wait_for(lambda: stuck.state == "cancelled", 60, what="the item cancelled")
    finally:
        agent.stop()
    assert boom.info()["error"]["message"] == "cell 2 raised ValueError: bad"
    assert stuck.info()["error"]["message"] == "cancelled"
    with open_browser(tmp_path / "chromium-profile") as page:
        page.goto(server.lab_url("lab"))
        page.get_by_role("tab", name="Launch: queues, runs and agents").click()
        sidebar = page.locator("#launch-jupyter-sidebar")
        sidebar.locator(f".jp-LaunchSidebar-item[data-item-id='{boom.id}']").click()
        failure = sidebar.locator(".jp-LaunchSidebar-failure")
        expect(failure).to_contain_text("cell 2 raised ValueError: bad")
        expect(failure).to_contain_text("stage: execute")
        expect(failure).not_to_contain_text("failing cell")
        sidebar.get_by_role("button", name="← Items").click()
        sidebar.locator(f".jp-LaunchSidebar-item[data-item-id='{stuck.id}']").click()
        expect(sidebar.locator(".jp-LaunchSidebar-detail")).to_contain_text("cancelled")
        expect(failure).to_have_count(0)  # "cancelled" under the cancelled badge says nothing
