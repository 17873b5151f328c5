"""LaunchConfig: one configuration read the same way by kernels, the CLI, agents and servers.

Precedence: explicit arguments (``--store URL``) > ``LAUNCH_JUPYTER_*`` environment variables >
``jupyter_launch_config.py``/``.json`` in the Jupyter config path > defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_path, jupyter_data_dir
from traitlets import Bool, Float, Int, Unicode, default, validate
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
        from traitlets import TraitError

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
                section[trait] = cls.class_traits()[trait].from_string(value)
        for trait, value in overrides.items():
            if value is not None:
                section[trait] = value
        return cls(config=config)
