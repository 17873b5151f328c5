"""The results panel (``Sweep.panel()``, ``%launch panel --sweep``): the table sorted by the
sweep's metric with the best run marked and the comparison chart, live; the queue panel's
metric columns and sort; the item detail's metrics chart, redrawn only when points arrive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.views.charts import MIME
from tests.conftest import wait_for, write_script
from tests.magics.kernel import Kernel

OBJECTIVE = """\
import pathlib
import launch_jupyter
p = launch_jupyter.parameters(x=0.5, gate="")
for step in range(3):
    launch_jupyter.log(loss=(p.x - 1) ** 2 + 0.1 / (step + 1), size=p.x)
if p.gate:  # a trial that waits until the test lets it log its last point
    while not pathlib.Path(p.gate).exists():
        pass
    launch_jupyter.log(loss=0.0, size=p.x)
"""
XS = [0.0, 0.9, 2.5, 1.2]
EXTRA = "import launch_jupyter\nlaunch_jupyter.log(extra=1.0)\n"  # a metric no trial logs


@pytest.fixture
def swept(client: Launch, tmp_path: Path) -> str:
    """A finished grid sweep minimizing loss over XS (best: x=0.9)."""
    client.create_job(write_script(tmp_path, "obj.py", OBJECTIVE))
    sweep = client.sweep("obj", config={"method": "grid",
                                        "metric": {"name": "loss", "goal": "minimize"},
                                        "parameters": {"x": {"values": XS}}})
    client.agent(max_jobs=2, until_idle=True).run()
    return sweep.id


def _order(html: str) -> list[str]:
    return re.findall(r"class='lj-row[^']*' (?:data-best='true' )?data-item='(\w+)'", html)


def test_sweep_panel_sorts_by_its_metric_marks_the_best_and_charts_it(
        client: Launch, swept: str) -> None:
    from launch_jupyter.service.handles import Sweep
    from launch_jupyter.widgets import ResultsPanel

    rows = client.result_rows(sweep=swept)
    best = client.item(rows[0]["id"])
    panel = Sweep(client, swept).panel()
    try:
        assert isinstance(panel, ResultsPanel)
        assert [r["parameters"]["x"] for r in rows] == [0.9, 1.2, 0.0, 2.5]
        assert _order(panel.table.value) == [r["id"] for r in rows]
        assert f"lj-best' data-best='true' data-item='{best.id}'" in panel.table.value
        (output,) = panel.chart.outputs
        spec = output["data"][MIME]
        assert [v["lj_item"] for v in spec["data"]["values"] if v["lj_best"]] == [best.id]
        assert "loss (minimize)" in panel.title.value
        # The sort dropdown offers each metric; size:max puts x=2.5 first and charts size.
        assert "size:max" in panel.sort.options
        panel.sort.value = "size:max"
        assert _order(panel.table.value)[0] == rows[3]["id"]
        assert panel.chart.outputs[0]["data"][MIME]["encoding"]["y"]["title"] == "size \u2191"
    finally:
        panel.close()
    wait_for(lambda: not panel.refresher.alive, 5, what="refresh thread stopped")
    # A sort given at construction stays chosen when the options grow to every metric (a
    # Dropdown given new options selected the first, 'default').
    given = ResultsPanel(client, swept, sort="size:max", interval=30)
    try:
        assert given.sort.value == "size:max" and "loss:min" in given.sort.options
        assert _order(given.table.value)[0] == rows[3]["id"]
    finally:
        given.close()


def test_queue_panel_has_metric_columns_sorted_from_its_dropdown(
        client: Launch, swept: str, tmp_path: Path) -> None:
    from launch_jupyter.widgets import QueuePanel

    panel = QueuePanel(client, interval=30, page_size=2)
    try:
        assert "data-metric='loss'" in panel.table.value
        assert "data-metric='size'" in panel.table.value
        assert {"loss:min", "loss:max", "size:min", "size:max"} <= set(panel.sort.options)
        panel.sort.value = "loss:min"  # across pages: the two best of four on page 1
        best = [r["id"] for r in client.result_rows(sweep=swept)]
        assert [r["id"] for r in panel.rows] == best[:2]
        assert "loss \u25b2" in panel.table.value
        panel.go(1)
        assert [r["id"] for r in panel.rows] == best[2:]
        panel.sort.value = "size:max"
        assert [r["parameters"]["x"] for r in panel.rows] == [2.5, 1.2]
        assert "page 1 of 2" in panel.page_label.value
        # A metric seen for the first time adds options; the chosen sort stays.
        client.create_job(write_script(tmp_path, "extra.py", EXTRA))
        extra = client.submit("extra")
        client.agent(until_idle=True).run()
        panel.refresh()
        panel.go(2)  # the item without size comes last: page 3
        assert [r["id"] for r in panel.rows] == [extra.id]
        assert "extra:max" in panel.sort.options and panel.sort.value == "size:max"
    finally:
        panel.close()


def test_item_detail_redraws_its_chart_only_when_new_points_arrive(
        client: Launch, tmp_path: Path) -> None:
    from launch_jupyter.widgets import ItemDetail

    client.create_job(write_script(tmp_path, "obj.py", OBJECTIVE))
    gate = tmp_path / "gate"
    item = client.submit("obj", parameters={"x": 2.0, "gate": str(gate)})
    agent = client.agent(max_jobs=1)
    agent.start()
    detail = ItemDetail(client, item.id, interval=0.1)
    try:
        wait_for(lambda: detail.chart.outputs, 30, what="the first chart")
        assert detail.chart.outputs[0]["data"][MIME]["data"]["values"]
        wait_for(lambda: client.item_info(item.id)["metrics"]["loss"]["count"] == 3, 30,
                 what="three points")
        wait_for(lambda: len(detail.chart.outputs[0]["data"][MIME]["data"]["values"]) == 6,
                 10, what="the chart with six points")
        draws: list[int] = []
        detail.chart.observe(lambda change: draws.append(len(change["new"])), "outputs")
        for _ in range(3):
            detail.refresh()
        assert draws == [], "redrawn without new points"
        gate.touch()
        wait_for(lambda: len(detail.chart.outputs[0]["data"][MIME]["data"]["values"]) == 8,
                 30, what="the last points drawn")
        values = detail.chart.outputs[0]["data"][MIME]["data"]["values"]
        assert [v["value"] for v in values if v["name"] == "loss"][-1] == 0.0
    finally:
        detail.close()
        agent.stop()


def test_launch_panel_sweep_in_a_kernel_shows_the_results_widget_and_chart(
        kernel: Kernel, client: Launch, swept: str) -> None:
    out = kernel.execute(f"panel = %launch panel --sweep {swept} --interval 0.5\npanel")
    assert any("model_id" in str(m["content"].get("data", {})) for m in out.messages
               if m["msg_type"] == "execute_result"), "the panel was not displayed as a widget"
    assert kernel.value("type(panel).__name__") == "'ResultsPanel'"
    assert kernel.value(f"'{MIME}' in panel.chart.outputs[0]['data']") == "True"
    best = client.result_rows(sweep=swept)[0]["id"]
    assert kernel.value(f"\"data-best='true' data-item='{best}'\" in panel.table.value") == "True"
    kernel.execute("panel.close()")


def test_item_and_sweep_as_a_cells_last_line_show_a_table_or_card_and_a_chart(
        kernel: Kernel, client: Launch, swept: str) -> None:
    best = client.result_rows(sweep=swept)[0]["id"]
    kernel.execute("import launch_jupyter\nlaunch = launch_jupyter.connect()")
    for code, html in ((f"launch.item({best!r})", f"data-item='{best}'"),
                       (f"launch_jupyter.Sweep(launch, {swept!r})",
                        f"data-best='true' data-item='{best}'")):
        out = kernel.execute(code)
        shown = [m["content"]["data"] for m in out.messages
                 if m["msg_type"] in ("display_data", "execute_result")]
        assert len(shown) == 2, shown  # two outputs: a front end shows one mime type of each
        assert html in shown[0]["text/html"]
        assert MIME in shown[1] and shown[1][MIME]["$schema"].endswith("v5.json")
