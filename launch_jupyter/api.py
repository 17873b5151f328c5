"""The public Python API: ``from launch_jupyter.api import Launch``.

It lives in ``launch_jupyter.service`` (docs/architecture.md); this module re-exports it.
"""

from __future__ import annotations

from .service import Item, Launch, LaunchError, Sweep, connect, default_client, submit, sweep
from .service.checks import MAX_ATTEMPTS, MAX_ROWS

__all__ = ["MAX_ATTEMPTS", "MAX_ROWS", "Item", "Launch", "LaunchError", "Sweep", "connect",
           "default_client", "submit", "sweep"]
