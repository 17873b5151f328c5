"""launch-jupyter: W&B Launch-style jobs, queues and agents inside Jupyter, local-first.

Kept light on import: supervisors and job processes import this package, and dispatch latency
counts every millisecond. Heavier pieces load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Item", "Launch", "LaunchError", "Sweep", "__version__", "connect", "log",
           "parameters", "submit", "sweep"]


def parameters(**defaults: Any) -> Any:
    """A script's parameters: ``defaults`` by hand, the effective values inside a job."""
    from .runtime import parameters as _parameters

    return _parameters(**defaults)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext launch_jupyter``: register the ``%launch`` / ``%%launch`` magics."""
    from .magics import load_ipython_extension as _load

    _load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The REST API (``launch_jupyter/server``) as a Jupyter server extension."""
    return [{"module": "launch_jupyter.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab sidebar shipped inside the package."""
    return [{"src": "labextension", "dest": "launch-jupyter"}]


def __getattr__(name: str) -> Any:
    if name == "log":  # runtime.log, kept here after the first use: jobs call it in loops
        from .runtime import log

        globals()["log"] = log
        return log
    if name in ("Launch", "connect", "Item", "Sweep", "submit", "sweep"):
        from . import api

        return getattr(api, name)
    if name == "LaunchError":
        from .errors import LaunchError

        return LaunchError
    raise AttributeError(f"module 'launch_jupyter' has no attribute {name!r}")
