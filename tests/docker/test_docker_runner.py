"""The docker runner end to end on a real engine: build, run, logs, outputs, cancel, timeout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError

from ..conftest import require_service, wait_for, write_notebook, write_script
from .conftest import make_queue, unique_name


def _containers(docker_client: Any, item_id: str) -> list[Any]:
    return docker_client.containers.list(  # one removed while listed is gone, not an error
        all=True, filters={"label": f"launch-jupyter.item={item_id}"}, ignore_removed=True)


def test_script_job_runs_in_a_container_as_a_non_root_user(
    docker_launch: Launch, agent: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_ONLY_SECRET", "do-not-leak")
    queue = make_queue(docker_launch)
    path = write_script(tmp_path, "train.py", """
        import json, os, launch_jupyter
        p = launch_jupyter.parameters(lr=0.01, name="x")
        print("params", json.dumps(p, sort_keys=True))
        print("env", os.environ["LAUNCH_JOB"], os.environ["LAUNCH_QUEUE"])
        print("uid", os.getuid(), "leak", os.environ.get("AGENT_ONLY_SECRET"))
        with open(os.path.join(os.environ["LAUNCH_OUTPUT_DIR"], "metrics.json"), "w") as fh:
            json.dump({"loss": 0.5}, fh)
    """)
    job = docker_launch.create_job(path, name=unique_name("train"))
    item = docker_launch.submit(job.ref, queue=queue, overrides=["lr=1"]).wait(120)
    data = item.info()
    assert data["state"] == "succeeded", item.logs()
    assert data["exit_code"] == 0
    logs = item.logs()
    assert 'params {"lr": 1.0, "name": "x"}' in logs
    assert f"env {job.ref} {queue}" in logs
    assert "uid 10001 leak None" in logs  # generated images run as non-root; no agent env
    assert "building image" in logs
    [metrics] = [o for o in data["outputs"] if o["name"] == "metrics.json"]
    assert json.loads(Path(metrics["path"]).read_text()) == {"loss": 0.5}
    assert data["run"]["runner"] == "docker"
    assert data["run"]["phase"] == "running"
    assert data["run"]["image_source"] == "built"


def test_notebook_job_runs_in_a_container_and_the_executed_notebook_comes_back(
    docker_launch: Launch, agent: object, tmp_path: Path
) -> None:
    queue = make_queue(docker_launch)
    path = write_notebook(tmp_path, "nb.ipynb", ["print('lr is', lr)"],
                          parameters="lr = 0.01\nepochs = 3")
    job = docker_launch.create_job(path, name=unique_name("nb"))
    item = docker_launch.submit(job.ref, queue=queue, parameters={"lr": 0.5}).wait(120)
    assert item.state == "succeeded", item.logs()
    assert "lr is 0.5" in item.logs()
    [notebook] = [o for o in item.outputs if o["kind"] == "notebook"]
    assert notebook["name"] == "nb.ipynb"
    executed = nbformat.read(item.output_notebook, as_version=4)
    injected = [c for c in executed.cells
                if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "lr = 0.5" in injected[0].source
    assert executed.cells[-1].outputs[0]["text"] == "lr is 0.5\n"


def test_failing_notebook_cell_is_named_and_its_exit_code_reported(
    docker_launch: Launch, agent: object, tmp_path: Path
) -> None:
    queue = make_queue(docker_launch)
    path = write_notebook(tmp_path, "bad.ipynb", ["x = 1", "raise ValueError('boom')", "y=2"])
    job = docker_launch.create_job(path, name=unique_name("bad"))
    item = docker_launch.submit(job.ref, queue=queue).wait(120)
    data = item.info()
    assert data["state"] == "failed", item.logs()
    assert data["exit_code"] == 1
    assert data["error"]["cell"] == 2  # 1-based, as JupyterLab numbers the cells
    assert "ValueError: boom" in data["error"]["message"]
    assert item.output_notebook is not None  # the partial run is kept for inspection


def test_second_submit_of_the_same_job_version_does_not_rebuild(
    docker_launch: Launch, agent: object, tmp_path: Path, docker_client: Any
) -> None:
    queue = make_queue(docker_launch)
    path = write_script(tmp_path, "same.py", "print('hello from the image')\n")
    job = docker_launch.create_job(path, name=unique_name("same"))
    first = docker_launch.submit(job.ref, queue=queue).wait(120)
    second = docker_launch.submit(job.ref, queue=queue).wait(120)
    assert first.state == second.state == "succeeded", (first.logs(), second.logs())
    one, two = first.info()["run"], second.info()["run"]
    assert one["image_source"] == "built"
    assert two["image_source"] == "cached"
    assert one["image_id"] == two["image_id"] == docker_client.images.get(one["image"]).id
    assert "building image" not in second.logs()
    assert "not rebuilt" in second.logs()


def test_logs_stream_while_the_container_runs_with_labels_and_launch_env(
    docker_launch: Launch, agent: object, tmp_path: Path, shared_dir: Path, docker_client: Any
) -> None:
    queue = make_queue(docker_launch, template={
        "volumes": [f"{shared_dir}:/shared"], "labels": {"request": "${item_id}"}})
    path = write_script(tmp_path, "wait.py", """
        import os, time
        print("first line", os.environ["LAUNCH_ITEM_ID"], flush=True)
        deadline = time.time() + 60
        while not os.path.exists("/shared/go") and time.time() < deadline:
            time.sleep(0.05)
        print("last line")
    """)
    job = docker_launch.create_job(path, name=unique_name("wait"))
    item = docker_launch.submit(job.ref, queue=queue)
    wait_for(lambda: "first line" in item.logs(), 60, what="the first log line")
    assert item.state == "running"
    assert "last line" not in item.logs()
    assert f"first line {item.id}" in item.logs()
    [container] = _containers(docker_client, item.id)
    assert container.labels["launch-jupyter.job"] == job.ref
    assert container.labels["launch-jupyter.queue"] == queue
    assert container.labels["launch-jupyter.attempt"] == "1"
    assert container.labels["launch-jupyter.agent"] == agent.id  # type: ignore[attr-defined]
    assert container.labels["request"] == item.id  # ${item_id} rendered at dequeue
    (shared_dir / "go").touch()
    item.wait(60)
    assert item.state == "succeeded"
    assert "last line" in item.logs()
    # Removed right after the outcome is recorded (so just after the item turns succeeded).
    wait_for(lambda: _containers(docker_client, item.id) == [], 30,
             what="the finished container's removal")


def test_cancel_stops_the_container_within_the_grace_period(
    docker_launch: Launch, agent: object, tmp_path: Path, docker_client: Any
) -> None:
    queue = make_queue(docker_launch)
    path = write_script(tmp_path, "forever.py", """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL after the grace ends it
        print("running", flush=True)
        time.sleep(600)
    """)
    job = docker_launch.create_job(path, name=unique_name("forever"))
    item = docker_launch.submit(job.ref, queue=queue)
    wait_for(lambda: "running" in item.logs(), 60, what="the job to start")
    [container] = _containers(docker_client, item.id)
    item.cancel()
    item.wait(2 + 15)  # grace is 2 s (tests/conftest.py)
    data = item.info()
    assert data["state"] == "cancelled"
    assert "cancel requested" in item.logs()
    wait_for(lambda: _containers(docker_client, item.id) == [], 30,
             what="the cancelled container's removal")
    del container


def test_timeout_stops_the_container_and_fails_the_item(
    docker_launch: Launch, agent: object, tmp_path: Path
) -> None:
    queue = make_queue(docker_launch, timeout=1.5)
    path = write_script(tmp_path, "slow.py", """
        import time
        print("started", flush=True)
        time.sleep(600)
    """)
    job = docker_launch.create_job(path, name=unique_name("slow"))
    item = docker_launch.submit(job.ref, queue=queue).wait(60)
    data = item.info()
    assert data["state"] == "failed", item.logs()
    assert data["error"]["stage"] == "timeout"
    assert "timed out after 1.5 s" in data["error"]["message"]


def test_privileged_through_the_template_is_refused_unless_admin_allows(
    docker_launch: Launch, agent: object, tmp_path: Path
) -> None:
    # A privileged container sees the host's devices (the user is non-root: no caps).
    path = write_script(tmp_path, "priv.py", """
        import os
        print("devices", len(os.listdir("/dev")))
    """)
    job = docker_launch.create_job(path, name=unique_name("priv"))
    refused = make_queue(docker_launch, template={"privileged": "{{privileged}}"},
                         variables={"privileged": {"type": "boolean", "default": False}})
    plain = docker_launch.submit(job.ref, queue=refused).wait(120)
    assert plain.state == "succeeded", plain.logs()
    before = len(docker_launch.items())
    with pytest.raises(LaunchError, match="privileged mode is refused.*allow_privileged"):
        docker_launch.submit(job.ref, queue=refused, template_values={"privileged": True})
    assert len(docker_launch.items()) == before  # refused at submit: nothing written
    with pytest.raises(LaunchError, match="privileged mode is refused"):
        make_queue(docker_launch, template={"privileged": True})  # and at queue create
    allowed = make_queue(docker_launch, template={"privileged": True},
                         admin={"allow_privileged": True})
    # The admin switch only narrows: the agent's own policy must allow it too.
    fenced = docker_launch.submit(job.ref, queue=allowed).wait(120)
    assert fenced.state == "failed"
    assert "privileged mode needs LaunchConfig.pod_security to be 'privileged'" in \
        fenced.info()["error"]["message"]
    docker_launch.config.pod_security = "privileged"  # the agent reads it at each start
    item = docker_launch.submit(job.ref, queue=allowed).wait(120)
    assert item.state == "succeeded", item.logs()

    def devices(logs: str) -> int:
        return int(logs.split("devices ")[1].split()[0])

    assert devices(item.logs()) > devices(plain.logs())


def test_out_of_range_template_value_is_refused_at_submit(
    docker_launch: Launch, tmp_path: Path
) -> None:
    from launch_jupyter.errors import ParameterError

    queue = make_queue(docker_launch, template={"gpus": "{{gpus}}"},
                       variables={"gpus": {"type": "integer", "minimum": 0, "maximum": 2,
                                           "default": 0}})
    job = docker_launch.create_job(write_script(tmp_path, "g.py", "print(1)\n"),
                                   name=unique_name("g"))
    with pytest.raises(ParameterError, match="gpus.*<= 2"):
        docker_launch.submit(job.ref, queue=queue, template_values={"gpus": 5})
    assert docker_launch.items(queue=queue) == []




def test_prebuilt_queue_image_gets_the_code_copied_in(
    docker_launch: Launch, agent: object, tmp_path: Path, docker_client: Any
) -> None:
    from .conftest import BASE_IMAGE

    queue = make_queue(docker_launch)
    config = {**docker_launch.queue(queue)["config"], "image": BASE_IMAGE}
    docker_launch.delete_queue(queue)
    docker_launch.create_queue(queue, runner="docker", config=config)
    path = write_script(tmp_path, "pre.py", """
        import os, launch_jupyter
        print("cwd", os.getcwd(), "p", launch_jupyter.parameters(k=1)["k"])
        open(os.path.join(os.environ["LAUNCH_OUTPUT_DIR"], "out.txt"), "w").write("x")
    """)
    job = docker_launch.create_job(path, name=unique_name("pre"))
    images = len(docker_client.images.list())
    item = docker_launch.submit(job.ref, queue=queue, overrides=["k=2"]).wait(120)
    assert item.state == "succeeded", item.logs()
    assert "cwd /launch/job p 2" in item.logs()
    assert [o["name"] for o in item.outputs] == ["out.txt"]
    assert item.info()["run"]["image"] == BASE_IMAGE
    assert len(docker_client.images.list()) == images  # nothing built


def test_a_dockerfile_beside_the_script_replaces_the_generated_one(
    docker_launch: Launch, agent: object, tmp_path: Path
) -> None:
    from .conftest import BASE_IMAGE

    queue = make_queue(docker_launch)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN echo from-the-users-dockerfile > /etc/marker\n")
    path = write_script(tmp_path, "own.py", """
        import os
        print("marker", open("/etc/marker").read().strip(), "uid", os.getuid())
    """)
    job = docker_launch.create_job(path, name=unique_name("own"), include=["Dockerfile"])
    item = docker_launch.submit(job.ref, queue=queue).wait(120)
    assert item.state == "succeeded", item.logs()
    assert "marker from-the-users-dockerfile uid 0" in item.logs()
    assert "the job's own Dockerfile" in item.logs()


def test_image_pushed_to_the_registry_is_pulled_not_rebuilt(
    docker_launch: Launch, agent: object, tmp_path: Path, docker_client: Any
) -> None:
    import os

    registry = os.environ.get("LAUNCH_JUPYTER_TEST_REGISTRY")
    if not registry:
        require_service("a Docker registry", "LAUNCH_JUPYTER_TEST_REGISTRY is not set (Debian "
                        "docker-registry on 127.0.0.1, started by scripts/docker.sh)")
    queue = make_queue(docker_launch)
    config = {**docker_launch.queue(queue)["config"], "registry": registry}
    docker_launch.delete_queue(queue)
    docker_launch.create_queue(queue, runner="docker", config=config)
    path = write_script(tmp_path, "reg.py", "print('from the registry image')\n")
    job = docker_launch.create_job(path, name=unique_name("reg"))
    first = docker_launch.submit(job.ref, queue=queue).wait(120)
    assert first.state == "succeeded", first.logs()
    run = first.info()["run"]
    assert run["image_source"] == "built" and run["image"].startswith(f"{registry}/")
    assert f"pushed {run['image']}" in first.logs()
    docker_client.images.remove(run["image"], force=True)
    second = docker_launch.submit(job.ref, queue=queue).wait(120)
    assert second.state == "succeeded", second.logs()
    again = second.info()["run"]
    assert again["image_source"] == "pulled"
    assert again["image_id"] == run["image_id"]
    assert "building image" not in second.logs()
