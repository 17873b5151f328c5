"""A Kubernetes API on loopback for the runner tests: kmock's emulator plus what a real
API server does that kmock leaves to us, and a test-driven job controller.

``Cluster`` (a ``kmock.KubernetesEmulator``) adds: ``metadata.resourceVersion``/``uid``/
``creationTimestamp`` on every write, label selectors on list and watch, watches that resume
from a ``resourceVersion`` (history kept in memory) and answer ``410 Gone`` (an ERROR event,
as the API server does) below the compaction mark, and pod logs (``pods/log``, ``follow``).
Tests can drop every open watch, refuse new ones for a while, and compact the history.

``Controller`` plays kube-controller-manager and the kubelet through the official client,
as they would through a real API server: it creates a Job's Pod from its template, moves Pod
and Job statuses, writes the container's output to the pod log, and deletes a deleted
Job's Pods (the garbage collector). What each Job does is a scenario chosen by the test.

Every Job and ConfigMap the runner creates is read into the official client's model and
written back; anything lost (an unknown or misspelt field) or refused is recorded in
``Cluster.invalid``, which the fixture asserts empty.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import aiohttp.web
import kmock
from kmock import action

API_RESOURCES = {
    "batch/v1/jobs": kmock.ResourceInfo(kind="Job", namespaced=True, subresources={"status"}),
    "v1/pods": kmock.ResourceInfo(kind="Pod", namespaced=True,
                                  subresources={"status", "log"}),
    "v1/configmaps": kmock.ResourceInfo(kind="ConfigMap", namespaced=True),
}
CONTROLLER_AGENT = "test-job-controller"
MODELS = {"jobs": "V1Job", "configmaps": "V1ConfigMap", "pods": "V1Pod"}


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def round_trip_loss(body: dict, model: str) -> list[str]:
    """Fields of ``body`` the official client's ``model`` does not keep (or the error)."""
    from kubernetes.client import ApiClient

    api = ApiClient()
    try:
        back = api.sanitize_for_serialization(
            api._ApiClient__deserialize(json.loads(json.dumps(body)), model))
    except Exception as err:
        return [f"{type(err).__name__}: {err}"]

    def walk(a: Any, b: Any, path: str) -> list[str]:
        if isinstance(a, dict):
            if not isinstance(b, dict):
                return [path]
            return [p for k, v in a.items() for p in
                    ([f"{path}.{k}"] if k not in b and v not in (None, {}, [])
                     else walk(v, b.get(k), f"{path}.{k}"))]
        if isinstance(a, list):
            if not isinstance(b, list) or len(a) != len(b):
                return [path]
            return [p for i, (x, y) in enumerate(zip(a, b, strict=True))
                    for p in walk(x, y, f"{path}[{i}]")]
        return [] if a == b or (a is not None and str(a) == str(b)) else [path]

    return walk(body, back, model)


def _selector_matches(selector: str | None, labels: dict) -> bool:
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term.strip() not in labels:
            return False
    return True


class Cluster(kmock.KubernetesEmulator):
    """kmock's emulator with resource versions, selectors, resumable watches and pod logs."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for name, info in API_RESOURCES.items():
            self.resources[name] = info
        self.rv = itertools.count(1000)
        self.last_rv = 999
        self.history: list[tuple[int, Any, str, dict]] = []  # rv, resource, type, object
        self.compacted_below = 0
        self.changed = asyncio.Condition()
        self.logs: dict[tuple[str, str], bytearray] = {}
        self.log_ended: set[tuple[str, str]] = set()
        self.invalid: list[str] = []
        self.created: list[tuple[str, dict]] = []  # (plural, body) of every create
        self.created_at: dict[str, float] = {}  # name -> time.time() its create arrived
        self.watch_requests: list[dict] = []
        self.list_requests: list[dict] = []
        self.drops = 0
        self.refuse_watches = False

    # -- the API server's bookkeeping ------------------------------------------------------

    def _stamp(self, meta: dict) -> int:
        rv = next(self.rv)
        self.last_rv = rv
        meta["resourceVersion"] = str(rv)
        return rv

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        if res is None or res.plural not in MODELS:
            return await super()._handle(request)
        if request.subresource == "log":
            return await self._serve_log(request)
        if request.action == action.WATCH:
            return await self._serve_resumable_watch(request)
        if request.action == action.LIST:
            return await self._serve_selected_list(request)
        key = None
        kind = ""
        if request.action == action.CREATE:
            body = request.data
            self.created_at.setdefault(str(body.get("metadata", {}).get("name")), time.time())
            self.created.append((res.plural, json.loads(json.dumps(body))))
            if res.plural != "pods":
                for problem in round_trip_loss(body, MODELS[res.plural]):
                    self.invalid.append(f"{res.plural} {body['metadata'].get('name')}: "
                                        f"{problem}")
            meta = body.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now())
            meta.setdefault("namespace", request.namespace)
            self._stamp(meta)
            key = (res, request.namespace or meta.get("namespace"), meta.get("name"))
            kind = "ADDED"
        elif request.action == action.UPDATE and request.name:
            if isinstance(request.data, dict):
                self._stamp(request.data.setdefault("metadata", {}))
            key = (res, request.namespace, request.name)
            kind = "MODIFIED"
        elif request.action == action.DELETE and request.name:
            key = (res, request.namespace, request.name)
            kind = "DELETED"
            async with self._lock:
                if key in self.objects and not self.objects[key].deleted:
                    meta = {}
                    self._stamp(meta)
                    self.objects[key].patch({"metadata": {
                        **meta, "deletionTimestamp": now()}})
        deleted_raw = None
        if kind == "DELETED" and key in self.objects and not self.objects[key].deleted:
            deleted_raw = json.loads(json.dumps(self.objects[key].raw))
        response = await super()._handle(request)
        if key is not None and response.status < 300:
            raw = deleted_raw if kind == "DELETED" else json.loads(json.dumps(
                self.objects[key].raw))
            if raw is not None:
                async with self.changed:
                    self.history.append((int(raw["metadata"]["resourceVersion"]), res, kind,
                                         raw))
                    self.changed.notify_all()
        return response

    def _matching(self, request: kmock.Request) -> list[dict]:
        selector = request.params.get("labelSelector")
        return [obj.raw for (res, ns, _name), obj in list(self.objects.items())
                if res == request.resource and not obj.deleted
                and (request.namespace is None or ns == request.namespace)
                and _selector_matches(selector, obj.raw.get("metadata", {}).get("labels")
                                      or {})]

    async def _serve_selected_list(self, request: kmock.Request) -> aiohttp.web.Response:
        self.list_requests.append(dict(request.params))
        async with self._lock:
            items = self._matching(request)
        return aiohttp.web.json_response({
            "apiVersion": "v1", "kind": "List", "items": items,
            "metadata": {"resourceVersion": str(self.last_rv)}})

    async def _serve_resumable_watch(self, request: kmock.Request,
                                     ) -> aiohttp.web.StreamResponse:
        params = dict(request.params)
        self.watch_requests.append(params)
        if self.refuse_watches:
            return aiohttp.web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503,
                 "reason": "ServiceUnavailable", "message": "watches refused by the test"},
                status=503)
        raw_request = request._raw_request
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw_request)
        selector = params.get("labelSelector")
        version = params.get("resourceVersion")
        timeout = float(params.get("timeoutSeconds") or 300)
        deadline = time.monotonic() + timeout
        drops = self.drops

        async def send(kind: str, obj: dict) -> None:
            await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

        if version in (None, "", "0"):
            async with self._lock:
                current = self._matching(request)
            for obj in current:
                await send("ADDED", obj)
            position = len(self.history)
        elif int(version) < self.compacted_below:
            await send("ERROR", {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "code": 410, "reason": "Expired",
                                 "message": f"too old resource version: {version} "
                                            f"({self.compacted_below})"})
            await response.write_eof()
            return response
        else:
            position = next((i for i, entry in enumerate(self.history)
                             if entry[0] > int(version)), len(self.history))
        while time.monotonic() < deadline:
            if self.drops != drops:  # the test cut the connection
                raw_request.transport.close()
                return response
            pending = self.history[position:]  # in the order they happened
            position += len(pending)
            for _rv, res, kind, obj in pending:
                if res == request.resource and (
                        request.namespace is None
                        or obj["metadata"].get("namespace") == request.namespace) and \
                        _selector_matches(selector, obj["metadata"].get("labels") or {}):
                    await send(kind, obj)
            async with self.changed:
                try:
                    await asyncio.wait_for(self.changed.wait(), 0.1)
                except asyncio.TimeoutError:
                    pass
        await response.write_eof()
        return response

    async def _serve_log(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        key = (request.namespace, request.name)
        if key not in self.logs:
            return aiohttp.web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400,
                 "reason": "BadRequest",
                 "message": f'container "job" in pod "{request.name}" is waiting to start'},
                status=400)
        follow = request.params.get("follow") in ("true", "True", "1")
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request._raw_request)
        sent = 0
        drops = self.drops
        while True:
            data = bytes(self.logs[key])
            if len(data) > sent:
                await response.write(data[sent:])
                sent = len(data)
            if not follow or key in self.log_ended:
                break
            if self.drops != drops:
                request._raw_request.transport.close()
                return response
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response


class ClusterServer:
    """``Cluster`` served on 127.0.0.1 by ``kmock.Server`` in a thread with its own loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stopped: asyncio.Event | None = None
        self.cluster: Cluster | None = None
        self.url = ""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True, name="k8s-emulator")

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def serve() -> None:
            self.stopped = asyncio.Event()
            async with Cluster() as cluster, kmock.Server(cluster) as server:
                self.cluster = cluster
                self.url = str(server.url).rstrip("/")
                self.ready.set()
                await self.stopped.wait()

        try:
            self.loop.run_until_complete(serve())
        except BaseException as err:  # surfaced by start()
            self.error = err
            self.ready.set()

    def start(self) -> ClusterServer:
        self.thread.start()
        if not self.ready.wait(30) or self.error is not None or self.cluster is None:
            raise RuntimeError(f"the Kubernetes emulator did not start: {self.error!r}")
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the emulator's loop (its state is not thread-safe) and return."""
        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def stop(self) -> None:
        if self.stopped is not None:
            self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(30)

    # -- what tests do to the cluster -------------------------------------------------------

    def drop_connections(self) -> None:
        """Cut every open watch and log stream, as a load balancer restart would."""
        def drop() -> None:
            self.cluster.drops += 1

        self.call(drop)

    def refuse_watches(self, refuse: bool) -> None:
        def set_() -> None:
            self.cluster.refuse_watches = refuse

        self.call(set_)

    def compact(self) -> None:
        """Forget the history: watches from any version seen so far get 410 Gone."""
        def compact() -> None:
            self.cluster.compacted_below = self.cluster.last_rv + 1

        self.call(compact)

    def append_log(self, namespace: str, pod: str, data: bytes) -> None:
        def add() -> None:
            self.cluster.logs.setdefault((namespace, pod), bytearray()).extend(data)

        self.call(add)

    def end_log(self, namespace: str, pod: str) -> None:
        def end() -> None:
            self.cluster.logs.setdefault((namespace, pod), bytearray())
            self.cluster.log_ended.add((namespace, pod))

        self.call(end)

    def kubeconfig(self, path: Any, namespace: str = "default") -> Any:
        import yaml

        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "test-token"}}],
            "contexts": [{"name": "emulator", "context": {
                "cluster": "emulator", "user": "tester", "namespace": namespace}}],
        }))
        return path


# -- the job controller and kubelet, played by the test ---------------------------------------

Scenario = Callable[["Controller", "JobHandle"], None]


class JobHandle:
    """One Job as the controller sees it, with the moves a scenario makes."""

    def __init__(self, ctl: Controller, job: dict) -> None:
        self.ctl = ctl
        self.job = job
        self.name: str = job["metadata"]["name"]
        self.namespace: str = job["metadata"]["namespace"]
        self.labels: dict = job["metadata"].get("labels") or {}
        self.pods: list[str] = []

    @property
    def deleted(self) -> bool:
        return self.name in self.ctl.deleted

    def create_pod(self) -> str:
        template = self.job["spec"]["template"]
        suffix = uuid.uuid4().hex[:5]
        name = f"{self.name}-{suffix}"
        labels = {**(template.get("metadata", {}).get("labels") or {}),
                  "job-name": self.name, "batch.kubernetes.io/job-name": self.name,
                  "controller-uid": self.job["metadata"]["uid"]}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": self.namespace, "labels": labels,
                            "annotations": template.get("metadata", {}).get("annotations"),
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                                 "name": self.name,
                                                 "uid": self.job["metadata"]["uid"],
                                                 "controller": True}]},
               "spec": template["spec"],
               "status": {"phase": "Pending"}}
        self.ctl.core.create_namespaced_pod(self.namespace, pod)
        self.pods.append(name)
        self.set_job(active=1, startTime=now())
        return name

    def pod_status(self, pod: str, **status: Any) -> None:
        self.ctl.core.patch_namespaced_pod_status(pod, self.namespace, {"status": status})

    def unschedulable(self, pod: str, message: str) -> None:
        self.pod_status(pod, phase="Pending", conditions=[{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastTransitionTime": now()}])

    def waiting(self, pod: str, reason: str, message: str) -> None:
        self.pod_status(pod, phase="Pending", conditions=[
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}],
            containerStatuses=[{"name": "job", "image": "x", "imageID": "", "ready": False,
                                "restartCount": 0,
                                "state": {"waiting": {"reason": reason, "message": message}}}])

    def run(self, pod: str) -> None:
        self.ctl.server.append_log(self.namespace, pod, b"")
        self.pod_status(pod, phase="Running", conditions=[
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
            {"type": "Ready", "status": "True", "lastTransitionTime": now()}],
            containerStatuses=[{"name": "job", "image": "x", "imageID": "", "ready": True,
                                "restartCount": 0,
                                "state": {"running": {"startedAt": now()}}}])

    def log(self, pod: str, text: str) -> None:
        self.ctl.server.append_log(self.namespace, pod, text.encode())

    def terminate(self, pod: str, exit_code: int, reason: str | None = None,
                  message: str | None = None, conditions: list | None = None) -> None:
        self.ctl.server.end_log(self.namespace, pod)
        terminated = {"exitCode": exit_code, "reason": reason or (
            "Completed" if exit_code == 0 else "Error"), "startedAt": now(),
            "finishedAt": now()}
        if message:
            terminated["message"] = message
        self.pod_status(pod, phase="Succeeded" if exit_code == 0 else "Failed",
                        conditions=conditions or [],
                        containerStatuses=[{"name": "job", "image": "x", "imageID": "",
                                            "ready": False, "restartCount": 0,
                                            "state": {"terminated": terminated}}])

    def set_job(self, **status: Any) -> None:
        self.ctl.batch.patch_namespaced_job_status(self.name, self.namespace,
                                                   {"status": status})

    def complete(self) -> None:
        self.set_job(active=0, succeeded=1, completionTime=now(), conditions=[
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now()},
            {"type": "Complete", "status": "True", "lastTransitionTime": now()}])

    def fail(self, reason: str = "BackoffLimitExceeded",
             message: str = "Job has reached the specified backoff limit") -> None:
        self.set_job(active=0, failed=1, conditions=[
            {"type": "FailureTarget", "status": "True", "reason": reason, "message": message,
             "lastTransitionTime": now()},
            {"type": "Failed", "status": "True", "reason": reason, "message": message,
             "lastTransitionTime": now()}])

    def wait(self, cond: Callable[[], bool], timeout: float = 60) -> bool:
        """Wait for ``cond`` (or the Job's deletion); False when the Job was deleted."""
        deadline = time.monotonic() + timeout
        while not cond():
            if self.deleted or self.ctl.stopping.is_set():
                return False
            if time.monotonic() > deadline:
                raise AssertionError(f"scenario of {self.name}: timed out")
            time.sleep(0.05)
        return True


def succeed(lines: int = 3) -> Scenario:
    """Pod created, runs, prints ``lines`` lines, exits 0, Job Complete."""
    def scenario(ctl: Controller, job: JobHandle) -> None:
        pod = job.create_pod()
        job.run(pod)
        for i in range(lines):
            job.log(pod, f"step {i}\n")
        job.terminate(pod, 0)
        job.complete()

    return scenario


class Controller:
    """Watches for new Jobs and plays each one's scenario, through the official client."""

    def __init__(self, server: ClusterServer) -> None:
        from kubernetes import client

        self.server = server
        config = client.Configuration()
        config.host = server.url
        self.api = client.ApiClient(config)
        self.api.user_agent = CONTROLLER_AGENT  # tells its requests from the runner's
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.scenarios: list[Scenario] = []  # taken in order, one per new Job
        self.default: Scenario = succeed()
        self.jobs: dict[str, JobHandle] = {}
        self.deleted: set[str] = set()
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._main, daemon=True, name="k8s-controller")

    def start(self) -> Controller:
        self.thread.start()
        return self

    def _main(self) -> None:
        while not self.stopping.is_set():
            try:
                jobs = self.api.sanitize_for_serialization(
                    self.batch.list_job_for_all_namespaces()).get("items") or []
            except Exception as err:  # the emulator is stopping
                if not self.stopping.is_set():
                    self.errors.append(f"controller list failed: {err}")
                return
            present = set()
            for job in jobs:
                name = job["metadata"]["name"]
                present.add(name)
                if name not in self.jobs:
                    handle = self.jobs[name] = JobHandle(self, job)
                    scenario = self.scenarios.pop(0) if self.scenarios else self.default
                    thread = threading.Thread(target=self._play, args=(scenario, handle),
                                              daemon=True, name=f"scenario-{name}")
                    self.threads.append(thread)
                    thread.start()
            for name, handle in self.jobs.items():
                if name not in present and name not in self.deleted:
                    self.deleted.add(name)
                    self._collect(handle)
            self.stopping.wait(0.05)

    def _play(self, scenario: Scenario, job: JobHandle) -> None:
        try:
            scenario(self, job)
        except Exception as err:
            if not job.deleted and not self.stopping.is_set():
                self.errors.append(f"scenario of {job.name} failed: {err!r}")

    def _collect(self, job: JobHandle) -> None:
        """The garbage collector: a deleted Job's Pods go (SIGTERM'd: exit 143)."""
        for pod in job.pods:
            try:
                job.terminate(pod, 143, reason="Error")
                self.core.delete_namespaced_pod(pod, job.namespace)
            except Exception:
                pass

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        for thread in self.threads:
            thread.join(10)
        self.api.close()
