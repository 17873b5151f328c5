"""Row 4: ``${VAR}`` in a queue template no longer reads the server's or agent's environment.

Only names the agent's policy lists (LaunchConfig.template_env) expand, on the agent; a
server checking a queue never reads its own environment; a refused name is an error that
shows no value; and on Kubernetes a name that looks like a secret never goes into a
manifest, even when listed.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch_jupyter.api import Launch

from ..conftest import run_to_end, write_script
from ..kubernetes.cluster import ClusterServer, Controller, succeed
from ..kubernetes.conftest import make_queue
from .conftest import Api, jobs_of

SECRET = f"s3cr3t-{secrets.token_hex(12)}"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """The same secret in the server's and the agent's environment (one process here)."""
    monkeypatch.setenv("MY_SERVER_SECRET", SECRET)
    monkeypatch.setenv("MY_API_TOKEN", SECRET)
    return SECRET


@pytest.fixture
def server_log() -> Iterator[list[str]]:
    """Every record any logger writes while the test runs (the server's own included)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in
               ("ServerApp", "tornado.access", "tornado.application", "tornado.general"))]
    for logger in loggers:
        logger.addHandler(handler)
    yield lines
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.mark.parametrize(("runner", "template"), [
    ("docker", {"gpus": "${MY_SERVER_SECRET}"}),
    ("docker", {"cpus": "x${MY_SERVER_SECRET}"}),
    ("kubernetes", {"namespace": "${MY_SERVER_SECRET}"}),
    ("kubernetes", {"gpus": {"nested": ["${MY_SERVER_SECRET}"]}}),
])
async def test_a_rest_400_and_the_server_log_never_hold_an_environment_value(
        api: Api, secret_env: str, server_log: list[str], runner: str,
        template: dict) -> None:
    config = {"image": "python:3.11-slim", "template": template}
    status, body = await api("POST", "queues", body={"name": "leak", "runner": runner,
                                                     "config": config})
    assert status == 400, body
    assert "${MY_SERVER_SECRET}" in json.dumps(body)  # the text as written, at most
    assert secret_env not in json.dumps(body)
    assert not [line for line in server_log if secret_env in line]


async def test_a_created_queue_keeps_the_placeholder_not_the_servers_value(
        api: Api, secret_env: str, server_log: list[str]) -> None:
    status, queue = await api("POST", "queues", body={
        "name": "kept", "runner": "kubernetes",
        "config": {"image": "python:3.11-slim", "template": {"labels": {
            "owner": "${MY_SERVER_SECRET}"}}}})
    assert status == 201, queue
    assert queue["config"]["template"]["labels"]["owner"] == "${MY_SERVER_SECRET}"
    assert secret_env not in json.dumps(queue)
    assert not [line for line in server_log if secret_env in line]


def test_an_agent_secret_never_reaches_the_job_manifest(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller,
        secret_env: str, caplog: pytest.LogCaptureFixture) -> None:
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    queue = make_queue(client, template={"env": {"DB": "${MY_API_TOKEN}"}})
    # The default policy: no environment variable at all.
    refused = run_to_end(client, client.submit(ref, queue=queue), queues=[queue], timeout=60)
    assert refused.state == "failed"
    message = refused.info()["error"]["message"]
    assert "${MY_API_TOKEN}" in message and "LaunchConfig.template_env" in message
    # Listed by the policy, but it looks like a secret: still refused on Kubernetes.
    client.config.template_env = ["MY_API_TOKEN"]
    listed = run_to_end(client, client.submit(ref, queue=queue), queues=[queue], timeout=60)
    assert listed.state == "failed"
    assert "looks like a secret" in listed.info()["error"]["message"]
    assert "secretKeyRef" in listed.info()["error"]["message"]
    for item in (refused, listed):
        assert jobs_of(cluster, item.id) == []
        assert secret_env not in json.dumps(item.info()) + client.logs(item.id)[0]
    assert not [b for _p, b in cluster.cluster.created if secret_env in json.dumps(b)]
    assert secret_env not in caplog.text


def test_a_listed_plain_variable_expands_on_the_agent_only(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_BUCKET", "s3://team-bucket")
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    queue = make_queue(client, template={"env": {"BUCKET": "${TEAM_BUCKET}/{{run}}"}},
                       config={"variables": {"run": {"type": "string", "default": "r1"}}})
    assert client.queue(queue)["config"]["template"]["env"]["BUCKET"] == \
        "${TEAM_BUCKET}/{{run}}"
    client.config.template_env = ["TEAM_BUCKET"]
    controller.scenarios.append(succeed())
    # A submitter's value is pasted as text: its ${...} is never expanded.
    item = client.submit(ref, queue=queue, template_values={"run": "${TEAM_BUCKET}"})
    assert run_to_end(client, item, queues=[queue], timeout=60).state == "succeeded"
    [job] = jobs_of(cluster, item.id)
    env = {e["name"]: e.get("value") for e in
           job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BUCKET"] == "s3://team-bucket/${TEAM_BUCKET}"


def test_an_allowed_value_is_cut_from_a_refusal(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from launch_jupyter.runners.docker import container_options
    from launch_jupyter.runners.policy import AgentPolicy
    from launch_jupyter.runners.templates import render

    monkeypatch.setenv("GPU_COUNT", "many-gpus-please")
    policy = AgentPolicy(template_env=("GPU_COUNT",))
    template = render({"gpus": "${GPU_COUNT}"}, {}, {}, policy.template_environment("docker"))
    with pytest.raises(Exception) as err:
        container_options(template, {})
    assert "many-gpus-please" in str(err.value)  # what the check itself says...
    assert "many-gpus-please" not in policy.redact(str(err.value))  # ...the agent records
    assert "${GPU_COUNT}" in policy.redact(str(err.value))
