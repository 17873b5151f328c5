"""Cron schedules: a job put on a queue at the times a cron expression names.

Creating one checks everything a submit checks (job, queue, parameters against the job's
schema, template values) plus the cron expression (croniter) and the time zone (zoneinfo),
then records it with its first firing. After that whichever agent serves its queue fires it
(``agent.fire_schedule``): each firing makes exactly one item, which records the schedule's
name. See docs/usage.md "Schedules".
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, ParameterError, shown
from ..store import JobRecord
from . import checks

if TYPE_CHECKING:
    from .client import JobRef, Launch

#: The time zone of a schedule created without one.
DEFAULT_TIMEZONE = "UTC"
CRON_HELP = ("five fields 'minute hour day-of-month month day-of-week' (e.g. '0 9 * * 1-5': "
             "09:00 on weekdays), an optional sixth field of seconds ('* * * * * */10' or "
             "'*/10 * * * * *': every 10 s), or @hourly, @daily, @weekly, @monthly, @yearly")


def check_cron(cron: Any) -> str:
    """``cron`` if croniter accepts it, else ParameterError saying what a cron looks like."""
    from croniter import croniter

    from ..agent import croniter_form

    if not isinstance(cron, str) or not cron.strip():
        raise ParameterError(f"cron must be a cron expression, got {shown(cron)}; use "
                             f"{CRON_HELP}")
    cron = " ".join(cron.split())
    if not croniter.is_valid(croniter_form(cron)):
        raise ParameterError(f"cron expression {cron!r} is not valid; use {CRON_HELP}")
    return cron


def check_timezone(timezone: Any) -> str:
    """``timezone`` if it is an IANA time zone name zoneinfo knows (spelled as the IANA
    database does: ``utc`` is ``UTC``), else ParameterError."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    if not isinstance(timezone, str) or not timezone:
        raise ParameterError(f"timezone must be an IANA name such as 'Europe/Paris' or "
                             f"'UTC', got {shown(timezone)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        # Zone files are looked up case-sensitively; the names are unique without case.
        spelled = {zone.lower(): zone for zone in available_timezones()}.get(timezone.lower())
        if spelled is None:
            raise ParameterError(f"unknown time zone {timezone!r}; use an IANA name such as "
                                 "'Europe/Paris', 'America/New_York' or 'UTC'") from None
        return spelled
    return timezone


def create_schedule(
    client: Launch, name: str, job: JobRef, *, cron: str, queue: str | None = None,
    timezone: str | None = None, parameters: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (), template_values: Mapping[str, Any] | None = None,
    template_pairs: Iterable[str] = (), priority: str | int | None = None,
    timeout: float | None = None, catch_up: bool = False,
) -> dict:
    """Check everything, then record the schedule; see ``Launch.create_schedule``."""
    from ..agent import next_fire
    from ..jobs import CapturedJob, capture, effective_parameters, parse_priority, validate_name
    from ..runners.templates import validate_template_values
    from .client import is_job_file

    validate_name(name, "schedule")
    cron = check_cron(cron)
    timezone = check_timezone(DEFAULT_TIMEZONE if timezone is None else timezone)
    if not isinstance(catch_up, bool):
        raise ParameterError(f"catch_up must be true or false, got {shown(catch_up)}")
    # A file becomes a job version only once everything else checks out: a refused create
    # leaves no stray version behind (as submit).
    captured = record = None
    if isinstance(job, CapturedJob) or (not isinstance(job, JobRecord) and is_job_file(job)):
        captured = job if isinstance(job, CapturedJob) else capture(os.fspath(job))
        spec = captured.spec()
    else:
        record = client.resolve_job(job)
        spec = record.spec
    values = client.check_values(spec, parameters=parameters, overrides=overrides)
    prio = parse_priority(priority)
    timeout = checks.positive_timeout(timeout)
    queue = queue or client.config.default_queue
    queue_info = client.store.get_queue(checks.key(queue, "queue"))
    if template_values is not None and not isinstance(template_values, Mapping):
        raise ParameterError("template_values must be a dict of name -> value")
    templated = validate_template_values(queue_info["config"], template_values,
                                         template_pairs)
    client._check_runner(queue_info["runner"], queue_info["config"], templated)  # noqa: SLF001
    first = next_fire(cron, timezone, time.time())
    if captured is not None:
        record = client.add_captured(captured)
    assert record is not None
    made = client.store.create_schedule(
        name=name, job=record, queue=queue, cron=cron, timezone=timezone, overrides=values,
        parameters=effective_parameters(spec.get("parameters") or {}, values),
        template_values=templated, priority=prio, timeout=timeout, catch_up=catch_up,
        next_fire_at=first)
    client._notify(queue, submitted=False)  # noqa: SLF001 - agents learn the next fire time
    if captured is not None:  # the capture's warnings reach the user, as job create's do
        made = {**made, "warnings": list(record.warnings)}
    return made


def pause_schedule(client: Launch, name: str) -> dict:
    """Stop firing until resumed (items already queued stay)."""
    name = checks.key(name, "schedule")
    if not client.store.set_schedule_paused(name, True):
        raise ConflictError(f"schedule {name} is already paused; resume it with "
                            f"`jupyter launch schedule resume {name}`")
    return client.store.get_schedule(name)


def resume_schedule(client: Launch, name: str) -> dict:
    """Fire again from the next time the cron names after now: firings that fell in the
    pause are not made up (not even with catch-up)."""
    from ..agent import next_fire

    name = checks.key(name, "schedule")
    record = client.store.get_schedule(name)
    upcoming = next_fire(record["cron"], record["timezone"], time.time())
    if not client.store.set_schedule_paused(name, False, next_fire_at=upcoming):
        raise ConflictError(f"schedule {name} is not paused; nothing to resume")
    client._notify(record["queue"], submitted=False)  # noqa: SLF001
    return client.store.get_schedule(name)


__all__ = ["CRON_HELP", "DEFAULT_TIMEZONE", "check_cron", "check_timezone", "create_schedule",
           "pause_schedule", "resume_schedule"]
