"""A kubernetes queue with a `registry`: the agent builds the job's image with the docker
image builder, pushes it to the registry, and the Job runs that image (real dockerd and
registry, emulated cluster)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from launch_jupyter.api import Launch
from launch_jupyter.runners.build import USER_ID

from ..conftest import require_service, run_to_end, write_script
from ..docker.conftest import BASE_IMAGE, docker_client, docker_launch, unique_name
from .conftest import jobs_of

__all__ = ["docker_client", "docker_launch"]  # fixtures shared with the docker tests


def test_registry_queue_builds_pushes_and_runs_the_pushed_image(
        docker_launch: Launch, docker_client: Any, tmp_path: Path, cluster, controller,
) -> None:
    registry = os.environ.get("LAUNCH_JUPYTER_TEST_REGISTRY")
    if not registry:
        require_service("a Docker registry", "LAUNCH_JUPYTER_TEST_REGISTRY is not set (Debian "
                        "docker-registry on 127.0.0.1, started by scripts/docker.sh)")
    client = docker_launch
    client.create_queue("kbuild", runner="kubernetes", config={
        "registry": registry, "base_image": BASE_IMAGE,
        "template": {"namespace": "ml"}})
    path = write_script(tmp_path, "built.py", "print('in the built image')\n")
    job = client.create_job(path, name=unique_name("kbuild"))
    item = run_to_end(client, client.submit(job.ref, queue="kbuild"), queues=["kbuild"],
                      timeout=300)
    assert item.state == "succeeded", item.logs()
    [manifest] = jobs_of(cluster, item.id)
    pod = manifest["spec"]["template"]["spec"]
    image = pod["containers"][0]["image"]
    assert image.startswith(f"{registry}/launch-jupyter/kbuild-")
    assert f"pushed {image}" in item.logs()
    # The registry really has it: the engine asks the registry, not its local cache.
    assert docker_client.images.get_registry_data(image).id.startswith("sha256:")
    # The code is in the image: no ConfigMap; the image's own non-root user is enforced.
    assert not [b for p, b in cluster.cluster.created if p == "configmaps"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == USER_ID
