"""`POST /launch/api/store/vacuum`: retention over REST, as `jupyter launch store vacuum`."""

from __future__ import annotations

from typing import Any

from ..store.conftest import stored_job
from ..store.test_retention import run
from .conftest import Api


async def test_vacuum_reports_and_deletes_only_old_finished_items(api: Api, manager: Any
                                                                  ) -> None:
    launch = manager.launch
    job = stored_job(launch.store)
    old = run(launch, job, log=b"x" * 300, days_ago=10)
    recent = run(launch, job, log=b"y" * 10, days_ago=1)
    running = run(launch, job, end=None, days_ago=10)

    status, body = await api("POST", "store", "vacuum", body={"keep_days": 5, "dry_run": True})
    assert status == 200, body
    assert body["dry_run"] and body["items"] == 1 and body["log_bytes"] == 300
    assert (await api("GET", "items", old))[0] == 200

    status, body = await api("POST", "store", "vacuum", body={"keep_days": 5})
    assert status == 200, body
    assert body == {"dry_run": False, "keep_days": 5.0, "keep_last": None, "items": 1,
                    "queues": {"local": 1}, "log_bytes": 300, "run_folders": 1,
                    "run_folder_bytes": 120}
    assert (await api("GET", "items", old))[0] == 404
    assert (await api("GET", "items", recent))[0] == 200
    assert (await api("GET", "items", running))[1]["state"] == "running"


async def test_vacuum_refuses_bad_rules_with_400(api: Api) -> None:
    for body, says in (({}, "needs a rule"), ({"keep_last": -1}, "keep_last"),
                       ({"keep_days": "soon"}, "keep_days"), ({"keep_days": -2}, "keep_days"),
                       ({"keep": 3}, "Unknown field"), ({"keep_last": 1.5}, "keep_last"),
                       ({"keep_last": 2, "dry_run": "yes"}, "dry_run")):
        status, answer = await api("POST", "store", "vacuum", body=body)
        assert status == 400, (body, answer)
        assert says in answer["message"], (body, answer)
