"""Row 3: Docker volumes and networks need the agent's policy.

``volumes: ["/:/host:rw"]``, the engine's socket and ``network: container:X`` used to need no
switch at all, and a submitter's ``{{dataset}}`` inside a volume's host path could be
``../var/run/docker.sock``. Now the agent checks the final container options against its own
policy (LaunchConfig.docker_*): the host path is normalised and its symlinks followed before
the prefix check, and a refused item never gets a container.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError
from launch_jupyter.runners.policy import AgentPolicy, PolicyError

from ..conftest import run_to_end, write_script
from ..docker.conftest import BASE_IMAGE, unique_name

SOCKET = os.path.realpath("/var/run/docker.sock")  # /run/docker.sock where /var/run links


@pytest.mark.parametrize(("options", "message"), [
    ({"volumes": ["/:/host:rw"]},
     "volume /:/host needs LaunchConfig.docker_writable_volume_prefixes to allow '/'"),
    ({"volumes": ["/:/host:ro"]},
     "volume /:/host:ro needs LaunchConfig.docker_volume_prefixes to allow '/'"),
    ({"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]},
     f"needs LaunchConfig.docker_writable_volume_prefixes to allow {SOCKET!r}"),
    ({"volumes": {"/etc": {"bind": "/x", "mode": "ro"}}},
     "volume /etc:/x:ro needs LaunchConfig.docker_volume_prefixes to allow '/etc'"),
    ({"volumes": ["somevolume:/x"]},
     "needs LaunchConfig.docker_writable_volume_prefixes to allow 'somevolume'"),
    ({"network": "container:abc"}, "network container:abc needs LaunchConfig.docker_networks"),
    ({"network_mode": "host"}, "network host needs LaunchConfig.docker_networks to allow 'host'"),
    ({"network": "other-net"}, "network other-net needs LaunchConfig.docker_networks"),
    ({"privileged": True}, "privileged mode needs LaunchConfig.pod_security to be 'privileged'"),
    ({"cap_add": ["SYS_ADMIN"]}, "cap_add 'SYS_ADMIN' needs LaunchConfig.pod_security"),
    ({"cap_add": ["CHOWN"]}, "needs LaunchConfig.pod_security to be 'baseline'"),
    ({"pid_mode": "host"}, "the host PID namespace needs LaunchConfig.pod_security"),
    ({"devices": ["/dev/fuse"]}, "devices /dev/fuse needs LaunchConfig.pod_security"),
    ({"volumes": ["/data/x:/etc:rw:/data:ro"]}, "is not HOST:CONTAINER[:MODE]"),
    ({"volumes": ["/data:/data:ro,Z"]}, "(SELinux relabel) needs LaunchConfig.pod_security"),
])
def test_the_default_policy_refuses_host_options(options: dict, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        AgentPolicy().check_docker(options)
    assert message in str(err.value)
    AgentPolicy().check_docker({"network_mode": "none", "nano_cpus": 10**9})  # always fine


def test_volume_paths_are_normalised_and_resolved_before_the_prefix_check(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    (data / "escape").symlink_to("/")
    policy = AgentPolicy(docker_volume_prefixes=(str(data),))
    policy.check_docker({"volumes": [f"{data}/mnist:/data:ro"]})
    policy.check_docker({"volumes": [f"{data}:/data:ro"]})
    for host in (f"{data}/../../../../var/run/docker.sock",  # a submitter's ../
                 f"{data}/escape/etc",  # a symlink out
                 f"{data}x/mnist",  # a sibling sharing the prefix's text
                 str(data).replace("data", "d\u0430ta") + "/mnist"):  # Cyrillic look-alike
        with pytest.raises(PolicyError, match="docker_volume_prefixes"):
            policy.check_docker({"volumes": [f"{host}:/data:ro"]})
    with pytest.raises(PolicyError, match="read-write.*docker_writable_volume_prefixes"):
        policy.check_docker({"volumes": [f"{data}/mnist:/data"]})
    AgentPolicy(docker_writable_volume_prefixes=(str(data),)).check_docker(
        {"volumes": [f"{data}/mnist:/data:rw"]})


# -- against a real dockerd ---------------------------------------------------------------

@pytest.fixture(autouse=True)
def host_network_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's policy here: only the host network (there is no bridge on these machines);
    no volumes at all unless a test widens it."""
    monkeypatch.setenv("LAUNCH_JUPYTER_DOCKER_NETWORKS", "host")
    for name in ("LAUNCH_JUPYTER_DOCKER_VOLUME_PREFIXES",
                 "LAUNCH_JUPYTER_DOCKER_WRITABLE_VOLUME_PREFIXES"):
        monkeypatch.delenv(name, raising=False)


def docker_queue(client: Launch, template: dict, variables: dict | None = None,
                 admin: dict | None = None) -> str:
    name = unique_name("sec")
    client.create_queue(name, runner="docker", config={
        "base_image": BASE_IMAGE, "template": {"network": "host", **template},
        "admin": {"allow_host_network": True, **(admin or {})},
        "variables": variables or {}})
    return name


def containers_of(docker_client: Any, item_id: str) -> list:
    return docker_client.containers.list(all=True, ignore_removed=True,
                                         filters={"label": f"launch-jupyter.item={item_id}"})


READS_DATA = """
    import os
    print("sees", sorted(os.listdir("/data")))
"""


def test_a_submitted_dotdot_in_a_volume_path_never_reaches_the_engine(
        docker_launch: Launch, docker_client: Any, shared_dir: Path, tmp_path: Path) -> None:
    (shared_dir / "data" / "mnist").mkdir(parents=True)
    (shared_dir / "data" / "mnist" / "train.csv").write_text("1,2\n")
    (shared_dir / "secret").mkdir()
    docker_launch.config.docker_volume_prefixes = [str(shared_dir / "data")]
    volume = f"{shared_dir}/data/{{{{dataset}}}}:/data:ro"
    queue = docker_queue(docker_launch, {"volumes": [volume]},
                         variables={"dataset": {"type": "string", "default": "mnist"}})
    job = docker_launch.create_job(write_script(tmp_path, "reads.py", READS_DATA),
                                   name=unique_name("reads"))
    good = docker_launch.submit(job.ref, queue=queue)
    bad = [docker_launch.submit(job.ref, queue=queue, template_values={"dataset": value})
           for value in ("../../../../../var/run/docker.sock", "../secret", "../../data-x")]
    agent = docker_launch.agent([queue], max_jobs=2).start()
    try:
        for item in [good, *bad]:
            item.wait(120, progress=False)
    finally:
        agent.stop()
    assert good.wait(1, progress=False).state == "succeeded", good.logs()
    assert "sees ['train.csv']" in good.logs()
    for item in bad:
        done = docker_launch.item(item.id)
        assert done.state == "failed"
        assert "needs LaunchConfig.docker_volume_prefixes" in done.info()["error"]["message"]
        assert containers_of(docker_client, item.id) == []


@pytest.mark.parametrize(("template", "message"), [
    ({"volumes": ["/:/host:rw"]}, "volume /:/host needs LaunchConfig."
                                  "docker_writable_volume_prefixes to allow '/'"),
    ({"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]},
     f"to allow {SOCKET!r}"),
    ({"network": "container:launch-jupyter-victim"},
     "network container:launch-jupyter-victim needs LaunchConfig.docker_networks"),
])
def test_host_volumes_and_foreign_networks_fail_the_item_before_any_container(
        docker_launch: Launch, docker_client: Any, tmp_path: Path, template: dict,
        message: str) -> None:
    queue = docker_queue(docker_launch, template)  # a policy could allow it: create accepts
    job = docker_launch.create_job(write_script(tmp_path, "j.py", "print(1)\n"),
                                   name=unique_name("j"))
    item = docker_launch.submit(job.ref, queue=queue)
    done = run_to_end(docker_launch, item, queues=[queue], timeout=60)
    assert done.state == "failed"
    assert message in done.info()["error"]["message"]
    assert containers_of(docker_client, item.id) == []


def test_a_bad_size_from_an_allowed_variable_fails_the_item_without_its_value(
        docker_launch: Launch, docker_client: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """docker-py's own check of ``memory`` raised at container create: a traceback in the
    agent's log holding the agent's variable's value, and "docker runner error"."""
    monkeypatch.setenv("JOB_MEMORY", "hunter2-not-a-size")
    docker_launch.config.template_env = ["JOB_MEMORY"]
    queue = docker_queue(docker_launch, {"memory": "${JOB_MEMORY}"})
    job = docker_launch.create_job(write_script(tmp_path, "j.py", "print(1)\n"),
                                   name=unique_name("j"))
    item = docker_launch.submit(job.ref, queue=queue)
    done = run_to_end(docker_launch, item, queues=[queue], timeout=60)
    assert done.state == "failed"
    assert done.info()["error"] == {
        "message": "could not start: template memory must be like '4g' or a byte count, "
                   "got '${JOB_MEMORY}'", "stage": "start", "cell": None}
    assert "hunter2" not in caplog.text and "Traceback" not in caplog.text
    assert containers_of(docker_client, item.id) == []


def test_the_admin_switch_alone_no_longer_opens_the_host_network(
        docker_launch: Launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docker_launch.config.docker_networks = []  # this agent allows no extra network
    queue = docker_queue(docker_launch, {})  # network host + admin allow_host_network
    job = docker_launch.create_job(write_script(tmp_path, "j.py", "print(1)\n"),
                                   name=unique_name("j"))
    done = run_to_end(docker_launch, docker_launch.submit(job.ref, queue=queue), timeout=60)
    assert done.state == "failed"
    assert "network host needs LaunchConfig.docker_networks to allow 'host'" in \
        done.info()["error"]["message"]
    with pytest.raises(LaunchError, match="allow_host_network"):  # queue create, as before
        docker_launch.create_queue("no-admin", runner="docker",
                                   config={"template": {"network": "host"}})
    assert os.environ["LAUNCH_JUPYTER_DOCKER_NETWORKS"] == "host"  # env untouched
