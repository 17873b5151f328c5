"""HTTP semantics (security row 10): GET never writes; requeue honours ``Idempotency-Key``."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import nbformat
from jupyter_server.auth import Authorizer

from launch_jupyter.store import CANCELLED, SUCCEEDED

from ..conftest import write_notebook
from .conftest import Api


class ReadOnly(Authorizer):
    """A user who may look at everything and change nothing."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return action == "read"


def files_under(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its modification time (ns)."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns
            for p in root.rglob("*") if p.is_file()}


def finished_with_notebook(manager: Any, jp_root_dir: Path, executed: Path) -> str:
    """An item that succeeded with ``executed`` (outside the root dir) as its notebook."""
    store = manager.store
    write_notebook(jp_root_dir, "nb.ipynb", ["print(1)"])
    job = manager.create_job("nb.ipynb")
    item = manager.submit(job["ref"])
    claimed = store.claim("local", "agent-1", 30)
    assert claimed["id"] == item["id"]
    outputs = [{"name": executed.name, "path": str(executed), "size": executed.stat().st_size,
                "kind": "notebook"}]
    assert store.finish(item["id"], "agent-1", SUCCEEDED, exit_code=0, outputs=outputs)
    return item["id"]


async def test_get_notebook_never_writes_and_post_copies(
    jp_serverapp: Any, api: Api, manager: Any, jp_root_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "runs" / "executed"
    outside.mkdir(parents=True)
    executed = write_notebook(outside, "nb.ipynb", ["print('ran')"])
    item_id = finished_with_notebook(manager, jp_root_dir, executed)
    before = files_under(jp_root_dir)

    status, body = await api("GET", "items", item_id, "notebook")
    assert status == 409, body
    assert "POST" in body["message"] and item_id in body["message"]
    assert files_under(jp_root_dir) == before

    # A read-only user: GET writes nothing, POST (which would) is refused.
    full = jp_serverapp.web_app.settings["authorizer"]
    jp_serverapp.web_app.settings["authorizer"] = ReadOnly(
        identity_provider=jp_serverapp.identity_provider)
    assert (await api("GET", "items", item_id, "notebook"))[0] == 409
    assert (await api("POST", "items", item_id, "notebook"))[0] == 403
    assert files_under(jp_root_dir) == before
    jp_serverapp.web_app.settings["authorizer"] = full

    status, where = await api("POST", "items", item_id, "notebook")
    assert status == 200, where
    assert where["path"] == f"launch-runs/{item_id}/nb.ipynb"
    copy = jp_root_dir / where["path"]
    assert nbformat.read(copy, as_version=4).cells[0].source == "print('ran')"
    written = files_under(jp_root_dir)
    # Now a GET finds the copy and answers its path, still writing nothing.
    status, again = await api("GET", "items", item_id, "notebook")
    assert status == 200 and again == where
    assert files_under(jp_root_dir) == written


async def test_post_notebook_never_writes_through_a_planted_link(
    api: Api, manager: Any, jp_root_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "runs").mkdir()
    executed = write_notebook(tmp_path / "runs", "nb.ipynb", ["print('ran')"])
    item_id = finished_with_notebook(manager, jp_root_dir, executed)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (jp_root_dir / "launch-runs" / item_id).mkdir(parents=True)
    link = jp_root_dir / "launch-runs" / item_id / "nb.ipynb"
    link.symlink_to(victim)
    os.utime(victim, (0, 0))  # older than the run: the copy is due
    status, where = await api("POST", "items", item_id, "notebook")
    assert status == 200, where
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and "print('ran')" in link.read_text()


async def cancelled_item(api: Api, jp_root_dir: Path) -> str:
    write_notebook(jp_root_dir, "nb.ipynb", ["print(1)"])
    status, job = await api("POST", "jobs", body={"path": "nb.ipynb"})
    assert status == 201, job
    status, item = await api("POST", "items", body={"job": job["ref"]})
    status, item = await api("POST", "items", item["id"], "cancel")
    assert item["state"] == CANCELLED
    return item["id"]


async def requeue(jp_fetch: Any, item_id: str, key: str | None) -> tuple[int, dict]:
    headers = {} if key is None else {"Idempotency-Key": key}
    response = await jp_fetch("launch", "api", "items", item_id, "requeue", method="POST",
                              body="{}", headers=headers, raise_error=False)
    return response.code, json.loads(response.body)


async def made_from(api: Api, item_id: str) -> list[str]:
    _, listing = await api("GET", "items")
    return sorted(i["id"] for i in listing["items"] if i["requeued_from"] == item_id)


async def test_three_concurrent_requeues_with_one_key_make_one_item(
    api: Api, jp_fetch: Any, jp_root_dir: Path
) -> None:
    item_id = await cancelled_item(api, jp_root_dir)
    answers = await asyncio.gather(*(requeue(jp_fetch, item_id, "click-1") for _ in range(3)))
    assert [status for status, _ in answers] == [201, 201, 201], answers
    ids = {body["id"] for _, body in answers}
    assert len(ids) == 1
    assert await made_from(api, item_id) == sorted(ids)


async def test_requeues_with_different_keys_or_none_make_separate_items(
    api: Api, jp_fetch: Any, jp_root_dir: Path
) -> None:
    item_id = await cancelled_item(api, jp_root_dir)
    answers = await asyncio.gather(*(requeue(jp_fetch, item_id, f"click-{n}")
                                     for n in range(3)))
    answers += [await requeue(jp_fetch, item_id, None) for _ in range(2)]
    ids = {body["id"] for _, body in answers}
    assert len(ids) == 5
    assert await made_from(api, item_id) == sorted(ids)


async def test_a_malformed_idempotency_key_is_400_and_makes_nothing(
    api: Api, jp_fetch: Any, jp_root_dir: Path
) -> None:
    item_id = await cancelled_item(api, jp_root_dir)
    for key in ("x" * 300, "a b"):
        status, body = await requeue(jp_fetch, item_id, key)
        assert status == 400, body
        assert "idempotency key" in body["message"]
    assert await made_from(api, item_id) == []
