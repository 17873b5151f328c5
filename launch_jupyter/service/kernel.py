"""The kernel agent: one agent per process, run as a daemon thread that never blocks a cell.

It stops when the kernel shuts down (atexit); runs it started keep going under their
supervisors, containers or Jobs. The magics and the agents panel both drive it from here.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Sequence
from typing import Any

from ..errors import LaunchError

_lock = threading.Lock()
_agent: Any = None
_atexit_registered = False


def kernel_agent() -> Any:
    """This kernel's running agent, or None."""
    return _agent if _agent is not None and _agent.running else None


def start_kernel_agent(client: Any, queues: Sequence[str] = (), max_jobs: int | None = None,
                       until_idle: bool = False, gpus: str | Sequence[int] | None = None
                       ) -> Any:
    """Start this kernel's agent (one per kernel) on ``client``'s store; returns it.
    ``gpus``: the GPU indices it hands out (see ``Launch.agent``)."""
    global _agent, _atexit_registered
    with _lock:
        if kernel_agent() is not None:
            raise LaunchError(
                f"this kernel's agent {_agent.id} is already running (queues: "
                f"{', '.join(_agent.queues) or 'all'}); stop it first with `%launch agent stop`"
            )
        agent = client.agent(list(queues) or None, max_jobs=max_jobs,
                             until_idle=until_idle, gpus=gpus).start()
        if agent.error is not None:
            raise LaunchError(f"the agent stopped at once: {agent.error}")
        _agent = agent
        if not _atexit_registered:
            atexit.register(_stop_at_exit)
            _atexit_registered = True
        return agent


def stop_kernel_agent(wait: float = 10.0) -> Any:
    """Stop this kernel's agent (if any); returns it. Started runs keep going."""
    global _agent
    with _lock:
        agent, _agent = _agent, None
    if agent is not None:
        agent.stop(wait=wait)
    return agent


def kernel_agent_status() -> dict | None:
    """What this kernel's agent is doing, or None when there is none."""
    agent = kernel_agent()
    return agent.status() if agent is not None else None


def _stop_at_exit() -> None:
    # Kernel shutdown: stop claiming and hand back unstarted items; never hang the exit.
    stop_kernel_agent(wait=5.0)


__all__ = ["kernel_agent", "kernel_agent_status", "start_kernel_agent", "stop_kernel_agent"]
