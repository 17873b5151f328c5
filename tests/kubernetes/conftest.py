"""The kubernetes runner against a Kubernetes API emulator on loopback (see cluster.py).

No API server can be installed on the machines the tests run on: the tests run the runner,
unchanged, against kmock's emulator served on 127.0.0.1 and reached through a kubeconfig,
with the test playing the job controller and the kubelet.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch_jupyter.api import Launch

from .cluster import ClusterServer, Controller


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ClusterServer]:
    """The emulator, and KUBECONFIG pointing at it (context ``emulator``, namespace ``ml``:
    the agents' default policy runs Jobs in their context's namespace only)."""
    server = ClusterServer().start()
    monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path / "kubeconfig",
                                                           namespace="ml")))
    try:
        yield server
        assert server.cluster.invalid == [], "manifests the client's models refuse"
    finally:
        server.stop()


@pytest.fixture
def controller(cluster: ClusterServer) -> Iterator[Controller]:
    ctl = Controller(cluster).start()
    try:
        yield ctl
        assert ctl.errors == []
    finally:
        ctl.stop()


def make_queue(client: Launch, *, template: dict | None = None, config: dict | None = None,
               max_attempts: int = 3) -> str:
    """A kubernetes queue on a prebuilt image, namespace ``ml`` (the agent's own context)."""
    name = f"kube-{secrets.token_hex(3)}"
    client.create_queue(name, runner="kubernetes", max_attempts=max_attempts, config={
        "image": "python:3.11-slim",
        "template": {"namespace": "ml", **(template or {})},
        **(config or {}),
    })
    return name


def jobs_of(cluster: ClusterServer, item_id: str) -> list[dict]:
    """Every Job the runner created for ``item_id`` (all attempts)."""
    return [body for plural, body in cluster.cluster.created
            if plural == "jobs"
            and body["metadata"]["labels"].get("launch-jupyter.io/item") == item_id]
