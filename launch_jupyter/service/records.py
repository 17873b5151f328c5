"""Typed records: the shapes of the dicts the service hands to every front door.

The item record is built in one place, ``Store._item_json`` (docs/usage.md documents it);
these types describe it for readers and type checkers.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from ..store import JobRecord


class Attempt(TypedDict):
    attempt: int
    agent: str | None
    host: str | None
    start: str | None
    end: str | None
    exit_code: int | None
    error: dict | None


class Progress(TypedDict):
    """The running cell: 1-based in the executed notebook (the injected cell counts)."""

    cell: int
    cells: int
    cell_started_at: str | None
    source: str
    #: bytes of the log output before the cell started (where ``logs -f`` marks it)
    log_offset: int | None


class CellTime(TypedDict):
    cell: int
    seconds: float


class ItemRecord(TypedDict):
    """An item, as ``jupyter launch show --json`` prints it."""

    id: str
    queue: str
    job: str
    state: str
    attempt: int
    max_attempts: int
    attempts: list[Attempt]
    priority: str
    parameters: dict[str, Any]
    overrides: dict[str, Any]
    template_values: dict[str, Any]
    timeout: float | None
    exit_code: int | None
    error: dict | None
    warning: str | None
    cancel_requested: bool
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration: float | None
    outputs: list[dict]
    requeued_from: str | None
    sweep_id: str | None
    #: the cron schedule that made the item, else None
    schedule: str | None
    submitted_by: str
    lease_owner: str | None
    run: dict
    log_bytes: int
    #: the running cell of a notebook run, else None (docs/usage.md "Cell progress")
    progress: Progress | None
    #: each cell's seconds once a notebook run is over, else None
    cells: list[CellTime] | None
    #: the executed notebook's path; written after every cell while the run goes
    executed_notebook: str | None
    #: per metric of the latest attempt: {"last", "min", "max", "step", "count"}
    metrics: dict[str, dict[str, float]]
    #: run-after: the items it runs after (``submit --after``), and while it is queued those
    #: of them not yet succeeded (else [])
    after: list[str]
    waiting_on: list[str]


class QueueRecord(TypedDict):
    """A queue with its item counts per state."""

    name: str
    runner: str
    paused: bool
    max_attempts: int
    timeout: float | None
    config: dict
    counts: dict[str, int]
    #: most items leased or running at once across all agents, or None (no limit)
    concurrency: int | None


class ScheduleRecord(TypedDict):
    """A cron schedule, as ``jupyter launch schedule show NAME --json`` prints it."""

    name: str
    job: str
    job_id: int
    queue: str
    cron: str
    timezone: str
    overrides: dict[str, Any]
    parameters: dict[str, Any]
    template_values: dict[str, Any]
    priority: str
    timeout: float | None
    catch_up: bool
    paused: bool
    #: "active" or "paused"
    state: str
    #: ISO 8601 (UTC), and the same as epoch seconds
    next_fire_at: str
    next_fire_ts: float
    last_fired_at: str | None
    last_item: str | None
    #: how many items it made (deleted ones no longer count)
    items: int
    created_by: str
    created_at: str
    updated_at: str
    #: only in ``schedule create``'s answer when JOB was a file: what its capture could not
    #: record (as ``job create`` says it)
    warnings: NotRequired[list[str]]


class AgentRecord(TypedDict):
    """A live agent with its heartbeat."""

    id: str
    host: str
    pid: int
    queues: list[str]
    running: int
    heartbeat_age: float


class Page(TypedDict):
    """One page of items: the items, how many match in all, and per-state counts of the
    same filter without its state part (what a state filter would show)."""

    items: list[ItemRecord]
    total: int
    counts: dict[str, int]


class LogPage(TypedDict):
    """Log text from ``offset`` (whole UTF-8 characters), where to read next, and whether
    the item is finished with nothing left to read."""

    text: str
    next_offset: int
    done: bool


class MetricPoint(TypedDict):
    """One point ``launch_jupyter.log`` recorded; ``time`` is ISO 8601 (UTC)."""

    name: str
    step: int
    value: float
    time: str


class MetricPage(TypedDict):
    """Metric points after a cursor, the cursor to ask with next, and whether the item is
    finished with every point read."""

    points: list[MetricPoint]
    next: int
    done: bool


class VacuumReport(TypedDict):
    """What ``store vacuum`` freed (or, with ``dry_run``, would free): finished items with
    their logs, attempts, events and metrics, and their run folders on this host."""

    dry_run: bool
    keep_days: float | None
    keep_last: int | None
    items: int
    #: items per queue
    queues: dict[str, int]
    log_bytes: int
    run_folders: int
    run_folder_bytes: int


__all__ = ["AgentRecord", "Attempt", "CellTime", "ItemRecord", "JobRecord", "LogPage",
           "MetricPage", "MetricPoint", "Page", "Progress", "QueueRecord",
           "ScheduleRecord", "VacuumReport"]
