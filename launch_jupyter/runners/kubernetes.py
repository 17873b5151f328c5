"""The kubernetes runner: each attempt is a ``batch/v1`` Job (the official ``kubernetes`` client).

The agent holds the lease of a Kubernetes run and renews it (DESIGN.md, "Who holds the
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
runner): ``namespace``, ``context``, ``kubeconfig``, ``in_cluster``, ``cpu``, ``memory``,
``gpus``, ``resources``, ``node_selector``, ``tolerations``, ``service_account``,
``image_pull_secrets``, ``env``, ``labels``, ``annotations``, ``priority_class``,
``ttl_seconds_after_finished``, ``security_context``, ``pod_security_context``,
``volumes``, ``volume_mounts``, and ``job`` (a whole Job manifest to start from).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import math
import os
import queue as queue_mod
import re
import shutil
import socket
import tarfile
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..errors import LaunchError
from . import build
from .base import HeldRun, RunRequest, StoreConnections, outcome, overlap
from .templates import render

log = logging.getLogger("launch_jupyter.runners.kubernetes")

#: label and annotation prefix of everything this runner creates
PREFIX = "launch-jupyter.io"
MANAGED_BY = ("app.kubernetes.io/managed-by", "launch-jupyter")
CONTAINER = "job"
TICK = 0.2  # seconds between log flushes
CHECK_EVERY = 0.5  # seconds between cancel-flag reads
WATCH_TIMEOUT = 30  # seconds a watch request stays open (the server ends it)
CONFIGMAP_LIMIT = 1024 * 1024 - 16 * 1024  # a ConfigMap holds 1 MiB, metadata included
TERMINATION_LOG = "/dev/termination-log"
SRC = f"{build.ROOT}/src"  # the ConfigMap's mount (prebuilt images, injected notebooks)
DEFAULT_TTL_AFTER_FINISHED = 3600

#: template keys the kubernetes runner understands; anything else is refused
ALLOWED_KEYS = {"namespace", "context", "kubeconfig", "in_cluster", "cpu", "memory", "gpus",
                "resources", "node_selector", "tolerations", "service_account",
                "image_pull_secrets", "env", "labels", "annotations", "priority_class",
                "ttl_seconds_after_finished", "security_context", "pod_security_context",
                "volumes", "volume_mounts", "job"}
ADMIN_KEYS = {"allow_privileged", "allow_host_namespaces", "allow_host_path"}
#: container waiting reasons that end the attempt: the Pod cannot start as asked
START_FAILURES = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                  "CreateContainerConfigError", "CreateContainerError"}
#: DisruptionTarget reasons that mean "not the job's fault": the item is requeued
DISRUPTIONS = {"PreemptionByScheduler", "PreemptionByKubeScheduler", "EvictionByEvictionAPI",
               "DeletionByTaintManager", "DeletionByPodGC", "TerminationByKubelet"}

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


# -- names and labels ---------------------------------------------------------------------

def k8s_name(text: str, max_len: int = 63) -> str:
    """An RFC 1123 label from any text: lowercase ``[a-z0-9-]``, alphanumeric at both ends.

    Text that had to change gets a short hash, so two different inputs never collide.
    """
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if cleaned == text and 0 < len(cleaned) <= max_len:
        return cleaned
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    room = max_len - len(digest) - 1
    head = cleaned[:room].strip("-")
    return f"{head}-{digest}" if head else f"x{digest}"[:max_len]


def label_value(text: str) -> str:
    """A valid label value (<= 63 chars of ``[A-Za-z0-9-_.]``, alphanumeric at both ends)."""
    if len(text) <= 63 and _LABEL_VALUE.match(text):
        return text
    return k8s_name(text)


def job_name(job: str, item_id: str, attempt: int) -> str:
    """The Job's name: unique per attempt, <= 63 characters (the pods' ``job-name`` label)."""
    tail = f"{item_id.lower()}-{attempt}"
    head = k8s_name(job, 62 - len(tail))
    return f"{head}-{tail}"


def run_labels(request: RunRequest) -> dict[str, str]:
    """The labels of a run's Job and Pod (what adoption and the watches select on)."""
    return {
        MANAGED_BY[0]: MANAGED_BY[1],
        f"{PREFIX}/item": label_value(request.item["id"]),
        f"{PREFIX}/attempt": str(request.attempt),
        f"{PREFIX}/job": label_value(request.job.name),
        f"{PREFIX}/job-version": str(request.job.version),
        f"{PREFIX}/queue": label_value(request.item["queue"]),
        f"{PREFIX}/agent": label_value(request.agent_id),
    }


# -- the queue template -------------------------------------------------------------------

def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise LaunchError(f"template {key} must be a mapping")
    return dict(value)


def _str_map(value: Any, key: str) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in _mapping(value, key).items()}


def _list(value: Any, key: str) -> list:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise LaunchError(f"template {key} must be a list")
    return list(value)


def check_template(template: Any, admin: Any) -> dict[str, Any]:
    """The rendered template's keys, checked (LaunchError names what is wrong)."""
    template = _mapping(template, "template")
    admin = _mapping(admin, "admin")
    unknown = set(template) - ALLOWED_KEYS
    if unknown:
        raise LaunchError(f"the queue template has key(s) the kubernetes runner does not "
                          f"allow: {', '.join(sorted(unknown))}; allowed: "
                          f"{', '.join(sorted(ALLOWED_KEYS))}")
    bad_admin = set(admin) - ADMIN_KEYS
    if bad_admin:
        raise LaunchError(f"unknown admin option(s) {', '.join(sorted(bad_admin))}; "
                          f"use: {', '.join(sorted(ADMIN_KEYS))}")
    namespace = template.get("namespace") or "default"
    if not isinstance(namespace, str) or k8s_name(namespace) != namespace:
        raise LaunchError(f"template namespace {namespace!r} is not a valid Kubernetes "
                          "namespace (lowercase letters, digits and '-')")
    gpus = template.get("gpus")
    if gpus not in (None, "", 0) and (isinstance(gpus, bool) or not isinstance(gpus, (int, str))
                                      or not str(gpus).isdigit()):
        raise LaunchError(f"template gpus must be a whole number, got {gpus!r}")
    for key in ("cpu", "memory"):
        value = template.get(key)
        if value not in (None, "") and (isinstance(value, bool)
                                        or not isinstance(value, (str, int, float))):
            raise LaunchError(f"template {key} must be a quantity like '2' or '4Gi', "
                              f"got {value!r}")
    from ..jobs.capture import looks_like_secret

    for name, value in _mapping(template.get("env"), "env").items():
        if looks_like_secret(str(name)) and not isinstance(value, Mapping) \
                and value not in (None, ""):
            raise LaunchError(f"template env {name} looks like a secret: a literal value would "
                              f"be stored in the queue config and shown to everyone; use "
                              f"{name}: {{secretKeyRef: {{name: SECRET, key: KEY}}}} instead")
    ttl = template.get("ttl_seconds_after_finished")
    if ttl not in (None, "") and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0):
        raise LaunchError(f"template ttl_seconds_after_finished must be a whole number of "
                          f"seconds, got {ttl!r}")
    job = template.get("job")
    if job not in (None, ""):
        if not isinstance(job, Mapping):
            raise LaunchError("template job must be a whole batch/v1 Job manifest (a mapping)")
        if job.get("apiVersion", "batch/v1") != "batch/v1" or job.get("kind", "Job") != "Job":
            raise LaunchError(f"template job must be a batch/v1 Job, got "
                              f"{job.get('apiVersion')}/{job.get('kind')}")
    return template


def _refuse(what: str, switch: str) -> LaunchError:
    return LaunchError(f"{what} is refused on this queue: its admin config does not set "
                       f"`{switch}: true` (only the queue's creator can; recreate the queue "
                       "with it, or remove it from the template)")


def check_pod_security(pod_spec: Mapping, admin: Mapping) -> None:
    """Refuse privileged, host-namespace and hostPath pods unless the admin config allows."""
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(key) and not admin.get("allow_host_namespaces"):
            raise _refuse(f"{key}", "allow_host_namespaces")
    for volume in pod_spec.get("volumes") or []:
        if isinstance(volume, Mapping) and volume.get("hostPath") is not None \
                and not admin.get("allow_host_path"):
            raise _refuse("a hostPath volume", "allow_host_path")
    for container in list(pod_spec.get("containers") or []) + \
            list(pod_spec.get("initContainers") or []):
        ctx = (container or {}).get("securityContext") or {}
        caps = (ctx.get("capabilities") or {}).get("add") or []
        if (ctx.get("privileged") or ctx.get("allowPrivilegeEscalation") or caps) \
                and not admin.get("allow_privileged"):
            raise _refuse("a privileged container (privileged, allowPrivilegeEscalation or "
                          "added capabilities)", "allow_privileged")


def validate_model(manifest: Mapping, kind: str) -> None:
    """Check ``manifest`` against the official client's model ``kind`` (e.g. ``V1Job``).

    The manifest is read into the model and written back: a missing required field fails
    the read, and a misspelt or unknown field is what the round trip loses.
    """
    try:
        from kubernetes.client import ApiClient
    except ImportError:
        raise LaunchError("kubernetes queues need the kubernetes client: "
                          "pip install 'launch-jupyter[kubernetes]'") from None
    api = ApiClient()
    try:
        # The client's own reader of API responses (public ``deserialize`` wraps it, with a
        # signature that changed between client versions).
        model = api._ApiClient__deserialize(json.loads(json.dumps(manifest)), kind)
    except (ValueError, TypeError) as err:
        raise LaunchError(f"the {kind[2:]} manifest is not valid: {err}") from None
    back = api.sanitize_for_serialization(model)
    lost = _lost_fields(json.loads(json.dumps(manifest)), back)
    if lost:
        raise LaunchError(f"the {kind[2:]} manifest has field(s) Kubernetes does not know: "
                          f"{', '.join(lost[:5])}; check their spelling")


def _lost_fields(given: Any, back: Any, path: str = "") -> list[str]:
    if isinstance(given, dict):
        if not isinstance(back, dict):
            return [path or "."]
        lost = []
        for key, value in given.items():
            where = f"{path}.{key}" if path else key
            if key not in back:
                if value not in (None, {}, []):
                    lost.append(where)
            else:
                lost += _lost_fields(value, back[key], where)
        return lost
    if isinstance(given, list) and isinstance(back, list):
        lost = []
        for i, (a, b) in enumerate(zip(given, back, strict=False)):
            lost += _lost_fields(a, b, f"{path}[{i}]")
        return lost
    return []


def _env_list(env: Mapping[str, Any]) -> list[dict]:
    out = []
    for name, value in env.items():
        if isinstance(value, Mapping):  # {valueFrom: {secretKeyRef: ...}} or {secretKeyRef: }
            source = value.get("valueFrom", value)
            out.append({"name": str(name), "valueFrom": dict(source)})
        else:
            out.append({"name": str(name), "value": "" if value is None else str(value)})
    return out


def _resources(template: Mapping) -> dict:
    resources = copy.deepcopy(_mapping(template.get("resources"), "resources"))
    requests = dict(resources.get("requests") or {})
    limits = dict(resources.get("limits") or {})
    if template.get("cpu") not in (None, ""):
        requests["cpu"] = str(template["cpu"])
    if template.get("memory") not in (None, ""):
        requests["memory"] = limits["memory"] = str(template["memory"])
    gpus = template.get("gpus")
    if gpus not in (None, "", 0, "0"):
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(int(gpus))
    out = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def restricted_security(non_root_user: int | None) -> tuple[dict, dict]:
    """(pod, container) securityContext of the "restricted" Pod Security Standard."""
    pod: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    container: dict[str, Any] = {"allowPrivilegeEscalation": False,
                                 "capabilities": {"drop": ["ALL"]},
                                 "seccompProfile": {"type": "RuntimeDefault"}}
    if non_root_user is not None:
        pod.update(runAsNonRoot=True, runAsUser=non_root_user, runAsGroup=non_root_user,
                   fsGroup=non_root_user)
        container.update(runAsNonRoot=True)
    return pod, container


def _merge(base: dict, extra: Mapping) -> dict:
    """``extra`` over ``base``, mappings merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _files_configmap(name: str, namespace: str, labels: dict, files: list[tuple[str, bytes]],
                     ) -> tuple[dict, list[dict]]:
    """A ConfigMap holding ``files`` (path, bytes) and its volume's key -> path items."""
    binary: dict[str, str] = {}
    items = []
    total = 0
    for i, (path, content) in enumerate(files):
        key = f"f{i}"
        binary[key] = base64.b64encode(content).decode()
        total += len(content)
        items.append({"key": key, "path": path})
    if total > CONFIGMAP_LIMIT:
        raise LaunchError(f"the job's files take {total} bytes, more than a ConfigMap holds "
                          f"(1 MiB); set `registry:` in the queue config so the agent builds "
                          "an image with the code instead")
    manifest = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "binaryData": binary}
    return manifest, items


def plan_manifests(request: RunRequest, template: Mapping, admin: Mapping, image: str,
                   has_code: bool, generated: bool) -> tuple[dict, dict | None]:
    """(Job, ConfigMap or None) for one attempt; both checked against the client's models.

    ``has_code``: the image holds the job's code under /launch (built here); else the code
    travels in the ConfigMap. ``generated``: the image is launch-jupyter's own Dockerfile
    (its non-root user is known).
    """
    template = check_template(template, admin)
    item = request.item
    spec = request.job.spec
    namespace = template.get("namespace") or "default"
    name = job_name(request.job.name, item["id"], request.attempt)
    labels = run_labels(request)
    mode = spec.get("mode") or "script"
    entry = spec["entrypoint"]
    files: list[tuple[str, bytes]] = []
    job_dir, lib_dir = build.JOB_DIR, build.LIB_DIR
    if not has_code:
        files += [(f"job/{p}", c) for p, c in request.files]
        files += [(f"lib/{p}", c) for p, c in build.support_files()]
        job_dir, lib_dir = f"{SRC}/job", f"{SRC}/lib"
    executed = ""
    if mode == "notebook":
        import nbformat

        from ..jobs.parameters import inject_parameters

        source = dict(request.files)[entry]
        nb = inject_parameters(nbformat.reads(source.decode(), as_version=4),
                               item.get("parameters") or {})
        base = entry.rsplit("/", 1)[-1]
        files.append((f"run/{base}", nbformat.writes(nb).encode()))
        executed = f"{build.EXECUTED_DIR}/{base}"
        command = ["python3", f"{lib_dir}/launch_notebook.py", "--input", f"{SRC}/run/{base}",
                   "--output", executed, "--kernel", "python3",
                   "--error-file", TERMINATION_LOG]
    else:
        command = ["python3", "-u", f"{job_dir}/{entry}"]
    # Files cannot be copied out of a finished pod: the wrapper writes the outputs to the
    # log after the job, where the runner takes them out again.
    command = ["python3", f"{lib_dir}/launch_run.py",
               "--marker", output_marker(item["id"], request.attempt),
               "--dir", build.OUTPUT_DIR, "--dir", build.EXECUTED_DIR, "--", *command]

    env = {
        **(spec.get("env") or {}),
        **request.extra_env,
        **_mapping(template.get("env"), "env"),
        "LAUNCH_ITEM_ID": item["id"],
        "LAUNCH_QUEUE": item["queue"],
        "LAUNCH_JOB": request.job.ref,
        "LAUNCH_PARAMETERS": json.dumps(item.get("parameters") or {}),
        "LAUNCH_OUTPUT_DIR": build.OUTPUT_DIR,
        "LAUNCH_ATTEMPT": str(request.attempt),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": lib_dir,
    }
    mounts = [{"name": "launch-output", "mountPath": build.OUTPUT_DIR},
              {"name": "launch-executed", "mountPath": build.EXECUTED_DIR}]
    volumes: list[dict] = [{"name": "launch-output", "emptyDir": {}},
                           {"name": "launch-executed", "emptyDir": {}}]
    configmap = None
    if files:
        configmap, items = _files_configmap(name, namespace, labels, files)
        mounts.append({"name": "launch-src", "mountPath": SRC, "readOnly": True})
        volumes.append({"name": "launch-src", "configMap": {"name": name, "items": items}})
    mounts += _list(template.get("volume_mounts"), "volume_mounts")
    volumes += _list(template.get("volumes"), "volumes")

    pod_sec, container_sec = restricted_security(build.USER_ID if generated else None)
    container_sec = _merge(container_sec, _mapping(template.get("security_context"),
                                                   "security_context"))
    pod_sec = _merge(pod_sec, _mapping(template.get("pod_security_context"),
                                       "pod_security_context"))

    job = copy.deepcopy(dict(template.get("job") or {}))
    job["apiVersion"], job["kind"] = "batch/v1", "Job"
    meta = job.setdefault("metadata", {})
    meta["name"], meta["namespace"] = name, namespace
    meta["labels"] = {**(meta.get("labels") or {}), **_str_map(template.get("labels"), "labels"),
                      **labels}
    annotations = {**_str_map(template.get("annotations"), "annotations"),
                   f"{PREFIX}/job-ref": request.job.ref, f"{PREFIX}/mode": mode,
                   f"{PREFIX}/executed": executed}
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    job_spec = job.setdefault("spec", {})
    job_spec["backoffLimit"] = 0
    ttl = template.get("ttl_seconds_after_finished")
    job_spec.setdefault("ttlSecondsAfterFinished",
                        DEFAULT_TTL_AFTER_FINISHED if ttl in (None, "") else int(ttl))
    if item.get("timeout"):
        job_spec["activeDeadlineSeconds"] = max(1, math.ceil(float(item["timeout"])))
    pod = job_spec.setdefault("template", {})
    pod_meta = pod.setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **meta["labels"]}
    pod_meta["annotations"] = {**(pod_meta.get("annotations") or {}), **annotations}
    pod_spec = pod.setdefault("spec", {})
    pod_spec["restartPolicy"] = "Never"
    pod_spec["terminationGracePeriodSeconds"] = max(0, int(round(request.cancel_grace)))
    pod_spec["securityContext"] = _merge(pod_sec, pod_spec.get("securityContext") or {})
    if template.get("service_account"):
        pod_spec["serviceAccountName"] = str(template["service_account"])
    else:
        pod_spec.setdefault("automountServiceAccountToken", False)
    pull = _list(template.get("image_pull_secrets"), "image_pull_secrets")
    if pull:
        pod_spec["imagePullSecrets"] = [{"name": str(s)} if isinstance(s, str) else s
                                        for s in pull]
    if template.get("node_selector"):
        pod_spec["nodeSelector"] = _str_map(template["node_selector"], "node_selector")
    if template.get("tolerations"):
        pod_spec["tolerations"] = _list(template["tolerations"], "tolerations")
    if template.get("priority_class"):
        pod_spec["priorityClassName"] = str(template["priority_class"])
    pod_spec["volumes"] = list(pod_spec.get("volumes") or []) + volumes
    containers = pod_spec.setdefault("containers", [])
    if not containers:
        containers.append({"name": CONTAINER})
    main = next((c for c in containers if c.get("name") == CONTAINER), containers[0])
    main["name"] = CONTAINER
    main["image"] = image
    main["command"] = command
    main.pop("args", None)
    main["workingDir"] = job_dir
    main["env"] = [e for e in main.get("env") or [] if e.get("name") not in env] + \
        _env_list(env)
    resources = _resources(template)
    if resources:
        main["resources"] = _merge(main.get("resources") or {}, resources)
    main["volumeMounts"] = list(main.get("volumeMounts") or []) + mounts
    main["securityContext"] = _merge(container_sec, main.get("securityContext") or {})
    main["terminationMessagePath"] = TERMINATION_LOG
    main["terminationMessagePolicy"] = "FallbackToLogsOnError"
    check_pod_security(pod_spec, admin)
    validate_model(job, "V1Job")
    if configmap is not None:
        validate_model(configmap, "V1ConfigMap")
    return job, configmap


def output_marker(item_id: str, attempt: int) -> str:
    """The line that frames an attempt's outputs in its pod's log (launch_run.py writes it)."""
    digest = hashlib.sha256(f"{item_id}/{attempt}".encode()).hexdigest()[:16]
    return f"@@launch-jupyter-outputs-{digest}@@"


def _held_back(data: bytes, pattern: bytes) -> int:
    """How many trailing bytes of ``data`` could be the start of ``pattern``."""
    for size in range(min(len(data), len(pattern) - 1), 0, -1):
        if data.endswith(pattern[:size]):
            return size
    return 0


class OutputTrailer:
    """Splits a pod's log into the job's output and the outputs block that
    ``launch_run.py`` writes at the end (a base64 tar.gz between two marker lines), whatever
    the chunk boundaries of the log stream."""

    def __init__(self, marker: str) -> None:
        self.start = f"\n{marker} ".encode()
        self.end = f"{marker} END\n".encode()
        self.pending = b""
        self.state = "log"  # log -> header -> payload -> done
        self.payload = bytearray()
        self.complete = False
        self.skipped: int | None = None

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` that is the job's output (some bytes may wait for more)."""
        buf = self.pending + data
        self.pending = b""
        out = bytearray()
        while buf:
            if self.state == "done":
                out += buf
                break
            if self.state == "log":
                at = buf.find(self.start)
                if at < 0:
                    keep = _held_back(buf, self.start)
                    out += buf[:len(buf) - keep]
                    self.pending = buf[len(buf) - keep:]
                    break
                out += buf[:at]
                buf = buf[at + len(self.start):]
                self.state = "header"
            elif self.state == "header":
                newline = buf.find(b"\n")
                if newline < 0:
                    self.pending = buf
                    break
                kind, _, size = buf[:newline].decode(errors="replace").partition(" ")
                buf = buf[newline + 1:]
                if kind == "BEGIN":
                    self.state = "payload"
                else:
                    self.skipped = int(size) if size.isdigit() else 0
                    self.state = "done"
            else:  # payload
                at = buf.find(self.end)
                if at < 0:
                    keep = _held_back(buf, self.end)
                    self.payload += buf[:len(buf) - keep]
                    self.pending = buf[len(buf) - keep:]
                    break
                self.payload += buf[:at]
                buf = buf[at + len(self.end):]
                self.complete = True
                self.state = "done"
        return bytes(out)

    def finish(self) -> bytes:
        """The stream ended: what was held back is output after all."""
        tail, self.pending = (self.pending if self.state == "log" else b""), b""
        return tail

    def archive(self) -> bytes | None:
        """The outputs archive (tar.gz), once the whole block has been read."""
        if not self.complete:
            return None
        return base64.b64decode(bytes(self.payload))


# -- the cluster connection ---------------------------------------------------------------

def connect(template: Mapping) -> Any:
    """An ``ApiClient`` from the template's kubeconfig/context, or the in-cluster config."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise LaunchError("kubernetes queues need the kubernetes client: "
                          "pip install 'launch-jupyter[kubernetes]'") from None
    kubeconfig = template.get("kubeconfig") or os.environ.get("KUBECONFIG") or None
    context = template.get("context") or None
    in_cluster = template.get("in_cluster")
    default = os.path.expanduser("~/.kube/config")
    try:
        if in_cluster or (in_cluster is None and not kubeconfig and not os.path.exists(default)
                          and os.environ.get("KUBERNETES_SERVICE_HOST")):
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration)
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as err:
        where = kubeconfig or default
        raise LaunchError(f"no usable Kubernetes configuration ({type(err).__name__}: {err}); "
                          f"set KUBECONFIG or the queue template's kubeconfig/context "
                          f"(looked at {where}), or run the agent in a cluster") from None


def _api_error(err: Exception) -> str:
    body = getattr(err, "body", None)
    try:
        message = json.loads(body).get("message") if body else None
    except (ValueError, AttributeError):
        message = None
    status = getattr(err, "status", None)
    return f"{status} {message or getattr(err, 'reason', '') or err}".strip()


# -- watches ------------------------------------------------------------------------------

class _Watcher:
    """One watch on Jobs or Pods of a namespace, filtered by label, feeding the runs."""

    def __init__(self, runner: KubernetesRunner, conn: Any, namespace: str, kind: str) -> None:
        self.runner = runner
        self.conn = conn
        self.namespace = namespace
        self.kind = kind
        self.stopping = threading.Event()
        self._watch: Any = None
        self.thread = threading.Thread(target=self._main, daemon=True,
                                       name=f"k8s-watch-{kind}-{namespace}")
        self.thread.start()

    def _list_fn(self) -> Any:
        from kubernetes import client

        if self.kind == "job":
            return client.BatchV1Api(self.conn.api).list_namespaced_job
        return client.CoreV1Api(self.conn.api).list_namespaced_pod

    def _main(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        list_fn = self._list_fn()
        selector = f"{MANAGED_BY[0]}={MANAGED_BY[1]}"
        version: str | None = None
        failures = 0
        while not self.stopping.is_set():
            try:
                if version is None:
                    listed = list_fn(self.namespace, label_selector=selector,
                                     _request_timeout=30)
                    version = listed.metadata.resource_version
                    self.runner._dispatch_list(self.conn, self.namespace, self.kind,
                                               listed.items)
                self._watch = watch.Watch()
                for event in self._watch.stream(
                        list_fn, self.namespace, label_selector=selector,
                        resource_version=version, timeout_seconds=WATCH_TIMEOUT,
                        allow_watch_bookmarks=True, _request_timeout=WATCH_TIMEOUT + 15):
                    if self.stopping.is_set():
                        break
                    failures = 0
                    obj = event["object"]
                    rv = getattr(getattr(obj, "metadata", None), "resource_version", None)
                    if rv:
                        version = rv
                    elif event["type"] == "BOOKMARK":
                        version = self._watch.resource_version or version
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.runner._dispatch(self.conn, self.namespace, self.kind,
                                              event["type"], obj)
            except ApiException as err:
                if err.status == 410:  # too old: list again, then watch from there
                    log.info("watch of %ss in %s: resourceVersion %s is gone; listing again",
                             self.kind, self.namespace, version)
                    version = None
                    continue
                failures += 1
                log.warning("watch of %ss in %s failed: %s", self.kind, self.namespace,
                            _api_error(err))
            except Exception as err:  # connection dropped, timeout: resume from `version`
                if self.stopping.is_set():
                    break
                failures += 1
                log.debug("watch of %ss in %s ended (%s); resuming from %s", self.kind,
                          self.namespace, err, version)
            if failures:
                self.stopping.wait(min(5.0, 0.1 * 2 ** min(failures, 6)))

    def stop(self) -> None:
        self.stopping.set()
        w = self._watch
        if w is not None:
            try:
                w.stop()
            except Exception:
                pass


class _Connection:
    """An API client and the watches opened with it."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.watchers: dict[tuple[str, str], _Watcher] = {}


# -- one run ------------------------------------------------------------------------------

class KubernetesRun(HeldRun):
    """One attempt as a Job, driven by a thread of the agent's process."""

    def __init__(self, runner: KubernetesRunner, request: RunRequest, conn: _Connection, *,
                 namespace: str, name: str, manifests: tuple[dict, dict | None] | None = None,
                 build_plan: build.ImagePlan | None = None, adopted: bool = False) -> None:
        self.runner = runner
        self.request = request
        self.conn = conn
        self.namespace = namespace
        self.name = name
        self.item_id: str = request.item["id"]
        self.token = request.token
        self.attempt = request.attempt
        self.manifests = manifests
        self.build_plan = build_plan
        self.adopted = adopted
        self.timeout: float | None = request.item.get("timeout")
        self.events: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
        self.job: Any = None
        self.job_gone = False
        self.pods: dict[str, Any] = {}
        self._init_held()
        self.received: dict[str, int] = {}  # pod -> bytes of its log read so far
        self.trailers: dict[str, OutputTrailer] = {}  # pod -> its outputs block
        self.log_threads: dict[str, threading.Thread] = {}
        self.log_done: dict[str, threading.Event] = {}
        self.stop_reason: str | None = None
        self.stopped_at = 0.0
        self.deleting = False
        self.warned: str | None = "(unset)"  # the first look clears an earlier attempt's
        self.logged_warning = False
        self.thread = threading.Thread(target=self._main, name=f"k8s-{self.item_id}",
                                       daemon=True)

    # -- the Run protocol ---------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {"runner": "kubernetes", "host": socket.gethostname(),
                "namespace": self.namespace, "k8s_job": self.name,
                "run_dir": str(self.request.run_dir)}

    def detach(self) -> None:
        self.detached.set()

    # -- the watches feed these ---------------------------------------------------------

    def observe(self, kind: str, kind_event: str, obj: Any) -> None:
        self.events.put((kind, kind_event, obj))

    # -- the thread ---------------------------------------------------------------------

    def _batch(self) -> Any:
        from kubernetes import client

        return client.BatchV1Api(self.conn.api)

    def _core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.conn.api)

    def _main(self) -> None:
        try:
            if not self.adopted:
                if not self._create():
                    return
            else:
                self._prepare_adopted()
            self._follow()
        except LaunchError as err:
            self._fail(str(err), "start")
        except Exception as err:  # the API went away for good, a bug: never leave it hanging
            log.exception("kubernetes run of %s failed", self.item_id)
            self._fail(f"kubernetes runner error: {type(err).__name__}: {err}", "run")
        finally:
            self.runner._untrack(self)

    def _create(self) -> bool:
        from kubernetes.client.exceptions import ApiException

        if self.build_plan is not None:
            self._build_image()
            if time.time() > self.lease_until - self._margin():
                self.fenced = True  # the lease was lost during the build: start nothing
                return False
        if self.detached.is_set():
            return False
        if self._cancel_seen():
            self.flush()
            self.store.finish(self.item_id, self.token, "cancelled",
                              error={"message": "cancelled before the Job was created",
                                     "stage": "run", "cell": None})
            return False
        assert self.manifests is not None
        job, configmap = self.manifests
        core, batch = self._core(), self._batch()
        try:
            if configmap is not None:
                try:
                    core.create_namespaced_config_map(self.namespace, configmap)
                except ApiException as err:
                    if err.status != 409:  # 409: an earlier try of this attempt made it
                        raise
            try:
                created = batch.create_namespaced_job(self.namespace, job)
            except ApiException as err:
                if err.status != 409:
                    raise
                created = batch.read_namespaced_job(self.name, self.namespace)
                self.log_line(f"[launch-jupyter: Job {self.name} already exists; following "
                              "it instead of creating a second one]")
        except ApiException as err:
            raise LaunchError(f"Kubernetes refused the Job {self.name} in namespace "
                              f"{self.namespace}: {_api_error(err)}") from None
        self.job = created
        uid = getattr(created.metadata, "uid", None)
        if configmap is not None and uid:
            owner = [{"apiVersion": "batch/v1", "kind": "Job", "name": self.name, "uid": uid,
                      "blockOwnerDeletion": False, "controller": False}]
            try:  # deleted with its Job by the garbage collector
                core.patch_namespaced_config_map(self.name, self.namespace,
                                                 {"metadata": {"ownerReferences": owner}})
            except ApiException as err:
                log.warning("could not make Job %s own its ConfigMap: %s", self.name,
                            _api_error(err))
        image = job["spec"]["template"]["spec"]["containers"][0]["image"]
        self.store.update_run_info(self.item_id, self.token, phase="pending",
                                   namespace=self.namespace, k8s_job=self.name, image=image)
        self.log_line(f"[launch-jupyter: created Job {self.name} in namespace "
                      f"{self.namespace}]")
        return True

    def _build_image(self) -> None:
        plan = self.build_plan
        assert plan is not None
        self.store.update_run_info(self.item_id, self.token, phase="building", image=plan.tag)
        last = [time.monotonic()]

        def progress(line: str) -> None:
            self.log_line(line, leading=False)
            if time.monotonic() - last[0] > TICK:
                self.flush()
                last[0] = time.monotonic()

        build.ensure_image(self.runner.docker(), plan, progress)
        self.flush()

    def _prepare_adopted(self) -> None:
        """Learn the Job and its Pods; skip the log output the store already holds."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.job = self._batch().read_namespaced_job(self.name, self.namespace)
        except ApiException as err:
            if err.status == 404:
                self.job_gone = True
                return
            raise
        pods = self._core().list_namespaced_pod(
            self.namespace, label_selector=f"{PREFIX}/item={label_value(self.item_id)},"
                                           f"{PREFIX}/attempt={self.attempt}")
        item = self.store.get_item(self.item_id)
        size = item.get("log_bytes") or 0
        for pod in pods.items:
            self.pods[pod.metadata.name] = pod
            if _container_state(pod)[0] in ("running", "terminated"):
                try:
                    output = self._core().read_namespaced_pod_log(
                        pod.metadata.name, self.namespace, container=CONTAINER,
                        _preload_content=False).data
                except ApiException:
                    output = b""
                stored, _ = self.store.read_log(self.item_id, max(0, size - len(output)))
                # Resume the pod's log after what the store already holds.
                self.received[pod.metadata.name] = overlap(stored, output)
                self.truncated = b"[launch-jupyter: log truncated at" in stored
        self.logged = size
        self.log_line(f"[launch-jupyter: agent {self.request.agent_id} adopted Job "
                      f"{self.name}]")

    def _drain(self, wait: float) -> None:
        """Apply the watch events that arrived (waiting up to ``wait`` s for the first)."""
        try:
            first = self.events.get(timeout=wait)
        except queue_mod.Empty:
            return
        batch = [first]
        while True:
            try:
                batch.append(self.events.get_nowait())
            except queue_mod.Empty:
                break
        for kind, what, obj in batch:
            if kind == "job":
                if what == "DELETED":
                    self.job_gone = True
                else:
                    self.job = obj
                    self.job_gone = False
            elif kind == "pod":
                name = obj.metadata.name
                if what == "DELETED":
                    # Keep its last state: a preempted pod is deleted right after it stops.
                    self.pods.setdefault(name, obj)
                    self.pods[name] = _keep_terminal(self.pods[name], obj)
                else:
                    self.pods[name] = _keep_terminal(self.pods.get(name), obj)
            elif kind == "gone":
                self.job_gone = True

    def _follow(self) -> None:
        next_check = time.monotonic()
        while True:
            if self.detached.is_set():
                return
            if time.time() > self.lease_until - self._margin():
                self._fence()
                return
            self._drain(TICK)
            self.flush()
            now = time.monotonic()
            if now >= next_check and self.stop_reason is None:
                next_check = now + CHECK_EVERY
                if self._cancel_seen():
                    self._stop("cancel", "cancel requested")
            if self._step():
                return

    def _step(self) -> bool:
        """Act on what the Job and Pods look like now; True once the item is recorded."""
        pods = sorted(self.pods.values(), key=lambda p: str(p.metadata.creation_timestamp or ""))
        for pod in pods:
            name = pod.metadata.name
            state, detail = _container_state(pod)
            if state in ("running", "terminated") and name not in self.log_threads:
                self._stream_logs(name)
                try:
                    self.store.update_run_info(self.item_id, self.token, phase="running",
                                               pod=name, node=pod.spec.node_name if pod.spec
                                               else None)
                except Exception:
                    log.debug("could not record the pod of %s", self.item_id)
        pod = pods[-1] if pods else None
        self._warn_unschedulable(pod)
        if pod is not None:
            state, detail = _container_state(pod)
            if state == "waiting" and detail.get("reason") in START_FAILURES \
                    and self.stop_reason is None:
                reason = detail.get("reason")
                message = detail.get("message") or ""
                what = "image pull failed" if "Image" in reason else "the container cannot start"
                self._fail(f"{what}: {reason}: {message}".rstrip(": "), "start")
                return True
        disruption = next((d for d in (_disruption(p) for p in pods) if d), None)
        finished = _job_finished(self.job)
        if disruption and self.stop_reason is None:
            if finished is not None or self.job_gone or (pod is not None and
                                                         _pod_finished(pod)):
                self._requeue(disruption)
                return True
            return False
        if self.stop_reason == "cancel" and finished is None and \
                time.monotonic() - self.stopped_at > self.request.cancel_grace + 30:
            self.log_line("[launch-jupyter: the Job is still being deleted; recording the "
                          "cancel]")
            return self._conclude(None, None, pod)
        if self.job_gone and finished is None:
            if self.stop_reason == "cancel":
                return self._conclude(None, None, pod)
            self._fail(f"the Job {self.name} was deleted outside launch-jupyter", "run")
            return True
        if finished is None:
            return False
        kind, reason, message = finished
        if kind == "Failed" and reason == "DeadlineExceeded" and self.stop_reason is None:
            self.stop_reason = "timeout"
        return self._conclude(kind, reason, pod, message)

    def _warn_unschedulable(self, pod: Any) -> None:
        warning = None
        if pod is not None and (pod.status is None or pod.status.phase in (None, "Pending")):
            for cond in (pod.status.conditions or []) if pod.status else []:
                if cond.type == "PodScheduled" and cond.status == "False" and \
                        cond.reason == "Unschedulable":
                    warning = f"Unschedulable: {cond.message or 'no node fits the pod'}"
        if warning == self.warned:
            return
        self.warned = warning
        try:
            self.store.set_warning(self.item_id, warning)
        except Exception:
            log.debug("could not record the warning of %s", self.item_id)
        if warning:
            self.log_line(f"[launch-jupyter: warning: {warning}]")
        elif pod is not None and self.logged_warning:
            self.log_line("[launch-jupyter: the pod was scheduled]")
        self.logged_warning = self.logged_warning or bool(warning)

    def _stream_logs(self, pod: str) -> None:
        done = self.log_done[pod] = threading.Event()
        trailer = self.trailers.setdefault(pod, OutputTrailer(output_marker(self.item_id,
                                                                            self.attempt)))

        def read() -> None:
            from kubernetes.client.exceptions import ApiException

            tries = 0
            while not self.detached.is_set():
                got = 0
                try:
                    resp = self._core().read_namespaced_pod_log(
                        pod, self.namespace, container=CONTAINER, follow=True,
                        _preload_content=False, _request_timeout=(10, 300))
                    try:
                        for data in resp.stream(64 * 1024, decode_content=False):
                            if self.detached.is_set():
                                return
                            start = self.received.get(pod, 0) - got
                            got += len(data)
                            if start > 0:
                                data = data[start:]
                            if data:
                                self.received[pod] = got
                                data = trailer.feed(data)
                                with self.buffer_lock:
                                    self.buffer += data
                    finally:
                        resp.release_conn()
                except ApiException as err:
                    if err.status in (400, 404):  # container gone or not started yet
                        tries += 1
                        if tries > 5:
                            break
                        self.detached.wait(0.5)
                        continue
                    log.debug("log stream of %s ended: %s", pod, err)
                except Exception as err:
                    log.debug("log stream of %s broke (%s); reconnecting", pod, err)
                current = self.pods.get(pod)
                if current is None or _pod_finished(current) or \
                        _container_state(current)[0] == "terminated":
                    break  # a follow stream ends when the container does
                tries += 1
                self.detached.wait(min(2.0, 0.2 * tries))
            tail = trailer.finish()
            if tail:
                with self.buffer_lock:
                    self.buffer += tail
            done.set()

        thread = threading.Thread(target=read, daemon=True, name=f"k8s-logs-{pod}")
        self.log_threads[pod] = thread
        thread.start()

    def _wait_logs(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for event in list(self.log_done.values()):
            event.wait(max(0.0, deadline - time.monotonic()))

    def _stop(self, reason: str, why: str) -> None:
        """Delete the Job with foreground propagation: its pod gets SIGTERM, then SIGKILL
        after terminationGracePeriodSeconds (the queue's cancel grace)."""
        self.stop_reason = reason
        self.stopped_at = time.monotonic()
        self.log_line(f"[launch-jupyter: {why}; deleting Job {self.name}]")
        self._release()

    def _release(self) -> None:
        """Delete the Job (foreground: its pods go first), once."""
        if self.deleting:
            return
        self.deleting = True
        from kubernetes.client.exceptions import ApiException

        try:
            self._batch().delete_namespaced_job(self.name, self.namespace,
                                                propagation_policy="Foreground")
        except ApiException as err:
            if err.status != 404:
                log.warning("could not delete Job %s: %s", self.name, _api_error(err))
        except Exception as err:
            log.warning("could not delete Job %s: %s", self.name, err)

    def _fence(self) -> None:
        """The lease could not be renewed in time: no second copy may run; delete the Job."""
        self.fenced = True
        log.warning("lease of %s could not be renewed in time; deleting Job %s", self.item_id,
                    self.name)
        self._release()

    def _requeue(self, disruption: str) -> None:
        self._wait_logs(5.0)
        self.log_line(f"[launch-jupyter: the pod was disrupted ({disruption}); the item goes "
                      "back to its queue]")
        self.flush()
        state = self.store.retry(self.item_id, self.token, {
            "message": f"pod disrupted: {disruption}", "stage": "run", "cell": None})
        log.info("item %s: pod disrupted (%s) -> %s", self.item_id, disruption, state)
        self._release()

    def _conclude(self, kind: str | None, reason: str | None, pod: Any,
                  message: str | None = None) -> bool:
        self._wait_logs(max(5.0, self.request.cancel_grace + 5) if self.stop_reason else 10.0)
        code, term = None, {}
        if pod is not None:
            state, term = _container_state(pod)
            if state == "terminated":
                code = term.get("exit_code")
        if code is None and kind == "Complete":
            code = 0
        state, error = outcome(self.stop_reason, code, self.timeout,
                               lambda: self._job_error(code, term, reason, message))
        outputs = self._collect_outputs()
        deadline = time.monotonic() + max(self.request.lease_ttl * 0.75, 1.0)
        while True:
            try:
                self.flush()
                self.store.finish(self.item_id, self.token, state, exit_code=code,
                                  error=error, outputs=outputs)
                return True
            except Exception as err:
                if time.monotonic() > deadline:
                    log.warning("could not record the outcome of %s: %s", self.item_id, err)
                    return True  # the Job stays: the next agent adopts it and records it
                time.sleep(0.5)

    def _collect_outputs(self) -> list[dict]:
        """The executed notebook and LAUNCH_OUTPUT_DIR, from the outputs block of the log."""
        run_dir = self.request.run_dir
        for trailer in self.trailers.values():
            if trailer.skipped is not None:
                self.log_line(f"[launch-jupyter: the outputs took {trailer.skipped} bytes "
                              "compressed, over the 64 MiB a log can carry; not copied back "
                              "(mount a volume at /launch/output to keep them)]")
            archive = trailer.archive()
            if archive is None:
                continue
            try:
                for folder in ("output", "executed"):
                    if (run_dir / folder).exists():
                        shutil.rmtree(run_dir / folder)
                build.extract_tar(archive, run_dir)
            except (OSError, ValueError, tarfile.TarError) as err:
                self.log_line(f"[launch-jupyter: could not unpack the outputs: {err}]")
                return []
            return build.collect_outputs(run_dir)
        return []

    def _job_error(self, code: int | None, term: dict, reason: str | None,
                   message: str | None) -> dict:
        if term.get("reason") == "OOMKilled":
            return {"message": "the pod ran out of memory (the queue's memory limit)",
                    "stage": "run", "cell": None}
        text = term.get("message") or ""
        try:
            error = json.loads(text)
        except ValueError:
            error = None
        if isinstance(error, dict) and "message" in error:
            error.setdefault("stage", "execute")
            error.setdefault("cell", None)
            return error
        if code is not None:
            why = f" ({term['reason']})" if term.get("reason") not in (None, "Error") else ""
            return {"message": f"the job exited with code {code}{why}", "stage": "run",
                    "cell": None}
        return {"message": f"the Job failed: {reason or 'unknown reason'}"
                           + (f": {message}" if message else ""), "stage": "run",
                "cell": None}


# -- reading Job and Pod status -----------------------------------------------------------

def _container_state(pod: Any) -> tuple[str | None, dict]:
    """("waiting" | "running" | "terminated" | None, details) of the job's container."""
    statuses = (pod.status.container_statuses or []) if pod.status else []
    status = next((s for s in statuses if s.name == CONTAINER), statuses[0] if statuses else None)
    if status is None or status.state is None:
        return None, {}
    if status.state.terminated is not None:
        t = status.state.terminated
        return "terminated", {"exit_code": t.exit_code, "reason": t.reason,
                              "message": t.message}
    if status.state.running is not None:
        return "running", {}
    if status.state.waiting is not None:
        w = status.state.waiting
        return "waiting", {"reason": w.reason, "message": w.message}
    return None, {}


def _pod_finished(pod: Any) -> bool:
    return bool(pod.status and pod.status.phase in ("Succeeded", "Failed"))


def _keep_terminal(old: Any, new: Any) -> Any:
    """The newer pod state, unless it forgets a terminated container the older one had."""
    if old is None:
        return new
    if _container_state(old)[0] == "terminated" and _container_state(new)[0] != "terminated":
        return old
    return new


def _disruption(pod: Any) -> str | None:
    for cond in (pod.status.conditions or []) if pod.status else []:
        if cond.type == "DisruptionTarget" and cond.status == "True" and \
                (cond.reason in DISRUPTIONS or cond.reason is None):
            return f"{cond.reason or 'DisruptionTarget'}: {cond.message or ''}".rstrip(": ")
    return None


def _job_finished(job: Any) -> tuple[str, str | None, str | None] | None:
    """("Complete" | "Failed", reason, message) once the Job has finished."""
    if job is None or job.status is None:
        return None
    for cond in job.status.conditions or []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return cond.type, cond.reason, cond.message
    return None


# -- the runner ---------------------------------------------------------------------------

class KubernetesRunner:
    """Runs each attempt as a Job on the cluster of the queue's kubeconfig or in-cluster."""

    name = "kubernetes"

    def __init__(self) -> None:
        self._stores = StoreConnections()
        self._conns: dict[tuple, _Connection] = {}
        self._runs: dict[tuple[int, str, str, int], KubernetesRun] = {}
        self._builder: Any = None
        self._lock = threading.Lock()

    def store(self, url: str) -> Any:
        """The runner's own store connection for ``url`` (shared by its run threads)."""
        return self._stores.get(url)

    def docker(self) -> Any:
        """The Docker client that builds and pushes images (``registry`` queues)."""
        with self._lock:
            if self._builder is None:
                from .docker import DockerRunner

                self._builder = DockerRunner()
            builder = self._builder
        return builder.client()

    def connection(self, template: Mapping) -> _Connection:
        key = (template.get("kubeconfig") or os.environ.get("KUBECONFIG"),
               template.get("context"), bool(template.get("in_cluster")))
        with self._lock:
            conn = self._conns.get(key)
        if conn is None:
            api = connect(template)
            with self._lock:
                conn = self._conns.setdefault(key, _Connection(api))
        return conn

    def check(self, queue_config: dict) -> None:
        """Raise LaunchError when this agent cannot reach the queue's cluster (no kubeconfig
        or context, no in-cluster config, no client) or build its images (no engine)."""
        from .templates import validate_template_values

        config = queue_config or {}
        values = validate_template_values(config)
        template = render(config.get("template") or {}, values, {})
        self.connection(template if isinstance(template, dict) else {})
        if config.get("registry") and not config.get("image"):
            self.docker()

    def prepare(self) -> None:
        """Nothing to warm: the client connects on first use."""

    def close(self) -> None:
        """Stop watching (Jobs keep running) and close the connections."""
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
            conns, self._conns = list(self._conns.values()), {}
            builder, self._builder = self._builder, None
        if builder is not None:
            builder.close()
        for run in runs:
            run.detach()
        for conn in conns:
            for watcher in conn.watchers.values():
                watcher.stop()
        for run in runs:
            run.thread.join(2.0)
        for conn in conns:
            for watcher in conn.watchers.values():
                watcher.thread.join(2.0)
            try:
                conn.api.close()
            except Exception:
                pass
        self._stores.close()

    def _template(self, request: RunRequest, image: str) -> tuple[dict, dict]:
        config = request.queue_config or {}
        macros = {"item_id": request.item["id"], "job": request.job.ref,
                  "queue": request.item["queue"], "image": image}
        template = render(config.get("template") or {},
                          request.item.get("template_values") or {}, macros)
        admin = config.get("admin") or {}
        return check_template(template, admin), admin

    def _plan(self, request: RunRequest) -> tuple[dict, dict, build.ImagePlan | None,
                                                  tuple[dict, dict | None]]:
        config = request.queue_config or {}
        if not config.get("image") and not config.get("registry"):
            raise LaunchError(NEEDS_IMAGE)
        plan = build.plan_image(request.job, request.files, config)
        template, admin = self._template(request, plan.tag)
        manifests = plan_manifests(request, template, admin, plan.tag, has_code=plan.has_code,
                                   generated=not plan.prebuilt and not plan.user_dockerfile)
        return template, admin, (None if plan.prebuilt else plan), manifests

    def start(self, request: RunRequest) -> KubernetesRun:
        """Check the manifests (refusals happen here), then create and follow in a thread."""
        template, _admin, plan, manifests = self._plan(request)
        conn = self.connection(template)
        namespace = manifests[0]["metadata"]["namespace"]
        run = KubernetesRun(self, request, conn, namespace=namespace,
                            name=manifests[0]["metadata"]["name"], manifests=manifests,
                            build_plan=plan)
        self._track(run)
        return run

    def adopt(self, request: RunRequest) -> KubernetesRun | None:
        """Take over the Job of this attempt, if it is still there (None if not)."""
        from kubernetes.client import BatchV1Api
        from kubernetes.client.exceptions import ApiException

        config = request.queue_config or {}
        template, _admin = self._template(request, str(config.get("image") or ""))
        conn = self.connection(template)
        namespace = template.get("namespace") or "default"
        selector = (f"{PREFIX}/item={label_value(request.item['id'])},"
                    f"{PREFIX}/attempt={request.attempt}")
        try:
            jobs = BatchV1Api(conn.api).list_namespaced_job(namespace, label_selector=selector,
                                                            _request_timeout=30)
        except ApiException as err:
            raise LaunchError(f"cannot list Jobs in {namespace}: {_api_error(err)}") from None
        found = [j for j in jobs.items
                 if (j.metadata.labels or {}).get(f"{PREFIX}/item") ==
                 label_value(request.item["id"])
                 and (j.metadata.labels or {}).get(f"{PREFIX}/attempt") == str(request.attempt)
                 and not j.metadata.deletion_timestamp]
        if not found:
            return None
        run = KubernetesRun(self, request, conn, namespace=namespace,
                            name=found[0].metadata.name, adopted=True)
        self._track(run)
        return run

    # -- bookkeeping and the shared watches ---------------------------------------------

    def _key(self, conn: _Connection, namespace: str, item_id: str, attempt: int) -> tuple:
        return (id(conn), namespace, label_value(item_id), attempt)

    def _track(self, run: KubernetesRun) -> None:
        key = self._key(run.conn, run.namespace, run.item_id, run.attempt)
        with self._lock:
            self._runs[key] = run
            for kind in ("job", "pod"):
                if (run.namespace, kind) not in run.conn.watchers:
                    run.conn.watchers[(run.namespace, kind)] = _Watcher(
                        self, run.conn, run.namespace, kind)
        run.thread.start()

    def _untrack(self, run: KubernetesRun) -> None:
        key = self._key(run.conn, run.namespace, run.item_id, run.attempt)
        with self._lock:
            if self._runs.get(key) is run:
                del self._runs[key]

    def _run_of(self, conn: _Connection, namespace: str, obj: Any) -> KubernetesRun | None:
        labels = (obj.metadata.labels or {}) if obj.metadata else {}
        item, attempt = labels.get(f"{PREFIX}/item"), labels.get(f"{PREFIX}/attempt")
        if not item or not attempt or not attempt.isdigit():
            return None
        with self._lock:
            return self._runs.get((id(conn), namespace, item, int(attempt)))

    def _dispatch(self, conn: _Connection, namespace: str, kind: str, event: str,
                  obj: Any) -> None:
        run = self._run_of(conn, namespace, obj)
        if run is not None:
            run.observe(kind, event, obj)

    def _dispatch_list(self, conn: _Connection, namespace: str, kind: str,
                       items: list) -> None:
        """A fresh list: feed every object; a run whose Job is missing learns it is gone."""
        seen = set()
        for obj in items:
            run = self._run_of(conn, namespace, obj)
            if run is not None:
                seen.add(id(run))
                run.observe(kind, "MODIFIED", obj)
        if kind != "job":
            return
        with self._lock:
            runs = [r for k, r in self._runs.items() if k[0] == id(conn) and k[1] == namespace]
        for run in runs:
            if id(run) not in seen and run.job is not None:
                run.observe("gone", "DELETED", None)


NEEDS_IMAGE = ("a kubernetes queue needs `image:` (a prebuilt image the cluster can pull; the "
               "job's code then travels in a ConfigMap) or `registry:` (where the agent pushes "
               "the images it builds) in its config")


def check_queue(config: Mapping, values: Mapping) -> None:
    """What ``queue create`` and ``submit`` check for a kubernetes queue (LaunchError)."""
    if not config.get("image") and not config.get("registry"):
        raise LaunchError(NEEDS_IMAGE)
    template = check_template(render(config.get("template") or {}, values, {}),
                              config.get("admin") or {})
    job = template.get("job") or {}
    pod_spec = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    check_pod_security({**pod_spec, "volumes": list(pod_spec.get("volumes") or [])
                        + _list(template.get("volumes"), "volumes"),
                        "containers": list(pod_spec.get("containers") or []) +
                        [{"securityContext": _mapping(template.get("security_context"),
                                                      "security_context")}]},
                       config.get("admin") or {})
