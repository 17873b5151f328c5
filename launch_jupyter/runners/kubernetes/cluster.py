"""The cluster connection: an API client from a kubeconfig or the in-cluster config."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import LaunchError

if TYPE_CHECKING:
    from .watch import Watcher


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

    def __init__(self, api: Any) -> None:
        self.api = api
        self.watchers: dict[tuple[str, str], Watcher] = {}

