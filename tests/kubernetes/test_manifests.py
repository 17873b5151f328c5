"""The in-cluster agent's manifests (examples/kubernetes) and the runner's refusals.

kubectl's client dry-run needs an API server, so the manifests are read into the official
client's models instead; the Role is checked to grant nothing beyond what the runner uses,
and to cover every request the runner makes in a run against the emulator.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError
from launch_jupyter.runners.kubernetes import job_name, k8s_name, label_value

from ..conftest import run_to_end, wait_for, write_script
from .cluster import CONTROLLER_AGENT, Controller, JobHandle, round_trip_loss, succeed
from .conftest import make_queue

EXAMPLES = Path(__file__).parents[2] / "examples" / "kubernetes"
#: what the kubernetes runner needs, and all the Role may grant: (group, resource) -> verbs
NEEDED = {("batch", "jobs"): {"create", "get", "list", "watch", "delete"},
          ("", "pods"): {"get", "list", "watch"},
          ("", "pods/log"): {"get"},
          ("", "configmaps"): {"create", "get", "patch"}}


def documents() -> list[dict]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name == "queue.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_agent_manifests_pass_the_client_models() -> None:
    docs = documents()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["Deployment", "Role", "RoleBinding", "ServiceAccount"]
    for doc in docs:
        assert round_trip_loss(doc, f"V1{doc['kind']}") == [], doc["kind"]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "launch-agent"
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["LAUNCH_JUPYTER_STORE"]["valueFrom"]  # never a literal URL
    assert (EXAMPLES / "Dockerfile").read_text().count("USER 10001") == 1


def test_role_grants_only_what_the_runner_uses_in_one_namespace() -> None:
    docs = documents()
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    [role] = [d for d in docs if d["kind"] == "Role"]
    [binding] = [d for d in docs if d["kind"] == "RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs")
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert granted == NEEDED


VERBS = {("GET", False): "get", ("GET", True): "list", ("POST", False): "create",
         ("PATCH", False): "patch", ("DELETE", False): "delete", ("PUT", False): "update"}


def test_the_runner_needs_nothing_beyond_the_role(
        client: Launch, tmp_path: Path, cluster, controller: Controller) -> None:
    """Every request the runner makes (start, logs, cancel, adoption) is one the Role allows."""
    client.config.kubernetes_namespaces = ["launch"]  # the agent's policy: the Role's namespace
    queue = make_queue(client, template={"namespace": "launch"})
    path = write_script(tmp_path, "job.py", "print('hi')\n")
    ref = client.create_job(path).ref
    gate = threading.Event()

    def held(ctl: Controller, job: JobHandle) -> None:
        pod = job.create_pod()
        job.run(pod)
        job.log(pod, "working\n")
        job.wait(gate.is_set, timeout=120)

    controller.scenarios += [succeed(), held]  # one Job each, in order
    agent = client.agent([queue]).start()
    try:
        ok = client.submit(ref, queue=queue)
        assert ok.wait(timeout=60, progress=False).state == "succeeded"
        cancelled = client.submit(ref, queue=queue)
        wait_for(lambda: "working" in client.logs(cancelled.id)[0], timeout=60,
                 what="the held pod's log")
        client.cancel(cancelled.id)
        assert cancelled.wait(timeout=60, progress=False).state == "cancelled"
    finally:
        agent.stop()
        gate.set()
    used: set[tuple[str, str, str]] = set()
    for request in cluster.cluster._requests:
        if request.headers.get("User-Agent") == CONTROLLER_AGENT or request.resource is None:
            continue
        resource = request.resource.plural + (f"/{request.subresource}"
                                              if request.subresource else "")
        verb = "watch" if request.params.get("watch") in ("true", "True", "1") else \
            VERBS[(request.method.upper(), request.method.upper() == "GET"
                   and request.name is None)]
        assert request.namespace == "launch", f"{verb} {resource} outside its namespace"
        used.add((request.resource.group or "", resource, verb))
    for group, resource, verb in used:
        assert verb in NEEDED.get((group, resource), set()), (group, resource, verb)
    assert ("batch", "jobs", "watch") in used and ("", "pods/log", "get") in used


@pytest.mark.parametrize("text", ["Train", "a" * 200, "../../etc", "naïve model", "x;rm -rf",
                                  "-lead-", "", "日本語"])
def test_names_are_valid_rfc1123_labels(text: str) -> None:
    import re

    rfc1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    assert rfc1123.match(k8s_name(text)) and len(k8s_name(text)) <= 63
    name = job_name(text, "01ARZ3NDEKTSV4RRFFQ69G5FAV", 12)
    assert rfc1123.match(name) and len(name) <= 63
    assert re.match(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$", label_value(text))
    assert len(label_value(text)) <= 63
    assert k8s_name(text) != k8s_name(text + "!")  # changed names never collide


@pytest.mark.parametrize(("config", "message"), [
    ({"template": {"namespace": "ml"}}, "needs `image:`"),
    ({"image": "x", "template": {"privileged": True}}, "does not allow: privileged"),
    ({"image": "x", "template": {"security_context": {"privileged": True}}},
     "allow_privileged"),
    ({"image": "x", "template": {"security_context": {"capabilities": {"add": ["SYS_ADMIN"]}}}},
     "allow_privileged"),
    ({"image": "x", "template": {"job": {"spec": {"template": {"spec": {
        "hostNetwork": True, "containers": [{"name": "job"}]}}}}}}, "allow_host_namespaces"),
    ({"image": "x", "template": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}},
     "allow_host_path"),
    ({"image": "x", "template": {"namespace": "Bad_NS"}}, "not a valid Kubernetes namespace"),
    ({"image": "x", "template": {"job": {"apiVersion": "apps/v1", "kind": "Deployment"}}},
     "must be a batch/v1 Job"),
    ({"image": "x", "template": {"gpus": "two"}}, "gpus must be a whole number"),
    ({"image": "x", "template": {"env": {"HF_TOKEN": "hf_abc"}}}, "looks like a secret"),
])
def test_queue_create_refuses_bad_or_privileged_templates(client: Launch, config: dict,
                                                          message: str) -> None:
    before = client.queues()
    with pytest.raises(LaunchError, match=message.replace("`", ".").replace("(", r"\(")):
        client.create_queue("kq", runner="kubernetes", config=config)
    assert client.queues() == before


def test_privileged_allowed_by_the_admin_config(client: Launch) -> None:
    q = client.create_queue("kq", runner="kubernetes", config={
        "image": "x", "template": {"security_context": {"privileged": True}},
        "admin": {"allow_privileged": True}})
    assert q["runner"] == "kubernetes"


def test_misspelt_field_in_a_job_template_fails_the_item_with_its_path(
        client: Launch, tmp_path: Path, cluster, controller) -> None:
    queue = make_queue(client, template={"job": {"spec": {"template": {"spec": {
        "containers": [{"name": "job", "imagePullPolicyy": "Always"}]}}}}})
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    item = client.submit(ref, queue=queue)
    done = run_to_end(client, item, queues=[queue], timeout=60)
    assert done.state == "failed"
    assert "imagePullPolicyy" in done.info()["error"]["message"]
    assert [p for p, _ in cluster.cluster.created if p == "jobs"] == []


def test_an_agent_without_a_cluster_leaves_kubernetes_items_queued(
        client: Launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An agent serving every queue on a laptop with no kubeconfig runs the local items and
    leaves the Kubernetes ones for an agent that can reach the cluster (never fails them)."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    make_queue(client)  # a kubernetes queue
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    [kube_queue] = [q["name"] for q in client.queues() if q["runner"] == "kubernetes"]
    kube_item = client.submit(ref, queue=kube_queue)
    local_item = client.submit(ref)  # the default (local) queue
    agent = client.agent(until_idle=True)
    agent.run()  # every queue; returns once it has nothing to do
    assert client.item(local_item.id).state == "succeeded"
    assert "no usable Kubernetes configuration" in agent.status()["unserved"][kube_queue]
    from launch_jupyter.widgets.agent import agents_html

    assert f"not serving queue <b>{kube_queue}</b>" in agents_html(agent.status(), [])
    assert client.item(kube_item.id).state == "queued"
    assert client.item(kube_item.id).info()["attempts"] == []
