"""``Launch``: one store, and every operation the front doors offer.

The CLI, the magics, the ipywidgets panels and the REST handlers call this and nothing
below it (docs/architecture.md). Everything is validated before anything is written.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config import LaunchConfig
from ..errors import InvalidNameError, LaunchError, NotFoundError, ParameterError, shown
from ..store import TERMINAL, JobRecord, Store, wakeup
from . import checks
from .logs import LogReader, follow, read_page
from .records import (
    AgentRecord,
    ItemRecord,
    LogPage,
    MetricPage,
    MetricPoint,
    Page,
    QueueRecord,
    ScheduleRecord,
    VacuumReport,
)

if TYPE_CHECKING:
    from .handles import Item, Sweep

JobRef = str | os.PathLike | JobRecord
METRIC_PAGE = 10_000  # metric points read per query


def is_job_file(ref: Any) -> bool:
    """True when ``ref`` names an existing notebook or script (captured on submit)."""
    if isinstance(ref, JobRecord):
        return False
    text = os.fspath(ref)
    return text.lower().endswith((".ipynb", ".py")) and os.path.exists(text)


class Launch:
    """A connection to one store, with every operation the front doors offer.

    Parameters: ``store`` (URL; default from LaunchConfig) or a ready ``config``; other
    keyword arguments set LaunchConfig traits (``lease_ttl=5``, ``cancel_grace=2``...).
    """

    def __new__(cls, store: str | None = None, *args: Any, **kwargs: Any) -> Launch:
        # An http(s) URL names a server, not a store: its client speaks REST (service/remote).
        if cls is Launch and isinstance(store, str) and \
                store.lower().startswith(("http://", "https://")):
            from .remote import RemoteLaunch

            return super().__new__(RemoteLaunch)
        return super().__new__(cls)

    def __init__(
        self, store: str | None = None, *, config: LaunchConfig | None = None, **settings: Any
    ) -> None:
        self.config = config or checks.settings(store=store, **settings)
        self._store: Store | None = None

    @classmethod
    def connect(cls, url: str, *, token: str | None = None, **options: Any) -> Launch:
        """A client of the Jupyter server at ``url`` (its REST API) with ``token`` (default
        LAUNCH_JUPYTER_TOKEN); ``options``: see ``service.remote.RemoteLaunch``."""
        from .remote import RemoteLaunch

        return RemoteLaunch(url, token=token, **options)

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use."""
        if self._store is None:
            self._store = Store(self.config.store, migrate=self.config.auto_migrate)
        return self._store

    @property
    def store_label(self) -> str:
        """The store's URL as messages show it: without its password."""
        from ..store.sql import safe_url

        return safe_url(self.config.store)

    def store_version(self, *, migrate: bool) -> int:
        """The store's schema version, after applying pending migrations when ``migrate``
        (else a store that needs them is refused)."""
        store = Store(self.config.store, migrate=migrate)
        try:
            return store.schema_version()
        finally:
            store.close()

    def close(self) -> None:
        """Release the store's connections."""
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- jobs ---------------------------------------------------------------------------

    def create_job(
        self, path: str | os.PathLike, *, name: str | None = None, alias: str | None = None,
        include: Sequence[str] = (), kernel: str | None = None, mode: str | None = None,
        env: Sequence[str] = (), root: str | os.PathLike | None = None,
        allow_hidden: bool = False, strict: bool = False,
    ) -> JobRecord:
        """Capture a notebook or script as a job version (unchanged content: same version).

        Included files and local modules must stay inside ``root`` (default: the file's
        folder) and are never hidden files unless ``allow_hidden``. ``strict`` refuses a
        capture with unconditional unresolved imports. The record's ``warnings`` say what
        the capture could not record.
        """
        from ..jobs import capture, validate_alias

        if alias is not None:
            validate_alias(alias)
        if not isinstance(strict, bool):
            raise ParameterError(f"strict must be true or false, got {shown(strict)}")
        captured = capture(path, name=name, include=include, kernel=kernel, mode=mode, env=env,
                           root=root, allow_hidden=allow_hidden)
        if strict:
            captured.refuse_unresolved()
        return self.add_captured(captured, alias=alias)

    def add_captured(self, captured: Any, *, alias: str | None = None) -> JobRecord:
        """Store an already captured job (see ``launch_jupyter.jobs.capture``); the record
        carries the capture's warnings, and one more when a default name makes this a new
        version of a job captured from another file."""
        files = [(f.path, f.sha256, f.content) for f in captured.files]
        previous = self._latest(captured.name) if captured.default_name else None
        record, created = self.store.add_job(captured.name, captured.digest, captured.spec(),
                                             files, alias=alias)
        warnings = list(captured.warnings)
        if created:
            warnings += other_file_warning(captured, previous, record)
        return dataclasses.replace(record, warnings=tuple(warnings))

    def _latest(self, name: str) -> JobRecord | None:
        """The newest version of job ``name``, if there is one."""
        try:
            return self.store.get_job(name)
        except NotFoundError:
            return None

    def _job_filter(self, job: str | None) -> tuple[str | None, int | None]:
        """(name, version) of an item filter ``NAME``, ``NAME:vN`` or ``NAME:ALIAS``."""
        if job is None:
            return None, None
        from ..jobs import parse_ref

        name, version, alias = parse_ref(checks.key(job, "job"))
        # Jobs are never deleted: an unknown one is a typo, refused with the closest name
        # (it listed no items, as if nothing had run).
        found = self.store.get_job(name, version=version, alias=alias)
        return name, None if version is None and alias is None else found.version

    def job(self, ref: str) -> JobRecord:
        """Resolve ``name``, ``name:vN`` or ``name:alias``."""
        from ..jobs import parse_ref

        name, version, alias = parse_ref(ref)
        return self.store.get_job(name, version=version, alias=alias)

    def jobs(self, name: str | None = None) -> list[JobRecord]:
        """The newest version of every job, or every version of job ``name``."""
        return self.store.list_jobs(None if name is None else checks.key(name, "job"))

    def job_versions(self, name: str) -> list[JobRecord]:
        """Every version of job ``name``, oldest first (unknown name: NotFoundError)."""
        versions = self.jobs(name)
        if not versions:
            self.store.get_job(name)  # raises NotFoundError naming the known jobs
        return versions

    def job_info(self, ref: str) -> dict:
        """A job version as ``job show --json`` prints it, with every version's ref."""
        job = self.job(ref)
        data = job.to_json()
        data["versions"] = [j.ref for j in self.jobs(job.name)]
        return data

    def export_job(self, ref: str, dest: str | os.PathLike, *,
                   item: str | None = None) -> dict:
        """Write job ``ref`` under ``dest`` as plain files (its files, a requirements.txt from
        its lock, its parameters: the defaults, or ``item``'s) to re-run without the store;
        returns what was written and the command that re-runs it (service/export.py)."""
        from .export import write_export

        job = self.job(checks.key(ref, "job"))
        parameters = None
        if item is not None:
            record = self.store.get_item(checks.key(item, "item"))
            if record["job"] != job.ref:  # another job's parameters would not fit this one
                raise LaunchError(f"item {item} ran job {record['job']}, not {job.ref}: export "
                                  f"{record['job']} --item {item}")
            parameters = dict(record["parameters"])
        return write_export(job, self.store.job_files(job.id), dest, parameters)

    # -- isolated environments (runners/envs.py) -------------------------------------------

    def envs(self) -> list[dict]:
        """The isolated environments under the data dir, most recently used first."""
        from ..runners.envs import envs_root, list_envs

        return list_envs(envs_root(self.config.data_dir))

    def prune_envs(self, max_size: str | int | None = None) -> list[dict]:
        """Remove isolated environments least recently used first until the rest take at
        most ``max_size`` (bytes, or ``5G``...; None: all); ones in use stay. The removed."""
        from ..runners.envs import envs_root, parse_size, prune

        limit = None if max_size is None else parse_size(str(max_size))
        return prune(envs_root(self.config.data_dir), limit)

    def resolve_job(self, ref: JobRef, *, name: str | None = None) -> JobRecord:
        """A job ref, or a notebook/script path captured on the fly (``name`` names it)."""
        if isinstance(ref, JobRecord):
            return ref
        if is_job_file(ref):
            return self.create_job(os.fspath(ref), name=name)
        text = os.fspath(ref)
        if text.lower().endswith((".ipynb", ".py")):
            # A mistyped path must not read as "invalid job name" or "job does not exist".
            try:
                return self.job(text)
            except (NotFoundError, InvalidNameError):
                raise NotFoundError(
                    f"no such file {text!r} (nor a job of that name); give an existing "
                    f".ipynb/.py path, or a job: NAME, NAME:vN or NAME:ALIAS (list them with "
                    f"`jupyter launch job list`)") from None
        if name is not None:
            raise ParameterError(f"name={name!r} only applies when submitting a file path")
        return self.job(os.fspath(ref))

    # -- queues -------------------------------------------------------------------------

    def create_queue(
        self, name: str, *, runner: str = "local", max_attempts: int = 3,
        timeout: float | None = None, config: dict | None = None,
        concurrency: int | None = None,
    ) -> QueueRecord:
        """Create a queue bound to ``runner``; ``config`` is its template (docs/usage.md).
        ``concurrency`` caps its leased and running items across all agents (None: no cap)."""
        from ..jobs import validate_name
        from ..runners.templates import validate_queue_config

        validate_name(name, "queue")
        if config:
            config = validate_queue_config(config)
        # Refuse what the runner would refuse now, not when the first item starts.
        self._check_runner(runner, config or {}, {})
        return self.store.create_queue(name, runner=runner,
                                       max_attempts=checks.max_attempts(max_attempts),
                                       timeout=checks.positive_timeout(timeout), config=config,
                                       concurrency=checks.concurrency(concurrency))

    def update_queue(self, name: str, *, concurrency: int | None | Any = ...) -> QueueRecord:
        """Change a queue's settings: ``concurrency`` (an int; 0 or None: no limit). A
        setting not given stays as it is."""
        values: dict[str, Any] = {}
        if concurrency is not ...:
            values["concurrency"] = checks.concurrency(concurrency)
        queue = self.store.update_queue(checks.key(name, "queue"), **values)
        self._notify(name, submitted=False)  # a raised limit may let agents claim now
        return queue

    @staticmethod
    def _check_runner(runner: str, config: Mapping[str, Any], values: Mapping[str, Any]
                      ) -> None:
        """The runner's own checks of a queue config with these template values."""
        from ..runners import check_queue_config

        check_queue_config(runner, dict(config), dict(values))

    def queue(self, name: str) -> QueueRecord:
        """A queue with its counts per state."""
        return self.store.get_queue(checks.key(name, "queue"))

    def queues(self) -> list[QueueRecord]:
        return self.store.list_queues()

    def pause_queue(self, name: str) -> QueueRecord:
        """Agents stop starting the queue's items until it is resumed."""
        return self.store.set_paused(checks.key(name, "queue"), True)

    def resume_queue(self, name: str) -> QueueRecord:
        queue = self.store.set_paused(checks.key(name, "queue"), False)
        self._notify(name, submitted=False)
        return queue

    def delete_queue(self, name: str, *, force: bool = False) -> int:
        """Delete a queue (refused while it holds unfinished items unless ``force``);
        returns how many items went with it."""
        return self.store.delete_queue(checks.key(name, "queue"), force=force)

    # -- items --------------------------------------------------------------------------

    def submit(
        self, ref: JobRef, *, queue: str | None = None,
        parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
        priority: str | int | None = None, timeout: float | None = None,
        sweep_id: str | None = None, lease_owner: str | None = None,
        template_values: Mapping[str, Any] | None = None, template_pairs: Iterable[str] = (),
        name: str | None = None, after: Sequence[str] | str | None = None,
    ) -> Item:
        """Put a job on a queue. ``ref`` is a job ref or a notebook/script path (captured
        first, as job ``name``); ``parameters`` are typed values, ``overrides`` ``k=v``
        strings; ``after``: item ids it waits on (it starts once they all succeeded, and is
        cancelled when one fails or is cancelled). Everything is validated before anything
        is written.
        """
        from ..jobs import (
            CapturedJob,
            capture,
            effective_parameters,
            parse_priority,
        )
        from ..runners.templates import validate_template_values
        from .handles import Item

        overrides = list(overrides)
        after = checks.item_ids(after)
        if after and lease_owner is not None:
            raise ParameterError("after= cannot be combined with lease_owner= (a foreground "
                                 "run starts at once)")
        if after:  # unknown upstream: NotFoundError before anything is captured or written
            known = self.store.states(after)
            missing = [i for i in after if i not in known]
            if missing:
                raise NotFoundError(f"--after {missing[0]!r}: no such item; name an existing "
                                    "item id (see `jupyter launch items`)")
        if isinstance(ref, CapturedJob) or (not isinstance(ref, JobRecord)
                                            and is_job_file(ref)):
            # A file (or a capture) becomes a job version only once its values are valid:
            # a refused submit leaves no stray version behind.
            captured = ref if isinstance(ref, CapturedJob) else capture(os.fspath(ref),
                                                                        name=name)
            self.check_values(captured.spec(), parameters=parameters, overrides=overrides)
            self.store.get_queue(checks.key(queue or self.config.default_queue, "queue"))
            job = self.add_captured(captured)
        else:
            job = self.resolve_job(ref, name=name)
        queue = queue or self.config.default_queue
        values = self.check_values(job.spec, parameters=parameters, overrides=overrides)
        prio = parse_priority(priority)
        # Unknown queue: NotFoundError, nothing written.
        queue_info = self.store.get_queue(checks.key(queue, "queue"))
        if template_values is not None and not isinstance(template_values, Mapping):
            raise ParameterError("template_values must be a dict of name -> value")
        templated = validate_template_values(queue_info["config"], template_values,
                                             template_pairs)
        self._check_runner(queue_info["runner"], queue_info["config"], templated)
        effective = effective_parameters(job.spec.get("parameters") or {}, values)
        item = self.store.submit(
            job=job, queue=queue, overrides=values, parameters=effective, priority=prio,
            timeout=checks.positive_timeout(timeout), sweep_id=sweep_id,
            lease_owner=lease_owner, lease_ttl=self.config.lease_ttl,
            template_values=templated, after=after,
        )
        if lease_owner is None:
            self._notify(queue)
        handle = Item(self, item["id"], item)
        handle.warnings = job.warnings
        return handle

    @staticmethod
    def check_values(spec: Mapping[str, Any], *, parameters: Mapping[str, Any] | None = None,
                     overrides: Iterable[str] = ()) -> dict[str, Any]:
        """The typed values of ``parameters`` and ``k=v`` ``overrides`` checked against a
        job spec's schema (ParameterError naming the bad one, with a did-you-mean)."""
        from ..jobs import parse_overrides, validate_parameters

        schema = spec.get("schema") or {"type": "object", "properties": {}}
        values: dict[str, Any] = {}
        if parameters:
            if not isinstance(parameters, Mapping):
                raise ParameterError(
                    f"parameters must be a dict of name -> value, got {type(parameters).__name__}"
                )
            values.update(validate_parameters(dict(parameters), schema))
        overrides = list(overrides)
        if overrides:
            values.update(parse_overrides(overrides, schema))
        return values

    def sweep(
        self, ref: JobRef, *, queue: str | None = None,
        config: str | os.PathLike | Mapping[str, Any] | None = None,
        grid: Mapping[str, Sequence[Any]] | Sequence[str] = (), random: int | None = None,
        parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
        priority: str | int | None = None, timeout: float | None = None,
        seed: int | None = None, template_pairs: Iterable[str] = (),
        name: str | None = None, parallel: int | None = None,
    ) -> Sweep:
        """A durable sweep: from a W&B sweep ``config`` (a dict or a YAML path: method
        grid|random|bayes, metric, parameters, run_cap, early_terminate, parallel), or one
        trial per point of a ``grid`` / of ``random`` draws.

        ``grid``: ``{"lr": [0.001, 0.01]}`` or ``["lr=0.001,0.01", "layers=2,4"]``;
        ``random``: the number of points drawn from the schema's bounds (``seed`` repeats them);
        ``parameters``/``overrides`` are fixed for every trial; ``parallel``: how many trials
        may be unfinished at once. Everything is checked before anything is written; the first
        trials are proposed here, the next ones by the agents serving the queue.
        """
        from .sweeps import create_sweep

        return create_sweep(self, ref, queue=queue, config=config, grid=grid, random=random,
                            parameters=parameters, overrides=overrides, priority=priority,
                            timeout=timeout, seed=seed, template_pairs=template_pairs,
                            name=name, parallel=parallel)

    def sweeps(self) -> list[dict]:
        """Every sweep, newest first: id, job, method, metric, goal, trials, run_cap, best."""
        from .sweeps import list_sweeps

        return list_sweeps(self)

    def sweep_record(self, sweep_id: str) -> dict:
        """The sweep's record as handles and panels read it: ``id``, ``state``, ``metric``,
        ``goal``, ``run_cap``, ``proposed`` (NotFoundError for an unknown sweep)."""
        return self.store.get_sweep(checks.key(sweep_id, "sweep"))

    def sweep_info(self, sweep_id: str) -> dict:
        """One sweep with its config and trials (``jupyter launch sweep show ID --json``)."""
        from .sweeps import show_sweep

        return show_sweep(self, sweep_id)

    def stop_sweep(self, sweep_id: str) -> dict:
        """Propose no more trials (running ones go on)."""
        from .sweeps import stop_sweep

        return stop_sweep(self, sweep_id)

    def resume_sweep(self, sweep_id: str) -> dict:
        """Propose trials of a stopped sweep again."""
        from .sweeps import resume_sweep

        return resume_sweep(self, sweep_id)

    def sweep_action(self, action: str, sweep_id: str) -> dict:
        """``show``, ``stop`` or ``resume`` sweep ``sweep_id``; the sweep afterwards."""
        actions = {"show": self.sweep_info, "stop": self.stop_sweep,
                   "resume": self.resume_sweep}
        if action not in actions:
            raise ParameterError(f"unknown sweep action {action!r}; use show, stop or resume")
        return actions[action](sweep_id)

    # -- schedules ----------------------------------------------------------------------

    def create_schedule(
        self, name: str, job: JobRef, *, cron: str, queue: str | None = None,
        timezone: str | None = None, parameters: Mapping[str, Any] | None = None,
        overrides: Iterable[str] = (), template_values: Mapping[str, Any] | None = None,
        template_pairs: Iterable[str] = (), priority: str | int | None = None,
        timeout: float | None = None, catch_up: bool = False,
    ) -> ScheduleRecord:
        """Put ``job`` on ``queue`` at every time ``cron`` names in ``timezone`` (an IANA
        name, default UTC). ``cron``: five fields, an optional sixth of seconds, or @daily...

        Parameters and template values are checked as ``submit`` checks them. Whichever
        agent serves the queue fires it, one item per firing; firings missed while no agent
        ran are skipped, or made up by one item with ``catch_up``.
        """
        from .schedules import create_schedule

        return create_schedule(self, name, job, cron=cron, queue=queue, timezone=timezone,
                               parameters=parameters, overrides=overrides,
                               template_values=template_values,
                               template_pairs=template_pairs, priority=priority,
                               timeout=timeout, catch_up=catch_up)

    def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule by name, with its next firing and how many items it made."""
        return self.store.list_schedules()

    def get_schedule(self, name: str) -> ScheduleRecord:
        """One schedule (``jupyter launch schedule show NAME --json``)."""
        return self.store.get_schedule(checks.key(name, "schedule"))

    def pause_schedule(self, name: str) -> ScheduleRecord:
        """Stop firing until resumed."""
        from .schedules import pause_schedule

        return pause_schedule(self, name)

    def resume_schedule(self, name: str) -> ScheduleRecord:
        """Fire again from the cron's next time after now (no burst for the pause)."""
        from .schedules import resume_schedule

        return resume_schedule(self, name)

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule; the items it made stay."""
        self.store.delete_schedule(checks.key(name, "schedule"))

    def results(self, sweep: str | None = None, queue: str | None = None,
                job: str | None = None, state: str | Sequence[str] | None = None,
                sort: str | None = None, limit: int | None = None) -> Any:
        """One row per item (id, state, job, the parameters that vary, each metric's last
        value, duration): a pandas DataFrame when pandas is importable, else a list of dicts
        (``result_rows`` gives the JSON rows always). Sorted by ``sort``
        (``METRIC[:min|:max]``), else the sweep's metric and goal, else newest first.
        ``results(sweep_id)`` works too: the filters may be given by position."""
        from .results import as_frame

        return as_frame(self.result_rows(sweep=sweep, queue=queue, job=job, state=state,
                                         sort=sort, limit=limit))

    def result_rows(self, *, sweep: str | None = None, queue: str | None = None,
                    job: str | None = None, state: str | Sequence[str] | None = None,
                    sort: str | None = None, limit: int | None = None,
                    max_limit: int | None = None) -> list[dict]:
        """``results`` as JSON rows: ``{"id", "state", "job", "parameters", "metrics",
        "duration"}``."""
        from .results import result_rows

        return result_rows(self, sweep=sweep, queue=queue, job=job, state=state, sort=sort,
                           limit=limit, max_limit=max_limit)

    def best_result(self, rows: Sequence[dict], *, sweep: str | None = None,
                    sort: str | None = None) -> str | None:
        """The id of the best of ``result_rows(sweep=, sort=)``, or None (not sorted by a
        metric, or no row has it): the row views highlight."""
        from .results import best_result

        return best_result(self, rows, sweep=sweep, sort=sort)

    def _notify(self, queue: str, *, submitted: bool = True) -> None:
        """Wake agents: this process's at once, others by socket (SQLite) or NOTIFY (PG)."""
        if self.store.is_sqlite:
            wakeup.notify(self.store.wake_addresses(queue, max_age=3 * self.config.lease_ttl))
            return
        wakeup.notify([])
        if not submitted:  # a submit already sent NOTIFY in its own transaction
            self.store.notify(queue)

    def item(self, item_id: str) -> Item:
        """A handle on one item."""
        from .handles import Item

        return Item(self, item_id, self.store.get_item(checks.key(item_id, "item")))

    def item_info(self, item_id: str) -> ItemRecord:
        """The item as ``jupyter launch show --json`` prints it."""
        return self.store.get_item(checks.key(item_id, "item"))

    def page(self, *, queue: str | None = None, state: str | Sequence[str] | None = None,
             job: str | None = None, sweep: str | None = None, limit: int | None = None,
             offset: int = 0, max_limit: int | None = None) -> Page:
        """The one paging rule: items newest first, how many match, and per-state counts.

        Filters: ``queue``, ``state`` (one or several), ``job`` (``name`` or ``name:vN``),
        ``sweep`` (a sweep id). ``limit`` None means no limit; see ``checks.bounds``.
        """
        limit, offset = checks.bounds(limit, offset, max_limit=max_limit)
        if queue is not None and checks.key(queue, "queue") not in self.store.queue_names():
            self.store.get_queue(queue)  # NotFoundError naming the queues there are
        name, version = self._job_filter(job)
        if sweep is not None:
            checks.key(sweep, "sweep")
        items, _ = self.store.list_items(queue=queue, state=state or None, limit=limit,
                                         offset=offset, sweep_id=sweep, job=name,
                                         job_version=version, count=False)
        counts = self.store.count_items(queue=queue, job=name, job_version=version,
                                        sweep_id=sweep)
        # The total is the counts of the states asked for: one count of the matches, not two.
        states = [state] if isinstance(state, str) else list(state or counts)
        total = sum(counts.get(s, 0) for s in set(states))
        self.mark_waiting(items)
        return {"items": items, "total": total, "counts": counts}

    def unserved_queues(self, queues: Iterable[str]) -> set[str]:
        """Which of ``queues`` no live agent serves (an agent without a queue list, ``*``,
        serves every queue; live: a heartbeat within three lease TTLs)."""
        served: set[str] = set()
        for agent in self.agents():
            if agent["heartbeat_age"] > 3 * self.config.lease_ttl:
                continue
            if not agent["queues"] or "*" in agent["queues"]:
                return set()
            served.update(agent["queues"])
        return set(queues) - served

    def mark_waiting(self, items: list[ItemRecord]) -> list[ItemRecord]:
        """Set each item's ``waiting``: why a queued item is not starting (no live agent
        serves its queue), else None. Views show it next to the state."""
        unserved = self.unserved_queues({i["queue"] for i in items if i["state"] == "queued"})
        for item in items:
            item["waiting"] = (  # type: ignore[typeddict-unknown-key]
                f"no live agent serves queue {item['queue']}; start one with "
                f"`jupyter launch agent --queue {item['queue']}`"
                if item["state"] == "queued" and item["queue"] in unserved else None)
        return items

    def items(self, *, queue: str | None = None, state: str | Sequence[str] | None = None,
              limit: int | None = None, offset: int = 0, job: str | None = None,
              sweep: str | None = None) -> list[ItemRecord]:
        """Items newest first (``page`` also gives the total and the counts)."""
        limit, offset = checks.bounds(limit, offset)
        if queue is not None:
            self.store.get_queue(checks.key(queue, "queue"))
        name, version = self._job_filter(job)
        return self.store.list_items(queue=queue, state=state, limit=limit, offset=offset,
                                     sweep_id=sweep, job=name, job_version=version)[0]

    def cancel(self, item_id: str) -> ItemRecord:
        """Cancel: a queued item at once, a running one after its runner stops it."""
        return self.store.request_cancel(checks.key(item_id, "item"))

    def requeue(self, item_id: str, *, idempotency_key: str | None = None) -> Item:
        """A NEW item with the same job, parameters, template values and priority.

        The same ``idempotency_key`` for the same item gives the same new item (a double
        click makes one item).
        """
        from .handles import Item

        item_id = checks.key(item_id, "item")
        if idempotency_key is None:
            new = self.store.requeue(item_id)
        else:
            new = self.store.requeue(item_id, idempotency_key=idempotency_key)
        self._notify(new["queue"])
        return Item(self, new["id"], new)

    def delete(self, item_id: str) -> None:
        """Delete a finished or queued item with its log."""
        self.store.delete_item(checks.key(item_id, "item"))

    def vacuum(self, *, keep_days: float | None = None, keep_last: int | None = None,
               dry_run: bool = False) -> VacuumReport:
        """Retention: delete finished items that finished more than ``keep_days`` days ago
        and/or are beyond the newest ``keep_last`` finished items of their queue (an item
        either rule keeps stays), with their logs, attempts, events, metrics and run folders
        (under ``runs_dir``). Queued, leased and running items are never touched, nor
        trials of a sweep still proposing, nor what an unfinished item runs after.
        ``dry_run``: report what would be freed, delete nothing."""
        import shutil

        keep_days, keep_last = checks.retention(keep_days, keep_last)
        if not isinstance(dry_run, bool):  # "no" would be a dry run
            raise ParameterError(f"dry_run must be true or false, got {shown(dry_run)}")
        # keep_last beyond any store's rows (SQL integers are 64 bits): the same as MAX_ROWS
        cap = None if keep_last is None else min(keep_last, checks.MAX_ROWS)
        expired = self.store.expired_items(keep_days=keep_days, keep_last=cap)
        if not dry_run:
            gone = set(self.store.delete_expired([e["id"] for e in expired]))
            expired = [e for e in expired if e["id"] in gone]
        report: VacuumReport = {
            "dry_run": dry_run, "keep_days": keep_days, "keep_last": keep_last,
            "items": len(expired), "queues": {}, "log_bytes": 0, "run_folders": 0,
            "run_folder_bytes": 0}
        runs = self.config.runs_dir
        for entry in expired:
            report["queues"][entry["queue"]] = report["queues"].get(entry["queue"], 0) + 1
            report["log_bytes"] += entry["log_bytes"] or 0
            folder = runs / entry["id"]
            if folder.is_dir():
                report["run_folders"] += 1
                report["run_folder_bytes"] += sum(
                    f.stat().st_size for f in folder.rglob("*")
                    if f.is_file() and not f.is_symlink())
                if not dry_run:
                    shutil.rmtree(folder, ignore_errors=True)
        return report

    # -- logs ---------------------------------------------------------------------------

    def logs(self, item_id: str, offset: int = 0) -> tuple[str, int]:
        """Log text from byte ``offset`` (whole UTF-8 characters) and the offset to ask for
        next."""
        page = self.log_page(item_id, offset)
        return page["text"], page["next_offset"]

    def log_page(self, item_id: str, offset: int = 0, limit: int | None = None) -> LogPage:
        """``{text, next_offset, done}`` from byte ``offset`` (see ``service.logs``)."""
        _, offset = checks.bounds(None, offset)
        return read_page(self.store, checks.key(item_id, "item"), offset, limit)

    def log_reader(self, item_id: str, offset: int = 0) -> LogReader:
        """An incremental reader of an item's log (``.read()`` gives what is new)."""
        self.store.get_item(checks.key(item_id, "item"))  # unknown item: NotFoundError
        return LogReader(self.store, item_id, offset)

    def follow(self, item_id: str, write: Callable[[str], Any], *, interval: float = 0.2,
               tick: Callable[[], Any] | None = None,
               on_progress: Callable[[ItemRecord], Any] | None = None,
               offset: int = 0) -> ItemRecord:
        """Write the log as it grows (from byte ``offset``) until the item is finished;
        returns the final item. ``on_progress`` gets the item each time its running notebook
        cell changes."""
        self.store.get_item(checks.key(item_id, "item"))
        return follow(self.store, item_id, write, interval=interval, tick=tick,
                      offset=offset, on_progress=on_progress)  # type: ignore[arg-type]

    # -- metrics ------------------------------------------------------------------------

    def metric_page(self, item_id: str, after: int = 0, limit: int | None = None
                    ) -> MetricPage:
        """``{points, next, done}``: the latest attempt's points stored after the cursor
        ``after`` (at most ``limit``), the cursor to ask with next, and whether the item is
        finished with every point read."""
        limit = checks.bounds(limit, 0)[0]
        after = _cursor(after, "after")
        item = self.store.get_item(checks.key(item_id, "item"))  # first: then points are final
        points, cursor = self.store.metric_points(item_id, after=after, limit=limit)
        done = item["state"] in TERMINAL and (limit is None or len(points) < limit)
        return {"points": points, "next": cursor, "done": done}

    def metrics(self, item_id: str, attempt: int | None = None) -> list[MetricPoint]:
        """Every point of the item's latest attempt (or ``attempt``), in the order logged:
        ``{"name", "step", "value", "time"}``."""
        item_id = checks.key(item_id, "item")
        if attempt is not None:
            attempt = _cursor(attempt, "attempt")
        found: list[MetricPoint] = []
        cursor = 0
        while True:
            points, cursor = self.store.metric_points(item_id, attempt=attempt, after=cursor,
                                                      limit=METRIC_PAGE)
            found += points
            if len(points) < METRIC_PAGE:
                return found

    def follow_metrics(self, item_id: str, write: Callable[[MetricPoint], Any], *,
                       interval: float = 0.2) -> ItemRecord:
        """Call ``write`` with each point as it arrives until the item is finished and every
        point was read; returns the final item."""
        cursor = 0
        while True:
            page = self.metric_page(item_id, cursor, limit=METRIC_PAGE)
            for point in page["points"]:
                write(point)
            cursor = page["next"]
            if page["done"]:
                return self.item_info(item_id)
            if len(page["points"]) < METRIC_PAGE:
                time.sleep(interval)

    # -- agents -------------------------------------------------------------------------

    def agent(self, queues: Sequence[str] | None = None, *, max_jobs: int | None = None,
              until_idle: bool = False, gpus: str | Sequence[int] | None = None) -> Any:
        """An Agent on this store (call ``.start()`` for a daemon thread or ``.run()``).

        ``gpus``: the GPU indices it hands to items of queues with ``gpus_per_item``
        (``[0, 1]``, ``"0,1"``, ``"none"``); default: CUDA_VISIBLE_DEVICES, else
        ``nvidia-smi -L``, else none. ``max_jobs``: runs at once (default 1, or one per
        GPU when it has GPUs)."""
        from ..agent import Agent

        return Agent(self.store, self.config, queues, max_jobs=max_jobs, until_idle=until_idle,
                     gpus=gpus)

    def agents(self) -> list[AgentRecord]:
        """Live agents with their heartbeats."""
        return self.store.list_agents()

    def run(self, path: str | os.PathLike, *, queue: str | None = None,
            parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
            timeout: float | None = None, template_pairs: Iterable[str] = (),
            name: str | None = None, include: Sequence[str] = (), kernel: str | None = None,
            mode: str | None = None, env: Sequence[str] = (),
            on_start: Callable[[Item], Any] | None = None,
            write: Callable[[str], Any] | None = None,
            on_interrupt: Callable[[], Any] | None = None,
            on_progress: Callable[[ItemRecord], Any] | None = None,
            isolated: bool = False) -> Item:
        """Capture, submit and run one notebook or script here, in the foreground
        (``isolated``: in a virtualenv built from the job's lock, runners/envs.py).

        The item is leased to a private agent at submit, so no other agent takes it; its
        log goes to ``write`` as it grows, the item to ``on_progress`` when its running cell
        changes. Ctrl-C cancels the run and keeps following it to its end (``on_interrupt``
        is told). Returns the finished item.
        """
        from .foreground import run_foreground

        job = self.create_job(path, name=name, include=include, kernel=kernel, mode=mode,
                              env=env)
        return run_foreground(self, job, queue=queue, parameters=parameters,
                              overrides=overrides, timeout=timeout,
                              template_pairs=template_pairs, on_start=on_start, write=write,
                              on_interrupt=on_interrupt, on_progress=on_progress,
                              isolated=isolated)

    def meta(self) -> dict[str, Any]:
        """States, symbols, colours, priorities, default queue, lease ttl and runners."""
        from ..runners import runner_help
        from ..views.states import meta

        return meta(self.config, runner_help())


def _cursor(value: Any, name: str) -> int:
    """A metric cursor or attempt number: an integer 0 or more (ParameterError if not)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParameterError(f"{name} must be an integer 0 or more (a cursor is the `next` "
                             f"of an earlier answer), got {shown(value)}")
    return value


_DEFAULT: dict[str, Launch] = {}
_CONNECTED: list[Launch] = []  # the server `connect_default` chose, if any


def connect_default(url: str, *, token: str | None = None) -> Launch:
    """Make the server at ``url`` this process's default client (``%launch connect``),
    after one request that proves the URL and the token work."""
    client = Launch.connect(url, token=token)
    client.meta()
    _CONNECTED[:] = [client]
    return client


def default_client() -> Launch:
    """A shared client on the configured store (one per store URL in this process), or the
    server ``%launch connect`` or LAUNCH_JUPYTER_SERVER names."""
    if _CONNECTED:
        return _CONNECTED[0]
    url = os.environ.get("LAUNCH_JUPYTER_SERVER") or checks.settings().store
    client = _DEFAULT.get(url)
    if client is None:
        client = _DEFAULT[url] = Launch(url)
    return client


def connect(store: str | None = None) -> Launch:
    """A ``Launch`` client for ``store`` (default: the configured store)."""
    return Launch(store)


def other_file_warning(captured: Any, previous: JobRecord | None,
                       record: JobRecord) -> list[str]:
    """The warning for a new version ``record`` that a default name (the file's stem) made of
    a job whose ``previous`` version was captured from another file: two notebooks of one
    name would otherwise silently share a job."""
    other = previous.spec.get("source_path") if previous is not None else None
    if not other or other == captured.source_path:
        return []
    return [f"job {captured.name!r} was captured from {other}, not from "
            f"{captured.source_path}: this capture became its version {record.ref}; give "
            "--name to make it a job of its own"]


__all__ = ["Launch", "LaunchError", "connect", "connect_default", "default_client",
           "is_job_file"]
