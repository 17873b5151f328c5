"""The kubernetes runner: plans each attempt's manifests, tracks its runs and feeds them
from the shared watches; ``check_queue`` is what queue create and submit check."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from ...errors import LaunchError
from .. import build
from ..base import RunRequest, StoreConnections
from ..policy import AgentPolicy
from ..templates import render
from .cluster import Connection, api_error, connect
from .manifests import (
    PREFIX,
    as_list,
    as_mapping,
    check_pod_security,
    check_template,
    label_value,
    plan_manifests,
)
from .run import KubernetesRun
from .watch import Watcher


class KubernetesRunner:
    """Runs each attempt as a Job on the agent's cluster (its kubeconfig, or in-cluster)."""

    name = "kubernetes"
    help = "a batch/v1 Job on the agent's cluster (its own kubeconfig, or in-cluster)"

    #: the agent's policy (the agent sets its own): the cluster it uses, and what each final
    #: Job manifest may do
    policy: AgentPolicy = AgentPolicy()

    def __init__(self) -> None:
        self._stores = StoreConnections()
        self._conns: dict[tuple, Connection] = {}
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
                from ..docker import DockerRunner

                self._builder = DockerRunner()
            builder = self._builder
        return builder.client()

    def connection(self) -> Connection:
        """The client of the agent's own cluster (its policy's kubeconfig and context)."""
        kubeconfig, context = self.policy.kubeconfig, self.policy.kubernetes_context
        key = (kubeconfig or os.environ.get("KUBECONFIG"), context)
        with self._lock:
            conn = self._conns.get(key)
        if conn is None:
            api, namespace = connect(kubeconfig, context)
            with self._lock:
                conn = self._conns.setdefault(key, Connection(api, namespace))
        return conn

    @classmethod
    def validate_queue_config(cls, config: dict[str, Any], values: dict[str, Any]) -> None:
        """The template with these values: image source, keys, pod security (``check_queue``)."""
        check_queue(config, values)

    def check(self, queue_config: dict) -> None:
        """Raise LaunchError when this agent cannot reach the queue's cluster (no kubeconfig
        or context, no in-cluster config, no client) or build its images (no engine)."""
        config = queue_config or {}
        self.connection()  # the agent's own cluster; the template is checked at start
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
                          request.item.get("template_values") or {}, macros,
                          self.policy.template_environment("kubernetes"))
        admin = config.get("admin") or {}
        template = check_template(template, admin)
        template.setdefault("namespace", self.connection().namespace)
        return template, admin

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
        conn = self.connection()
        self.policy.check_job(manifests[0], conn.namespace)  # the agent's fence
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
        conn = self.connection()
        namespace = template.get("namespace") or "default"
        selector = (f"{PREFIX}/item={label_value(request.item['id'])},"
                    f"{PREFIX}/attempt={request.attempt}")
        try:
            jobs = BatchV1Api(conn.api).list_namespaced_job(namespace, label_selector=selector,
                                                            _request_timeout=30)
        except ApiException as err:
            raise LaunchError(f"cannot list Jobs in {namespace}: {api_error(err)}") from None
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

    def _key(self, conn: Connection, namespace: str, item_id: str, attempt: int) -> tuple:
        return (id(conn), namespace, label_value(item_id), attempt)

    def _track(self, run: KubernetesRun) -> None:
        key = self._key(run.conn, run.namespace, run.item_id, run.attempt)
        with self._lock:
            self._runs[key] = run
            for kind in ("job", "pod"):
                if (run.namespace, kind) not in run.conn.watchers:
                    run.conn.watchers[(run.namespace, kind)] = Watcher(
                        self, run.conn, run.namespace, kind)
        run.thread.start()

    def _untrack(self, run: KubernetesRun) -> None:
        key = self._key(run.conn, run.namespace, run.item_id, run.attempt)
        with self._lock:
            if self._runs.get(key) is run:
                del self._runs[key]

    def _run_of(self, conn: Connection, namespace: str, obj: Any) -> KubernetesRun | None:
        labels = (obj.metadata.labels or {}) if obj.metadata else {}
        item, attempt = labels.get(f"{PREFIX}/item"), labels.get(f"{PREFIX}/attempt")
        if not item or not attempt or not attempt.isdigit():
            return None
        with self._lock:
            return self._runs.get((id(conn), namespace, item, int(attempt)))

    def _dispatch(self, conn: Connection, namespace: str, kind: str, event: str,
                  obj: Any) -> None:
        run = self._run_of(conn, namespace, obj)
        if run is not None:
            run.observe(kind, event, obj)

    def _dispatch_list(self, conn: Connection, namespace: str, kind: str,
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
                        + as_list(template.get("volumes"), "volumes"),
                        "containers": list(pod_spec.get("containers") or []) +
                        [{"securityContext": as_mapping(template.get("security_context"),
                                                      "security_context")}]},
                       config.get("admin") or {})
