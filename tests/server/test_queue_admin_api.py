"""Queue pause, resume and delete, and item delete, over REST (what the remote client uses for
`queue pause|resume|delete` and `delete`): exact codes and messages."""

from __future__ import annotations

from pathlib import Path

from ..conftest import write_notebook
from .conftest import Api


async def _queued_item(api: Api, root: Path) -> str:
    write_notebook(root, "nb.ipynb", ["print(1)"])
    status, job = await api("POST", "jobs", body={"path": "nb.ipynb"})
    assert status == 201, job
    status, item = await api("POST", "items", body={"job": job["ref"], "queue": "cpu"})
    assert status == 201, item
    return item["id"]


async def test_queues_are_paused_resumed_and_deleted(api: Api, jp_root_dir: Path) -> None:
    assert (await api("POST", "queues", body={"name": "cpu"}))[0] == 201
    status, queue = await api("POST", "queues", "cpu", "pause")
    assert status == 200 and queue["paused"] is True
    status, queue = await api("POST", "queues", "cpu", "resume")
    assert status == 200 and queue["paused"] is False
    assert (await api("POST", "queues", "nope", "pause"))[0] == 404

    await _queued_item(api, jp_root_dir)
    status, body = await api("DELETE", "queues", "cpu")
    assert status == 409 and "unfinished" in body["message"], body
    status, body = await api("DELETE", "queues", "cpu", params={"force": "maybe"})
    assert status == 400 and "force" in body["message"]
    status, body = await api("DELETE", "queues", "cpu", params={"force": "true"})
    assert status == 200 and body == {"name": "cpu", "items": 1}
    assert (await api("GET", "queues", "cpu"))[0] == 404


async def test_items_are_deleted(api: Api, jp_root_dir: Path) -> None:
    assert (await api("POST", "queues", body={"name": "cpu"}))[0] == 201
    item_id = await _queued_item(api, jp_root_dir)
    status, body = await api("DELETE", "items", item_id)
    assert status == 200 and body == {"id": item_id}
    assert (await api("GET", "items", item_id))[0] == 404
    status, body = await api("DELETE", "items", item_id)
    assert status == 404 and item_id in body["message"]
