"""``/launch/api/items/{id}/outputs/{name}``: an output file is opened like the executed
notebook: only listed names, GET writes nothing, POST copies it under the root dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from launch_jupyter.store import SUCCEEDED

from ..conftest import write_notebook
from .conftest import Api
from .test_http_semantics import files_under


def finished_with_outputs(manager: Any, jp_root_dir: Path, files: list[tuple[str, Path]]) -> str:
    """An item that succeeded with ``files`` (name, path outside the root dir) as outputs."""
    write_notebook(jp_root_dir, "nb.ipynb", ["print(1)"])
    item = manager.submit(manager.create_job("nb.ipynb")["ref"])
    assert manager.store.claim("local", "agent-1", 30)["id"] == item["id"]
    outputs = [{"name": name, "path": str(path), "size": path.stat().st_size, "kind": "file"}
               for name, path in files]
    assert manager.store.finish(item["id"], "agent-1", SUCCEEDED, exit_code=0, outputs=outputs)
    return item["id"]


def output_dir(tmp_path: Path) -> Path:
    out = tmp_path / "runs" / "output"
    (out / "sub").mkdir(parents=True)
    (out / "metrics.txt").write_text("loss 0.1\n")
    (out / "sub" / "deep.csv").write_text("a,b\n1,2\n")
    (tmp_path / "runs" / "secret.txt").write_text("not an output")
    return out


async def test_get_output_writes_nothing_and_post_copies_it_under_the_root(
    api: Api, manager: Any, jp_root_dir: Path, tmp_path: Path
) -> None:
    out = output_dir(tmp_path)
    item_id = finished_with_outputs(manager, jp_root_dir, [
        ("metrics.txt", out / "metrics.txt"), ("sub/deep.csv", out / "sub" / "deep.csv")])
    before = files_under(jp_root_dir)

    status, body = await api("GET", "items", item_id, "outputs", "metrics.txt")
    assert status == 409, body
    assert "POST" in body["message"] and "metrics.txt" in body["message"]
    assert files_under(jp_root_dir) == before

    status, where = await api("POST", "items", item_id, "outputs", "metrics.txt")
    assert status == 200, where
    assert where["path"] == f"launch-runs/{item_id}/output/metrics.txt"
    assert (jp_root_dir / where["path"]).read_text() == "loss 0.1\n"
    status, where = await api("POST", "items", item_id, "outputs", "sub", "deep.csv")
    assert status == 200, where
    assert (jp_root_dir / where["path"]).read_text() == "a,b\n1,2\n"
    written = files_under(jp_root_dir)
    status, again = await api("GET", "items", item_id, "outputs", "sub", "deep.csv")
    assert status == 200 and again == where
    assert files_under(jp_root_dir) == written


async def test_only_listed_output_names_are_served(
    api: Api, manager: Any, jp_root_dir: Path, tmp_path: Path
) -> None:
    out = output_dir(tmp_path)
    item_id = finished_with_outputs(manager, jp_root_dir, [("metrics.txt", out / "metrics.txt")])
    before = files_under(jp_root_dir)
    for name in ("missing.txt", "../secret.txt", "%2e%2e%2fsecret.txt", "sub/../metrics.txt",
                 str(out / "metrics.txt").lstrip("/")):
        status, body = await api("POST", "items", item_id, "outputs", name)
        assert status in (400, 404), (name, status, body)
        if status == 404 and body:
            assert "metrics.txt" in body["message"] or "not" in body["message"].lower(), body
    status, body = await api("GET", "items", item_id, "outputs", "missing.txt")
    assert status == 404, body
    assert "'missing.txt'" in body["message"] and "'metrics.txt'" in body["message"]
    status, body = await api("GET", "items", "no-such-item", "outputs", "metrics.txt")
    assert status == 404, body
    assert files_under(jp_root_dir) == before


async def test_post_output_never_writes_through_a_planted_link(
    api: Api, manager: Any, jp_root_dir: Path, tmp_path: Path
) -> None:
    out = output_dir(tmp_path)
    item_id = finished_with_outputs(manager, jp_root_dir, [("metrics.txt", out / "metrics.txt")])
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (jp_root_dir / "launch-runs" / item_id / "output").mkdir(parents=True)
    link = jp_root_dir / "launch-runs" / item_id / "output" / "metrics.txt"
    link.symlink_to(victim)
    os.utime(victim, (0, 0))  # older than the run: the copy is due
    status, where = await api("POST", "items", item_id, "outputs", "metrics.txt")
    assert status == 200, where
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text() == "loss 0.1\n"
