"""LaunchConfig: one configuration read the same way by kernels, the CLI, agents and servers.

Precedence: explicit arguments (``--store URL``) > ``LAUNCH_JUPYTER_*`` environment variables >
``jupyter_launch_config.py``/``.json`` in the Jupyter config path > defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_path, jupyter_data_dir
from traitlets import Bool, Enum, Float, Int, List, TraitError, Unicode, default, validate
from traitlets.config import Config, Configurable
from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

#: environment variable -> trait name; values are converted by the trait's type.
ENV_VARS = {
    "LAUNCH_JUPYTER_STORE": "store",
    "LAUNCH_JUPYTER_DATA_DIR": "data_dir",
    "LAUNCH_JUPYTER_LEASE_TTL": "lease_ttl",
    "LAUNCH_JUPYTER_CANCEL_GRACE": "cancel_grace",
    "LAUNCH_JUPYTER_DEFAULT_QUEUE": "default_queue",
    "LAUNCH_JUPYTER_MAX_LOG_BYTES": "max_log_bytes",
    "LAUNCH_JUPYTER_AUTO_MIGRATE": "auto_migrate",
    "LAUNCH_JUPYTER_KERNEL_POOL_SIZE": "kernel_pool_size",
    # the agent's policy (docs/security.md); lists are comma-separated
    "LAUNCH_JUPYTER_KUBECONFIG": "kubeconfig",
    "LAUNCH_JUPYTER_KUBERNETES_CONTEXT": "kubernetes_context",
    "LAUNCH_JUPYTER_KUBERNETES_NAMESPACES": "kubernetes_namespaces",
    "LAUNCH_JUPYTER_KUBERNETES_SERVICE_ACCOUNTS": "kubernetes_service_accounts",
    "LAUNCH_JUPYTER_POD_SECURITY": "pod_security",
    "LAUNCH_JUPYTER_DOCKER_VOLUME_PREFIXES": "docker_volume_prefixes",
    "LAUNCH_JUPYTER_DOCKER_WRITABLE_VOLUME_PREFIXES": "docker_writable_volume_prefixes",
    "LAUNCH_JUPYTER_DOCKER_NETWORKS": "docker_networks",
    "LAUNCH_JUPYTER_TEMPLATE_ENV": "template_env",
}


class LaunchConfig(Configurable):
    """Where the store lives and the defaults every front door shares."""

    data_dir = Unicode(
        help="Folder for the embedded SQLite store and run directories "
        "(default: <jupyter data dir>/launch).",
    ).tag(config=True)

    store = Unicode(
        help="SQLAlchemy URL of the store, e.g. sqlite:////path/launch.db or "
        "postgresql://user:password@host/db (default: SQLite file in data_dir).",
    ).tag(config=True)

    lease_ttl = Float(
        30.0,
        help="Seconds a lease lives without renewal; holders renew every ttl/3.",
    ).tag(config=True)

    cancel_grace = Float(
        10.0,
        help="Seconds between SIGTERM and SIGKILL when a run is cancelled or times out.",
    ).tag(config=True)

    default_queue = Unicode("local", help="Queue used when --queue is left out.").tag(
        config=True
    )

    auto_migrate = Bool(
        True,
        help="Apply pending schema migrations when the store is opened. Operators who "
        "migrate by hand (`jupyter launch store migrate`) turn this off.",
    ).tag(config=True)

    max_log_bytes = Int(
        50 * 1024 * 1024,
        help="Log bytes kept per attempt; beyond this the log is truncated with a marker.",
    ).tag(config=True)

    kernel_pool_size = Int(
        1,
        help="Warm kernels an agent keeps for notebook runs on local queues, per kernelspec "
        "(and environment) it ran in the last hour; each serves one run, then a new one "
        "starts in the background. 0 turns the pool off.",
    ).tag(config=True)

    @validate("kernel_pool_size")
    def _check_pool_size(self, proposal: Any) -> int:
        if proposal["value"] < 0:
            raise TraitError("kernel_pool_size must be 0 (off) or a positive number of kernels")
        return proposal["value"]

    # -- the agent's policy: what queue configs may make happen on this agent's host. It is
    # read from the agent's own config and environment, never from the store; a queue's
    # config can only narrow it (docs/security.md).

    kubeconfig = Unicode(
        "",
        help="The kubeconfig file the agent uses for kubernetes queues ('': $KUBECONFIG, "
        "else ~/.kube/config, else the in-cluster config; 'in-cluster': the in-cluster "
        "config only). A queue template can never name one.",
    ).tag(config=True)

    kubernetes_context = Unicode(
        "",
        help="The kubeconfig context the agent uses ('': its current context). A queue "
        "template can never name one.",
    ).tag(config=True)

    kubernetes_namespaces = List(
        Unicode(),
        help="Namespaces a queue template may run Jobs in ('*': any). Default: only the "
        "context's own namespace.",
    ).tag(config=True)

    kubernetes_service_accounts = List(
        Unicode(),
        help="Service accounts a queue template may give its pods. Default: none (pods get "
        "no service account token).",
    ).tag(config=True)

    pod_security = Enum(
        ["restricted", "baseline", "privileged"],
        "restricted",
        help="The lowest Pod Security Standard a run may use, for every container of a "
        "Kubernetes pod (init and sidecar ones too) and for docker containers: 'restricted' "
        "(default), 'baseline', or 'privileged' (privileged mode, host namespaces, hostPath, "
        "devices). Queue admin switches are honoured only up to this level.",
    ).tag(config=True)

    docker_volume_prefixes = List(
        Unicode(),
        help="Host path prefixes a docker queue may mount read-only (entries without a "
        "leading '/' name docker volumes). Default: none.",
    ).tag(config=True)

    docker_writable_volume_prefixes = List(
        Unicode(),
        help="Host path prefixes (or volume names) a docker queue may mount read-write. "
        "Default: none.",
    ).tag(config=True)

    docker_networks = List(
        Unicode(),
        help="Networks a docker queue may use besides the engine's default (and 'none'): "
        "'host', a network name, 'container:NAME'. Default: none.",
    ).tag(config=True)

    template_env = List(
        Unicode(),
        help="Environment variables of the agent that ${NAME} in a queue template may read. "
        "Default: none (only the item macros ${item_id}, ${job}, ${queue}, ${image}).",
    ).tag(config=True)

    @default("data_dir")
    def _default_data_dir(self) -> str:
        # An explicitly chosen SQLite file keeps its runs beside it, so stores stay separate.
        store = self._trait_values.get("store") or ""
        if store.startswith("sqlite:///") and store != "sqlite:///:memory:":
            return os.path.join(os.path.dirname(os.path.abspath(store[len("sqlite:///"):])))
        return os.path.join(jupyter_data_dir(), "launch")

    @default("store")
    def _default_store(self) -> str:
        return "sqlite:///" + os.path.join(self.data_dir, "launch.db")

    @validate("lease_ttl")
    def _check_ttl(self, proposal: Any) -> float:
        if proposal["value"] <= 0:
            raise TraitError("lease_ttl must be a positive number of seconds")
        return proposal["value"]

    @property
    def runs_dir(self) -> Path:
        """Folder holding one sub-folder per run (item/attempt)."""
        return Path(self.data_dir) / "runs"

    @classmethod
    def load(cls, **overrides: Any) -> LaunchConfig:
        """Build the effective config; keyword arguments that are not None win over all else."""
        config = Config()
        for path in reversed(jupyter_config_path()):
            for loader_cls, fname in (
                (JSONFileConfigLoader, "jupyter_launch_config.json"),
                (PyFileConfigLoader, "jupyter_launch_config.py"),
            ):
                if os.path.exists(os.path.join(path, fname)):
                    config.merge(loader_cls(fname, path=path).load_config())
        section = config.setdefault("LaunchConfig", Config())
        for var, trait in ENV_VARS.items():
            value = os.environ.get(var)
            if value:
                section[trait] = cls._from_environment(var, trait, value)
        for trait, value in overrides.items():
            if value is not None:
                section[trait] = value
        try:
            return cls(config=config)
        except TraitError as err:
            raise TraitError(f"{err} (set in jupyter_launch_config.py/.json in the Jupyter "
                             "config path, or passed as an argument)") from None

    @classmethod
    def _from_environment(cls, var: str, trait: str, value: str) -> Any:
        """The value of ``trait`` that ``var`` sets, checked as the trait checks it: a bad one
        is a TraitError naming the variable (the doors print it, not a traceback)."""
        kind = cls.class_traits()[trait]
        try:
            converted = _string_list(value) if isinstance(kind, List) else kind.from_string(value)
            cls(config=Config({"LaunchConfig": {trait: converted}}))  # the trait's own checks
        except ValueError:  # from_string: not a number, not a boolean
            raise TraitError(f"{var}={value!r}: expected {kind.info()}") from None
        except TraitError as err:
            raise TraitError(f"{var}={value!r}: {err}") from None
        return converted


def _string_list(text: str) -> list[str]:
    """A list trait's value from an environment variable: a JSON list, or comma-separated."""
    if text.lstrip().startswith("["):
        import json

        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return [part.strip() for part in text.split(",") if part.strip()]
