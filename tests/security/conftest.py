"""Attacks on the agent's host (security issue #13), run against the real parts: the
Kubernetes emulator, a real dockerd, a Jupyter server on loopback, real tar archives.

Queues "planted" here go into the store without the create-time checks, as a queue made by an
older version or written straight into a shared store would: the agent's own policy is the
fence that must hold then.
"""

from __future__ import annotations

import secrets
from typing import Any

from launch_jupyter.api import Launch

from ..docker.conftest import docker_client, docker_launch, shared_dir  # noqa: F401
from ..kubernetes.conftest import cluster, controller, jobs_of  # noqa: F401
from ..server.conftest import *  # noqa: F403 - a Jupyter server on loopback (api, manager)


def plant_queue(client: Launch, runner: str, config: dict, max_attempts: int = 1) -> str:
    """A queue written straight into the store (no create-time checks)."""
    name = f"planted-{secrets.token_hex(3)}"
    client.store.create_queue(name, runner=runner, max_attempts=max_attempts, config=config)
    return name


def plant_item(client: Launch, queue: str, ref: str, template_values: dict | None = None
               ) -> Any:
    """An item written straight into the store (no submit-time checks); its handle."""
    row = client.store.submit(job=client.job(ref), queue=queue, overrides={}, parameters={},
                              template_values=template_values or {})
    return client.item(row["id"])
