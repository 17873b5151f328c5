"""What every runner provides: start a run, tell when it is done, adopt one after a crash."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

log = logging.getLogger("launch_jupyter.runners")

if TYPE_CHECKING:
    from ..store import JobRecord


@dataclass
class RunRequest:
    """Everything a runner needs to start one attempt of an item."""

    item: dict
    job: JobRecord
    files: list[tuple[str, bytes]]
    token: str
    attempt: int
    run_dir: Path
    store_url: str
    lease_ttl: float
    cancel_grace: float
    max_log_bytes: int
    agent_id: str
    agent_wake: str | None = None
    #: the queue's config (template, variables, admin options): see runners/templates.py
    queue_config: dict = field(default_factory=dict)
    #: wall-clock time until which the lease handed to the run is certainly valid
    lease_until: float = 0.0
    #: pinned requirements that differ from the environment (None: let the runner check)
    requirement_warnings: list[str] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


class Run(Protocol):
    """A started run, as the agent sees it."""

    #: True when the run renews its own lease (local supervisor); else the agent renews.
    self_renewing: bool

    def done(self) -> bool:
        """True once the run has ended (the store holds its outcome, or it died)."""
        ...

    def cancel(self, grace: float) -> None:
        """Stop the run: SIGTERM-like, then forcefully after ``grace`` seconds."""
        ...

    def info(self) -> dict[str, Any]:
        """What to record in the item's ``run`` field (host, pids, run dir...)."""
        ...


class AgentHeldRun(Run, Protocol):
    """A run whose lease the agent renews (docker, kubernetes): ``self_renewing`` is False."""

    def lease_renewed(self, until: float) -> None:
        """The lease now holds until ``until`` (wall clock); 0 means it is lost.

        The run stops itself (fencing) when the lease is about to lapse unrenewed.
        """
        ...

    def detach(self) -> None:
        """Stop watching the run (the agent is stopping); the run itself keeps going."""
        ...


class Runner(Protocol):
    name: str

    def start(self, request: RunRequest) -> Run:
        """Start the attempt. Raises LaunchError when it cannot start at all."""
        ...

    def prepare(self) -> None:
        """Get ready to start runs quickly (called before a lease is handed to a run)."""
        ...

    def close(self) -> None:
        """Release what the runner holds (helper processes, clients); runs keep going."""
        ...


class AdoptingRunner(Runner, Protocol):
    """A runner whose runs outlive the agent and can be taken over by another agent."""

    def adopt(self, request: RunRequest) -> Run | None:
        """The still-present run of ``request``'s attempt, now watched by this agent.

        ``request.token`` is the lapsed lease's token, already renewed by the agent.
        None when the run is gone (the item is then recovered as usual).
        """
        ...


def outcome(stop_reason: str | None, exit_code: int | None, timeout: float | None,
            job_error: Any) -> tuple[str, dict | None]:
    """(terminal state, error) of a finished run; ``job_error()`` explains a failing exit."""
    if stop_reason == "cancel":
        return "cancelled", {"message": "cancelled", "stage": "run", "cell": None}
    if stop_reason == "timeout":
        return "failed", {"message": f"timed out after {timeout or 0:g} s", "stage": "timeout",
                          "cell": None}
    if exit_code == 0:
        return "succeeded", None
    return "failed", job_error()


def capped(data: bytes, logged: int, cap: int) -> tuple[bytes, bool]:
    """The part of ``data`` that still fits in a log capped at ``cap`` bytes (``logged``
    written so far), with a visible marker when it had to be cut; and whether it was cut."""
    room = max(0, cap - logged)
    if len(data) <= room:
        return data, False
    marker = f"\n[launch-jupyter: log truncated at {cap} bytes; further output was dropped]\n"
    return data[:room] + marker.encode(), True


def overlap(stored: bytes, output: bytes) -> int:
    """How many leading bytes of ``output`` are already at the end of ``stored``."""
    start = max(0, len(stored) - len(output))
    for pos in range(start, len(stored) + 1):
        if output.startswith(stored[pos:]):
            return len(stored) - pos
    return 0


class HeldRun:
    """What the runs the agent holds (docker, kubernetes) share.

    A thread of the agent's process drives the run; output read by other threads is buffered
    here and moved into the store every tick, capped at ``max_log_bytes`` with a visible
    marker and kept for the next tick while the store is away; cancel requests and lease
    renewals arrive from the agent. The subclass sets ``runner`` (with ``store(url)``),
    ``request``, ``item_id``, ``token``, ``attempt`` and ``thread``, calls ``_init_held()``,
    and says in ``_release()`` how to stop and remove what runs (container, Job).
    """

    self_renewing = False

    runner: Any
    request: RunRequest
    item_id: str
    token: str
    attempt: int
    thread: threading.Thread

    def _init_held(self) -> None:
        self.buffer = bytearray()
        self.buffer_lock = threading.Lock()
        self.logged = 0
        self.truncated = False
        self.cancel_requested = threading.Event()
        self.detached = threading.Event()
        self.fenced = False
        self.lease_until = self.request.lease_until or time.time() + self.request.lease_ttl

    # -- the Run protocol -------------------------------------------------------------------

    def done(self) -> bool:
        return not self.thread.is_alive()

    def cancel(self, grace: float) -> None:
        self.cancel_requested.set()

    def lease_renewed(self, until: float) -> None:
        """The agent renewed the lease until ``until`` (0: it could not: fence now)."""
        self.lease_until = until

    # -- for the run's thread ---------------------------------------------------------------

    @property
    def store(self) -> Any:
        return self.runner.store(self.request.store_url)

    def _release(self) -> None:
        """Stop and remove what runs (the container, the Job); it may be gone already."""
        raise NotImplementedError

    def _fail(self, message: str, stage: str) -> None:
        """Record the attempt as failed with ``message`` (unless detached or fenced)."""
        if self.detached.is_set() or self.fenced:
            return
        self.log_line(f"[launch-jupyter: {message}]")
        try:
            self.flush()
            self.store.finish(self.item_id, self.token, "failed",
                              error={"message": message, "stage": stage, "cell": None})
        except Exception:
            log.exception("could not record the failure of %s", self.item_id)
        self._release()

    def _cancel_seen(self) -> bool:
        if self.cancel_requested.is_set():
            return True
        try:
            return self.store.item_state(self.item_id)[1]
        except Exception:
            return False

    def _margin(self) -> float:
        """Stop this long before the lease would lapse unrenewed."""
        return min(self.request.lease_ttl / 4, 5.0)

    def log_line(self, text: str, leading: bool = True) -> None:
        with self.buffer_lock:
            if leading and self.buffer and not self.buffer.endswith(b"\n"):
                self.buffer += b"\n"
            self.buffer += (text + "\n").encode()

    def flush(self) -> None:
        """Move buffered output to the store, capped at ``max_log_bytes``."""
        with self.buffer_lock:
            data = bytes(self.buffer)
            self.buffer.clear()
        if not data or self.truncated:
            return
        chunk, truncating = capped(data, self.logged, self.request.max_log_bytes)
        try:
            size = self.store.append_log(self.item_id, self.token, self.attempt, chunk)
        except Exception:  # store away: keep the data for the next tick
            with self.buffer_lock:
                self.buffer[:0] = data
            return
        if size is not None:
            self.logged += len(chunk)
            self.truncated = truncating


class StoreConnections:
    """A runner's own store connections, one per URL, shared by its run threads."""

    def __init__(self) -> None:
        self._stores: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> Any:
        with self._lock:
            store = self._stores.get(url)
            if store is None:
                from ..store import Store

                store = self._stores[url] = Store(url, migrate=False, check=False)
            return store

    def close(self) -> None:
        with self._lock:
            stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            store.close()
