"""REST: /launch/api/charts/results and /launch/api/charts/items/{id}, the specs the lab's
Results view and item detail draw, checked against openapi.yaml."""

from __future__ import annotations

from pathlib import Path

from launch_jupyter.api import Launch
from launch_jupyter.views.charts import SCHEMA
from tests.conftest import write_script
from tests.server.conftest import Api
from tests.server.test_openapi import check
from tests.server.test_sweeps_api import OBJECTIVE, spec  # noqa: F401


async def test_results_chart_answers_rows_best_and_the_comparison_spec(
        api: Api, client: Launch, tmp_path: Path, spec: dict) -> None:  # noqa: F811
    client.create_job(write_script(tmp_path, "obj.py", OBJECTIVE))
    sweep = client.sweep("obj", config={"method": "grid",
                                        "metric": {"name": "loss", "goal": "minimize"},
                                        "parameters": {"x": {"values": [0.0, 0.9, 1.5]}}})
    client.agent(until_idle=True).run()
    status, answer = await api("GET", "charts/results", params={"sweep": sweep.id})
    assert status == 200, answer
    check(spec, answer, "ResultsChart")
    assert [r["parameters"]["x"] for r in answer["rows"]] == [0.9, 1.5, 0.0]
    assert answer["best"] == answer["rows"][0]["id"]
    assert (answer["metric"], answer["goal"]) == ("loss", "minimize")
    assert answer["metrics"] == ["loss", "size"]
    assert answer["spec"]["$schema"] == SCHEMA
    best = [v["lj_item"] for v in answer["spec"]["data"]["values"] if v["lj_best"]]
    assert best == [answer["best"]]
    # A queue's results compared by a chosen metric; bad input is 400/404, never 500.
    status, by_size = await api("GET", "charts/results", params={"sort": "size:max"})
    assert status == 200 and by_size["metric"] == "size" and by_size["goal"] == "maximize"
    assert by_size["best"] == by_size["rows"][0]["id"]
    assert (await api("GET", "charts/results", params={"sort": "x:upward"}))[0] == 400
    assert (await api("GET", "charts/results", params={"sweep": "01NOSUCH"}))[0] == 404

    item = answer["rows"][0]["id"]
    status, chart = await api("GET", "charts/items", item)
    assert status == 200
    check(spec, chart, "ItemChart")
    assert chart["metrics"]["loss"]["count"] == 1
    assert {p["name"] for p in chart["spec"]["data"]["values"]} == {"loss", "size"}
    assert (await api("GET", "charts/items", "01NOSUCH"))[0] == 404
