"""A real Docker engine for the docker runner tests (scripts/docker.sh starts one).

``DOCKER_HOST`` names the engine and ``LAUNCH_JUPYTER_TEST_DOCKER_BASE`` the base image
(debootstrap'd Debian with python3, nbclient and ipykernel: nothing can be pulled here).
Without them the tests skip, or fail under CI=true. Every container and image a test makes
is removed at its end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.runners.build import repository_name

from ..conftest import require_service

SHARED_ROOT = "/var/tmp"  # where shared_dir makes its folders
BASE_IMAGE = os.environ.get("LAUNCH_JUPYTER_TEST_DOCKER_BASE",
                            "launch-jupyter-test-base:bookworm")


@pytest.fixture(autouse=True)
def docker_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test agents' own policy (set before the client reads its config): the host
    network (there is no bridge here) and read-write mounts of the tests' shared folders."""
    monkeypatch.setenv("LAUNCH_JUPYTER_DOCKER_NETWORKS", "host")
    monkeypatch.setenv("LAUNCH_JUPYTER_DOCKER_WRITABLE_VOLUME_PREFIXES", SHARED_ROOT)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A client of the test engine, with the base image present."""
    if not os.environ.get("DOCKER_HOST"):
        require_service("Docker", "DOCKER_HOST is not set (scripts/test.sh starts dockerd)")
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as err:
        require_service("Docker", f"no engine answers at {os.environ['DOCKER_HOST']}: {err}")
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        require_service("Docker", f"the base image {BASE_IMAGE} is missing "
                                  "(scripts/docker.sh imports it from a debootstrap rootfs)")
    yield client
    client.close()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder both the test and the container (a non-root user) can write."""
    path = Path(tempfile.mkdtemp(prefix="launch-jupyter-test-", dir=SHARED_ROOT))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def docker_launch(client: Launch, docker_client: Any) -> Iterator[Launch]:
    """The test's client; its containers and images are removed at the end."""
    yield client
    ours = {item["id"] for item in client.items()}
    for container in docker_client.containers.list(
            all=True, filters={"label": "launch-jupyter.item"}, ignore_removed=True):
        if container.labels.get("launch-jupyter.item") in ours:
            container.remove(force=True)
    repos = {repository_name(job.name) for job in client.jobs()}
    for image in docker_client.images.list():
        # also registry-prefixed tags (127.0.0.1:5055/launch-jupyter/NAME:...)
        if any(tag.rpartition(":")[0].endswith(repo) for tag in image.tags for repo in repos):
            docker_client.images.remove(image.id, force=True)


def make_queue(client: Launch, *, template: dict | None = None, admin: dict | None = None,
               variables: dict | None = None, timeout: float | None = None) -> str:
    """A docker queue on the test base image, on the host network (no bridge here)."""
    name = f"dock-{secrets.token_hex(3)}"
    config = {
        "base_image": BASE_IMAGE,
        "template": {"network": "host", **(template or {})},
        "admin": {"allow_host_network": True, **(admin or {})},
        "variables": variables or {},
    }
    client.create_queue(name, runner="docker", config=config, timeout=timeout)
    return name


def unique_name(stem: str) -> str:
    """A job name of this test alone, so its image is its own."""
    return f"{stem}-{secrets.token_hex(3)}"
