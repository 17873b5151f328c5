"""The agent: claims items from queues and drives them through runners.

One class, used as a daemon thread (``Agent.start()``, the Python API and the kernel) and as a
process (``jupyter launch agent``). It claims round-robin between its queues up to
``max_jobs`` concurrent runs, sleeps on a wake-up socket between items (no busy polling),
renews the agent heartbeat, recovers lapsed leases on its queues, and on stop hands back what
it has not started while leaving started runs to their supervisors.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import LaunchConfig
from .errors import LaunchError, ParameterError, StoreError
from .runners import Run, Runner, RunRequest, get_runner
from .runners.gpus import GpuPool, as_recorded, detect_gpus, gpus_per_item, parse_gpus
from .runners.policy import AgentPolicy
from .store import (
    ACTIVE,
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    SWEEP_FINISHED,
    SWEEP_RUNNING,
    SWEEP_STOPPED,
    TERMINAL,
    JobRecord,
    Store,
    wakeup,
)

log = logging.getLogger("launch_jupyter.agent")


def _run_token(item_id: str, attempt: int) -> str:
    """The lease owner of one attempt's run: unique per start or adoption."""
    return f"{item_id}/{attempt}/{secrets.token_hex(4)}"


def new_agent_id() -> str:
    """``agent-<host>-<pid>-<random>``: unique, and says where the agent runs."""
    host = socket.gethostname().split(".")[0][:24]
    return f"agent-{host}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class _Active:
    item_id: str
    token: str
    run: Run
    queue: str
    #: monotonic time of the next lease renewal by the agent (runs that do not self-renew)
    renew_at: float = 0.0
    #: monotonic time this agent started the run (0: adopted), for the "item ended" line
    started: float = 0.0


# -- sweeps: advanced by whichever agent serves their queue (docs/usage.md "Sweeps") ----------

def _bayes_history(config: Any, trials: list[dict]) -> list[dict]:
    """The finished trials as Optuna takes them: complete (succeeded with the metric),
    pruned, or fail."""
    history = []
    for trial in trials:
        if trial["state"] not in TERMINAL:
            continue
        last = (trial["metrics"].get(config.metric) or {}).get("last")
        if trial["state"] == SUCCEEDED and last is not None:
            state = "complete"
        elif trial["pruned"] is not None and last is not None:
            state = "pruned"
        else:
            state = "fail"
        history.append({"item": trial["item"], "suggested": trial["proposal"]["suggested"],
                        "state": state, "value": last,
                        "values": [] if last is None else [last]})
    return history


def _target_reached(config: Any, trials: list[dict]) -> bool:
    if config.target is None:
        return False
    for trial in trials:
        last = (trial["metrics"].get(config.metric) or {}).get("last")
        if trial["state"] == SUCCEEDED and last is not None and (
                last >= config.target if config.goal == "maximize" else last <= config.target):
            return True
    return False


def advance_sweep(store: Store, sweep: dict) -> list[str]:
    """Propose a running sweep's next trials, up to ``parallel`` unfinished at once and its
    run cap; mark it finished once it has proposed them all and they have ended.

    Safe to call from any number of agents at once: each trial is inserted under a guarded
    update of the sweep's proposed count (``Store.add_sweep_trial``). Returns new item ids.
    """
    from .jobs import effective_parameters, validate_parameters
    from .jobs.sweep import next_trial
    from .jobs.sweep_config import SweepConfig

    if sweep["state"] != SWEEP_RUNNING:
        return []
    config = SweepConfig.from_json(sweep["config"])
    trials = store.sweep_trials(sweep["id"])
    unfinished = sum(1 for t in trials if t["state"] in (QUEUED, *ACTIVE))
    cap, proposed = sweep["run_cap"], sweep["proposed"]
    if (cap is not None and proposed >= cap) or _target_reached(config, trials):
        if unfinished == 0:
            store.set_sweep_state(sweep["id"], SWEEP_FINISHED, [SWEEP_RUNNING])
        return []
    room = sweep["parallel"] - unfinished
    if room <= 0:
        return []
    job = store.get_job_by_id(sweep["job_id"])
    schema = job.spec.get("schema") or {"type": "object", "properties": {}}
    fixed = sweep["submit"].get("fixed") or {}
    history = _bayes_history(config, trials) if config.method == "bayes" else []
    new: list[str] = []
    while room > 0 and (cap is None or proposed < cap):
        proposal = next_trial(config, proposed, sweep["seed"], history)
        if proposal is None:
            break
        overrides = {**fixed, **proposal["parameters"]}
        try:
            validate_parameters(overrides, schema)
        except LaunchError as err:  # a normal distribution's tail beyond the schema's bounds
            log.warning("sweep %s stopped: trial %d %s", sweep["id"], proposed, err)
            store.set_sweep_state(sweep["id"], SWEEP_STOPPED, [SWEEP_RUNNING])
            break
        item_id = store.add_sweep_trial(
            sweep["id"], proposed, overrides=overrides,
            parameters=effective_parameters(job.spec.get("parameters") or {}, overrides),
            proposal=proposal)
        if item_id is None:
            break  # another agent proposed this trial, or the sweep was stopped
        new.append(item_id)
        proposed += 1
        room -= 1
    return new


def prune_sweep(store: Store, sweep: dict, actor: str,
                judged: dict[str, int] | None = None) -> list[str]:
    """Stop the running trials of a hyperband sweep whose logged metric is clearly worse than
    the other trials' at the same iteration count; returns the pruned item ids.

    A trial is judged once per bracket, when it reaches it (``judged``: item -> the last
    bracket judged, kept by the caller), so the points are read only when some trial has
    reached a new bracket."""
    from .jobs.sweep import hyperband_verdict
    from .jobs.sweep_config import SweepConfig

    config = SweepConfig.from_json(sweep["config"])
    hb = config.early_terminate
    if hb is None or not sweep["counts"].get(RUNNING):
        return []
    judged = {} if judged is None else judged
    due: dict[str, int] = {}
    for trial in store.sweep_trials(sweep["id"]):
        if trial["state"] != RUNNING or trial["pruned"] is not None:
            continue
        count = (trial["metrics"].get(config.metric) or {}).get("count", 0)
        brackets = hb.brackets(count)
        if brackets and judged.get(trial["item"]) != brackets[-1]:
            due[trial["item"]] = brackets[-1]
    if not due:
        return []
    values = store.sweep_metric_values(sweep["id"], config.metric)
    pruned = []
    for item_id, bracket in due.items():
        judged[item_id] = bracket
        others = [v for other, v in values.items() if other != item_id]
        reason = hyperband_verdict(config, values.get(item_id, [])[:bracket], others)
        if reason and store.prune(item_id, reason, actor):
            log.info("item %s pruned: %s", item_id, reason)
            pruned.append(item_id)
    return pruned


# -- schedules: fired by whichever agent serves their queue (docs/usage.md "Schedules") ----

#: A firing found more than this many seconds late (or one cron period, when shorter; at
#: least 2 s) was missed: no agent ran at its time. Missed firings make no item unless the
#: schedule catches up, and then one for the whole missed window.
MISSED_AFTER = 60.0


def croniter_form(cron: str) -> str:
    """``cron`` as croniter reads it: a sixth field is seconds, last. A six-field cron whose
    last field is ``*`` and first is not has its seconds first (Quartz, Spring: ``*/10 * *
    * * *``): read that way it fires as meant, where "every second of some minutes" never is.
    """
    fields = cron.split()
    if len(fields) == 6 and fields[5] == "*" and fields[0] != "*":
        fields = fields[1:] + fields[:1]
    return " ".join(fields)


def next_fire(cron: str, timezone: str, after: float) -> float:
    """The first time (epoch seconds) after ``after`` that ``cron`` names in ``timezone``;
    ParameterError when it names none (30 February, a year gone by)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from croniter import CroniterBadDateError, croniter

    start = datetime.fromtimestamp(after, ZoneInfo(timezone))
    try:
        return croniter(croniter_form(cron), start).get_next(float)
    except CroniterBadDateError:
        raise ParameterError(f"cron expression {cron!r} names no time after "
                             f"{start:%Y-%m-%d %H:%M %Z}: it never fires (a date such as 30 "
                             "February, or a year gone by); fix the expression") from None


def _fire_after(cron: str, timezone: str, after: float) -> float | None:
    """``next_fire``, or None once the cron names no later time (a year field gone by)."""
    try:
        return next_fire(cron, timezone, after)
    except ParameterError:
        return None


def fire_schedule(store: Store, schedule: dict, now: float | None = None) -> str | None:
    """Fire an active schedule that is due: queue its item (on time, or late with catch-up)
    and move its next firing; returns the new item id, or None.

    Safe from any number of agents at once: the move is a guarded update of the schedule's
    next-fire time in the item's transaction (``Store.fire_schedule``), so one agent wins.
    """
    now = time.time() if now is None else now
    due = schedule["next_fire_ts"]
    if schedule["paused"] or due > now:
        return None
    cron, timezone = schedule["cron"], schedule["timezone"]
    following = _fire_after(cron, timezone, due)
    period = MISSED_AFTER if following is None else following - due
    on_time = now - due <= min(MISSED_AFTER, max(2.0, period))
    # On time: the next firing is the cron's next, even if that is due already (a seconds
    # cron behind by a moment). Missed: skip to the first firing after now.
    upcoming = following if on_time else _fire_after(cron, timezone, now)
    make_item = on_time or schedule["catch_up"]
    moved, item_id = store.fire_schedule(schedule["name"], due, upcoming or due,
                                         make_item=make_item, pause=upcoming is None)
    if moved and upcoming is None:
        log.warning("schedule %s paused: its cron %r names no later time", schedule["name"],
                    cron)
    if moved and not make_item:
        log.info("schedule %s: firing(s) since %s missed while no agent ran, skipped "
                 "(--catch-up fires one)", schedule["name"], schedule["next_fire_at"])
    return item_id


def sweeps_pending(store: Store, queues: Sequence[str]) -> bool:
    """Whether a running sweep on ``queues`` still has trials to propose."""
    return any(s["run_cap"] is None or s["proposed"] < s["run_cap"]
               for s in store.list_sweeps(queues=queues, state=SWEEP_RUNNING))


class Agent:
    """Claims and runs items from ``queues`` (all queues of the store when empty)."""

    def __init__(
        self, store: Store, config: LaunchConfig, queues: Sequence[str] | None = None, *,
        max_jobs: int | None = None, until_idle: bool = False, agent_id: str | None = None,
        register: bool = True, gpus: str | Sequence[int | str] | None = None,
    ) -> None:
        #: the GPUs this agent hands to items of gpus_per_item queues (runners/gpus.py)
        self.gpus = GpuPool(detect_gpus() if gpus is None else parse_gpus(gpus))
        if max_jobs is None:  # one run at a time, or one per GPU on a GPU machine
            max_jobs = max(1, len(self.gpus.all))
        if max_jobs < 1:
            raise LaunchError(f"--max-jobs must be at least 1, got {max_jobs}")
        #: queue -> GPUs each of its items needs (read with the queue in ``_usable``)
        self._gpu_need: dict[str, int] = {}
        self.store = store
        self.config = config
        #: a foreground ``run --isolated`` sets "isolated": it replaces the queue config's
        #: ``environment`` for this agent's runs (runners/envs.py)
        self.environment: str | None = None
        #: warm kernels for notebook runs (runners/kernelpool.py); a foreground run sets 0
        self.kernel_pool_size = config.kernel_pool_size
        self.queues = list(queues or [])
        for name in self.queues:
            store.get_queue(name)  # raises NotFoundError with the list of queues
        self.max_jobs = max_jobs
        self.until_idle = until_idle
        self.id = agent_id or new_agent_id()
        self.register = register
        self.active: dict[str, _Active] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waker: wakeup.Waker | None = None
        self._rr = 0
        self._job_cache: dict[int, tuple[JobRecord, list[tuple[str, bytes]]]] = {}
        self._usable_cache: dict[str, tuple[float, str | None]] = {}
        self._runners: dict[str, Runner] = {}
        #: requirement warnings per (pins, jobs.deps.environment_stamp())
        self._req_cache: dict[tuple[Any, ...], list[str]] = {}
        #: hyperband: item -> the last bracket this agent judged it at
        self._judged: dict[str, int] = {}
        #: when the next schedule of our queues is due (epoch seconds), for the loop's wait
        self._next_schedule: float | None = None
        self._schedules_checked = 0.0
        self.started = threading.Event()
        self.error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Agent:
        """Run the loop in a daemon thread; returns at once."""
        self._thread = threading.Thread(target=self._thread_main, name=self.id, daemon=True)
        self._thread.start()
        self.started.wait(30)
        return self

    def _thread_main(self) -> None:
        try:
            self.run()
        except BaseException as err:  # surfaced through .error and the agent status
            self.error = err
            log.exception("agent %s stopped on an error", self.id)

    def stop(self, wait: float | None = 10.0) -> None:
        """Stop claiming; runs already started keep going under their supervisors."""
        self._stop.set()
        if self._waker is not None:
            self._waker.wake()
        thread = self._thread
        if thread is not None and wait is not None and thread is not threading.current_thread():
            thread.join(wait)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def serves(self) -> list[str]:
        """The queues this agent claims from: its own (or all), minus those whose runner
        cannot work here (no Docker engine, no Kubernetes config): their items stay queued
        for an agent that can run them instead of failing here."""
        names = self.queues or self.store.queue_names()
        return [name for name in names if self._usable(name)]

    def _usable(self, name: str) -> bool:
        """Whether this agent can start runs of queue ``name`` (checked at most every 30 s)."""
        now = time.monotonic()
        cached = self._usable_cache.get(name)
        if cached is not None and now - cached[0] < 30:
            return cached[1] is None
        problem = None
        try:
            queue = self._queue(name)
            self._gpu_need[name] = (gpus_per_item(queue["config"])
                                    if queue["runner"] == "local" else 0)
            if self._gpu_need[name] > len(self.gpus.all):
                raise LaunchError(
                    f"its items need {self._gpu_need[name]} GPU(s) each and this agent has "
                    f"{len(self.gpus.all)} ({','.join(self.gpus.all) or 'none'}); start an "
                    "agent with --gpus")
            if queue["runner"] != "local":
                runner = self._runner(queue["runner"])
                check = getattr(runner, "check", None)
                if check is not None:
                    check(queue["config"])
        except StoreError:
            raise
        except LaunchError as err:
            problem = self.policy.redact(str(err))
        if problem != (cached[1] if cached else None):
            if problem:
                log.warning("agent %s does not serve queue %s: %s; its items stay queued",
                            self.id, name, problem)
            elif cached is not None:
                log.info("agent %s serves queue %s again", self.id, name)
        self._usable_cache[name] = (now, problem)
        return problem is None

    def run(self) -> None:
        """The loop itself (blocks until stopped, or idle with ``until_idle``)."""
        self._waker = wakeup.Waker(self.id)
        listener = self.store.listener()  # PostgreSQL: LISTEN/NOTIFY across machines
        if listener is not None:
            self._waker.add_source(listener)
        ttl = self.config.lease_ttl
        if self.register:
            self.store.register_agent(self.id, self.queues or ["*"], self.max_jobs,
                                      self._waker.address)
        try:
            if "local" in {q["runner"] for q in self.store.list_queues()
                           if not self.queues or q["name"] in self.queues}:
                self._runner("local")  # warm the fork server before the first item arrives
        except LaunchError:
            pass
        self._hold_running_gpus()
        self.started.set()
        next_heartbeat = next_reap = next_sweeps = 0.0
        backoff = 0.5
        try:
            while not self._stop.is_set():
                try:
                    now = time.monotonic()
                    if self.register and now >= next_heartbeat:
                        self.store.heartbeat_agent(self.id)
                        next_heartbeat = now + ttl / 3
                    self.renew_held_runs()
                    if now >= next_reap:
                        self.recover_lapsed()
                        next_reap = now + min(ttl / 3, 2.0)
                    self._reap_finished()
                    if now >= next_sweeps:
                        self.advance_sweeps()
                        next_sweeps = now + 1.0
                    if self._schedules_due():
                        self.fire_schedules()
                    claimed = self._fill()
                    if (self.until_idle and not self.active and not claimed
                            and not self.store.has_queued(self.serves())
                            and not sweeps_pending(self.store, self.serves())):
                        self.advance_sweeps()  # marks the sweeps whose last trial ended
                        break
                    backoff = 0.5
                except StoreError as err:
                    # The store is away (a PostgreSQL restart, say): keep trying with backoff.
                    # Runs already started keep going under their supervisors.
                    log.warning("agent %s: %s; retrying in %.1f s", self.id, err, backoff)
                    self._waker.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                if claimed:
                    continue
                self._waker.wait(min(0.5 if self.active else 1.0, self._until_schedule()))
        finally:
            if self.register:
                try:
                    self.store.stop_agent(self.id)
                except Exception:
                    log.warning("could not record that agent %s stopped", self.id)
            self._waker.close()
            self.close()

    def close(self) -> None:
        """Release the runners' helpers (the fork server); started runs keep going."""
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()

    def advance_sweeps(self) -> list[str]:
        """Prune and top up the running sweeps on our queues; returns new item ids."""
        new: list[str] = []
        for sweep in self.store.list_sweeps(queues=self.serves(), state=SWEEP_RUNNING):
            try:
                prune_sweep(self.store, sweep, self.id, self._judged)
                new += advance_sweep(self.store, sweep)
            except StoreError:
                raise
            except Exception:  # one broken sweep must not stop the agent serving others
                log.exception("agent %s could not advance sweep %s", self.id, sweep["id"])
        return new

    def fire_schedules(self) -> list[str]:
        """Queue the items of the due schedules on our queues; returns new item ids."""
        new: list[str] = []
        serves = self.serves()
        for schedule in self.store.list_schedules(queues=serves, due_by=time.time()):
            try:
                item_id = fire_schedule(self.store, schedule)
            except StoreError:
                raise
            except Exception:  # one broken schedule must not stop the agent serving others
                log.exception("agent %s could not fire schedule %s", self.id, schedule["name"])
                continue
            if item_id is not None:
                log.info("schedule %s fired: item %s", schedule["name"], item_id)
                new.append(item_id)
        upcoming = self.store.next_schedule_at(serves) if serves else None
        if upcoming is not None and upcoming <= time.time():
            upcoming = time.time() + 1.0  # one could not fire (logged above): not a busy loop
        self._next_schedule = upcoming
        return new

    def _schedules_due(self) -> bool:
        """Whether to look at the schedules now: one is due, or a second has passed (new,
        resumed or changed schedules are found within a second; claims pay no query)."""
        now = time.time()
        if now - self._schedules_checked >= 1.0 or (
                self._next_schedule is not None and now >= self._next_schedule):
            self._schedules_checked = now
            return True
        return False

    def _until_schedule(self) -> float:
        """Seconds until the next schedule of our queues is due (a long time when none is),
        so the loop wakes for it on time."""
        if self._next_schedule is None:
            return 3600.0
        return max(0.0, self._next_schedule - time.time())

    # -- claiming and starting ------------------------------------------------------------

    def _fill(self) -> bool:
        """Claim and start items while there is room; True if any was claimed."""
        claimed = False
        while len(self.active) < self.max_jobs and not self._stop.is_set():
            queues = self.serves()
            item = None
            for i in range(len(queues)):
                queue = queues[(self._rr + i) % len(queues)]
                if not self.gpus.fits(self._gpu_need.get(queue, 0)):
                    continue  # its items need more GPUs than are free here now
                item = self.store.claim(queue, self.id, self.config.lease_ttl)
                if item is not None:
                    self._rr = (self._rr + i + 1) % len(queues)
                    break
            if item is None:
                return claimed
            claimed = True
            self.launch(item)
        return claimed

    def _job(self, job_id: int) -> tuple[JobRecord, list[tuple[str, bytes]]]:
        cached = self._job_cache.get(job_id)
        if cached is None:
            cached = (self.store.get_job_by_id(job_id), self.store.job_files(job_id))
            if len(self._job_cache) > 64:
                self._job_cache.clear()
            self._job_cache[job_id] = cached
        return cached

    def launch(self, item: dict) -> str | None:
        """Start a leased item; returns its run token, or None when it did not start."""
        item_id, attempt = item["id"], item["attempt"]
        token = _run_token(item_id, attempt)
        if self._stop.is_set():
            self.store.hand_back(item_id, self.id)
            return None
        try:
            job_id = self.store.job_id_of(item_id)
            job, files = self._job(job_id)
            queue = self._queue(item["queue"])
            runner_name = queue["runner"]
            runner = self._runner(runner_name)
            need = gpus_per_item(queue["config"]) if runner_name == "local" else 0
            upstream = self._upstream_outputs(item)
        except LaunchError as err:
            self.store.finish(item_id, self.id, FAILED,
                              error={"message": str(err), "stage": "start", "cell": None})
            return None
        gpus = self.gpus.take(item_id, need) if need else []
        if gpus is None:  # the queue asks for more GPUs than are free now: leave it queued
            self._gpu_need[item["queue"]] = need
            self.store.hand_back(item_id, self.id)
            return None
        extra_env = {"CUDA_VISIBLE_DEVICES": ",".join(gpus)} if gpus else {}
        granted = time.time()
        request = self._run_request(item, job, files, token, granted, queue,
                                    requirement_warnings=self._requirement_warnings(job),
                                    extra_env=extra_env, upstream=upstream)
        info = {"runner": runner_name, "host": socket.gethostname(),
                "run_dir": str(request.run_dir), "agent": self.id}
        if gpus:
            info["gpus"] = as_recorded(gpus)
        if not self.store.start_run(item_id, self.id, token, self.config.lease_ttl, info):
            # Cancelled between claim and start: it never ran.
            self.gpus.release(item_id)
            self.store.finish(item_id, self.id, CANCELLED,
                              error={"message": "cancelled before it started",
                                     "stage": "queued", "cell": None})
            return None
        try:
            # The runner checks the item's final container options or Job manifest against
            # the agent's policy here, before anything starts (runners/policy.py).
            run = runner.start(request)
        except (LaunchError, OSError) as err:
            self.gpus.release(item_id)
            message = self.policy.redact(f"could not start: {err}")
            log.warning("agent %s: item %s %s", self.id, item_id, message)
            self.store.finish(item_id, token, FAILED,
                              error={"message": message, "stage": "start", "cell": None})
            return None
        self.store.update_run_info(item_id, token, **run.info())
        self.active[item_id] = _Active(item_id, token, run, item["queue"],
                                       started=time.monotonic())
        log.info("item %s started: %s on queue %s, attempt %d%s", item_id, job.ref,
                 item["queue"], attempt, f", GPUs {','.join(gpus)}" if gpus else "")
        return token

    def _upstream_outputs(self, item: dict) -> dict[str, str]:
        """Run-after: each upstream item -> the folder of its outputs on this machine (its
        last attempt's ``output`` folder, where every runner leaves them)."""
        found = {}
        for upstream in item.get("after") or ():
            run_dir = (self.store.get_item(upstream).get("run") or {}).get("run_dir")
            if run_dir:
                found[upstream] = str(Path(run_dir) / "output")
        return found

    def _hold_running_gpus(self) -> None:
        """GPUs that runs started by an earlier agent on this machine still use are not
        free: a restarted agent never hands one to a second item."""
        if not self.gpus.all:
            return
        host = socket.gethostname()
        for item in self.store.list_items(state=list(ACTIVE))[0]:
            run = item.get("run") or {}
            if run.get("host") == host and run.get("gpus"):
                self.gpus.hold(item["id"], [str(g) for g in run["gpus"]])

    def _run_request(self, item: dict, job: JobRecord, files: list[tuple[str, bytes]],
                     token: str, granted: float, queue: dict, **extra: Any) -> RunRequest:
        """What a runner needs to start (or adopt) the item's current attempt."""
        ttl = self.config.lease_ttl
        return RunRequest(
            item=item, job=job, files=files, token=token, attempt=item["attempt"],
            run_dir=Path(self.config.runs_dir) / item["id"] / str(item["attempt"]),
            store_url=self.store.url, lease_ttl=ttl, cancel_grace=self.config.cancel_grace,
            max_log_bytes=self.config.max_log_bytes, agent_id=self.id,
            agent_wake=self._waker.address if self._waker else None,
            lease_until=granted + ttl,
            queue_config=({**queue["config"], "environment": self.environment}
                          if self.environment else queue["config"]), **extra,
        )

    @property
    def policy(self) -> AgentPolicy:
        """What queue configs may do on this agent's host: its own config, never the store."""
        return AgentPolicy.from_config(self.config)

    def _runner(self, name: str) -> Runner:
        runner = self._runners.get(name)
        if runner is None:
            runner = self._runners[name] = get_runner(name)
        if hasattr(runner, "policy"):
            runner.policy = self.policy  # read at each use: the config may have changed
        if hasattr(runner, "kernel_pool_size"):  # local: warm kernels (runners/kernelpool.py)
            runner.kernel_pool_size = self.kernel_pool_size
        runner.prepare()  # e.g. the local fork server: ready before any lease is granted
        return runner

    def _requirement_warnings(self, job: JobRecord) -> list[str] | None:
        """Pinned versions that differ from this environment: checked once per set of pins
        (a job version's) and state of the environment, so runs do not wait for it."""
        pins = tuple(job.spec.get("requirements") or ())
        try:
            from .jobs.deps import check_requirements, environment_stamp

            key = (pins, environment_stamp())
            cached = self._req_cache.get(key)
            if cached is not None:
                return cached
            warnings = check_requirements(list(pins))
        except Exception:  # the supervisor will try again itself
            return None
        self._req_cache[key] = warnings
        return warnings

    # -- watching -------------------------------------------------------------------------

    def _reap_finished(self) -> None:
        others = [i for i in self.gpus.holders() if i not in self.active]
        if not self.active and not others:
            return
        # The store says first: a supervisor records the outcome, wakes us, then exits.
        states = self.store.states(list(self.active) + others)
        for item_id in others:  # GPUs of runs an earlier agent started
            if states.get(item_id) not in ACTIVE:
                self.gpus.release(item_id)
        for item_id, active in list(self.active.items()):
            if states.get(item_id) in TERMINAL:
                self.gpus.release(item_id)
                del self.active[item_id]
                took = (f" after {time.monotonic() - active.started:.1f} s"
                        if active.started else "")
                log.info("item %s %s%s", item_id, states[item_id], took)
            elif active.run.done():
                self.gpus.release(item_id)
                del self.active[item_id]
                # A supervisor that exited without recording the outcome died: its job died
                # with it (PDEATHSIG), so the lease may lapse right away (after a margin).
                self.store.expire_lease(item_id, active.token, margin=2.0)

    def recover_lapsed(self) -> list[tuple[str, str]]:
        """Requeue (or fail) items on our queues whose lease lapsed; returns (id, new state)."""
        served = set(self.serves())
        done = []
        for row in self.store.expired_leases():
            if row["queue"] not in served or row["lease_owner"] is None:
                continue
            if row["id"] in self.active and not self.active[row["id"]].run.self_renewing:
                continue  # ours: renewed next round, or fenced by the run itself
            adopted = self._adopt(row)
            if adopted is not False:
                if adopted:
                    done.append((row["id"], "adopted"))
                continue  # the runner could not tell: never risk a second copy; retry later
            new_state = self.store.recover(row["id"], row["lease_owner"], self.id)
            if new_state is not None:
                log.info("item %s: lease lapsed -> %s", row["id"], new_state)
                done.append((row["id"], new_state))
        return done

    # -- runs whose lease the agent holds (docker, kubernetes) ------------------------------

    def renew_held_runs(self) -> None:
        """Renew, every ttl/3, the leases of runs that do not renew their own.

        A run told its lease is lost stops itself (fencing); a cancel request reaches it here
        too. When the store is away the StoreError goes up to the loop's backoff, and the run
        fences itself once its lease is about to lapse.
        """
        ttl = self.config.lease_ttl
        for item_id, active in list(self.active.items()):
            if active.run.self_renewing or time.monotonic() < active.renew_at:
                continue
            asked = time.time()
            held, cancel = self.store.renew(item_id, active.token, ttl)
            active.renew_at = time.monotonic() + ttl / 3
            renewed = getattr(active.run, "lease_renewed", None)
            if renewed is not None:
                renewed(asked + ttl if held else 0.0)
            if held and cancel:
                active.run.cancel(self.config.cancel_grace)

    def _queue(self, name: str) -> dict:
        """The queue (runner, config) as it is now: a queue deleted and created again with
        another config must not start items with the old one (one indexed read)."""
        return self.store.get_queue(name)

    def _adopt(self, row: dict) -> bool | None:
        """A lapsed lease whose run may still be alive (a container): adopt it if it is.

        The agent takes the lapsed lease over under a new token, then asks the runner for the
        run. True: adopted; False: gone (recover the item as usual); None:
        the runner could not tell (its engine is away), so the item is left for later.
        """
        if row["state"] != RUNNING:
            return False
        try:
            queue = self._queue(row["queue"])
            runner = self._runner(queue["runner"])
        except LaunchError:
            return False
        adopt = getattr(runner, "adopt", None)
        if adopt is None:
            return False
        item_id, ttl = row["id"], self.config.lease_ttl
        # Take the lapsed lease over under a new token in one guarded UPDATE: of two agents
        # recovering the same item at once, exactly one wins.
        token = _run_token(item_id, row["attempt"])
        asked = time.time()
        if not self.store.take_over(item_id, row["lease_owner"], token, ttl):
            return False  # finished, recovered or adopted by another agent meanwhile
        run = None
        try:
            item = self.store.get_item(item_id)
            job, files = self._job(self.store.job_id_of(item_id))
            run = adopt(self._run_request(item, job, files, token, asked, queue))
        except (LaunchError, OSError) as err:
            log.warning("agent %s could not look for the run of item %s: %s", self.id,
                        item_id, err)
            self.store.expire_lease(item_id, token)
            return None
        if run is None:
            self.store.expire_lease(item_id, token)
            return False
        log.info("agent %s adopted the run of item %s", self.id, item_id)
        self.store.update_run_info(item_id, token, agent=self.id, adopted_by=self.id,
                                   **run.info())
        self.active[item_id] = _Active(item_id, token, run, row["queue"],
                                       renew_at=time.monotonic() + ttl / 3)
        return True

    def status(self) -> dict:
        """What the agent is doing, for ``agent status`` and the panels."""
        return {"id": self.id, "running": self.running, "queues": self.queues or ["*"],
                "max_jobs": self.max_jobs, "active": sorted(self.active),
                "gpus": as_recorded(self.gpus.all),
                "error": None if self.error is None else str(self.error),
                # queues left to other agents: their runner cannot work here, and why
                "unserved": {name: problem for name, (_at, problem)
                             in sorted(self._usable_cache.items()) if problem}}


__all__ = ["ACTIVE", "Agent", "new_agent_id"]
