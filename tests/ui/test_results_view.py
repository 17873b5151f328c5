"""Results in real JupyterLab, rendered by Chromium: the lab's Results view (opened from a sweep
trial in the sidebar) draws the server's chart with vega-embed, marks the best row and updates
live; the sidebar's item detail shows the item's metrics; ``%launch panel --sweep`` shows the
table and the chart (JupyterLab's own Vega renderer). Screenshots go to a temporary folder, or
to $LAUNCH_JUPYTER_SCREENSHOTS (``=docs`` refreshes docs/results-view.png and
docs/panel-results.png)."""

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
from tests.ui.test_progress_ui import run_all_cells

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("LAUNCH_JUPYTER_SCREENSHOTS") or tempfile.mkdtemp(prefix="shots-"))
SIDEBAR = "#launch-jupyter-sidebar"
OBJECTIVE = """\
import pathlib
import launch_jupyter
p = launch_jupyter.parameters(x=0.5, layers=2, gate="")
final = (p.x - 1) ** 2 + 0.01 * p.layers
for step in range(5):
    if step == 2 and p.gate and (p.x, p.layers) == (0.5, 4):  # held until the test says go
        while not pathlib.Path(p.gate).exists():
            pass
        final = 0.001
    launch_jupyter.log(loss=final + 0.5 / (step + 1), accuracy=1 / (1 + final), step=step)
"""


@pytest.fixture
def sweep(tmp_path: Path) -> Iterator[tuple[LabServer, Launch, Any, Path]]:
    """A lab server and an agent on one store; a grid sweep of 8 trials, 7 finished and one
    (x=0.5, layers=4) waiting halfway until ``gate`` exists; it then becomes the best."""
    require_chromium()
    root = tmp_path / "root"
    root.mkdir()
    env = {"LAUNCH_JUPYTER_STORE": f"sqlite:///{tmp_path}/launch.db",
           "LAUNCH_JUPYTER_DATA_DIR": str(root / "launch-runs")}
    gate = tmp_path / "gate"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("LAUNCH_ITEM_ID", raising=False)
        launch = Launch()
        launch.create_job(write_script(tmp_path, "objective.py", OBJECTIVE))
        with start_lab(tmp_path, env) as lab:
            made = launch.sweep("objective", config={
                "method": "grid", "metric": {"name": "loss", "goal": "minimize"},
                "parameters": {"x": {"values": [0.0, 0.5, 0.9, 2.0]},
                               "layers": {"values": [2, 4]}, "gate": {"value": str(gate)}}})
            held = next(i for i in made if (i.parameters["x"], i.parameters["layers"]) == (0.5, 4))
            agent = launch.agent(max_jobs=2).start()
            try:
                wait_for(lambda: sum(i["state"] == "succeeded"
                                     for i in launch.items(sweep=made.id)) == 7, 120,
                         what="7 trials to finish")
                wait_for(lambda: held.info()["metrics"].get("loss", {}).get("count") == 2, 60,
                         what="the held trial's first points")
                yield lab, launch, made, gate
            finally:
                gate.touch()
                agent.stop()
                launch.close()


def test_results_view_in_the_lab_charts_sorts_and_updates_live(sweep: tuple,
                                                              tmp_path: Path) -> None:
    from playwright.sync_api import expect

    lab, launch, made, gate = sweep
    SHOTS.mkdir(parents=True, exist_ok=True)
    rows = launch.result_rows(sweep=made.id)
    best = rows[0]
    assert best["parameters"] == {"x": 0.9, "layers": 2}
    with open_browser(tmp_path / "chromium-profile") as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(lab.lab_url())
        tab = page.locator('.jp-SideBar.jp-mod-left li[data-id="launch-jupyter-sidebar"]')
        expect(tab).to_be_visible(timeout=60_000)
        tab.click()
        sidebar = page.locator(SIDEBAR)
        sidebar.locator(f'.jp-LaunchSidebar-item[data-item-id="{best["id"]}"]').click()
        # The item's metrics in its detail: last values and the chart (vega-embed's SVG).
        metrics = sidebar.locator(".jp-LaunchSidebar-metrics")
        expect(metrics.locator("tr[data-metric='loss'] td").nth(1)).to_have_text(
            f"{best['metrics']['loss']:.6g}")
        expect(metrics.locator(".jp-LaunchChart [data-rendered='true'] svg")).to_have_count(1)
        sidebar.get_by_role("button", name="Results").click()

        view = page.locator(".jp-LaunchResults:visible")
        table = view.locator(".jp-LaunchResults-table")
        expect(table.locator("tbody tr")).to_have_count(8, timeout=30_000)
        shown = [r.get_attribute("data-item-id") for r in table.locator("tbody tr").all()]
        assert shown[:7] == [r["id"] for r in rows][:7]
        expect(table.locator("tr.jp-LaunchResults-best")).to_have_attribute("data-item-id",
                                                                           best["id"])
        chart = view.locator(".jp-LaunchResults-chart [data-rendered='true'] svg")
        expect(chart).to_have_count(1, timeout=30_000)
        assert chart.locator(".mark-symbol path").count() >= 8  # a point per run and parameter
        view.screenshot(path=str(tmp_path / "results-view-before.png"))

        # Live: the held trial goes on, logs a much lower loss and becomes the best row.
        gate.touch()
        held = next(i.id for i in made if (i.parameters["x"], i.parameters["layers"]) == (0.5, 4))
        expect(table.locator("tr.jp-LaunchResults-best")).to_have_attribute(
            "data-item-id", held, timeout=60_000)
        expect(table.locator("tbody tr").first).to_have_attribute("data-item-id", held)
        # A metric header sorts through the server (max first now); another column locally.
        table.locator("th[data-column='loss']").click()
        expect(table.locator("th[data-column='loss']")).to_have_text("loss ▼")
        expect(table.locator("tbody tr").first).to_have_attribute(
            "data-item-id", launch.result_rows(sweep=made.id, sort="loss:max")[0]["id"])
        table.locator("th[data-column='loss']").click()
        expect(table.locator("tbody tr").first).to_have_attribute("data-item-id", held)
        table.locator("th[data-column='x']").click()
        x = [h.get_attribute("data-column") for h in table.locator("th").all()].index("x")
        expect(table.locator("tbody tr").first.locator("td").nth(x)).to_have_text("0")
        expect(table.locator("tbody tr").last.locator("td").nth(x)).to_have_text("2")
        table.locator("th[data-column='loss']").click()
        table.locator("th[data-column='loss']").click()  # back to best first for the picture
        expect(table.locator("tbody tr").first).to_have_attribute("data-item-id", held)
        page.wait_for_timeout(300)  # let vega finish its transition before the picture
        view.screenshot(path=str(SHOTS / "results-view.png"))

        # %launch panel --sweep: the same table and chart in a notebook.
        write_notebook(lab.root, "results.ipynb", [
            "%load_ext launch_jupyter", f"%launch panel --sweep {made.id} --interval 0.5"])
        page.goto(lab.lab_url("lab/tree/results.ipynb"))
        out = page.locator(".jp-OutputArea-output:has(table.lj-results)").first
        for _ in range(3):  # a kernel or widget manager that was slow to start: run again
            run_all_cells(page)
            try:
                expect(out.locator("table.lj-results")).to_have_count(1, timeout=30_000)
                break
            except AssertionError:
                continue
        try:
            expect(out.locator(f"tr.lj-best[data-item='{held}']")).to_have_count(1,
                                                                              timeout=60_000)
        except AssertionError as err:
            page.screenshot(path=str(tmp_path / "panel-results-failed.png"))
            shown = page.locator(".jp-NotebookPanel:visible .jp-OutputArea").all_inner_texts()
            raise AssertionError(f"no best row for {held} in the panel; rows now "
                                 f"{launch.result_rows(sweep=made.id)[:2]}; the notebook "
                                 f"shows {shown}") from err
        expect(out.locator(".vega-embed svg, .vega-embed canvas").first).to_be_visible(
            timeout=30_000)
        page.wait_for_timeout(500)  # let vega finish its transition before the picture
        out.screenshot(path=str(SHOTS / "panel-results.png"))
    assert (SHOTS / "results-view.png").stat().st_size > 10_000
