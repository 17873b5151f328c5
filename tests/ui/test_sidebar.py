"""The Launch sidebar in a real JupyterLab, driven in real Chromium: it lists what the Python API
submitted, tails a running item's log, cancels it, shows a failure with its failing cell,
opens a succeeded item's executed notebook and requeues it. Screenshots go to
$LAUNCH_JUPYTER_SCREENSHOTS (docs/ when refreshing them) or a temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from launch_jupyter.api import Launch
from tests.conftest import wait_for, write_notebook, write_script
from tests.ui.lab import LabServer, open_browser, require_chromium, start_lab

pytestmark = pytest.mark.slow

# Screenshots go to pytest's tmp folder; LAUNCH_JUPYTER_SCREENSHOTS=docs refreshes docs/.
SHOTS = Path(os.environ.get("LAUNCH_JUPYTER_SCREENSHOTS") or tempfile.mkdtemp(prefix="shots-"))
SIDEBAR = "#launch-jupyter-sidebar"

GATED = """\
import os
import time

import launch_jupyter

p = launch_jupyter.parameters(gate="", epochs=3)
print("epoch 1: loss 0.93", flush=True)
while not os.path.exists(p.gate):
    time.sleep(0.05)
print("epoch 2: loss 0.41", flush=True)
time.sleep(600)  # runs until the test cancels it
"""


class Scene:
    """The lab server, the store it shares with the test, and the items the tests look at."""

    def __init__(self, lab: LabServer, launch: Launch, gate: Path) -> None:
        self.lab = lab
        self.launch = launch
        self.gate = gate  # the gated job waits for this file between its two log lines
        self.items: dict[str, Any] = {}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """A lab server and an in-process agent on one SQLite store, with items in every state."""
    require_chromium()
    base = tmp_path_factory.mktemp("sidebar")
    root = base / "root"
    root.mkdir()
    env = {
        "LAUNCH_JUPYTER_STORE": f"sqlite:///{base}/launch.db",
        # Runs (and executed notebooks) under the server's root dir, so Lab can open them.
        "LAUNCH_JUPYTER_DATA_DIR": str(root / "launch-runs"),
        "LAUNCH_JUPYTER_CANCEL_GRACE": "2",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("LAUNCH_ITEM_ID", raising=False)
        launch = Launch()
        if "local" not in {q["name"] for q in launch.queues()}:  # the store may make it
            launch.create_queue("local")
        launch.create_queue("gpu")  # no agent serves it: its item stays queued
        jobs = root / "jobs"
        jobs.mkdir()
        gated = launch.create_job(write_script(jobs, "train.py", GATED))
        report = launch.create_job(write_notebook(
            jobs, "report.ipynb", ["print(f'hello from report, n={n}')"], parameters="n = 3"))
        broken = launch.create_job(write_notebook(
            jobs, "broken.ipynb", ["x = 1", "raise ValueError('bad input row 7')"]))
        with start_lab(base, env) as lab:
            agent = launch.agent(["local"], max_jobs=3).start()
            try:
                scene = Scene(lab, launch, base / "gate")
                submit_items(scene, report.ref, broken.ref, gated.ref)
                yield scene
            finally:
                agent.stop()
                launch.close()


def submit_items(scene: Scene, report: str, broken: str, gated: str) -> None:
    """Finished items of every kind, one waiting on a queue no agent serves, one running."""
    launch, items = scene.launch, scene.items
    items["report"] = launch.submit(report, queue="local", parameters={"n": 5},
                                    priority="high")
    items["broken"] = launch.submit(broken, queue="local")
    items["waiting"] = launch.submit(report, queue="gpu")
    wait_for(lambda: items["report"].done and items["broken"].done, timeout=120,
             what="the notebook items to finish")
    items["gated"] = launch.submit(gated, queue="local", parameters={"gate": str(scene.gate)})


@pytest.fixture
def page(scene: Scene, tmp_path: Path) -> Iterator[Any]:
    """Lab open in a fresh Chromium profile, with the Launch sidebar shown."""
    from playwright.sync_api import expect

    with open_browser(tmp_path / "chromium-profile") as page:
        page.goto(scene.lab.lab_url())
        tab = page.locator('.jp-SideBar.jp-mod-left li[data-id="launch-jupyter-sidebar"]')
        expect(tab).to_be_visible(timeout=60_000)
        tab.click()
        expect(page.locator(SIDEBAR)).to_be_visible()
        widen_sidebar(page, 380)
        yield page


def widen_sidebar(page: Any, width: int) -> None:
    """Drag the left panel's splitter so the sidebar is ``width`` px wide (screenshots)."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box() if handle.count() else None
    if box is None:  # a Lab whose layout differs: keep its width, the test does not need more
        return
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(width + 33, y, steps=5)  # 33 px: the icon bar left of the panel
    page.mouse.up()


def item_row(page: Any, item_id: str) -> Any:
    return page.locator(f'{SIDEBAR} .jp-LaunchSidebar-item[data-item-id="{item_id}"]')


def test_sidebar_tails_a_running_item_and_cancels_it(scene: Scene, page: Any) -> None:
    from playwright.sync_api import expect

    sidebar = page.locator(SIDEBAR)
    expect(sidebar.locator('.jp-LaunchSidebar-queue[data-queue="local"]')).to_be_visible()
    gated = scene.items["gated"]
    row = item_row(page, gated.id)
    expect(row).to_have_attribute("data-state", "running", timeout=60_000)
    row.click()

    log = sidebar.locator(".jp-LaunchSidebar-log")
    expect(log).to_contain_text("epoch 1: loss 0.93", timeout=30_000)
    expect(log).not_to_contain_text("epoch 2")
    scene.gate.touch()
    expect(log).to_contain_text("epoch 2: loss 0.41", timeout=30_000)
    expect(sidebar.locator(".jp-LaunchSidebar-parameters")).to_contain_text("gate")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "sidebar-log.png"))

    sidebar.get_by_role("button", name="Cancel").click()
    state = sidebar.locator(".jp-LaunchSidebar-facts .jp-LaunchState")
    expect(state).to_have_attribute("data-state", "cancelled", timeout=30_000)
    assert gated.state == "cancelled"
    expect(log).to_have_attribute("data-done", "true", timeout=10_000)
    expect(sidebar.get_by_role("button", name="Cancel")).to_have_count(0)


def test_sidebar_shows_queues_failures_and_opens_the_executed_notebook(scene: Scene,
                                                                      page: Any) -> None:
    from playwright.sync_api import expect

    sidebar = page.locator(SIDEBAR)
    report, broken, waiting = (scene.items[k] for k in ("report", "broken", "waiting"))
    expect(item_row(page, report.id)).to_have_attribute("data-state", "succeeded")
    expect(item_row(page, broken.id)).to_have_attribute("data-state", "failed")
    expect(item_row(page, waiting.id)).to_have_attribute("data-state", "queued")
    gpu = sidebar.locator('.jp-LaunchSidebar-queue[data-queue="gpu"]')
    expect(gpu.locator('.jp-LaunchCount[data-state="queued"]')).to_have_text("○ 1")
    expect(sidebar.locator(".jp-LaunchSidebar-agent")).to_have_count(1)
    expect(sidebar.locator(".jp-LaunchSidebar-heartbeat")).to_contain_text("heartbeat")
    page.screenshot(path=str(SHOTS / "sidebar.png"))

    # A queue's items only.
    gpu.click()
    expect(item_row(page, waiting.id)).to_be_visible()
    expect(item_row(page, report.id)).to_have_count(0)
    sidebar.get_by_role("button", name="all queues").click()

    # The failure, with its failing cell named once.
    item_row(page, broken.id).click()
    failure = sidebar.locator(".jp-LaunchSidebar-failure")
    expect(failure).to_contain_text("bad input row 7")
    expect(failure).to_contain_text("cell 2 raised ValueError")
    expect(failure).not_to_contain_text("failing cell")
    sidebar.get_by_role("button", name="← Items").click()

    # The executed notebook opens in a Lab tab, with the run's output in it.
    item_row(page, report.id).click()
    expect(sidebar.locator(".jp-LaunchSidebar-parameters")).to_contain_text("5")
    sidebar.get_by_role("button", name="Open executed notebook").click()
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook).to_have_count(1, timeout=30_000)
    expect(notebook.locator(".jp-OutputArea-output")).to_contain_text(
        "hello from report, n=5", timeout=30_000)
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
    # Named apart from the user's own report.ipynb: the job, its version and the item.
    expect(tab).to_have_text(f"report:v1 · item {report.id}")
    page.screenshot(path=str(SHOTS / "sidebar-notebook.png"))

    # Requeue: a new item linked to the old one, shown at once.
    sidebar.get_by_role("button", name="Requeue").click()
    facts = sidebar.locator(".jp-LaunchSidebar-facts")
    expect(facts).to_contain_text("requeued from")
    expect(facts).to_contain_text(report.id)
    new_id = sidebar.locator(".jp-LaunchSidebar-detail").get_attribute("data-item-id")
    assert new_id and new_id != report.id
    assert scene.launch.item(new_id).info()["requeued_from"] == report.id


SWEEP_PARAMETERS = """\
lr = 0.01  # launch: minimum=0.0001, maximum=1
optimizer = "adam"  # launch: enum=["adam", "sgd"]
augment = True
"""


def test_submit_dialog_captures_the_open_notebook_and_submits_it(scene: Scene,
                                                                 page: Any) -> None:
    from playwright.sync_api import expect

    write_notebook(scene.lab.root, "sweep.ipynb", ["print(lr, optimizer, augment)"],
                   parameters=SWEEP_PARAMETERS)
    page.goto(scene.lab.lab_url("lab/tree/sweep.ipynb"))
    button = page.locator(".jp-NotebookPanel-toolbar "
                          '[data-command="launch-jupyter:submit-notebook"]')
    expect(button).to_be_visible(timeout=60_000)
    button.click()

    dialog = page.locator(".jp-Dialog .jp-LaunchSubmit-form")
    expect(dialog).to_contain_text("sweep:v1", timeout=30_000)
    expect(dialog.locator('select[name="parameter-optimizer"] option')).to_have_count(2)
    expect(dialog.locator('input[name="parameter-lr"]')).to_have_attribute("max", "1")
    dialog.locator('select[name="queue"]').select_option("gpu")
    submit = page.locator(".jp-Dialog").get_by_role("button", name="Submit")
    dialog.locator('input[name="parameter-lr"]').fill("5")
    expect(submit).to_be_disabled()  # out of the schema's bounds: the form is invalid
    dialog.locator('input[name="parameter-lr"]').fill("0.1")
    expect(submit).to_be_enabled()
    dialog.locator('select[name="parameter-optimizer"]').select_option(label="sgd")
    dialog.locator('input[name="parameter-augment"]').uncheck()
    dialog.locator('select[name="priority"]').select_option("high")
    submit.click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)

    detail = page.locator(f"{SIDEBAR} .jp-LaunchSidebar-detail")
    expect(detail).to_be_visible()
    expect(detail.locator(".jp-LaunchSidebar-facts")).to_contain_text("sweep:v1")
    item = scene.launch.item(detail.get_attribute("data-item-id") or "").info()
    assert item["queue"] == "gpu"
    assert item["overrides"] == {"lr": 0.1, "optimizer": "sgd", "augment": False}
    assert item["priority"] == "high"
