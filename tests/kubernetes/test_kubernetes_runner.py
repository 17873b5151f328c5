"""The kubernetes runner end to end: a real agent and store, the emulated API on loopback,
the test playing the job controller and kubelet (tests/kubernetes/cluster.py)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from launch_jupyter.api import Launch

from ..conftest import wait_for, write_notebook, write_script
from .cluster import ClusterServer, Controller, JobHandle
from .conftest import jobs_of, make_queue

LABELS = "launch-jupyter.io"


def script_job(client: Launch, tmp_path: Path, name: str = "train") -> str:
    path = write_script(tmp_path, f"{name}.py", """
        import launch_jupyter
        p = launch_jupyter.parameters(lr=0.1)
        print("lr", p.lr)
    """)
    return client.create_job(path, name=name).ref


def gated(before: str, gate: threading.Event, after: str = "done\n", exit_code: int = 0):
    """Pod runs, prints ``before``, waits for ``gate``, prints ``after``, exits."""
    def scenario(ctl: Controller, job: JobHandle) -> None:
        pod = job.create_pod()
        job.run(pod)
        job.log(pod, before)
        if not job.wait(gate.is_set, timeout=120):
            return  # deleted meanwhile
        job.log(pod, after)
        job.terminate(pod, exit_code)
        job.complete() if exit_code == 0 else job.fail()

    return scenario


def running_forever(client: Launch, tmp_path: Path, controller: Controller, kube_agent):
    """An item whose pod runs (and logs "working") until its Job is deleted."""
    queue = make_queue(client)
    ref = script_job(client, tmp_path)
    controller.scenarios.append(gated("working\n", threading.Event()))  # never opens
    item = client.submit(ref, queue=queue)
    kube_agent(queue)
    wait_for(lambda: "working" in client.logs(item.id)[0], timeout=60, what="the pod's log")
    return item


@pytest.fixture
def kube_agent(client: Launch, cluster: ClusterServer, controller: Controller):
    agents = []

    def start(queue: str):
        agent = client.agent([queue], max_jobs=4).start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.stop()


def test_submit_creates_a_labelled_job_streams_logs_and_succeeds(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller,
        kube_agent) -> None:
    queue = make_queue(client, template={
        "cpu": "500m", "memory": "1Gi", "gpus": "{{gpus}}",
        "node_selector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                         "effect": "NoSchedule"}],
        "service_account": "trainer", "image_pull_secrets": ["regcred"],
        "env": {"WANDB_API_KEY": {"secretKeyRef": {"name": "wandb", "key": "key"}},
                "TEAM": "ml"},
        "labels": {"team": "ml"},
        # a whole Job template: Kueue's queue label must reach the cluster untouched
        "job": {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": "team-a"}},
                "spec": {"completions": 1}},
    }, config={"variables": {"gpus": {"type": "integer", "minimum": 0, "maximum": 4,
                                      "default": 0}}})
    client.config.kubernetes_service_accounts = ["trainer"]  # the agent's policy allows it
    ref = script_job(client, tmp_path)
    gate = threading.Event()
    controller.scenarios.append(gated("step 1\nstep 2\n", gate))
    item = client.submit(ref, queue=queue, overrides=["lr=0.5"], template_values={"gpus": 2})
    kube_agent(queue)

    # Logs reach the store while the pod is still running.
    wait_for(lambda: "step 2" in client.logs(item.id)[0], timeout=60, what="live pod logs")
    assert client.item(item.id).state == "running"
    gate.set()
    done = item.wait(timeout=60, progress=False)
    assert done.state == "succeeded", done.info()
    info = done.info()
    assert info["exit_code"] == 0
    logs = client.logs(item.id)[0]
    assert logs.count("step 1") == 1 and "done" in logs

    [job] = jobs_of(cluster, item.id)
    meta = job["metadata"]
    assert meta["namespace"] == "ml"
    assert len(meta["name"]) <= 63
    labels = meta["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "team-a"
    assert labels["team"] == "ml"
    assert labels[f"{LABELS}/item"] == item.id
    assert labels[f"{LABELS}/job"] == "train"
    assert labels[f"{LABELS}/queue"] == queue
    assert labels[f"{LABELS}/attempt"] == "1"
    assert labels[f"{LABELS}/agent"]
    assert labels["app.kubernetes.io/managed-by"] == "launch-jupyter"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] > 0
    assert spec["completions"] == 1
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"][f"{LABELS}/item"] == item.id
    assert pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["serviceAccountName"] == "trainer"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    [container] = pod["containers"]
    assert container["image"] == "python:3.11-slim"
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "2"},
        "limits": {"memory": "1Gi", "nvidia.com/gpu": "2"}}
    env = {e["name"]: e for e in container["env"]}
    assert env["WANDB_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "wandb", "key": "key"}
    assert env["LAUNCH_ITEM_ID"]["value"] == item.id
    assert json.loads(env["LAUNCH_PARAMETERS"]["value"]) == {"lr": 0.5}
    # The restricted Pod Security Standard by default.
    ctx = container["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    # The code travelled in a ConfigMap beside the Job (a prebuilt image).
    [configmap] = [b for p, b in cluster.cluster.created if p == "configmaps"
                   and b["metadata"]["name"] == meta["name"]]
    files = {v["path"] for v in pod["volumes"] if "configMap" in v
             for v in v["configMap"]["items"]}
    assert "job/train.py" in files and "lib/launch_jupyter/__init__.py" in files
    assert len(configmap["binaryData"]) == len(files)


def test_generated_images_run_as_non_root(tmp_path: Path) -> None:
    """A queue with a registry builds launch-jupyter's image: its non-root user is set."""
    from launch_jupyter.runners.base import RunRequest
    from launch_jupyter.runners.build import USER_ID
    from launch_jupyter.runners.kubernetes import plan_manifests

    client = Launch(f"sqlite:///{tmp_path}/s.db")
    job = client.store.get_job(script_job(client, tmp_path).split(":")[0])
    request = RunRequest(item={"id": "01ABC", "queue": "q", "parameters": {}}, job=job,
                         files=client.store.job_files(job.id), token="t", attempt=1,
                         run_dir=tmp_path, store_url="", lease_ttl=30, cancel_grace=5,
                         max_log_bytes=1000, agent_id="a")
    manifest, configmap = plan_manifests(request, {"namespace": "ml"}, {}, "reg/x:1",
                                         has_code=True, generated=True)
    pod = manifest["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == USER_ID
    assert pod["containers"][0]["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert configmap is None  # the code is in the image; a script needs nothing else
    client.close()


def test_failing_pod_fails_the_item_with_exit_code_and_failing_cell(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller,
        kube_agent) -> None:
    queue = make_queue(client)
    ref = script_job(client, tmp_path)

    def exits_3(ctl: Controller, job: JobHandle) -> None:
        pod = job.create_pod()
        job.run(pod)
        job.log(pod, "Traceback: boom\n")
        job.terminate(pod, 3)
        job.fail()

    nb = write_notebook(tmp_path, "nb.ipynb", ["x = 1", "raise ValueError('boom')"],
                        parameters="alpha = 1")
    nb_ref = client.create_job(nb, name="nb").ref
    cell_error = {"message": "cell 2 raised ValueError: boom", "stage": "execute", "cell": 2,
                  "ename": "ValueError", "evalue": "boom"}

    def failing_cell(ctl: Controller, job: JobHandle) -> None:
        pod = job.create_pod()
        job.run(pod)
        job.log(pod, "ValueError: boom\n")
        job.terminate(pod, 1, message=json.dumps(cell_error))
        job.fail()

    controller.scenarios += [exits_3, failing_cell]
    script_item = client.submit(ref, queue=queue)
    kube_agent(queue)
    done = script_item.wait(timeout=60, progress=False)
    assert done.state == "failed"
    info = done.info()
    assert info["exit_code"] == 3
    assert "exited with code 3" in info["error"]["message"]
    assert "Traceback: boom" in client.logs(script_item.id)[0]

    nb_item = client.submit(nb_ref, queue=queue, overrides=["alpha=7"])
    done = nb_item.wait(timeout=60, progress=False)
    assert done.state == "failed"
    assert done.info()["error"]["cell"] == 2
    assert "ValueError: boom" in done.info()["error"]["message"]
    # The notebook went in the ConfigMap with the override injected.
    [job] = jobs_of(cluster, nb_item.id)
    [configmap] = [b for p, b in cluster.cluster.created if p == "configmaps"
                   and b["metadata"]["name"] == job["metadata"]["name"]]
    import base64

    texts = [base64.b64decode(v).decode(errors="replace")
             for v in configmap["binaryData"].values()]
    assert any("injected-parameters" in t and "alpha = 7" in t for t in texts)


def test_a_job_seen_failed_before_its_pod_keeps_the_exit_code(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller,
        kube_agent) -> None:
    """The Job's watch and the pod's are separate streams: the runner can learn that the
    Job failed before it learns that the container exited. The exit code must not be lost
    to that (CI once saw exit_code None on a busy machine)."""
    queue = make_queue(client)
    ref = script_job(client, tmp_path)

    def job_status_first(ctl: Controller, job: JobHandle) -> None:
        pod = job.create_pod()
        job.run(pod)
        job.log(pod, "Traceback: boom\n")
        job.fail()  # the Job's status lands first ...
        time.sleep(0.5)  # ... the kubelet's pod status a moment later (forces the order)
        job.terminate(pod, 3)

    controller.scenarios.append(job_status_first)
    item = client.submit(ref, queue=queue)
    kube_agent(queue)
    done = item.wait(timeout=60, progress=False)
    info = done.info()
    assert done.state == "failed", info
    assert info["exit_code"] == 3, info
    assert "exited with code 3" in info["error"]["message"]


def _watch_resumes(client: Launch, tmp_path: Path, cluster: ClusterServer,
                   controller: Controller, kube_agent, *, compact: bool) -> None:
    queue = make_queue(client)
    ref = script_job(client, tmp_path)
    gate = threading.Event()
    controller.scenarios.append(gated("before the drop\n", gate, after="after the drop\n"))
    item = client.submit(ref, queue=queue)
    kube_agent(queue)
    wait_for(lambda: "before the drop" in client.logs(item.id)[0], timeout=60,
             what="the pod's first log line")
    lists_before = len(cluster.cluster.list_requests)
    watches_before = len(cluster.cluster.watch_requests)
    cluster.refuse_watches(True)
    cluster.drop_connections()
    # The pod finishes and the Job completes while nobody watches.
    gate.set()
    [handle] = [h for h in controller.jobs.values() if h.labels[f"{LABELS}/item"] == item.id]
    wait_for(lambda: controller.batch.read_namespaced_job(handle.name, "ml").status.succeeded,
             timeout=30, what="the Job to complete")
    if compact:
        cluster.compact()
    cluster.refuse_watches(False)
    done = item.wait(timeout=60, progress=False)
    assert done.state == "succeeded", done.info()
    logs = client.logs(item.id)[0]
    assert logs.count("before the drop") == 1 and logs.count("after the drop") == 1
    later = cluster.cluster.watch_requests[watches_before:]
    assert later and all(w.get("resourceVersion") for w in later)
    relists = [r for r in cluster.cluster.list_requests[lists_before:]
               if "labelSelector" in r]  # the runner's lists (the controller lists all)
    if compact:
        assert relists, "a 410 must be followed by a fresh list"
    else:
        assert not relists, "a dropped watch resumes from its resourceVersion, no re-list"


def test_watch_resumes_after_a_dropped_connection(client, tmp_path, cluster, controller,
                                                  kube_agent) -> None:
    _watch_resumes(client, tmp_path, cluster, controller, kube_agent, compact=False)


def test_watch_lists_again_after_410_gone(client, tmp_path, cluster, controller,
                                          kube_agent) -> None:
    _watch_resumes(client, tmp_path, cluster, controller, kube_agent, compact=True)


def test_unschedulable_is_a_warning_on_the_item(client, tmp_path, cluster, controller,
                                                kube_agent, cli) -> None:
    queue = make_queue(client)
    ref = script_job(client, tmp_path)
    gate = threading.Event()
    why = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."

    def pending(ctl: Controller, job: JobHandle) -> None:
        pod = job.create_pod()
        job.unschedulable(pod, why)
        if job.wait(gate.is_set):
            job.run(pod)
            job.terminate(pod, 0)
            job.complete()

    controller.scenarios.append(pending)
    item = client.submit(ref, queue=queue)
    kube_agent(queue)
    wait_for(lambda: client.item(item.id).info().get("warning"), timeout=60,
             what="the Unschedulable warning")
    assert client.item(item.id).info()["warning"] == f"Unschedulable: {why}"
    assert why in client.item(item.id)._repr_html_()  # the card a notebook shows
    assert f"warning: Unschedulable: {why}" in cli("show", item.id, check=True).stdout
    assert client.item(item.id).state == "running"
    gate.set()
    done = item.wait(timeout=60, progress=False)
    assert done.state == "succeeded"
    assert why in client.logs(item.id)[0]


def test_preempted_pod_requeues_the_item_once_then_it_succeeds(
        client, tmp_path, cluster, controller, kube_agent) -> None:
    queue = make_queue(client)
    ref = script_job(client, tmp_path)
    disruption = [{"type": "DisruptionTarget", "status": "True",
                   "reason": "PreemptionByScheduler",
                   "message": "Preempted in order to admit critical pod"}]

    def preempted(ctl: Controller, job: JobHandle) -> None:
        pod = job.create_pod()
        job.run(pod)
        job.log(pod, "epoch 1\n")
        job.pod_status(pod, conditions=disruption)
        job.terminate(pod, 143, conditions=disruption)
        job.fail(reason="PodFailurePolicy", message="pod disrupted")

    controller.scenarios += [preempted]  # the second Job gets the default: succeed
    item = client.submit(ref, queue=queue)
    kube_agent(queue)
    done = item.wait(timeout=90, progress=False)
    assert done.state == "succeeded", done.info()
    info = done.info()
    assert info["attempt"] == 2
    jobs = jobs_of(cluster, item.id)
    assert [j["metadata"]["labels"][f"{LABELS}/attempt"] for j in jobs] == ["1", "2"]
    kinds = [e["kind"] for e in client.store.events(item.id)]
    assert kinds.count("retried") == 1
    assert "PreemptionByScheduler" in info["attempts"][0]["error"]["message"]


def test_image_pull_error_fails_the_item_with_the_reason(client, tmp_path, cluster,
                                                         controller, kube_agent) -> None:
    queue = make_queue(client)
    ref = script_job(client, tmp_path)

    def bad_image(ctl: Controller, job: JobHandle) -> None:
        pod = job.create_pod()
        job.waiting(pod, "ImagePullBackOff",
                    'Back-off pulling image "python:3.11-slim": pull access denied')
        job.wait(lambda: False, timeout=120)  # until the runner deletes the Job

    controller.scenarios.append(bad_image)
    item = client.submit(ref, queue=queue)
    kube_agent(queue)
    done = item.wait(timeout=60, progress=False)
    assert done.state == "failed"
    message = done.info()["error"]["message"]
    assert "ImagePullBackOff" in message and "pull access denied" in message
    [job] = jobs_of(cluster, item.id)
    wait_for(lambda: job["metadata"]["name"] in controller.deleted, timeout=30,
             what="the Job's deletion")


def test_timeout_is_the_jobs_active_deadline(client, tmp_path, cluster, controller,
                                             kube_agent) -> None:
    queue = make_queue(client)
    ref = script_job(client, tmp_path)

    def deadline(ctl: Controller, job: JobHandle) -> None:
        assert job.job["spec"]["activeDeadlineSeconds"] == 7
        pod = job.create_pod()
        job.run(pod)
        job.terminate(pod, 143)
        job.fail(reason="DeadlineExceeded", message="Job was active longer than specified")

    controller.scenarios.append(deadline)
    item = client.submit(ref, queue=queue, timeout=7)
    kube_agent(queue)
    done = item.wait(timeout=60, progress=False)
    assert done.state == "failed"
    assert done.info()["error"]["message"] == "timed out after 7 s"


def test_cancel_deletes_the_job_in_the_foreground(client, tmp_path, cluster, controller,
                                                  kube_agent) -> None:
    item = running_forever(client, tmp_path, controller, kube_agent)
    client.cancel(item.id)
    done = item.wait(timeout=60, progress=False)
    assert done.state == "cancelled"
    [job] = jobs_of(cluster, item.id)
    assert job["metadata"]["name"] in controller.deleted
    deletes = [r for r in cluster.cluster._requests
               if r.method == "DELETE" and r.resource is not None
               and r.resource.plural == "jobs"]
    assert deletes
    policies = {r.params.get("propagationPolicy") or (r.data or {}).get("propagationPolicy")
                for r in deletes}
    assert policies == {"Foreground"}


def test_restarted_agent_adopts_its_job_instead_of_creating_another(
        client, tmp_path, cluster, controller, cli) -> None:
    queue = make_queue(client)
    ref = script_job(client, tmp_path)
    gate = threading.Event()
    controller.scenarios.append(gated("before the crash\n", gate, after="after the crash\n"))
    item = client.submit(ref, queue=queue)
    first = cli.popen("agent", "--queue", queue)
    wait_for(lambda: "before the crash" in client.logs(item.id)[0], timeout=60,
             what="the pod's first log line")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    second = cli.popen("agent", "--queue", queue)
    wait_for(lambda: any(e["kind"] == "adopted" for e in client.store.events(item.id)),
             timeout=90, what="the second agent to adopt the Job")
    gate.set()
    done = item.wait(timeout=60, progress=False)
    assert done.state == "succeeded", done.info()
    assert len(jobs_of(cluster, item.id)) == 1, "adoption must not create a second Job"
    assert done.info()["attempt"] == 1
    logs = client.logs(item.id)[0]
    assert logs.count("before the crash") == 1 and "after the crash" in logs
    assert second.poll() is None


def test_an_agent_that_lost_the_lease_deletes_its_job(client, tmp_path, cluster, controller,
                                                      kube_agent) -> None:
    """Fencing: once the lease is someone else's, the agent's renewal fails and it deletes
    its Job, so the item can never run twice at once."""
    from launch_jupyter.store import schema

    item = running_forever(client, tmp_path, controller, kube_agent)
    [job] = jobs_of(cluster, item.id)
    assert job["metadata"]["name"] not in controller.deleted
    with client.store.write() as conn:  # as if another agent had recovered the item
        conn.execute(schema.items.update().where(schema.items.c.id == item.id)
                     .values(lease_owner="another-agent"))
    wait_for(lambda: job["metadata"]["name"] in controller.deleted, timeout=60,
             what="the fenced run to delete its Job")
