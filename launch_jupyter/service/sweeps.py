"""Sweeps: created from a W&B sweep config, ``--grid`` or ``--random``; listed with their best
trial; shown, stopped and resumed.

A sweep's state lives in the store (``launch_sweeps``). Creating one checks everything, writes
the sweep, then proposes its first trials here; after that whichever agent serves its queue
proposes the next trial when one ends (``agent.advance_sweep``), so no kernel needs to stay
open. See docs/usage.md "Sweeps".
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, ParameterError
from ..store import SUCCEEDED, SWEEP_FINISHED, SWEEP_RUNNING, SWEEP_STOPPED
from . import checks

if TYPE_CHECKING:
    from .client import JobRef, Launch
    from .handles import Sweep


def load_config(config: str | os.PathLike | Mapping[str, Any]) -> dict:
    """A sweep config given as a mapping, or the path of a YAML/JSON file."""
    if isinstance(config, Mapping):
        return dict(config)
    if isinstance(config, str | os.PathLike):
        from ..jobs.sweep_config import load_sweep_file

        return load_sweep_file(os.fspath(config))
    raise ParameterError(f"config must be a W&B sweep config (a dict) or the path of a YAML "
                         f"file, got {type(config).__name__}")


def create_sweep(
    client: Launch, ref: JobRef, *, queue: str | None = None,
    config: str | os.PathLike | Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | Sequence[str] = (), random: int | None = None,
    parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
    priority: str | int | None = None, timeout: float | None = None, seed: int | None = None,
    template_pairs: Iterable[str] = (), name: str | None = None, parallel: int | None = None,
) -> Sweep:
    """Check everything, record the sweep, propose its first trials; see ``Launch.sweep``."""
    from ..agent import advance_sweep
    from ..jobs import (
        CapturedJob,
        capture,
        parse_overrides,
        parse_priority,
        sweep_points,
        validate_parameters,
    )
    from ..jobs.sweep_config import check_against_schema, parse_sweep_config, points_config
    from ..runners.templates import validate_template_values
    from ..store import JobRecord
    from ..store.ids import new_id
    from .client import is_job_file
    from .handles import Item, Sweep

    captured = None
    if isinstance(ref, CapturedJob) or (not isinstance(ref, JobRecord) and is_job_file(ref)):
        # A file becomes a job version only once the sweep is valid, as with submit: a
        # refused sweep leaves no stray version behind.
        captured = ref if isinstance(ref, CapturedJob) else capture(os.fspath(ref), name=name)
        spec = captured.spec()
    else:
        job = client.resolve_job(ref, name=name)
        spec = job.spec
    queue = queue or client.config.default_queue
    schema = spec.get("schema") or {"type": "object", "properties": {}}
    fixed: dict[str, Any] = {}
    if parameters:
        fixed.update(validate_parameters(dict(parameters), schema))
    fixed.update(parse_overrides(list(overrides), schema))
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ParameterError(f"seed must be an integer, got {seed!r}")
    if config is not None:
        if grid or random is not None:
            raise ParameterError("give a sweep config or --grid/--random, not both")
        raw = load_config(config)
        parsed = parse_sweep_config(raw if parallel is None else {**raw, "parallel": parallel})
        check_against_schema(parsed, schema, fixed)
    else:
        points = sweep_points(schema, grid=grid, random=random, fixed=fixed, seed=seed)
        parsed = points_config("grid" if random is None else "random", points,
                               parallel=parallel)
        fixed = {}  # already in every point
    prio = parse_priority(priority)
    timeout = checks.positive_timeout(timeout)
    queue_info = client.store.get_queue(checks.key(queue, "queue"))
    template_pairs = list(template_pairs)
    templated = validate_template_values(queue_info["config"], None, template_pairs)
    client._check_runner(queue_info["runner"], queue_info["config"], templated)  # noqa: SLF001
    if captured is not None:
        job = client.add_captured(captured)
    sweep_id = new_id()
    record = client.store.create_sweep(
        sweep_id=sweep_id, job=job, queue=queue, method=parsed.method, metric=parsed.metric,
        goal=parsed.goal if parsed.metric else None, config=parsed.to_json(),
        submit={"priority": prio, "timeout": timeout, "template_values": templated,
                "fixed": fixed},
        run_cap=parsed.trial_cap(), parallel=parsed.concurrency(),
        seed=secrets.randbits(31) if seed is None else seed)
    made = advance_sweep(client.store, record)
    client._notify(queue)  # noqa: SLF001 - wake the queue's agents once for all the trials
    sweep = Sweep(client, sweep_id, [Item(client, item_id) for item_id in made])
    # A file captured on the way: its warnings come first (every door shows the note).
    notes = [f"warning: {warning}" for warning in job.warnings] + [parsed.note() or ""]
    sweep.note = "\n".join(n for n in notes if n) or None
    return sweep


def summary(client: Launch, record: dict) -> dict:
    """A sweep as ``jupyter launch sweeps --json`` lists it: id, job, method, metric, goal,
    trials (proposed so far), run_cap, best ``{"value", "item"}`` (None before a trial
    succeeds with the metric), state, queue, parallel and item counts per state."""
    best = None
    if record["metric"]:
        for trial in client.store.sweep_trials(record["id"]):
            last = (trial["metrics"].get(record["metric"]) or {}).get("last")
            if trial["state"] != SUCCEEDED or last is None:
                continue
            better = best is None or (last > best["value"] if record["goal"] == "maximize"
                                      else last < best["value"])
            if better:
                best = {"value": last, "item": trial["item"]}
    return {"id": record["id"], "job": record["job"], "method": record["method"],
            "metric": record["metric"], "goal": record["goal"], "trials": record["proposed"],
            "run_cap": record["run_cap"], "best": best, "state": record["state"],
            "queue": record["queue"], "parallel": record["parallel"],
            "counts": record["counts"], "created_at": record["created_at"]}


def list_sweeps(client: Launch) -> list[dict]:
    """Every sweep, newest first, as ``summary`` gives it."""
    return [summary(client, record) for record in client.store.list_sweeps()]


def show_sweep(client: Launch, sweep_id: str) -> dict:
    """``summary`` plus the config and each trial: number, item, state (``pruned`` for a pruned
    one), how it was proposed (sampler) and its parameters."""
    record = client.store.get_sweep(checks.key(sweep_id, "sweep"))
    shown = summary(client, record)
    shown["config"] = record["config"]
    shown["trials_detail"] = [
        {"trial": t["trial"], "item": t["item"],
         "state": "pruned" if t["error_stage"] == "pruned" else t["state"],
         "sampler": t["proposal"].get("sampler"), "parameters": t["proposal"]["parameters"]}
        for t in client.store.sweep_trials(record["id"])]
    return shown


def stop_sweep(client: Launch, sweep_id: str) -> dict:
    """No more trials are proposed (running ones go on); ``resume`` picks up where it was."""
    sweep_id = checks.key(sweep_id, "sweep")
    if not client.store.set_sweep_state(sweep_id, SWEEP_STOPPED, [SWEEP_RUNNING]):
        state = client.store.get_sweep(sweep_id)["state"]
        raise ConflictError(f"sweep {sweep_id} is {state}, not running; nothing to stop")
    return summary(client, client.store.get_sweep(sweep_id))


def resume_sweep(client: Launch, sweep_id: str) -> dict:
    """Agents propose the stopped sweep's next trials again."""
    sweep_id = checks.key(sweep_id, "sweep")
    if not client.store.set_sweep_state(sweep_id, SWEEP_RUNNING, [SWEEP_STOPPED]):
        state = client.store.get_sweep(sweep_id)["state"]
        hint = " (it proposed every trial it had)" if state == SWEEP_FINISHED else ""
        raise ConflictError(f"sweep {sweep_id} is {state}, not stopped{hint}; nothing to resume")
    record = client.store.get_sweep(sweep_id)
    from ..agent import advance_sweep

    if advance_sweep(client.store, record):
        client._notify(record["queue"])  # noqa: SLF001
    return summary(client, client.store.get_sweep(sweep_id))


__all__ = ["create_sweep", "list_sweeps", "load_config", "resume_sweep", "show_sweep",
           "stop_sweep", "summary"]
