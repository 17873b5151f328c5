"""The shared watches: one per namespace and kind (Jobs, Pods), filtered by label, resumed
from its ``resourceVersion`` and restarted from a fresh list on 410 Gone."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from .cluster import api_error
from .manifests import MANAGED_BY

if TYPE_CHECKING:
    from .runner import KubernetesRunner

log = logging.getLogger("launch_jupyter.runners.kubernetes")

WATCH_TIMEOUT = 30  # seconds a watch request stays open (the server ends it)


class Watcher:
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
                            api_error(err))
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

