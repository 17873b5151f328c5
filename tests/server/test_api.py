"""Every REST route against a real Jupyter server and a real SQLite store: happy paths,
400 bodies with messages, 404 for unknown names and ids, 409 for conflicts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from traitlets.config import Config

from launch_jupyter.api import Launch
from launch_jupyter.errors import ConflictError
from launch_jupyter.server import launch_config
from launch_jupyter.server.manager import complete_utf8_prefix

from ..conftest import write_notebook
from .conftest import Api


@pytest.fixture
def notebook(jp_root_dir: Path) -> str:
    """A notebook with a parameters cell under the server's root dir; its relative path."""
    (jp_root_dir / "work").mkdir()
    write_notebook(jp_root_dir / "work", "train.ipynb", ["print('lr is', lr)"],
                   parameters="lr = 0.01\nepochs = 3")
    return "work/train.ipynb"


def assert_error(status: int, body: dict, expected: int, *words: str) -> None:
    """The answer is ``expected`` with a ``message`` that mentions every one of ``words``."""
    assert status == expected, body
    assert isinstance(body.get("message"), str) and body["message"], body
    for word in words:
        assert word in body["message"], body["message"]


# -- queues -----------------------------------------------------------------------------------


async def test_queues_are_created_listed_and_shown(api: Api) -> None:
    status, queue = await api("POST", "queues", body={
        "name": "gpu", "runner": "local", "max_attempts": 2, "timeout": 60,
        "config": {"description": "big GPUs"}})
    assert status == 201
    assert queue["name"] == "gpu" and queue["max_attempts"] == 2 and queue["timeout"] == 60
    assert queue["config"] == {"description": "big GPUs"} and queue["counts"]["queued"] == 0

    status, queues = await api("GET", "queues")
    assert status == 200
    assert [q["name"] for q in queues] == ["gpu", "local"]

    status, shown = await api("GET", "queues", "gpu")
    assert status == 200 and shown == queue


async def test_creating_an_existing_queue_conflicts(api: Api) -> None:
    assert (await api("POST", "queues", body={"name": "cpu"}))[0] == 201
    status, body = await api("POST", "queues", body={"name": "cpu"})
    assert_error(status, body, 409, "already exists")


async def test_unknown_queue_is_404(api: Api) -> None:
    status, body = await api("GET", "queues", "nope")
    assert_error(status, body, 404, "'nope'", "does not exist")


@pytest.mark.parametrize(("raw", "words"), [
    ("{not json", ["Invalid JSON"]),
    ('["gpu"]', ["must be an object"]),
    ("", ["required fields: name"]),
    ('{"runner": "local"}', ["Missing field", "name"]),
    ('{"name": "gpu", "colour": "red"}', ["Unknown field", "colour"]),
    ('{"name": 3}', ["'name'", "must be a string"]),
    ('{"name": "gpu", "max_attempts": "3"}', ["'max_attempts'", "integer"]),
    ('{"name": "gpu", "max_attempts": true}', ["'max_attempts'", "integer"]),
    ('{"name": "gpu", "max_attempts": 0}', ["at least 1"]),
    ('{"name": "gpu", "timeout": -1}', ["timeout", "positive"]),
    ('{"name": "gpu", "config": [1]}', ["'config'", "an object"]),
    ('{"name": "gpu", "config": {"colour": "red"}}', ["queue config", "colour"]),
    ('{"name": "gpu", "config": {"template": {"gpus": "{{gpus}}"}}}', ["undeclared", "gpus"]),
    ('{"name": "gpu", "runner": "slurm"}', ["unknown runner", "slurm"]),
    ('{"name": "no spaces allowed"}', ["no spaces allowed"]),
])
async def test_bad_queue_bodies_are_400_with_a_message(api: Api, raw: str,
                                                       words: list[str]) -> None:
    status, body = await api("POST", "queues", raw=raw)
    assert_error(status, body, 400, *words)
    assert [q["name"] for q in (await api("GET", "queues"))[1]] == ["local"]


# -- jobs -------------------------------------------------------------------------------------


async def test_job_is_captured_from_a_notebook_under_the_root_dir(api: Api, notebook: str,
                                                                 jp_root_dir: Path) -> None:
    status, job = await api("POST", "jobs", body={"path": notebook, "alias": "best"})
    assert status == 201, job
    assert job["ref"] == "train:v1" and job["mode"] == "notebook"
    assert job["parameters"] == {"lr": 0.01, "epochs": 3} and "best" in job["aliases"]
    assert job["source_path"] == str(jp_root_dir / notebook)

    write_notebook(jp_root_dir / "work", "train.ipynb", ["print('changed', lr)"],
                   parameters="lr = 0.02")
    status, job2 = await api("POST", "jobs", body={"path": notebook, "name": "train"})
    assert status == 201 and job2["ref"] == "train:v2"

    status, jobs = await api("GET", "jobs")
    assert status == 200 and [j["ref"] for j in jobs] == ["train:v2"]
    status, versions = await api("GET", "jobs", "train")
    assert status == 200 and [j["ref"] for j in versions] == ["train:v1", "train:v2"]


async def test_job_include_patterns_travel_with_the_job(api: Api, notebook: str,
                                                       jp_root_dir: Path) -> None:
    (jp_root_dir / "work" / "data.csv").write_text("a,b\n1,2\n")
    status, job = await api("POST", "jobs", body={"path": notebook, "include": ["*.csv"]})
    assert status == 201, job
    assert "data.csv" in job["files"]


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.ipynb", "work/../../outside.ipynb",
                                  "~/outside.ipynb", "link/outside.ipynb"])
async def test_job_paths_outside_the_root_dir_are_refused(api: Api, jp_root_dir: Path,
                                                          path: str) -> None:
    outside = jp_root_dir.parent / "outside"
    outside.mkdir()
    write_notebook(outside, "outside.ipynb", ["print(1)"])
    write_notebook(jp_root_dir.parent, "outside.ipynb", ["print(1)"])
    os.symlink(outside, jp_root_dir / "link")
    status, body = await api("POST", "jobs", body={"path": path})
    assert status == 400, body
    assert "root dir" in body["message"]
    assert (await api("GET", "jobs"))[1] == []


async def test_job_include_cannot_climb_out_of_the_notebook_folder(api: Api,
                                                                   notebook: str) -> None:
    status, body = await api("POST", "jobs", body={"path": notebook, "include": ["../*"]})
    assert_error(status, body, 400, "outside")


async def test_job_for_a_missing_file_is_404(api: Api) -> None:
    status, body = await api("POST", "jobs", body={"path": "work/missing.ipynb"})
    assert_error(status, body, 404, "work/missing.ipynb")


@pytest.mark.parametrize(("raw", "words"), [
    ("{}", ["Missing field", "path"]),
    ('{"path": 1}', ["'path'", "string"]),
    ('{"path": "work/train.ipynb", "include": "*.csv"}', ["'include'", "list"]),
    ('{"path": "work/train.ipynb", "include": [1]}', ["'include'", "strings"]),
    ('{"path": "work/train.ipynb", "kernel": "python3"}', ["Unknown field", "kernel"]),
    ('{"path": "work/train.ipynb", "name": "Bad Name!"}', ["Bad Name!"]),
    ('{"path": "work/train.ipynb", "name": "50%s"}', ["50%s"]),
    ('{"path": "work"}', ["directory"]),
    ('{"path": ".hidden.ipynb"}', ["hidden"]),
    ('{"path": ""}', ["empty"]),
])
async def test_bad_job_bodies_are_400_with_a_message(api: Api, notebook: str, raw: str,
                                                     words: list[str]) -> None:
    status, body = await api("POST", "jobs", raw=raw)
    assert_error(status, body, 400, *words)


async def test_a_file_that_is_not_a_notebook_is_400(api: Api, jp_root_dir: Path) -> None:
    (jp_root_dir / "broken.ipynb").write_text('{"cells": [')
    status, body = await api("POST", "jobs", body={"path": "broken.ipynb"})
    assert_error(status, body, 400, "not valid JSON")


async def test_unknown_job_is_404(api: Api) -> None:
    status, body = await api("GET", "jobs", "nope")
    assert_error(status, body, 404, "'nope'", "does not exist")


# -- items ------------------------------------------------------------------------------------


async def test_items_are_submitted_listed_filtered_and_shown(api: Api, notebook: str,
                                                            client: Launch) -> None:
    await api("POST", "jobs", body={"path": notebook})
    await api("POST", "queues", body={"name": "gpu"})
    status, item = await api("POST", "items", body={
        "job": "train", "queue": "gpu", "parameters": {"lr": 0.5}, "priority": "high",
        "template_values": {}})
    assert status == 201, item
    assert item["state"] == "queued" and item["job"] == "train:v1" and item["queue"] == "gpu"
    assert item["parameters"] == {"lr": 0.5, "epochs": 3} and item["priority"] == "high"
    status, other = await api("POST", "items", body={"job": "train:v1"})
    assert status == 201 and other["queue"] == "local" and other["priority"] == "medium"

    status, shown = await api("GET", "items", item["id"])
    assert status == 200
    assert shown == client.item(item["id"]).info()  # the `show --json` object

    status, listing = await api("GET", "items")
    assert status == 200 and listing["total"] == 2
    assert [i["id"] for i in listing["items"]] == [other["id"], item["id"]]
    status, listing = await api("GET", "items", params={"queue": "gpu"})
    assert [i["id"] for i in listing["items"]] == [item["id"]] and listing["total"] == 1
    status, listing = await api("GET", "items", params={"limit": 1, "offset": 1})
    assert [i["id"] for i in listing["items"]] == [item["id"]] and listing["total"] == 2
    client.cancel(other["id"])
    status, listing = await api("GET", "items", params={"state": "cancelled"})
    assert [i["id"] for i in listing["items"]] == [other["id"]] and listing["total"] == 1
    status, listing = await api("GET", "items", params={"state": "queued,cancelled"})
    assert listing["total"] == 2


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"job": "train", "parameters": {"lr": "fast"}}, 400, ["lr"]),
    ({"job": "train", "parameters": {"momentum": 0.9}}, 400, ["momentum"]),
    ({"job": "train", "parameters": [1]}, 400, ["'parameters'", "object"]),
    ({"job": "train", "priority": "urgent"}, 400, ["urgent"]),
    ({"job": "train", "priority": True}, 400, ["'priority'"]),
    ({"job": "train", "template_values": {"gpus": 2}}, 400,
     ["gpus", "declares no template variables"]),
    ({"job": "train", "template_values": [2]}, 400, ["'template_values'", "object"]),
    ({"job": "train", "retries": 5}, 400, ["Unknown field", "retries"]),
    ({"job": "train", "timeout": "soon"}, 400, ["timeout", "must be a number"]),
    ({"queue": "local"}, 400, ["Missing field", "job"]),
    ({"job": "nope"}, 404, ["'nope'"]),
    ({"job": "train:v9"}, 404, ["v9"]),
    ({"job": "train", "queue": "nope"}, 404, ["'nope'"]),
])
async def test_bad_submissions_are_refused_with_a_message(api: Api, notebook: str, body: dict,
                                                         status: int, words: list[str]) -> None:
    await api("POST", "jobs", body={"path": notebook})
    got, answer = await api("POST", "items", body=body)
    assert_error(got, answer, status, *words)
    assert (await api("GET", "items"))[1]["total"] == 0


async def test_submit_takes_a_job_ref_never_a_server_path(api: Api, jp_root_dir: Path) -> None:
    # POST jobs confines capture to the root dir; POST items must not capture at all.
    outside = jp_root_dir.parent / "outside"
    outside.mkdir()
    write_notebook(outside, "secret.ipynb", ["print(1)"])
    write_notebook(jp_root_dir, "train.ipynb", ["print(1)"])
    for path in (str(outside / "secret.ipynb"), str(jp_root_dir / "train.ipynb")):
        got, answer = await api("POST", "items", body={"job": path})
        assert_error(got, answer, 400, "invalid job name")
    assert (await api("GET", "jobs"))[1] == []
    assert (await api("GET", "items"))[1]["total"] == 0


GPU_QUEUE = {"name": "gpu", "config": {
    "template": {"gpus": "{{gpus}}"},
    "variables": {"gpus": {"type": "integer", "minimum": 0, "maximum": 4, "default": 0}}}}


async def test_template_values_are_validated_against_the_queue_variables(
    api: Api, notebook: str
) -> None:
    await api("POST", "jobs", body={"path": notebook})
    status, queue = await api("POST", "queues", body=GPU_QUEUE)
    assert status == 201, queue
    status, item = await api("POST", "items", body={"job": "train", "queue": "gpu",
                                                    "template_values": {"gpus": 2}})
    assert status == 201 and item["template_values"] == {"gpus": 2}
    status, item = await api("POST", "items", body={"job": "train", "queue": "gpu"})
    assert status == 201 and item["template_values"] == {"gpus": 0}  # the default
    for values, words in (({"gpus": 9}, ["gpus", "<= 4"]), ({"gpus": "two"}, ["integer"]),
                          ({"cpus": 1}, ["cpus", "gpus"])):
        status, body = await api("POST", "items", body={"job": "train", "queue": "gpu",
                                                        "template_values": values})
        assert_error(status, body, 400, *words)
    assert (await api("GET", "items"))[1]["total"] == 2


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"state": "sleeping"}, 400, ["sleeping"]),
    ({"limit": "ten"}, 400, ["'limit'", "integer"]),
    ({"limit": "-1"}, 400, ["limit"]),
    ({"limit": "100000"}, 400, ["limit"]),
    ({"offset": "-3"}, 400, ["offset"]),
    ({"queue": "nope"}, 404, ["'nope'"]),
])
async def test_bad_item_queries_are_refused(api: Api, params: dict, status: int,
                                           words: list[str]) -> None:
    got, answer = await api("GET", "items", params=params)
    assert_error(got, answer, status, *words)


async def test_cancel_then_requeue(api: Api, notebook: str) -> None:
    await api("POST", "jobs", body={"path": notebook})
    _, item = await api("POST", "items", body={"job": "train", "parameters": {"epochs": 5}})

    status, body = await api("POST", "items", item["id"], "requeue")
    assert_error(status, body, 409, "queued")  # unfinished: nothing to requeue yet

    status, cancelled = await api("POST", "items", item["id"], "cancel")
    assert status == 200 and cancelled["state"] == "cancelled"
    status, body = await api("POST", "items", item["id"], "cancel")
    assert_error(status, body, 409, "already cancelled")

    status, new = await api("POST", "items", item["id"], "requeue")
    assert status == 201, new
    assert new["requeued_from"] == item["id"] and new["id"] != item["id"]
    assert new["state"] == "queued" and new["parameters"] == item["parameters"]
    assert (await api("GET", "items", item["id"]))[1]["state"] == "cancelled"


async def test_cancel_with_a_body_is_400(api: Api, notebook: str) -> None:
    await api("POST", "jobs", body={"path": notebook})
    _, item = await api("POST", "items", body={"job": "train"})
    status, body = await api("POST", "items", item["id"], "cancel", body={"force": True})
    assert_error(status, body, 400, "force")


@pytest.mark.parametrize(("method", "suffix"), [
    ("GET", ()), ("POST", ("cancel",)), ("POST", ("requeue",)), ("GET", ("logs",)),
    ("GET", ("notebook",)),
])
async def test_unknown_item_is_404(api: Api, method: str, suffix: tuple[str, ...]) -> None:
    status, body = await api(method, "items", "01NOSUCHITEM", *suffix)
    assert_error(status, body, 404, "01NOSUCHITEM")


# -- logs, notebook, agents -------------------------------------------------------------------


async def test_logs_of_a_queued_item_are_empty_and_not_done(api: Api, notebook: str) -> None:
    await api("POST", "jobs", body={"path": notebook})
    _, item = await api("POST", "items", body={"job": "train"})
    status, logs = await api("GET", "items", item["id"], "logs")
    assert status == 200 and logs == {"text": "", "next_offset": 0, "done": False}
    await api("POST", "items", item["id"], "cancel")
    status, logs = await api("GET", "items", item["id"], "logs", params={"offset": 0})
    assert logs == {"text": "", "next_offset": 0, "done": True}


@pytest.mark.parametrize("offset", ["-1", "abc", "1.5"])
async def test_bad_log_offsets_are_400(api: Api, notebook: str, offset: str) -> None:
    await api("POST", "jobs", body={"path": notebook})
    _, item = await api("POST", "items", body={"job": "train"})
    status, body = await api("GET", "items", item["id"], "logs", params={"offset": offset})
    assert_error(status, body, 400, "offset")


async def test_notebook_of_an_item_that_has_none_is_404(api: Api, notebook: str) -> None:
    await api("POST", "jobs", body={"path": notebook})
    _, item = await api("POST", "items", body={"job": "train"})
    status, body = await api("GET", "items", item["id"], "notebook")
    assert_error(status, body, 404, "no executed notebook")


async def test_agents_are_listed_with_heartbeats(api: Api, client: Launch) -> None:
    assert await api("GET", "agents") == (200, [])
    agent = client.agent(["local"]).start()
    try:
        status, agents = await api("GET", "agents")
    finally:
        agent.stop()
    assert status == 200 and len(agents) == 1
    assert agents[0]["queues"] == ["local"] and agents[0]["heartbeat_at"]
    assert agents[0]["heartbeat_age"] >= 0


# -- pieces -----------------------------------------------------------------------------------


def test_server_config_wins_over_the_environment(home: Path, tmp_path: Path) -> None:
    config = Config()
    config.LaunchConfig.store = f"sqlite:///{tmp_path}/server.db"
    assert launch_config(config).store == f"sqlite:///{tmp_path}/server.db"
    assert launch_config(Config()).store == f"sqlite:///{home}/launch.db"


def test_a_split_utf8_character_is_held_back() -> None:
    text = "héllo ✓".encode()
    assert complete_utf8_prefix(text) == len(text)
    assert complete_utf8_prefix(text[:-1]) == len(text) - 3  # "✓" is three bytes
    assert complete_utf8_prefix(text[:-2]) == len(text) - 3
    assert complete_utf8_prefix(text[:2]) == 1
    assert complete_utf8_prefix(b"") == 0


def test_executed_notebook_outside_the_root_is_copied_under_it(
    tmp_path: Path, store_url: str
) -> None:
    from launch_jupyter.config import LaunchConfig
    from launch_jupyter.server.manager import LaunchManager

    root = tmp_path / "root"
    root.mkdir()
    client = Launch(store_url)
    job = client.create_job(write_notebook(tmp_path, "nb.ipynb", ["print(1)"]))
    item = client.submit(job)
    client.store.claim("local", "a", 30)
    client.store.start_run(item.id, "a", "tok", 30, {})
    executed = tmp_path / "runs" / "nb.ipynb"  # outside the root, like the default data dir
    executed.parent.mkdir()
    executed.write_text((tmp_path / "nb.ipynb").read_text())
    client.store.finish(item.id, "tok", "succeeded", exit_code=0, outputs=[
        {"name": "nb.ipynb", "path": str(executed), "size": 1, "kind": "notebook"}])
    manager = LaunchManager(root, LaunchConfig.load(store=store_url))
    with pytest.raises(ConflictError, match="POST"):  # a GET only looks: it copies nothing
        manager.notebook(item.id)
    assert list(root.iterdir()) == []
    where = manager.notebook(item.id, copy=True)
    assert where["path"] == f"launch-runs/{item.id}/nb.ipynb"
    assert (root / where["path"]).read_text() == executed.read_text()
    client.close()
