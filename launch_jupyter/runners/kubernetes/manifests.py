"""Kubernetes manifests: names and labels, the queue template's checks, pod security, and
the Job and ConfigMap of one attempt (checked against the official client's models)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ...errors import LaunchError
from ...jobs.secrets import looks_like_secret
from .. import build
from ..base import UPSTREAM_DIR, RunRequest, job_environment, upstream_files
from ..metrics import metrics_marker
from .outputs import KEY_VAR, new_output_key

#: label and annotation prefix of everything this runner creates
PREFIX = "launch-jupyter.io"
MANAGED_BY = ("app.kubernetes.io/managed-by", "launch-jupyter")
CONTAINER = "job"
CONFIGMAP_LIMIT = 1024 * 1024 - 16 * 1024  # a ConfigMap holds 1 MiB, metadata included
TERMINATION_LOG = "/dev/termination-log"
SRC = f"{build.ROOT}/src"  # the ConfigMap's mount (prebuilt images, injected notebooks)
DEFAULT_TTL_AFTER_FINISHED = 3600

#: template keys the kubernetes runner understands; anything else is refused
ALLOWED_KEYS = {"namespace", "cpu", "memory", "gpus",
                "resources", "node_selector", "tolerations", "service_account",
                "image_pull_secrets", "env", "labels", "annotations", "priority_class",
                "ttl_seconds_after_finished", "security_context", "pod_security_context",
                "volumes", "volume_mounts", "job"}
ADMIN_KEYS = {"allow_privileged", "allow_host_namespaces", "allow_host_path"}
#: what only the agent's own config decides (docs/security.md), never a queue template
AGENT_KEYS = {"kubeconfig": "kubeconfig", "context": "kubernetes_context",
              "in_cluster": "kubeconfig"}

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

def as_mapping(value: Any, key: str) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise LaunchError(f"template {key} must be a mapping")
    return dict(value)


def _str_map(value: Any, key: str) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in as_mapping(value, key).items()}


def as_list(value: Any, key: str) -> list:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise LaunchError(f"template {key} must be a list")
    return list(value)


def check_template(template: Any, admin: Any) -> dict[str, Any]:
    """The rendered template's keys, checked (LaunchError names what is wrong)."""
    template = as_mapping(template, "template")
    admin = as_mapping(admin, "admin")
    for key, trait in AGENT_KEYS.items():
        if key in template:
            raise LaunchError(f"template {key} is refused: the cluster and its credentials are "
                              f"the agent's own (its KUBECONFIG or in-cluster config, and "
                              f"LaunchConfig.{trait} in the agent's config); remove {key} "
                              "from the queue template")
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
    for name, value in as_mapping(template.get("env"), "env").items():
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
    resources = copy.deepcopy(as_mapping(template.get("resources"), "resources"))
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

        from ...jobs.parameters import inject_parameters

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
    # The block's marker is keyed by a per-attempt secret the wrapper takes out of the job's
    # reach before the job starts, so a job cannot print a block of its own (outputs.py).
    command = ["python3", f"{lib_dir}/launch_run.py",
               "--metrics-marker", metrics_marker(item["id"], request.attempt),
               "--dir", build.OUTPUT_DIR, "--dir", build.EXECUTED_DIR, "--", *command]

    # Run-after: the upstream items' outputs travel in the ConfigMap into the work dir: with
    # the code (no nested mount in a read-only volume), or in a volume of their own.
    upstream = {i: f"{job_dir}/{UPSTREAM_DIR}/{i}" for i in request.upstream}
    ups = [(f"{UPSTREAM_DIR}/{path}", content) for path, content in upstream_files(request)]
    if not has_code:
        files += [(f"job/{path}", content) for path, content in ups]
        ups = []
    env = {**job_environment(request, build.OUTPUT_DIR, as_mapping(template.get("env"), "env"),
                             upstream=upstream),
           "PYTHONPATH": lib_dir, KEY_VAR: new_output_key()}
    mounts = [{"name": "launch-output", "mountPath": build.OUTPUT_DIR},
              {"name": "launch-executed", "mountPath": build.EXECUTED_DIR}]
    volumes: list[dict] = [{"name": "launch-output", "emptyDir": {}},
                           {"name": "launch-executed", "emptyDir": {}}]
    configmap = None
    if files or ups:
        configmap, items = _files_configmap(name, namespace, labels, files + ups)
        if files:
            mounts.append({"name": "launch-src", "mountPath": SRC, "readOnly": True})
            volumes.append({"name": "launch-src", "configMap": {
                "name": name, "items": items[:len(files)]}})
        if ups:
            mounts.append({"name": "launch-upstream", "readOnly": True,
                           "mountPath": f"{job_dir}/{UPSTREAM_DIR}"})
            volumes.append({"name": "launch-upstream", "configMap": {"name": name, "items": [
                {**item, "path": item["path"][len(UPSTREAM_DIR) + 1:]}
                for item in items[len(files):]]}})
    mounts += as_list(template.get("volume_mounts"), "volume_mounts")
    volumes += as_list(template.get("volumes"), "volumes")

    pod_sec, container_sec = restricted_security(build.USER_ID if generated else None)
    container_sec = _merge(container_sec, as_mapping(template.get("security_context"),
                                                   "security_context"))
    pod_sec = _merge(pod_sec, as_mapping(template.get("pod_security_context"),
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
    pull = as_list(template.get("image_pull_secrets"), "image_pull_secrets")
    if pull:
        pod_spec["imagePullSecrets"] = [{"name": str(s)} if isinstance(s, str) else s
                                        for s in pull]
    if template.get("node_selector"):
        pod_spec["nodeSelector"] = _str_map(template["node_selector"], "node_selector")
    if template.get("tolerations"):
        pod_spec["tolerations"] = as_list(template["tolerations"], "tolerations")
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
    # Init and sidecar containers of a job template are restricted by default too.
    for other in [c for c in containers if c is not main] + \
            list(pod_spec.get("initContainers") or []):
        if isinstance(other, dict):
            other["securityContext"] = _merge(restricted_security(None)[1],
                                              other.get("securityContext") or {})
    main["terminationMessagePath"] = TERMINATION_LOG
    main["terminationMessagePolicy"] = "FallbackToLogsOnError"
    check_pod_security(pod_spec, admin)
    validate_model(job, "V1Job")
    if configmap is not None:
        validate_model(configmap, "V1ConfigMap")
    return job, configmap

