"""The Python API: the one place the magics, the CLI and the REST handlers call into."""

from __future__ import annotations

import html
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .config import LaunchConfig
from .errors import LaunchError, ParameterError
from .store import TERMINAL, JobRecord, Store, wakeup


def _positive_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        raise ParameterError(
            f"timeout must be a number of seconds, got {timeout!r}"
        ) from None
    if not value > 0 or value == float("inf"):
        raise ParameterError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return value


class Launch:
    """A connection to one store, with every operation the front doors offer.

    Parameters: ``store`` (URL; default from LaunchConfig) or a ready ``config``; other
    keyword arguments set LaunchConfig traits (``lease_ttl=5``, ``cancel_grace=2``...).
    """

    def __init__(
        self, store: str | None = None, *, config: LaunchConfig | None = None, **settings: Any
    ) -> None:
        self.config = config or LaunchConfig.load(store=store, **settings)
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.config.store)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- jobs ---------------------------------------------------------------------------

    def create_job(
        self, path: str | os.PathLike, *, name: str | None = None, alias: str | None = None,
        include: Sequence[str] = (), kernel: str | None = None, mode: str | None = None,
        env: Sequence[str] = (),
    ) -> JobRecord:
        """Capture a notebook or script as a job version (unchanged content: same version)."""
        from .jobs import capture, validate_alias

        if alias is not None:
            validate_alias(alias)
        captured = capture(path, name=name, include=include, kernel=kernel, mode=mode, env=env)
        return self.add_captured(captured, alias=alias)

    def add_captured(self, captured: Any, *, alias: str | None = None) -> JobRecord:
        """Store an already captured job (see ``launch_jupyter.jobs.capture``)."""
        files = [(f.path, f.sha256, f.content) for f in captured.files]
        record, _created = self.store.add_job(captured.name, captured.digest, captured.spec(),
                                              files, alias=alias)
        return record

    def job(self, ref: str) -> JobRecord:
        """Resolve ``name``, ``name:vN`` or ``name:alias``."""
        from .jobs import parse_ref

        name, version, alias = parse_ref(ref)
        return self.store.get_job(name, version=version, alias=alias)

    def jobs(self, name: str | None = None) -> list[JobRecord]:
        return self.store.list_jobs(name)

    # -- queues -------------------------------------------------------------------------

    def create_queue(
        self, name: str, *, runner: str = "local", max_attempts: int = 3,
        timeout: float | None = None, config: dict | None = None,
    ) -> dict:
        from .jobs import validate_name

        validate_name(name, "queue")
        return self.store.create_queue(name, runner=runner, max_attempts=int(max_attempts),
                                       timeout=_positive_timeout(timeout), config=config)

    def queue(self, name: str) -> dict:
        return self.store.get_queue(name)

    def queues(self) -> list[dict]:
        return self.store.list_queues()

    def pause_queue(self, name: str) -> dict:
        return self.store.set_paused(name, True)

    def resume_queue(self, name: str) -> dict:
        queue = self.store.set_paused(name, False)
        self._notify(name)
        return queue

    def delete_queue(self, name: str, *, force: bool = False) -> int:
        return self.store.delete_queue(name, force=force)

    # -- items --------------------------------------------------------------------------

    def submit(
        self, ref: str | JobRecord, *, queue: str | None = None,
        parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
        priority: str | int | None = None, timeout: float | None = None,
        sweep_id: str | None = None, lease_owner: str | None = None,
    ) -> Item:
        """Put a job on a queue. ``parameters`` are typed values, ``overrides`` ``k=v`` strings.

        Everything is validated before anything is written.
        """
        from .jobs import effective_parameters, parse_overrides, parse_priority, validate_parameters

        job = ref if isinstance(ref, JobRecord) else self.job(ref)
        queue = queue or self.config.default_queue
        schema = job.spec.get("schema") or {"type": "object", "properties": {}}
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
        prio = parse_priority(priority)
        self.store.get_queue(queue)  # unknown queue: NotFoundError before anything is written
        effective = effective_parameters(job.spec.get("parameters") or {}, values)
        item = self.store.submit(
            job=job, queue=queue, overrides=values, parameters=effective, priority=prio,
            timeout=_positive_timeout(timeout), sweep_id=sweep_id, lease_owner=lease_owner,
            lease_ttl=self.config.lease_ttl,
        )
        if lease_owner is None:
            self._notify(queue)
        return Item(self, item["id"], item)

    def _notify(self, queue: str) -> None:
        wakeup.notify(self.store.wake_addresses(queue, max_age=3 * self.config.lease_ttl))

    def item(self, item_id: str) -> Item:
        return Item(self, item_id, self.store.get_item(item_id))

    def items(self, *, queue: str | None = None, state: str | Sequence[str] | None = None,
              limit: int | None = None, offset: int = 0) -> list[dict]:
        if queue is not None:
            self.store.get_queue(queue)
        return self.store.list_items(queue=queue, state=state, limit=limit, offset=offset)[0]

    def cancel(self, item_id: str) -> dict:
        return self.store.request_cancel(item_id)

    def requeue(self, item_id: str) -> Item:
        new = self.store.requeue(item_id)
        self._notify(new["queue"])
        return Item(self, new["id"], new)

    def delete(self, item_id: str) -> None:
        self.store.delete_item(item_id)

    def logs(self, item_id: str, offset: int = 0) -> tuple[str, int]:
        """Log text from byte ``offset`` and the offset to ask for next."""
        data, next_offset = self.store.read_log(item_id, offset)
        return data.decode("utf-8", errors="replace"), next_offset

    def agent(self, queues: Sequence[str] | None = None, *, max_jobs: int = 1,
              until_idle: bool = False) -> Any:
        """An Agent on this store (call ``.start()`` for a daemon thread or ``.run()``)."""
        from .agent import Agent

        return Agent(self.store, self.config, queues, max_jobs=max_jobs, until_idle=until_idle)

    def agents(self) -> list[dict]:
        return self.store.list_agents()


STATE_COLOURS = {"queued": "#6b7280", "leased": "#2563eb", "running": "#2563eb",
                 "succeeded": "#16a34a", "failed": "#dc2626", "cancelled": "#a16207"}


class Item:
    """A handle on one item: its state, logs and outcome, and cancel/requeue."""

    def __init__(self, client: Launch, item_id: str, data: dict | None = None) -> None:
        self.client = client
        self.id = item_id
        self._data = data

    def __repr__(self) -> str:
        return f"<Item {self.id} {self.info().get('state')}>"

    def info(self, refresh: bool = True) -> dict:
        """The item as ``jupyter launch show --json`` prints it."""
        if refresh or self._data is None:
            self._data = self.client.store.get_item(self.id)
        return self._data

    @property
    def state(self) -> str:
        return self.info()["state"]

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def wait(self, timeout: float | None = None, poll: float = 0.1) -> Item:
        """Block until the item is finished; raises TimeoutError after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.state not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"item {self.id} still {self.state} after {timeout} s")
            time.sleep(poll)
        return self

    def logs(self) -> str:
        return self.client.logs(self.id)[0]

    def cancel(self) -> Item:
        self._data = self.client.cancel(self.id)
        return self

    def requeue(self) -> Item:
        return self.client.requeue(self.id)

    @property
    def output_notebook(self) -> str | None:
        """Path of the executed notebook (notebook mode), once there is one."""
        for out in self.info().get("outputs", []):
            if out.get("kind") == "notebook":
                return out["path"]
        return None

    def _repr_html_(self) -> str:
        d = self.info()
        colour = STATE_COLOURS.get(d["state"], "#6b7280")
        err = d.get("error") or {}
        rows = [("job", d["job"]), ("queue", d["queue"]), ("priority", d["priority"]),
                ("parameters", d["parameters"]), ("attempt", f"{d['attempt']}/{d['max_attempts']}"),
                ("duration", f"{d['duration']} s" if d.get("duration") is not None else "")]
        if err:
            rows.append(("error", err.get("message")))
        body = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
            f"<td>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return (f"<div><b>item {html.escape(d['id'])}</b> <span style='color:{colour}'>"
                f"&#9679; {html.escape(d['state'])}</span><table>{body}</table></div>")


def connect(store: str | None = None) -> Launch:
    """A ``Launch`` client for ``store`` (default: the configured store)."""
    return Launch(store)


__all__ = ["Item", "Launch", "LaunchError", "connect"]
