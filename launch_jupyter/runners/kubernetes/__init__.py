"""The kubernetes runner: each attempt is a ``batch/v1`` Job (the official ``kubernetes`` client).

The agent holds the lease of a Kubernetes run and renews it (docs/architecture.md, "Who holds the
lease"); the Job keeps running without the agent. A thread per run, in the agent's process:

- builds and pushes the image when the queue has a ``registry`` (the docker image builder),
  or uses the queue's prebuilt ``image`` with the job's code in a ConfigMap;
- creates the Job (labels for item, job, queue, agent and attempt; ``backoffLimit: 0``;
  ``ttlSecondsAfterFinished``; a restricted securityContext; names valid under RFC 1123);
- follows the Job and its Pod through one shared watch per namespace and kind, filtered by
  label, resumed from its ``resourceVersion`` and restarted from a fresh list on 410 Gone;
- streams the Pod's log into the store; surfaces ``Unschedulable`` as a warning on the item;
  fails the item with the reason on image pull errors; requeues it (bounded by the queue's
  max attempts) when its Pod was disrupted by preemption;
- cancels by deleting the Job with foreground propagation; fences itself (deletes the Job)
  when the lease is about to lapse unrenewed.

An agent restarted after a crash finds the Job of the attempt by its labels and adopts it
(``KubernetesRunner.adopt``) instead of creating a second one.

Queue config (``template:`` keys, with ``{{variables}}`` and ``${macros}`` as for every
runner): ``namespace``, ``cpu``, ``memory``,
``gpus``, ``resources``, ``node_selector``, ``tolerations``, ``service_account``,
``image_pull_secrets``, ``env``, ``labels``, ``annotations``, ``priority_class``,
``ttl_seconds_after_finished``, ``security_context``, ``pod_security_context``,
``volumes``, ``volume_mounts``, and ``job`` (a whole Job manifest to start from). The
cluster, its credentials and what a pod may do are the agent's own policy (runners/policy.py):
a template naming ``kubeconfig`` or ``context`` is refused.

The package's modules, one job each: ``manifests`` (names, labels, template and pod-security
checks, the Job and ConfigMap), ``outputs`` (the outputs block of the pod's log),
``cluster`` (the API client), ``watch`` (the shared watches), ``run`` (one attempt) and
``runner`` (the runner and ``check_queue``).
"""

from __future__ import annotations

from .cluster import connect
from .manifests import (
    ADMIN_KEYS,
    ALLOWED_KEYS,
    MANAGED_BY,
    PREFIX,
    check_pod_security,
    check_template,
    job_name,
    k8s_name,
    label_value,
    plan_manifests,
    restricted_security,
    run_labels,
    validate_model,
)
from .outputs import KEY_VAR, OutputTrailer, job_output_key, new_output_key, output_marker
from .run import KubernetesRun
from .runner import NEEDS_IMAGE, KubernetesRunner, check_queue

__all__ = [
    "ADMIN_KEYS",
    "ALLOWED_KEYS",
    "KEY_VAR",
    "MANAGED_BY",
    "NEEDS_IMAGE",
    "PREFIX",
    "KubernetesRun",
    "KubernetesRunner",
    "OutputTrailer",
    "check_pod_security",
    "check_queue",
    "check_template",
    "connect",
    "job_name",
    "job_output_key",
    "k8s_name",
    "label_value",
    "new_output_key",
    "output_marker",
    "plan_manifests",
    "restricted_security",
    "run_labels",
    "validate_model",
]
