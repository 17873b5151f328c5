"""REST for run-after and queue limits: ``"after"`` in the submit body, ``concurrency`` at
queue create and ``PATCH queues/{name}``; bad input answers 400/404 with a message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ..conftest import write_notebook
from .conftest import Api


@pytest.fixture
def job(jp_root_dir: Path) -> str:
    write_notebook(jp_root_dir, "nb.ipynb", ["print(x)"], parameters="x = 1")
    return "nb.ipynb"


async def patch(jp_fetch: Any, name: str, body: Any) -> tuple[int, Any]:
    response = await jp_fetch("launch", "api", "queues", name, method="PATCH",
                              body=json.dumps(body), raise_error=False)
    return response.code, json.loads(response.body.decode())


async def test_submit_after_waits_on_the_named_items(api: Api, job: str) -> None:
    status, created = await api("POST", "jobs", body={"path": job})
    assert status == 201
    ref = created["ref"]
    status, a = await api("POST", "items", body={"job": ref})
    assert status == 201 and a["waiting_on"] == [] and a["after"] == []
    status, b = await api("POST", "items", body={"job": ref, "after": [a["id"]]})
    assert status == 201
    assert (b["state"], b["after"], b["waiting_on"]) == ("queued", [a["id"]], [a["id"]])
    status, shown = await api("GET", "items", b["id"])
    assert status == 200 and shown["waiting_on"] == [a["id"]]
    status, cancelled = await api("POST", "items", a["id"], "cancel")
    assert status == 200
    status, shown = await api("GET", "items", b["id"])
    assert shown["state"] == "cancelled" and shown["error"]["stage"] == "dependency"


async def test_submit_after_bad_ids_is_refused(api: Api, job: str) -> None:
    _status, created = await api("POST", "jobs", body={"path": job})
    status, body = await api("POST", "items", body={"job": created["ref"],
                                                    "after": ["01NOSUCH"]})
    assert status == 404 and "--after '01NOSUCH': no such item" in body["message"]
    status, body = await api("POST", "items", body={"job": created["ref"], "after": "01X"})
    assert status == 400 and "'after' must be" in body["message"]
    status, body = await api("POST", "items", body={"job": created["ref"], "after": [1]})
    assert status == 400 and "after must be a list of item ids" in body["message"]
    status, listing = await api("GET", "items")
    assert listing["total"] == 0


async def test_queue_concurrency_is_set_changed_and_lifted(api: Api, jp_fetch: Any) -> None:
    status, queue = await api("POST", "queues", body={"name": "gpu", "concurrency": 2})
    assert status == 201 and queue["concurrency"] == 2
    status, queue = await patch(jp_fetch, "gpu", {"concurrency": 5})
    assert status == 200 and queue["concurrency"] == 5
    status, queue = await patch(jp_fetch, "gpu", {"concurrency": None})
    assert status == 200 and queue["concurrency"] is None
    status, queue = await patch(jp_fetch, "gpu", {})
    assert status == 200 and queue["name"] == "gpu"


async def test_queue_update_bad_input_answers_400_and_404(api: Api, jp_fetch: Any) -> None:
    await api("POST", "queues", body={"name": "q"})
    status, body = await patch(jp_fetch, "q", {"concurrency": -1})
    assert status == 400 and "concurrency must be between 0" in body["message"]
    status, body = await patch(jp_fetch, "q", {"concurrency": "two"})
    assert status == 400 and "'concurrency' must be" in body["message"]
    status, body = await patch(jp_fetch, "q", {"max_jobs": 1})
    assert status == 400 and "Unknown field" in body["message"]
    status, body = await patch(jp_fetch, "nope", {"concurrency": 1})
    assert status == 404 and "queue 'nope' does not exist" in body["message"]
    status, body = await api("POST", "queues", body={"name": "r", "concurrency": -3})
    assert status == 400 and "concurrency" in body["message"]
