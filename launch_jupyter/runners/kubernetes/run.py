"""One attempt as a Job: create (or adopt), follow through the watches, stream the pod's
log, and record the outcome; plus the readers of Job and Pod status."""

from __future__ import annotations

import json
import logging
import queue as queue_mod
import secrets
import shutil
import socket
import tarfile
import threading
import time
from typing import TYPE_CHECKING, Any

from ...errors import LaunchError
from .. import build
from ..base import HeldRun, RunRequest, outcome
from ..metrics import MarkerSplitter, raw_overlap
from .cluster import Connection, api_error
from .manifests import CONTAINER, PREFIX, label_value
from .outputs import OutputTrailer, job_output_key, output_marker

if TYPE_CHECKING:
    from .runner import KubernetesRunner

log = logging.getLogger("launch_jupyter.runners.kubernetes")

TICK = 0.2  # seconds between log flushes
CHECK_EVERY = 0.5  # seconds between cancel-flag reads
#: container waiting reasons that end the attempt: the Pod cannot start as asked
START_FAILURES = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                  "CreateContainerConfigError", "CreateContainerError"}
#: DisruptionTarget reasons that mean "not the job's fault": the item is requeued
DISRUPTIONS = {"PreemptionByScheduler", "PreemptionByKubeScheduler", "EvictionByEvictionAPI",
               "DeletionByTaintManager", "DeletionByPodGC", "TerminationByKubelet"}



class KubernetesRun(HeldRun):
    """One attempt as a Job, driven by a thread of the agent's process."""

    def __init__(self, runner: KubernetesRunner, request: RunRequest, conn: Connection, *,
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
            # The run is over (recorded, fenced or let go): its log readers stop too, instead
            # of reconnecting to a pod nobody follows any more.
            self.detached.set()

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
                              f"{self.namespace}: {api_error(err)}") from None
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
                            api_error(err))
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
                self.received[pod.metadata.name] = raw_overlap(stored, output, self.marker)
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
        # A Job without a key (made before keys existed) gets one nobody knows: no outputs.
        key = job_output_key(self.job) or secrets.token_hex(32)
        trailer = self.trailers.setdefault(pod, OutputTrailer(output_marker(key)))
        splitter = MarkerSplitter(self.marker)  # the pod's metric lines (runners/metrics.py)

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
                                self.take(data, splitter, trailer.feed)
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
            tail = trailer.feed(splitter.finish()) + trailer.finish()
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
                log.warning("could not delete Job %s: %s", self.name, api_error(err))
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
            pod = self._final_pod(pod, finished=kind is not None)
            state, term = _container_state(pod)
            if state == "terminated":
                code = term.get("exit_code")
        if code is None and kind == "Complete":
            code = 0
        state, error = outcome(self.stop_reason, code, self.timeout,
                               lambda: self._job_error(code, term, reason, message))
        cells, executed = self.end_progress()
        outputs = self._collect_outputs()
        deadline = time.monotonic() + max(self.request.lease_ttl * 0.75, 1.0)
        while True:
            try:
                self.flush()
                self.store.finish(self.item_id, self.token, state, exit_code=code,
                                  error=error, outputs=outputs, cells=cells,
                                  executed_notebook=executed)
                return True
            except Exception as err:
                if time.monotonic() > deadline:
                    log.warning("could not record the outcome of %s: %s", self.item_id, err)
                    return True  # the Job stays: the next agent adopts it and records it
                time.sleep(0.5)

    def _final_pod(self, pod: Any, *, finished: bool) -> Any:
        """The pod as it is now. The Job's watch can report the end before the pod's watch
        reports the container's: the cache first, then (for an ended Job) one read of the
        pod, so the exit code and the failing cell are not lost to that race."""
        name = pod.metadata.name
        pod = self.pods.get(name, pod)
        if not finished or _container_state(pod)[0] == "terminated":
            return pod
        try:
            return self._core().read_namespaced_pod(name, self.namespace)
        except Exception as err:
            log.debug("could not read pod %s again: %s", name, err)
            return pod

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

