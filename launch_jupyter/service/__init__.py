"""THE Python API: jobs, queues, items (one paging rule), logs (UTF-8 safe, follow),
agents (the foreground run, the kernel agent) and handles, over one store.

Every front door (CLI, magics, widgets, REST) calls this and nothing below it;
``launch_jupyter.api`` re-exports it. See docs/architecture.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import LaunchError
from ..store import JobRecord
from .client import Launch, connect, connect_default, default_client
from .handles import Item, Sweep


def submit(ref: str | os.PathLike | JobRecord, *, queue: str | None = None,
           parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
           priority: str | int | None = None, timeout: float | None = None,
           name: str | None = None, after: Sequence[str | Item] | str | Item | None = None,
           client: Launch | None = None) -> Item:
    """Submit a job ref (``train``, ``train:v3``) or a notebook/script path; returns the Item.

    A path is captured as a new job version first (``name`` defaults to the file's stem).
    ``after``: items (ids or handles) it waits on, as ``submit --after``.
    """
    client = client or default_client()
    return client.submit(ref, queue=queue, parameters=parameters, overrides=overrides,
                         priority=priority, timeout=timeout, name=name, after=after)


def sweep(ref: str | os.PathLike | JobRecord, *, queue: str | None = None,
          config: str | os.PathLike | Mapping[str, Any] | None = None,
          grid: Mapping[str, Sequence[Any]] | Sequence[str] = (), random: int | None = None,
          parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
          priority: str | int | None = None, timeout: float | None = None,
          seed: int | None = None, name: str | None = None, parallel: int | None = None,
          client: Launch | None = None) -> Sweep:
    """A durable sweep from a W&B sweep ``config`` (dict or YAML path), or one trial per grid
    point (``grid={"lr": [0.01, 0.1]}`` or ``["lr=0.01,0.1"]``) or ``random`` point drawn from
    the schema's bounds; see ``Launch.sweep``."""
    client = client or default_client()
    return client.sweep(ref, queue=queue, config=config, grid=grid, random=random,
                        parameters=parameters, overrides=overrides, priority=priority,
                        timeout=timeout, seed=seed, name=name, parallel=parallel)


__all__ = ["Item", "Launch", "LaunchError", "Sweep", "connect", "connect_default",
           "default_client", "submit", "sweep"]
