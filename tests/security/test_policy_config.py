"""The agent's policy comes from the agent's own config and environment, never the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.config import LaunchConfig
from launch_jupyter.runners.policy import AgentPolicy

from ..conftest import write_script
from .conftest import plant_queue


def test_the_default_policy_is_the_safe_one(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path))
    assert AgentPolicy.from_config(LaunchConfig.load()) == AgentPolicy()
    assert AgentPolicy() == AgentPolicy(
        kubeconfig="", kubernetes_context="", kubernetes_namespaces=(),
        kubernetes_service_accounts=(), pod_security="restricted", docker_volume_prefixes=(),
        docker_writable_volume_prefixes=(), docker_networks=(), template_env=())


def test_the_policy_is_read_from_the_environment_and_the_config_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "jupyter_launch_config.py").write_text(
        'c.LaunchConfig.pod_security = "baseline"\n'
        'c.LaunchConfig.docker_volume_prefixes = ["/datasets"]\n')
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path))
    monkeypatch.setenv("LAUNCH_JUPYTER_DOCKER_NETWORKS", "host, team-net")
    monkeypatch.setenv("LAUNCH_JUPYTER_KUBERNETES_NAMESPACES", '["ml", "ml-batch"]')
    policy = AgentPolicy.from_config(LaunchConfig.load())
    assert policy.pod_security == "baseline"
    assert policy.docker_volume_prefixes == ("/datasets",)
    assert policy.docker_networks == ("host", "team-net")
    assert policy.kubernetes_namespaces == ("ml", "ml-batch")
    monkeypatch.setenv("LAUNCH_JUPYTER_POD_SECURITY", "anything-goes")
    with pytest.raises(Exception, match="pod_security"):
        LaunchConfig.load()


def test_nothing_in_a_queue_config_widens_the_policy(client: Launch, tmp_path: Path) -> None:
    """A queue planted with policy-looking keys changes nothing: its item is still refused."""
    queue = plant_queue(client, "docker", {
        "template": {"network": "host"},
        "admin": {"allow_host_network": True, "docker_networks": ["host"],
                  "pod_security": "privileged"},
        "policy": {"docker_networks": ["host"]}})
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    from launch_jupyter.runners.base import RunRequest
    from launch_jupyter.runners.docker import DockerRunner

    runner = DockerRunner(client=object())  # refusals come before any engine call
    runner.policy = AgentPolicy.from_config(client.config)
    job = client.job(ref)
    request = RunRequest(item={"id": "01X", "queue": queue, "parameters": {}}, job=job,
                         files=client.store.job_files(job.id), token="t", attempt=1,
                         run_dir=tmp_path / "run", store_url="", lease_ttl=30,
                         cancel_grace=5, max_log_bytes=1000, agent_id="a",
                         queue_config=client.queue(queue)["config"])
    with pytest.raises(Exception, match="unknown admin option"):
        runner.start(request)
    request.queue_config = {"template": {"network": "host"},
                            "admin": {"allow_host_network": True}}
    with pytest.raises(Exception, match="network host needs LaunchConfig.docker_networks"):
        runner.start(request)
