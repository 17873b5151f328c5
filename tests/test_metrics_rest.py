"""``GET /launch/api/items/{id}/metrics?after=CURSOR`` against a real Jupyter server and store:
pages of points from a cursor, ``done`` once the item is finished and read, 400 and 404."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403 - the jp_* fixtures

from launch_jupyter.api import Launch
from launch_jupyter.server import manager as manager_module

from .conftest import write_script
from .server.conftest import Api, api, jp_server_config, manager  # noqa: F401 - fixtures


@pytest.fixture
def get(api: Api, jp_asyncio_loop: Any) -> Callable[..., tuple[int, Any]]:  # noqa: F811
    """``get("items", ID, "metrics", params=...)`` -> (status, JSON), on the server's loop
    (the async-test hooks live in tests/server/conftest.py, not here)."""
    return lambda *path, **kw: jp_asyncio_loop.run_until_complete(api("GET", *path, **kw))


def running_item(client: Launch, tmp_path: Path) -> str:
    """An item leased to ``agent-1`` (its lease token), as if its run had started."""
    job = client.create_job(write_script(tmp_path, "job.py", "print(1)\n"))
    item = client.submit(job.ref)
    assert client.store.claim("local", "agent-1", 30.0)["id"] == item.id
    return item.id


def test_points_come_in_pages_from_a_cursor_until_done(
        get: Callable, client: Launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager_module, "METRIC_PAGE_POINTS", 3)
    item_id = running_item(client, tmp_path)
    status, page = get("items", item_id, "metrics")
    assert status == 200 and page == {"points": [], "next": 0, "done": False}
    assert client.store.add_metrics(item_id, "agent-1", 1, [
        ("loss", step, 1.0 / (step + 1), 1_800_000_000.0 + step) for step in range(5)])
    status, first = get("items", item_id, "metrics", params={"after": "0"})
    assert status == 200 and not first["done"]
    assert [(p["name"], p["step"], p["value"]) for p in first["points"]] == [
        ("loss", 0, 1.0), ("loss", 1, 0.5), ("loss", 2, 1.0 / 3)]
    assert first["points"][0]["time"] == "2027-01-15T08:00:00.000Z"
    status, rest = get("items", item_id, "metrics",
                             params={"after": str(first["next"])})
    assert [p["step"] for p in rest["points"]] == [3, 4] and not rest["done"]
    assert client.store.finish(item_id, "agent-1", "succeeded")
    status, last = get("items", item_id, "metrics",
                             params={"after": str(rest["next"])})
    assert status == 200 and last == {"points": [], "next": rest["next"], "done": True}
    status, item = get("items", item_id)
    assert item["metrics"] == {"loss": {"last": 0.2, "min": 0.2, "max": 1.0, "step": 4,
                                        "count": 5}}


def test_bad_cursors_are_400_and_unknown_items_404(get: Callable, client: Launch,
                                                   tmp_path: Path) -> None:
    item_id = running_item(client, tmp_path)
    for bad in ("-1", "x", "1.5"):
        status, body = get("items", item_id, "metrics", params={"after": bad})
        assert status == 400 and "after" in body["message"], body
    status, body = get("items", "01NOSUCHITEM", "metrics")
    assert status == 404 and "01NOSUCHITEM" in body["message"]
