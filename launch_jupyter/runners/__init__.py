"""Runners: where an item's attempt actually runs (local process, docker, kubernetes)."""

from __future__ import annotations

from ..errors import LaunchError
from .base import Run, Runner, RunRequest

__all__ = ["Run", "RunRequest", "Runner", "get_runner"]


def get_runner(name: str) -> Runner:
    """The runner registered under ``name``."""
    if name == "local":
        from .local import LocalRunner

        return LocalRunner()
    if name == "docker":
        from .docker import DockerRunner

        return DockerRunner()
    if name == "kubernetes":
        from .kubernetes import KubernetesRunner

        return KubernetesRunner()
    raise LaunchError(
        f"runner {name!r} is not available in this version of launch-jupyter; "
        "queues can use: local, docker, kubernetes"
    )
