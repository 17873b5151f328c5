"""End to end over REST: capture a notebook, submit it, an agent runs it, tail its log, open
its executed notebook, requeue it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from launch_jupyter.api import Launch

from ..conftest import wait_for, write_notebook
from .conftest import Api


async def poll(cond: Callable[[], Awaitable[Any]], what: str, timeout: float = 120) -> Any:
    """``wait_for`` an async condition, in a thread so the server's event loop keeps serving."""
    loop = asyncio.get_running_loop()

    def check() -> Any:
        return asyncio.run_coroutine_threadsafe(cond(), loop).result()

    return await asyncio.to_thread(wait_for, check, timeout, 0.1, what)


@pytest.fixture
def runs_agent(store_url: str, jp_root_dir: Path) -> Iterator[Any]:
    """An in-process agent whose run folders (and executed notebooks) live under the root."""
    client = Launch(store_url, data_dir=str(jp_root_dir / "launch-runs"))
    agent = client.agent(["local"]).start()
    yield agent
    agent.stop()
    client.close()


async def test_notebook_runs_end_to_end_over_rest(api: Api, jp_root_dir: Path,
                                                  runs_agent: Any) -> None:
    write_notebook(jp_root_dir, "train.ipynb", [
        "import time\nfor step in range(3):\n    print('step', step, flush=True)\n"
        "    time.sleep(0.2)",
        "print('lr is', lr, '✓ done')",
    ], parameters="lr = 0.01")
    status, job = await api("POST", "jobs", body={"path": "train.ipynb"})
    assert status == 201, job
    status, item = await api("POST", "items", body={
        "job": job["ref"], "queue": "local", "parameters": {"lr": 0.5}, "priority": "high"})
    assert status == 201, item

    text, offset = "", 0

    async def log_done() -> bool:
        nonlocal text, offset
        status, page = await api("GET", "items", item["id"], "logs",
                                 params={"offset": offset})
        assert status == 200, page
        assert page["next_offset"] == offset + len(page["text"].encode())
        text, offset = text + page["text"], page["next_offset"]
        return page["done"]

    await poll(log_done, "the item's log to be done")
    status, final = await api("GET", "items", item["id"])
    assert final["state"] == "succeeded", (final, text)
    assert "step 2" in text and "lr is 0.5 ✓ done" in text
    assert offset == final["log_bytes"]

    status, where = await api("GET", "items", item["id"], "notebook")
    assert status == 200, where
    executed = nbformat.read(jp_root_dir / where["path"], as_version=4)
    assert any("lr = 0.5" in c.source for c in executed.cells)

    status, body = await api("POST", "items", item["id"], "cancel")
    assert status == 409 and "already succeeded" in body["message"]

    status, again = await api("POST", "items", item["id"], "requeue")
    assert status == 201, again
    assert again["requeued_from"] == item["id"] and again["parameters"] == {"lr": 0.5}
    assert again["priority"] == "high" and again["job"] == job["ref"]

    async def listed() -> bool:
        _, listing = await api("GET", "items", params={"state": "succeeded"})
        return listing["total"] == 2

    await poll(listed, "the requeued item to succeed too")


async def test_running_item_is_cancelled_over_rest(api: Api, jp_root_dir: Path,
                                                   runs_agent: Any) -> None:
    write_notebook(jp_root_dir, "slow.ipynb", [
        "import time\nprint('started', flush=True)\ntime.sleep(60)"])
    await api("POST", "jobs", body={"path": "slow.ipynb"})
    _, item = await api("POST", "items", body={"job": "slow"})

    async def started() -> bool:
        _, page = await api("GET", "items", item["id"], "logs")
        return "started" in page["text"]

    await poll(started, "the slow item to start")
    status, cancelling = await api("POST", "items", item["id"], "cancel")
    assert status == 200 and cancelling["cancel_requested"]

    async def cancelled() -> bool:
        _, shown = await api("GET", "items", item["id"])
        return shown["state"] == "cancelled"

    await poll(cancelled, "the running item to be cancelled", timeout=60)
    _, page = await api("GET", "items", item["id"], "logs", params={"offset": 0})
    assert page["done"] and "started" in page["text"]
