"""The Runner protocol (what every runner provides: check a queue, start a run, tell when it
is done, adopt one after a crash) and the helpers runners share: the job environment, the
run report, outcomes. Third-party runners use only what docs/runners.md names.
"""

from __future__ import annotations

import json
import logging
import posixpath
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..errors import LaunchError

log = logging.getLogger("launch_jupyter.runners")

MAX_HELD_POINTS = 1_000_000  # metric points kept while the store is away

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
    #: run-after: each upstream item id -> its outputs folder on the agent's machine
    upstream: dict[str, str] = field(default_factory=dict)


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
    """A way to run attempts, registered under the entry-point group
    ``launch_jupyter.runners`` (docs/runners.md).

    The agent makes one instance per runner name (no arguments) and calls ``check`` before it
    claims from a queue, ``prepare`` then ``start`` for each attempt, ``adopt`` (optional,
    see AdoptingRunner) for runs a crashed agent left, and ``close`` when it stops.
    """

    #: the name queues use (``--runner NAME``); the same as its entry point's name
    name: str
    #: one line for the front doors' help texts
    help: ClassVar[str]

    @classmethod
    def validate_queue_config(cls, config: dict[str, Any], values: dict[str, Any]) -> None:
        """Refuse a queue config this runner cannot use, rendered with these template values
        (LaunchError naming the value and the fix). Called at queue create and submit, on
        any machine: it must not need the runner's engine or cluster."""
        ...

    def check(self, queue_config: dict) -> None:
        """Raise LaunchError when this machine cannot run the queue's items (no engine, no
        credentials): the agent then leaves them queued for an agent that can."""
        ...

    def prepare(self) -> None:
        """Get ready to start runs quickly (called before a lease is handed to a run)."""
        ...

    def start(self, request: RunRequest) -> Run:
        """Start the attempt and return at once. Raises LaunchError when it cannot start."""
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


def job_environment(request: RunRequest, output_dir: str,
                    *layers: Mapping[str, Any],
                    upstream: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The environment of a job: its captured variables, the agent's extra ones, then
    ``layers`` (a queue template's ``env``), then the ``LAUNCH_*`` variables (docs/architecture.md,
    "Runner environment") and ``PYTHONUNBUFFERED``, which nothing overrides.
    ``LAUNCH_METRICS_FILE`` (where ``launch_jupyter.log`` writes) lies beside ``output_dir``;
    ``LAUNCH_UPSTREAM`` (JSON) maps each upstream item to ``upstream``'s folder of its
    outputs as the job sees it (only for items submitted with ``--after``)."""
    env: dict[str, Any] = {**(request.job.spec.get("env") or {}), **request.extra_env}
    for layer in layers:
        env.update(layer)
    env.update({
        "LAUNCH_ITEM_ID": request.item["id"],
        "LAUNCH_QUEUE": request.item["queue"],
        "LAUNCH_JOB": request.job.ref,
        "LAUNCH_PARAMETERS": json.dumps(request.item.get("parameters") or {}),
        "LAUNCH_OUTPUT_DIR": output_dir,
        "LAUNCH_ATTEMPT": str(request.attempt),
        "LAUNCH_METRICS_FILE": posixpath.join(posixpath.dirname(output_dir.rstrip("/")),
                                              "metrics.jsonl"),
        "PYTHONUNBUFFERED": "1",
    })
    if request.upstream:
        env["LAUNCH_UPSTREAM"] = json.dumps(dict(upstream if upstream is not None
                                                 else request.upstream), sort_keys=True)
    return env


#: run-after in a container: the upstream items' outputs are unpacked into the work dir's
#: ``upstream/<item id>/`` folder
UPSTREAM_DIR = "upstream"


def upstream_files(request: RunRequest) -> list[tuple[str, bytes]]:
    """Run-after for runners whose jobs cannot see the agent's folders (containers): each
    upstream item's output files as (``<item id>/<path>``, content), read from its outputs
    folder on the agent's machine (LaunchError naming a folder that cannot be read)."""
    found: list[tuple[str, bytes]] = []
    for item_id, folder in sorted(request.upstream.items()):
        root = Path(folder)
        try:
            paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
            found += [(f"{item_id}/{p.relative_to(root).as_posix()}", p.read_bytes())
                      for p in paths]
        except OSError as err:
            raise LaunchError(f"cannot read the outputs of upstream item {item_id} in "
                              f"{folder}: {err.strerror}") from None
    return found


def outcome(stop_reason: str | None, exit_code: int | None, timeout: float | None,
            job_error: Any) -> tuple[str, dict | None]:
    """(terminal state, error) of a finished run; ``job_error()`` explains a failing exit.

    ``stop_reason``: "cancel", "timeout" or None (the job ended by itself).
    """
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
        from .metrics import metrics_marker

        self.marker = metrics_marker(self.item_id, self.attempt)
        self.metric_points: list[tuple[str, int, float, float]] = []
        self._init_progress()
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
        policy = getattr(self.runner, "policy", None)
        if policy is not None:  # ${NAME} values are never echoed (docs/security.md)
            message = policy.redact(message)
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

    def take(self, data: bytes, splitter: Any, then: Any = None) -> None:
        """Buffer a piece of the container's log: the job's output, and the metric points
        the run wrapper wrote into it (``splitter``: a ``metrics.MarkerSplitter``); ``then``
        filters the output further."""
        output = splitter.feed(data)
        if then is not None:
            output = then(output)
        with self.buffer_lock:
            self.buffer += output
            self.metric_points += splitter.take()
            self._take_progress(splitter.take_records())

    def flush(self) -> None:
        """Move buffered output to the store, capped at ``max_log_bytes``, then the metric
        points, then the running notebook cell."""
        self._flush_log()
        self._flush_metrics()
        self._flush_progress()

    # -- cell progress of notebook runs (runners/progress.py) -------------------------------

    def _init_progress(self) -> None:
        from .progress import CellClock

        self.clock = CellClock()
        self.mirror: Any = None
        self.mirror_done = False  # the container's own copy is coming: stop writing ours
        #: where the executed notebook is on this host (the container's copy lands there)
        self.executed_path: str | None = None
        spec = self.request.job.spec
        if spec.get("mode") == "notebook":
            entry = spec["entrypoint"]
            self.executed_path = str(self.request.run_dir / "executed"
                                     / posixpath.basename(entry))

    def _take_progress(self, raw: list[dict]) -> None:
        """Cell starts and ends from the side channel (under ``buffer_lock``)."""
        from .progress import record

        records = [r for r in map(record, raw) if r is not None]
        if not records:
            return
        self.clock.feed(records)
        if self.clock.changed and self.clock.current is not None:
            # What the log holds up to here came before the cell (about: the wrapper passes
            # records every 0.2 s), where ``logs -f`` marks the boundary.
            self.clock.current["log_offset"] = self.logged + len(self.buffer)
        if self.executed_path is not None and not self.mirror_done:
            try:
                if self.mirror is None:
                    from .progress import NotebookMirror

                    entry = self.request.job.spec["entrypoint"]
                    self.mirror = NotebookMirror(dict(self.request.files)[entry],
                                                 self.request.item.get("parameters") or {},
                                                 self.executed_path)
                self.mirror.apply(records)
            except Exception as err:  # never let the mirror stop the run
                log.debug("no executed notebook mirror for %s: %s", self.item_id, err)
                self.executed_path = None

    def _flush_progress(self) -> None:
        with self.buffer_lock:
            current = self.clock.take_change()
            mirror = None if self.mirror_done else self.mirror
        if mirror is not None:
            try:
                mirror.write()
            except OSError as err:
                log.debug("could not write the executed notebook of %s: %s", self.item_id, err)
        if current is None:
            return
        try:
            self.store.set_progress(self.item_id, self.token, self.attempt, current,
                                    executed_notebook=self.executed_path)
        except Exception:  # store away: next tick
            with self.buffer_lock:
                self.clock.changed = True

    def end_progress(self) -> tuple[list[dict] | None, str | None]:
        """The run is over: stop the mirror (the container's own executed notebook replaces
        it); each notebook cell's seconds and the executed notebook's path, to record."""
        with self.buffer_lock:
            self.mirror_done = True
            return self.clock.durations(), self.executed_path

    def _flush_metrics(self) -> None:
        with self.buffer_lock:
            points, self.metric_points = self.metric_points, []
        if not points:
            return
        try:
            self.store.add_metrics(self.item_id, self.token, self.attempt, points)
        except Exception:  # store away: keep them for the next tick (bounded)
            with self.buffer_lock:
                self.metric_points[:0] = points[-MAX_HELD_POINTS:]

    def _flush_log(self) -> None:
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


class RunReport:
    """What a run tells the store about its attempt: its output, whether a cancel was asked,
    and its outcome. For runs the agent holds (``self_renewing = False``); one per run.

    Every method raises StoreError while the store is away. ``write`` and ``finish`` are
    refused (False) once the lease is lost: another attempt may own the item by then.
    """

    def __init__(self, request: RunRequest) -> None:
        from ..store import Store

        self.request = request
        self._store = Store(request.store_url, migrate=False, check=False)
        self._lock = threading.Lock()
        self._logged = 0
        self._truncated = False

    def write(self, data: bytes | str) -> bool:
        """Append output to the item's log, capped at the agent's ``max_log_bytes``."""
        chunk = data.encode() if isinstance(data, str) else bytes(data)
        with self._lock:
            if self._truncated or not chunk:
                return not self._truncated
            chunk, truncating = capped(chunk, self._logged, self.request.max_log_bytes)
            request = self.request
            if self._store.append_log(request.item["id"], request.token, request.attempt,
                                      chunk) is None:
                return False
            self._logged += len(chunk)
            self._truncated = truncating
            return True

    def cancel_requested(self) -> bool:
        """Whether someone asked to cancel the item (the agent also calls ``Run.cancel``)."""
        return self._store.item_state(self.request.item["id"])[1]

    def finish(self, state: str, *, exit_code: int | None = None, error: dict | None = None,
               outputs: list[dict] | None = None) -> bool:
        """Record the outcome: ``state`` is succeeded, failed or cancelled; ``error`` is
        ``{"message", "stage", "cell"}`` (see ``outcome``); ``outputs`` as
        ``build.collect_outputs`` gives them."""
        return self._store.finish(self.request.item["id"], self.request.token, state,
                                  exit_code=exit_code, error=error, outputs=outputs)

    def close(self) -> None:
        """Close the store connection."""
        self._store.close()
