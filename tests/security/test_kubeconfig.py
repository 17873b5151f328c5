"""Row 1: a queue template cannot choose the cluster or its credentials.

The attack: a kubeconfig uploaded through the server whose user runs ``users[].user.exec``;
a queue template naming it made every agent run that command when it started. Now
``kubeconfig``/``context`` are refused at queue create, and an agent never reads them even
from a queue planted in the store: it uses its own KUBECONFIG (or in-cluster config).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError

from ..conftest import run_to_end, write_script
from ..kubernetes.cluster import ClusterServer
from .conftest import jobs_of, plant_item, plant_queue


def exec_kubeconfig(path: Path, server: str, marker: Path) -> Path:
    """A kubeconfig whose user's credential plugin would create ``marker``."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "evil",
        "clusters": [{"name": "evil", "cluster": {"server": server}}],
        "users": [{"name": "evil", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "sh",
            "args": ["-c", f"touch {marker}; echo '{{}}'"]}}}],
        "contexts": [{"name": "evil", "context": {"cluster": "evil", "user": "evil"}}],
    }))
    return path


@pytest.mark.parametrize("template", [
    {"kubeconfig": "{kubeconfig}"},
    {"kubeconfig": "{kubeconfig}", "context": "evil"},
    {"context": "evil"},
    {"in_cluster": True},
])
def test_queue_create_refuses_a_kubeconfig_or_context_in_the_template(
        client: Launch, tmp_path: Path, cluster: ClusterServer, template: dict) -> None:
    marker = tmp_path / "ran"
    kubeconfig = exec_kubeconfig(tmp_path / "uploaded.yaml", cluster.url, marker)
    template = {k: str(v).format(kubeconfig=kubeconfig) if isinstance(v, str) else v
                for k, v in template.items()}
    before = client.queues()
    with pytest.raises(LaunchError, match=r"is refused: the cluster and its credentials are "
                                          r"the agent's own.*LaunchConfig\."):
        client.create_queue("evil", runner="kubernetes",
                            config={"image": "python:3.11-slim", "template": template})
    assert client.queues() == before
    assert not marker.exists()


def test_an_agent_never_runs_a_planted_kubeconfigs_exec_command(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: object) -> None:
    marker = tmp_path / "ran"
    kubeconfig = exec_kubeconfig(tmp_path / "uploaded.yaml", cluster.url, marker)
    queue = plant_queue(client, "kubernetes", {
        "image": "python:3.11-slim",
        "template": {"namespace": "ml", "kubeconfig": str(kubeconfig), "context": "evil"}})
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    item = plant_item(client, queue, ref)
    done = run_to_end(client, item, queues=[queue], timeout=60)
    assert done.state == "failed"
    assert "template kubeconfig is refused" in done.info()["error"]["message"]
    assert not marker.exists(), "the planted kubeconfig's exec command ran"
    assert jobs_of(cluster, item.id) == []
    # The agent's own cluster still works for honest queues on the same agent.
    honest = plant_queue(client, "kubernetes", {"image": "python:3.11-slim",
                                                "template": {"namespace": "ml"}})
    from ..kubernetes.cluster import succeed

    controller.scenarios.append(succeed())  # type: ignore[attr-defined]
    ok = run_to_end(client, plant_item(client, honest, ref), queues=[honest], timeout=60)
    assert ok.state == "succeeded", ok.info()
    assert not marker.exists()


def test_the_agent_uses_its_own_context_from_its_policy(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """LaunchConfig.kubernetes_context picks the context; an unknown one serves nothing."""
    queue = plant_queue(client, "kubernetes", {"image": "python:3.11-slim",
                                               "template": {"namespace": "ml"}})
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    item = plant_item(client, queue, ref)
    client.config.kubernetes_context = "no-such-context"
    agent = client.agent([queue], until_idle=True)
    agent.run()
    assert "context 'no-such-context' is not in the kubeconfig" in \
        agent.status()["unserved"][queue]
    assert client.item(item.id).state == "queued"
