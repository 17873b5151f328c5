"""The Jupyter server extension: the REST API under ``<base_url>launch/api`` (see openapi.yaml).

The store comes from ``LaunchConfig`` as everywhere else; the server's own config may set it
too (``c.LaunchConfig.store = ...`` in jupyter_server_config.py, or ``--LaunchConfig.store=``),
and that wins over the environment and jupyter_launch_config files.
"""

from __future__ import annotations

from typing import Any

from ..config import LaunchConfig


def launch_config(server_config: Any) -> LaunchConfig:
    """The effective LaunchConfig, with the server's ``LaunchConfig`` section on top."""
    section = server_config.get("LaunchConfig", {}) if server_config is not None else {}
    traits = LaunchConfig.class_trait_names(config=True)
    return LaunchConfig.load(**{k: v for k, v in section.items() if k in traits})


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the launch handlers and the manager they share on ``serverapp``."""
    from .handlers import setup_handlers
    from .manager import LaunchManager

    contents = getattr(serverapp, "contents_manager", None)
    manager = LaunchManager(serverapp.root_dir, launch_config(serverapp.config),
                            allow_hidden=bool(getattr(contents, "allow_hidden", False)))
    serverapp.web_app.settings["launch_manager"] = manager
    setup_handlers(serverapp.web_app, serverapp.base_url)
    serverapp.log.info("launch_jupyter | REST API at %slaunch/api, store %s",
                       serverapp.base_url, _safe_url(manager.client.config.store))


def _safe_url(url: str) -> str:
    """``url`` with any password masked, for the log."""
    from ..store.sql import safe_url

    return safe_url(url)


__all__ = ["launch_config"]
