"""The cluster connection: an API client from a kubeconfig or the in-cluster config."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from ...errors import LaunchError

if TYPE_CHECKING:
    from .watch import Watcher


IN_CLUSTER = "in-cluster"
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def connect(kubeconfig: str = "", context: str = "") -> tuple[Any, str]:
    """An ``ApiClient`` and its context's namespace, from the agent's own configuration
    (never a queue's): ``kubeconfig`` ('': $KUBECONFIG, else ~/.kube/config, else the
    in-cluster config; 'in-cluster': that only) and ``context`` ('': the current one)."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise LaunchError("kubernetes queues need the kubernetes client: "
                          "pip install 'launch-jupyter[kubernetes]'") from None
    in_cluster = kubeconfig == IN_CLUSTER
    kubeconfig = "" if in_cluster else kubeconfig or os.environ.get("KUBECONFIG") or ""
    default = os.path.expanduser("~/.kube/config")
    try:
        if in_cluster or (not kubeconfig and not os.path.exists(default)
                          and os.environ.get("KUBERNETES_SERVICE_HOST")):
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            try:
                with open(NAMESPACE_FILE) as fh:
                    namespace = fh.read().strip() or "default"
            except OSError:
                namespace = "default"
            return client.ApiClient(configuration), namespace
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig or None)
        chosen = next((c for c in contexts if c.get("name") == context), None) if context \
            else current
        if chosen is None:
            raise LaunchError(f"context {context!r} is not in the kubeconfig")
        namespace = (chosen.get("context") or {}).get("namespace") or "default"
        api = config.new_client_from_config(config_file=kubeconfig or None,
                                            context=context or None)
        return api, namespace
    except Exception as err:
        where = kubeconfig or default
        raise LaunchError(f"no usable Kubernetes configuration ({type(err).__name__}: {err}); "
                          f"set the agent's KUBECONFIG, or LaunchConfig.kubeconfig and "
                          f"kubernetes_context (looked at {where}), or run the agent in a "
                          "cluster") from None


def api_error(err: Exception) -> str:
    body = getattr(err, "body", None)
    try:
        message = json.loads(body).get("message") if body else None
    except (ValueError, AttributeError):
        message = None
    status = getattr(err, "status", None)
    return f"{status} {message or getattr(err, 'reason', '') or err}".strip()



class Connection:
    """An API client and the watches opened with it."""

    def __init__(self, api: Any, namespace: str = "default") -> None:
        self.api = api
        #: the context's namespace: where Jobs go when the queue names none
        self.namespace = namespace
        self.watchers: dict[tuple[str, str], Watcher] = {}

