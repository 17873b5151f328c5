"""REST: /launch/api/sweeps (start, list, show, stop, resume) and /launch/api/results, with
their answers checked against openapi.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from launch_jupyter.api import Launch
from tests.conftest import write_script
from tests.server.conftest import Api
from tests.server.test_openapi import check

OBJECTIVE = """\
import launch_jupyter
p = launch_jupyter.parameters(
    x=0.5,  # launch: minimum=-2, maximum=2
    tag="a",
)
launch_jupyter.log(loss=(p.x - 1) ** 2, size=p.x)
"""


@pytest.fixture
def spec() -> dict:
    from importlib.resources import files

    return yaml.safe_load(files("launch_jupyter.server").joinpath("openapi.yaml").read_text())


async def test_sweeps_start_list_show_stop_and_resume(api: Api, client: Launch,
                                                      tmp_path: Path, spec: Any) -> None:
    client.create_job(write_script(tmp_path, "obj.py", OBJECTIVE))
    config = {"program": "obj.py", "method": "grid", "metric": {"name": "loss"},
              "parameters": {"x": {"values": [0.0, 0.9, 1.5]}}}
    status, made = await api("POST", "sweeps", body={"job": "obj", "config": config})
    assert status == 201, made
    check(spec, made, "SweepCreated")
    assert len(made["items"]) == 3 and "program" in made["note"]
    status, listed = await api("GET", "sweeps")
    check(spec, listed, "Sweep", many=True)
    assert [s["id"] for s in listed] == [made["sweep_id"]]
    status, shown = await api("GET", "sweeps", made["sweep_id"])
    check(spec, shown, "SweepDetail")
    assert [t["item"] for t in shown["trials_detail"]] == made["items"]
    assert (await api("POST", "sweeps", made["sweep_id"], "resume"))[0] == 409
    assert (await api("POST", "sweeps", made["sweep_id"], "stop"))[1]["state"] == "stopped"
    assert (await api("POST", "sweeps", made["sweep_id"], "resume"))[1]["state"] == "running"
    assert (await api("GET", "sweeps", "01NOSUCH"))[0] == 404

    client.agent(until_idle=True).run()
    status, rows = await api("GET", "results", params={"sweep": made["sweep_id"]})
    assert status == 200
    check(spec, rows, "ResultRow", many=True)
    assert [r["parameters"]["x"] for r in rows] == [0.9, 1.5, 0.0]  # by loss, smallest first
    status, rows = await api("GET", "results", params={"sort": "size:max", "limit": "2"})
    assert [r["metrics"]["size"] for r in rows] == [1.5, 0.9]
    status, best = await api("GET", "sweeps")
    assert best[0]["best"] == {"value": rows[1]["metrics"]["loss"], "item": rows[1]["id"]}


async def test_bad_sweeps_and_result_queries_are_400_and_write_nothing(
        api: Api, client: Launch, tmp_path: Path) -> None:
    client.create_job(write_script(tmp_path, "obj.py", OBJECTIVE))
    status, answer = await api("POST", "sweeps", body={
        "job": "obj", "config": {"method": "bayes", "metric": {"name": "loss"},
                                 "parameters": {"x": {"min": -2.0, "max": 2.0}},
                                 "scheduler": "asha"}})
    assert status == 400 and "unknown key 'scheduler'" in answer["message"]
    status, answer = await api("POST", "sweeps", body={
        "job": "obj", "config": {"method": "random", "parameters": {"x": {"min": -5.0,
                                                                          "max": 2.0}}}})
    assert status == 400 and "parameters.x" in answer["message"]
    status, answer = await api("POST", "sweeps", body={"job": str(tmp_path / "obj.py"),
                                                       "grid": {"x": [1.0]}})
    assert status == 400 and "invalid job name" in answer["message"]  # REST captures no file
    assert (await api("POST", "sweeps", body={"job": "obj", "config": [1]}))[0] == 400
    assert (await api("GET", "sweeps"))[1] == []
    status, answer = await api("GET", "results", params={"sort": "loss:upward"})
    assert status == 400 and "METRIC:max" in answer["message"]
    assert (await api("GET", "results", params={"limit": "x"}))[0] == 400
    assert (await api("GET", "results", params={"sweep": "01NOSUCH"}))[0] == 404
