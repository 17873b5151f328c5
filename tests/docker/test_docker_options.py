"""The queue template -> container options allowlist (no engine needed)."""

from __future__ import annotations

import pytest

from launch_jupyter.errors import LaunchError
from launch_jupyter.runners.base import overlap as _overlap
from launch_jupyter.runners.build import default_base_image, generated_dockerfile
from launch_jupyter.runners.docker import container_options


def test_resources_pass_through_the_allowlist() -> None:
    opts = container_options({"cpus": 1.5, "memory": "2g", "shm_size": "1g", "gpus": 2,
                              "volumes": ["/data:/data:ro"], "network": "none"}, {})
    assert opts["nano_cpus"] == 1_500_000_000
    assert opts["mem_limit"] == "2g" and opts["shm_size"] == "1g"
    assert opts["volumes"] == ["/data:/data:ro"] and opts["network_mode"] == "none"
    assert opts["device_requests"][0]["Count"] == 2


@pytest.mark.parametrize("template, switch", [
    ({"privileged": True}, "allow_privileged"),
    ({"cap_add": ["SYS_ADMIN"]}, "allow_privileged"),
    ({"pid": "host"}, "allow_host_namespaces"),
    ({"ipc": "host"}, "allow_host_namespaces"),
    ({"devices": ["/dev/fuse"]}, "allow_devices"),
    ({"network": "host"}, "allow_host_network"),
])
def test_dangerous_options_are_refused_unless_the_admin_allows(template: dict,
                                                               switch: str) -> None:
    with pytest.raises(LaunchError, match=f"refused.*`{switch}: true`"):
        container_options(template, {})
    assert container_options(template, {switch: True})


@pytest.mark.parametrize("key", ["memory", "shm_size"])
def test_a_size_docker_cannot_read_is_refused_by_name(key: str) -> None:
    """Not docker-py's DockerException at container create (a traceback in the agent's log)."""
    with pytest.raises(LaunchError, match=f"template {key} must be like '4g' or a byte count, "
                                          "got 'lots'"):
        container_options({key: "lots"}, {})
    assert container_options({key: 1024}, {}) and container_options({key: "512m"}, {})
    assert container_options({key: "${MEM}"}, {})  # checked once the agent has filled it in


def test_unknown_template_keys_are_refused_with_the_allowed_list() -> None:
    with pytest.raises(LaunchError, match="does not allow: security_opt; allowed: cap_add"):
        container_options({"security_opt": ["seccomp=unconfined"]}, {})


def test_generated_dockerfile_installs_requirements_in_their_own_layer_as_non_root() -> None:
    text = generated_dockerfile("python:3.11-slim", ["numpy==1.26.4"])
    lines = text.splitlines()
    assert lines[1] == "FROM python:3.11-slim"
    req = next(i for i, line in enumerate(lines) if "pip install" in line)
    code = next(i for i, line in enumerate(lines) if line.startswith("COPY") and "job/" in line)
    assert req < code  # a code change keeps the requirements layer
    assert lines[-1].startswith("USER 10001")
    assert default_base_image("3.12.1") == "python:3.12-slim"


def test_adoption_skips_exactly_the_output_already_stored() -> None:
    stored = b"[launch-jupyter: building]\nstep 1\nstep 2\nfirst li"
    output = b"step 1\nstep 2\nfirst line\nmore\n"
    assert _overlap(stored, output) == len(b"step 1\nstep 2\nfirst li")
    assert _overlap(b"[launch-jupyter: x]\n", b"hello\n") == 0
