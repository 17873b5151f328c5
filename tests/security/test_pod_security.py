"""Row 7: Kubernetes pods cannot be weakened below the agent's Pod Security Standard.

Each setting that used to pass without an admin switch is put in a queue template (directly,
nested in a ``job:`` template, in init, sidecar and ephemeral containers, through a YAML
anchor, a ``{{variable}}``, or a look-alike spelling); the agent checks the FINAL Job manifest
after all merging and fails the item, naming the setting and LaunchConfig.pod_security, and
no Job or ConfigMap reaches the emulator. Service accounts and namespaces are gated too.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.runners import pod_security
from launch_jupyter.runners.templates import load_queue_config

from ..conftest import run_to_end, write_script
from ..kubernetes.cluster import ClusterServer, Controller, succeed
from ..kubernetes.conftest import make_queue
from .conftest import jobs_of


def pod_template(**spec: object) -> dict:
    """A ``job:`` template whose pod spec holds ``spec`` (the main container is named job)."""
    return {"job": {"spec": {"template": {"spec": {"containers": [{"name": "job"}], **spec}}}}}


WEAKENED = {
    "seccomp-unconfined": ({"security_context": {"seccompProfile": {"type": "Unconfined"}}},
                           "seccompProfile.type: 'Unconfined'"),
    "pod-seccomp-unconfined": ({"pod_security_context": {"seccompProfile": {
        "type": "Unconfined"}}}, "seccompProfile.type: 'Unconfined'"),
    "apparmor-unconfined": ({"security_context": {"appArmorProfile": {"type": "Unconfined"}}},
                            "appArmorProfile.type: 'Unconfined'"),
    "apparmor-annotation": ({"annotations": {
        "container.apparmor.security.beta.kubernetes.io/job": "unconfined"}},
        "AppArmor not runtime/default"),
    "drop-nothing": ({"security_context": {"capabilities": {"drop": []}}}, "must drop ALL"),
    "run-as-root": ({"security_context": {"runAsUser": 0}}, "runAsUser: 0"),
    "pod-run-as-root": ({"pod_security_context": {"runAsUser": 0}}, "runAsUser: 0"),
    "run-as-non-root-false": ({"pod_security_context": {"runAsNonRoot": False}},
                              "runAsNonRoot: false"),
    "proc-mount-unmasked": ({"security_context": {"procMount": "Unmasked"}},
                            "procMount: 'Unmasked'"),
    "selinux-spc_t": ({"security_context": {"seLinuxOptions": {"type": "spc_t"}}},
                      "seLinuxOptions.type: 'spc_t'"),
    "selinux-custom-user": ({"security_context": {"seLinuxOptions": {"user": "system_u"}}},
                            "seLinuxOptions.user"),
    "host-port": (pod_template(containers=[{"name": "job", "ports": [
        {"containerPort": 8080, "hostPort": 8080}]}]), "hostPort: 8080"),
    "unsafe-sysctl": ({"pod_security_context": {"sysctls": [
        {"name": "kernel.core_pattern", "value": "|/bin/sh"}]}}, "not a safe sysctl"),
    "nfs-volume": ({"volumes": [{"name": "n", "nfs": {"server": "10.0.0.1", "path": "/"}}],
                    "volume_mounts": [{"name": "n", "mountPath": "/n"}]}, "type nfs"),
    # nested: init, sidecar and ephemeral containers of a job template
    "init-container-root": (pod_template(initContainers=[
        {"name": "init", "image": "busybox", "securityContext": {"runAsUser": 0}}]),
        "initContainers[0] (init) securityContext.runAsUser: 0"),
    "sidecar-drops-nothing": (pod_template(initContainers=[
        {"name": "proxy", "image": "envoy", "restartPolicy": "Always",
         "securityContext": {"capabilities": {"drop": []}}}]),
        "initContainers[0] (proxy) securityContext.capabilities.drop: [] (must drop ALL)"),
    "ephemeral-seccomp": (pod_template(ephemeralContainers=[
        {"name": "debug", "image": "busybox",
         "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]),
        "ephemeralContainers[0] (debug)"),
    "job-template-pod-context": (pod_template(securityContext={"runAsUser": 0}),
                                 "pod securityContext.runAsUser: 0"),
    # look-alikes: a Cyrillic letter is not the value the allowlist holds
    "lookalike-unconfined": ({"security_context": {"seccompProfile": {
        "type": "Runtime\u0414efault"}}}, "seccompProfile.type"),
    "lookalike-all": ({"security_context": {"capabilities": {"drop": ["\u0410LL"]}}},
                      "must drop ALL"),
}


@pytest.mark.parametrize("case", sorted(WEAKENED))
def test_a_weakened_pod_fails_its_item_and_never_reaches_the_cluster(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller,
        case: str) -> None:
    template, setting = WEAKENED[case]
    queue = make_queue(client, template=copy.deepcopy(template))  # create accepts it
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    item = client.submit(ref, queue=queue)
    done = run_to_end(client, item, queues=[queue], timeout=60)
    assert done.state == "failed"
    message = done.info()["error"]["message"]
    assert "breaks the 'restricted' Pod Security Standard" in message
    assert setting in message and "LaunchConfig.pod_security" in message
    assert cluster.cluster.created == []  # no Job, no ConfigMap


def test_yaml_anchors_and_template_values_are_checked_after_rendering(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller) -> None:
    (tmp_path / "queue.yaml").write_text("""
image: python:3.11-slim
variables:
  uid: {type: integer, default: 1000}
template:
  namespace: ml
  security_context: &weak
    runAsUser: "{{uid}}"
  job:
    spec:
      template:
        spec:
          containers: [{name: job}]
          initContainers:
          - name: init
            image: busybox
            securityContext: *weak
""")
    config = load_queue_config(tmp_path / "queue.yaml")
    client.create_queue("anchored", runner="kubernetes", config=config)
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    controller.scenarios.append(succeed())
    ok = run_to_end(client, client.submit(ref, queue="anchored"), queues=["anchored"])
    assert ok.state == "succeeded", ok.info()
    root = client.submit(ref, queue="anchored", template_values={"uid": 0})
    done = run_to_end(client, root, queues=["anchored"], timeout=60)
    assert done.state == "failed"
    assert "runAsUser: 0" in done.info()["error"]["message"]
    assert jobs_of(cluster, root.id) == []


def test_baseline_and_privileged_are_allowed_only_by_the_agents_policy(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller) -> None:
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    root = make_queue(client, template={"security_context": {"runAsUser": 0}})
    host_net = make_queue(client, template=pod_template(hostNetwork=True),
                          config={"admin": {"allow_host_namespaces": True}})
    client.config.pod_security = "baseline"
    controller.scenarios.append(succeed())
    assert run_to_end(client, client.submit(ref, queue=root), queues=[root]).state == \
        "succeeded"
    refused = run_to_end(client, client.submit(ref, queue=host_net), queues=[host_net])
    assert refused.state == "failed"
    assert "hostNetwork: True" in refused.info()["error"]["message"]
    assert "breaks the 'baseline'" in refused.info()["error"]["message"]
    assert jobs_of(cluster, refused.id) == []
    client.config.pod_security = "privileged"  # and the queue's admin switch: both needed
    controller.scenarios.append(succeed())
    item = client.submit(ref, queue=host_net)
    assert run_to_end(client, item, queues=[host_net]).state == "succeeded"
    [job] = jobs_of(cluster, item.id)
    assert job["spec"]["template"]["spec"]["hostNetwork"] is True


@pytest.mark.parametrize(("template", "message"), [
    ({"service_account": "cluster-admin"},
     "service account cluster-admin needs LaunchConfig.kubernetes_service_accounts"),
    ({"namespace": "kube-system"},
     "namespace kube-system needs LaunchConfig.kubernetes_namespaces to allow 'kube-system'"),
    (pod_template(automountServiceAccountToken=True), "automountServiceAccountToken: false"),
    ({"volumes": [{"name": "tok", "projected": {"sources": [{"serviceAccountToken": {
        "path": "token"}}]}}], "volume_mounts": [{"name": "tok", "mountPath": "/tok"}]},
     "no projected serviceAccountToken volume"),
])
def test_service_accounts_and_namespaces_need_the_policy(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller,
        template: dict, message: str) -> None:
    queue = make_queue(client, template=template)
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    done = run_to_end(client, client.submit(ref, queue=queue), queues=[queue], timeout=60)
    assert done.state == "failed"
    assert message in done.info()["error"]["message"]
    assert cluster.cluster.created == []


def test_a_template_without_a_namespace_uses_the_contexts_own(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller) -> None:
    queue = f"ns-{tmp_path.name[-6:]}".lower().replace("_", "-")
    client.create_queue(queue, runner="kubernetes", config={"image": "python:3.11-slim"})
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    controller.scenarios.append(succeed())
    item = client.submit(ref, queue=queue)
    assert run_to_end(client, item, queues=[queue]).state == "succeeded"
    [job] = jobs_of(cluster, item.id)
    assert job["metadata"]["namespace"] == "ml"  # the emulator context's namespace


def test_the_generated_manifest_meets_restricted_for_every_container() -> None:
    pod = {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
           "containers": [{"name": "job", "securityContext": {
               "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
           "volumes": [{"name": "o", "emptyDir": {}}, {"name": "c", "configMap": {"name": "x"}}]}
    assert pod_security.violations(pod, "restricted") == []
    assert pod_security.level_of({**pod, "hostPID": True}) == "privileged"
    assert pod_security.level_of({**pod, "securityContext": {"runAsUser": 0}}) == "baseline"
