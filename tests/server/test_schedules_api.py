"""REST: /launch/api/schedules (create, list, show, pause, resume, delete), answers checked
against openapi.yaml, bad input answered 400/404/409 with a message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from launch_jupyter.agent import fire_schedule
from launch_jupyter.api import Launch
from tests.conftest import write_script
from tests.server.conftest import Api
from tests.server.test_openapi import check


@pytest.fixture
def spec() -> dict:
    from importlib.resources import files

    return yaml.safe_load(files("launch_jupyter.server").joinpath("openapi.yaml").read_text())


async def test_schedules_create_list_show_pause_resume_and_delete(
        api: Api, client: Launch, tmp_path: Path, spec: Any) -> None:
    client.create_job(write_script(tmp_path, "report.py", "import launch_jupyter\n"
                                   "p = launch_jupyter.parameters(days=7)\n"))
    status, made = await api("POST", "schedules", body={
        "name": "weekly", "job": "report", "cron": "0 6 * * 1", "queue": "local",
        "timezone": "Europe/Paris", "parameters": {"days": 14}, "catch_up": True})
    assert status == 201, made
    check(spec, made, "Schedule")
    assert made["parameters"] == {"days": 14} and made["job"] == "report:v1"
    status, listed = await api("GET", "schedules")
    check(spec, listed, "Schedule", many=True)
    assert [s["name"] for s in listed] == ["weekly"]
    status, shown = await api("GET", "schedules", "weekly")
    assert status == 200 and shown["timezone"] == "Europe/Paris"

    status, paused = await api("POST", "schedules", "weekly", "pause")
    assert status == 200 and paused["state"] == "paused"
    assert (await api("POST", "schedules", "weekly", "pause"))[0] == 409
    status, resumed = await api("POST", "schedules", "weekly", "resume")
    assert status == 200 and resumed["state"] == "active"
    check(spec, resumed, "Schedule")

    item_id = fire_schedule(client.store, resumed, now=resumed["next_fire_ts"])
    status, item = await api("GET", "items", item_id)
    assert status == 200 and item["schedule"] == "weekly"
    check(spec, item, "Item")

    assert (await api("DELETE", "schedules", "weekly"))[0] == 204
    assert (await api("GET", "schedules", "weekly"))[0] == 404
    assert (await api("DELETE", "schedules", "weekly"))[0] == 404


async def test_bad_schedules_are_answered_with_what_to_fix(api: Api, client: Launch,
                                                           tmp_path: Path) -> None:
    client.create_job(write_script(tmp_path, "report.py", "import launch_jupyter\n"
                                   "p = launch_jupyter.parameters(days=7)\n"))
    base = {"name": "s", "job": "report", "cron": "* * * * *", "queue": "local"}
    cases = [
        ({**base, "cron": "bad"}, 400, "is not valid"),
        ({**base, "timezone": "Moon/Base"}, 400, "unknown time zone"),
        ({**base, "parameters": {"weeks": 1}}, 400, "unknown parameter"),
        ({**base, "catch_up": "yes"}, 400, "catch_up"),
        ({**base, "name": "no spaces"}, 400, "invalid schedule name"),
        ({**base, "queue": "ghost"}, 404, "queue 'ghost' does not exist"),
        ({**base, "job": "nosuch"}, 404, "nosuch"),
        ({k: v for k, v in base.items() if k != "cron"}, 400, "cron"),
        ({**base, "extra": 1}, 400, "Unknown field"),
    ]
    for body, code, words in cases:
        status, answer = await api("POST", "schedules", body=body)
        assert (status, words in answer["message"]) == (code, True), (body, answer)
    assert (await api("GET", "schedules"))[1] == []
    assert (await api("POST", "schedules", body=base))[0] == 201
    status, answer = await api("POST", "schedules", body=base)
    assert status == 409 and "already exists" in answer["message"]
    assert (await api("POST", "schedules", "nope", "resume"))[0] == 404
    assert (await api("POST", "schedules", "s", "resume"))[0] == 409
