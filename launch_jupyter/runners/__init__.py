"""Runners: where an item's attempt actually runs (local process, docker, kubernetes, ...).

Runners are plug-ins: each is a class registered under the entry-point group
``launch_jupyter.runners`` (launch-jupyter registers its own three in pyproject.toml), so a
package adds one without touching launch-jupyter (docs/runners.md). A runner's module is
imported only when a queue of that runner is created, checked or served.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ..errors import LaunchError
from .base import Run, Runner, RunReport, RunRequest, job_environment, outcome

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["GROUP", "Run", "RunReport", "RunRequest", "Runner", "check_queue_config",
           "collect_outputs", "get_runner", "job_environment", "names", "outcome", "rescan",
           "runner_class", "runner_help"]

#: the entry-point group runners are registered under
GROUP = "launch_jupyter.runners"


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    """The registered runners by name (read once per process; ``rescan`` reads again)."""
    from importlib.metadata import entry_points  # not on a supervisor's start-up path

    return {ep.name: ep for ep in entry_points(group=GROUP)}


def names() -> list[str]:
    """The names of the runners installed here, sorted."""
    return sorted(_entry_points())


def rescan() -> None:
    """Read the installed runners again (after a runner package is installed or removed)."""
    _entry_points.cache_clear()


def runner_class(name: str) -> type[Runner]:
    """The class registered as runner ``name`` (LaunchError when none is)."""
    entry = _entry_points().get(name) if isinstance(name, str) else None
    if entry is None:
        available = ", ".join(names()) or "none (reinstall launch-jupyter: pip install -e .)"
        raise LaunchError(f"unknown runner {name!r}; use one of: {available}; a package adds "
                          f"a runner by registering it under the {GROUP!r} entry-point group "
                          "(docs/runners.md)")
    try:
        return entry.load()
    except ImportError as err:
        raise LaunchError(f"runner {name!r} ({entry.value}) cannot be imported: {err}; "
                          "install what it needs or reinstall its package") from None


def get_runner(name: str) -> Runner:
    """A new instance of runner ``name``."""
    return runner_class(name)()


def check_queue_config(runner: str, config: dict[str, Any], values: dict[str, Any]) -> None:
    """What queue create and submit check: the runner exists and accepts ``config`` with
    these template ``values`` (their defaults when empty). Raises LaunchError."""
    cls = runner_class(runner)
    if runner != "local" and "gpus_per_item" in config:
        raise LaunchError(f"gpus_per_item is an option of local queues; a {runner} queue asks "
                          "for GPUs with its template's gpus")
    if runner != "local" and config.get("environment", "current") != "current":
        raise LaunchError(f"environment: {config['environment']} is an option of local queues; "
                          f"a {runner} queue's image is its environment (it installs the job's "
                          "lock)")
    if not values and config.get("variables"):
        from .templates import validate_template_values

        values = validate_template_values(config)
    cls.validate_queue_config(config, values)


def runner_help() -> dict[str, str]:
    """Each installed runner's one-line help, by name (for the doors' help texts)."""
    out = {}
    for name in names():
        try:
            out[name] = str(getattr(runner_class(name), "help", "") or "")
        except LaunchError as err:
            out[name] = f"(unavailable: {err})"
    return out


def __getattr__(name: str) -> Any:
    # build (image builds, tar handling) loads on first use: supervisors start without it
    if name == "collect_outputs":
        from .build import collect_outputs

        return collect_outputs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
