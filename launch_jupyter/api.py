"""The Python API: the one place the magics, the CLI and the REST handlers call into."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .config import LaunchConfig
from .errors import LaunchError, NotFoundError, ParameterError, shown
from .store import TERMINAL, JobRecord, Store, wakeup

#: Most attempts a queue may allow (the column is a 32-bit integer in PostgreSQL).
MAX_ATTEMPTS = 1000
#: Beyond any store's row count; bigger limits and offsets are cut to it (SQL takes 64 bits).
MAX_ROWS = 2**62


def _max_attempts(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ParameterError(f"max_attempts must be an integer, got {shown(value)}")
    try:
        number = int(value)
    except ValueError:
        raise ParameterError(f"max_attempts must be an integer, got {shown(value)}") from None
    if not 1 <= number <= MAX_ATTEMPTS:
        raise ParameterError(f"max_attempts must be at least 1 and at most {MAX_ATTEMPTS}, "
                             f"got {shown(number)}")
    return number


def _key(value: Any, what: str) -> str:
    """``value`` to look a job, queue or item up by; text no store can hold names nothing."""
    if isinstance(value, str) and "\0" not in value:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # an unpaired surrogate
            pass
        else:
            return value
    hint = ("list items with `jupyter launch items`" if what == "item"
            else f"{what} names use letters, digits, '-', '_' and '.'")
    raise NotFoundError(f"{what} {shown(value)} does not exist; {hint}")


def _rows(value: int | None) -> int | None:
    return None if value is None else max(-MAX_ROWS, min(value, MAX_ROWS))


def _positive_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    try:
        value = float(timeout)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(
            f"timeout must be a positive number of seconds, got {shown(timeout)}"
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
            self._store = Store(self.config.store, migrate=self.config.auto_migrate)
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
        return self.store.list_jobs(None if name is None else _key(name, "job"))

    # -- queues -------------------------------------------------------------------------

    def create_queue(
        self, name: str, *, runner: str = "local", max_attempts: int = 3,
        timeout: float | None = None, config: dict | None = None,
    ) -> dict:
        from .jobs import validate_name

        validate_name(name, "queue")
        if config:
            from .runners.templates import validate_queue_config

            config = validate_queue_config(config)
        if runner == "docker":
            # Refuse privileged/host options now, not when the first item starts.
            self._check_docker_options(config or {}, {})
        elif runner == "kubernetes":
            self._check_kubernetes_options(config or {}, {})
        return self.store.create_queue(name, runner=runner,
                                       max_attempts=_max_attempts(max_attempts),
                                       timeout=_positive_timeout(timeout), config=config)

    @staticmethod
    def _check_docker_options(config: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """The docker options a queue template gives with these values (LaunchError if not)."""
        from .runners.docker import container_options
        from .runners.templates import render, validate_template_values

        values = dict(values) or validate_template_values(config)
        try:
            container_options(render(config.get("template") or {}, values, {}),
                              config.get("admin") or {})
        except ImportError as err:
            raise LaunchError(f"docker queues need the docker SDK ({err}); install it with "
                              "pip install 'launch-jupyter[docker]'") from None

    @staticmethod
    def _check_kubernetes_options(config: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """The kubernetes template with these values: image source, keys, pod security."""
        from .runners.kubernetes import check_queue
        from .runners.templates import validate_template_values

        check_queue(config, dict(values) or validate_template_values(config))

    def queue(self, name: str) -> dict:
        return self.store.get_queue(_key(name, "queue"))

    def queues(self) -> list[dict]:
        return self.store.list_queues()

    def pause_queue(self, name: str) -> dict:
        return self.store.set_paused(_key(name, "queue"), True)

    def resume_queue(self, name: str) -> dict:
        queue = self.store.set_paused(_key(name, "queue"), False)
        self._notify(name, submitted=False)
        return queue

    def delete_queue(self, name: str, *, force: bool = False) -> int:
        return self.store.delete_queue(_key(name, "queue"), force=force)

    # -- items --------------------------------------------------------------------------

    def submit(
        self, ref: str | JobRecord, *, queue: str | None = None,
        parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
        priority: str | int | None = None, timeout: float | None = None,
        sweep_id: str | None = None, lease_owner: str | None = None,
        template_values: Mapping[str, Any] | None = None, template_pairs: Iterable[str] = (),
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
        # Unknown queue: NotFoundError, nothing written.
        queue_info = self.store.get_queue(_key(queue, "queue"))
        if template_values is not None and not isinstance(template_values, Mapping):
            raise ParameterError("template_values must be a dict of name -> value")
        from .runners.templates import validate_template_values

        templated = validate_template_values(queue_info["config"], template_values,
                                             template_pairs)
        if queue_info["runner"] == "docker":
            self._check_docker_options(queue_info["config"], templated)
        elif queue_info["runner"] == "kubernetes":
            self._check_kubernetes_options(queue_info["config"], templated)
        effective = effective_parameters(job.spec.get("parameters") or {}, values)
        item = self.store.submit(
            job=job, queue=queue, overrides=values, parameters=effective, priority=prio,
            timeout=_positive_timeout(timeout), sweep_id=sweep_id, lease_owner=lease_owner,
            lease_ttl=self.config.lease_ttl, template_values=templated,
        )
        if lease_owner is None:
            self._notify(queue)
        return Item(self, item["id"], item)

    def sweep(
        self, ref: str | JobRecord, *, queue: str | None = None,
        grid: Mapping[str, Sequence[Any]] | Sequence[str] = (), random: int | None = None,
        parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
        priority: str | int | None = None, timeout: float | None = None,
        seed: int | None = None,
    ) -> Sweep:
        """One item per point of a parameter grid or of ``random`` draws, sharing a sweep id.

        ``grid``: ``{"lr": [0.001, 0.01]}`` or ``["lr=0.001,0.01", "layers=2,4"]``;
        ``random``: the number of points drawn from the schema's bounds (``seed`` repeats them);
        ``parameters``/``overrides`` are fixed for every point. Every point is validated
        before any item is written.
        """
        from .jobs import parse_overrides, parse_priority, sweep_points, validate_parameters
        from .store.ids import new_id

        job = ref if isinstance(ref, JobRecord) else self.job(ref)
        queue = queue or self.config.default_queue
        schema = job.spec.get("schema") or {"type": "object", "properties": {}}
        fixed: dict[str, Any] = {}
        if parameters:
            fixed.update(validate_parameters(dict(parameters), schema))
        fixed.update(parse_overrides(list(overrides), schema))
        points = sweep_points(schema, grid=grid, random=random, fixed=fixed, seed=seed)
        parse_priority(priority)
        _positive_timeout(timeout)
        self.store.get_queue(_key(queue, "queue"))
        sweep_id = new_id()
        items = [self.submit(job, queue=queue, parameters=point, priority=priority,
                             timeout=timeout, sweep_id=sweep_id) for point in points]
        return Sweep(self, sweep_id, items)

    def _notify(self, queue: str, *, submitted: bool = True) -> None:
        """Wake agents: this process's at once, others by socket (SQLite) or NOTIFY (PG)."""
        if self.store.is_sqlite:
            wakeup.notify(self.store.wake_addresses(queue, max_age=3 * self.config.lease_ttl))
            return
        wakeup.notify([])
        if not submitted:  # a submit already sent NOTIFY in its own transaction
            self.store.notify(queue)

    def item(self, item_id: str) -> Item:
        return Item(self, item_id, self.store.get_item(_key(item_id, "item")))

    def items(self, *, queue: str | None = None, state: str | Sequence[str] | None = None,
              limit: int | None = None, offset: int = 0) -> list[dict]:
        if queue is not None:
            self.store.get_queue(_key(queue, "queue"))
        return self.store.list_items(queue=queue, state=state, limit=_rows(limit),
                                     offset=_rows(offset))[0]

    def cancel(self, item_id: str) -> dict:
        return self.store.request_cancel(_key(item_id, "item"))

    def requeue(self, item_id: str) -> Item:
        new = self.store.requeue(_key(item_id, "item"))
        self._notify(new["queue"])
        return Item(self, new["id"], new)

    def delete(self, item_id: str) -> None:
        self.store.delete_item(_key(item_id, "item"))

    def logs(self, item_id: str, offset: int = 0) -> tuple[str, int]:
        """Log text from byte ``offset`` and the offset to ask for next."""
        data, next_offset = self.store.read_log(_key(item_id, "item"), _rows(offset))
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


def _notebook_shell() -> Any:
    """The IPython kernel shell when running in one (rich displays work), else None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


class _Progress:
    """A display updated in place while ``wait`` blocks (main thread only), or nothing."""

    def __init__(self, enabled: bool | None) -> None:
        self.handle = None
        if enabled is False or (enabled is None and _notebook_shell() is None):
            return
        from IPython.display import HTML, display

        self._html = HTML
        self.handle = display(HTML(""), display_id=True)
        self.last = ""

    def update(self, markup: str) -> None:
        if self.handle is not None and markup != self.last:
            self.last = markup
            self.handle.update(self._html(markup))


class Item:
    """A handle on one item: its state, logs and outcome, and cancel/requeue.

    Returned by ``Launch.submit``, ``launch_jupyter.submit`` and the ``%launch`` magics; the
    last line of a cell shows it as a card.
    """

    def __init__(self, client: Launch, item_id: str, data: dict | None = None) -> None:
        self.client = client
        self.id = item_id
        self._data = data

    def __repr__(self) -> str:
        return f"<Item {self.id} {self.info().get('state')}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Item) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

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

    @property
    def parameters(self) -> dict:
        """The effective parameters the run sees."""
        return self.info()["parameters"]

    @property
    def error(self) -> dict | None:
        """``{"message", "stage", "cell"}`` when the item failed, else None."""
        return self.info()["error"]

    def wait(self, timeout: float | None = None, poll: float = 0.2,
             progress: bool | None = None) -> Item:
        """Block until the item is finished; raises TimeoutError after ``timeout`` s.

        In a notebook a progress line (state, elapsed time, last log line) updates in place;
        ``progress=False`` turns it off. The item keeps running if the wait is interrupted.
        """
        from .widgets.render import badge, esc, log_tail, span

        timeout = _positive_timeout(timeout)
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        display = _Progress(progress)
        offset, last_line = 0, ""
        try:
            while True:
                data = self.info()
                if display.handle is not None:
                    text, offset = self.client.logs(self.id, offset)
                    if text.strip():
                        last_line = log_tail(text.rstrip(), 1)[-160:]
                    display.update(
                        f"<div class='lj-wait' data-state='{esc(data['state'])}'>"
                        f"waiting for item <code>{esc(self.id)}</code> {badge(data['state'])} "
                        f"<span style='color:#6b7280'>{span(time.monotonic() - start)}</span>"
                        f"<pre style='margin:2px 0;font-size:11px;color:#374151'>"
                        f"{esc(last_line)}</pre></div>")
                if data["state"] in TERMINAL:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"item {self.id} still {data['state']} after {timeout} s; "
                                       "it keeps running (wait again, or .cancel() it)")
                time.sleep(poll)
        finally:
            if display.handle is not None and self._data is not None:
                # One line, not the card: the cell's last line usually shows the card.
                data = self._data
                display.update(
                    f"<div class='lj-wait' data-state='{esc(data['state'])}'>item "
                    f"<code>{esc(self.id)}</code> {badge(data['state'])} after "
                    f"{span(time.monotonic() - start)}</div>")
        return self

    def logs(self, tail: int | None = None) -> str:
        """The log so far (stdout and stderr); ``tail`` keeps only the last lines."""
        text = self.client.logs(self.id)[0]
        if tail is not None:
            from .widgets.render import log_tail

            return log_tail(text, tail)
        return text

    def cancel(self) -> Item:
        """Cancel: a queued item at once, a running one after its runner stops it."""
        self._data = self.client.cancel(self.id)
        return self

    def requeue(self) -> Item:
        """Submit the same job, parameters and priority again; returns the NEW item."""
        return self.client.requeue(self.id)

    @property
    def outputs(self) -> list[dict]:
        """Files the run wrote to ``LAUNCH_OUTPUT_DIR`` (and the executed notebook)."""
        return list(self.info().get("outputs") or [])

    @property
    def output_notebook(self) -> str | None:
        """Path of the executed notebook (notebook mode), once there is one."""
        from .widgets.render import output_notebook

        return output_notebook(self.info())

    def panel(self) -> Any:
        """A live detail panel: log tail, error, cancel and requeue buttons."""
        from .widgets import ItemDetail

        return ItemDetail(self.client, self.id)

    def _repr_html_(self, refresh: bool = True) -> str:
        from .widgets.render import item_card_html, log_tail

        data = self.info(refresh)
        tail = None
        if data["state"] == "failed" or data.get("log_bytes"):
            tail = log_tail(self.client.logs(self.id)[0], 8) or None
        return item_card_html(data, log_tail=tail)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from .widgets.render import item_line

        p.text(item_line(self.info()))


class Sweep(list):
    """The items of one sweep (a list of ``Item``), grouped by ``sweep_id``."""

    def __init__(self, client: Launch, sweep_id: str, items: Iterable[Item] = ()) -> None:
        super().__init__(items)
        self.client = client
        self.id = sweep_id

    def __repr__(self) -> str:
        return f"<Sweep {self.id}: {len(self)} items>"

    def refresh(self) -> list[dict]:
        """Current records of the sweep's items, newest first."""
        return self.client.store.list_items(sweep_id=self.id)[0]

    @property
    def states(self) -> dict[str, int]:
        """How many items are in each state."""
        counts: dict[str, int] = {}
        for data in self.refresh():
            counts[data["state"]] = counts.get(data["state"], 0) + 1
        return counts

    @property
    def done(self) -> bool:
        return all(data["state"] in TERMINAL for data in self.refresh())

    def wait(self, timeout: float | None = None, poll: float = 0.3,
             progress: bool | None = None) -> Sweep:
        """Block until every item is finished (progress line in a notebook)."""
        from .widgets.render import esc

        timeout = _positive_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        display = _Progress(progress)
        try:
            while True:
                rows = self.refresh()
                finished = sum(1 for d in rows if d["state"] in TERMINAL)
                summary = ", ".join(f"{n} {s}" for s, n in sorted(self._count(rows).items()))
                display.update(f"<div class='lj-wait'>sweep <code>{esc(self.id)}</code>: "
                               f"{finished}/{len(rows)} finished ({esc(summary)})</div>")
                if finished == len(rows):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"sweep {self.id}: {finished} of {len(rows)} items "
                                       f"finished after {timeout} s ({summary})")
                time.sleep(poll)
        finally:
            if display.handle is not None:
                display.update(self._repr_html_())
        return self

    @staticmethod
    def _count(rows: list[dict]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for data in rows:
            counts[data["state"]] = counts.get(data["state"], 0) + 1
        return counts

    def panel(self) -> Any:
        """The queue panel showing only this sweep's items."""
        from .widgets import QueuePanel

        return QueuePanel(self.client, sweep_id=self.id)

    def _repr_html_(self) -> str:
        from .widgets.render import items_table_html

        return items_table_html(self.refresh())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from .widgets.render import items_table_text

        p.text(f"sweep {self.id}\n" + items_table_text(self.refresh()))


_DEFAULT: dict[str, Launch] = {}


def default_client() -> Launch:
    """A shared client on the configured store (one per store URL in this process)."""
    url = LaunchConfig.load().store
    client = _DEFAULT.get(url)
    if client is None:
        client = _DEFAULT[url] = Launch(url)
    return client


def _job_of(client: Launch, ref: str | os.PathLike | JobRecord, name: str | None) -> JobRecord:
    """A job ref, or a notebook/script path captured on the fly."""
    if isinstance(ref, JobRecord):
        return ref
    text = os.fspath(ref)
    if text.lower().endswith((".ipynb", ".py")) and os.path.exists(text):
        return client.create_job(text, name=name)
    if name is not None:
        raise ParameterError(f"name={name!r} only applies when submitting a file path")
    return client.job(text)


def submit(ref: str | os.PathLike | JobRecord, *, queue: str | None = None,
           parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
           priority: str | int | None = None, timeout: float | None = None,
           name: str | None = None, client: Launch | None = None) -> Item:
    """Submit a job ref (``train``, ``train:v3``) or a notebook/script path; returns the Item.

    A path is captured as a new job version first (``name`` defaults to the file's stem).
    """
    client = client or default_client()
    job = _job_of(client, ref, name)
    return client.submit(job, queue=queue, parameters=parameters, overrides=overrides,
                         priority=priority, timeout=timeout)


def sweep(ref: str | os.PathLike | JobRecord, *, queue: str | None = None,
          grid: Mapping[str, Sequence[Any]] | Sequence[str] = (), random: int | None = None,
          parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
          priority: str | int | None = None, timeout: float | None = None,
          seed: int | None = None, name: str | None = None,
          client: Launch | None = None) -> Sweep:
    """One item per grid point (``grid={"lr": [0.01, 0.1]}`` or ``["lr=0.01,0.1"]``) or per
    ``random`` point drawn from the schema's bounds; see ``Launch.sweep``."""
    client = client or default_client()
    job = _job_of(client, ref, name)
    return client.sweep(job, queue=queue, grid=grid, random=random, parameters=parameters,
                        overrides=overrides, priority=priority, timeout=timeout, seed=seed)


def connect(store: str | None = None) -> Launch:
    """A ``Launch`` client for ``store`` (default: the configured store)."""
    return Launch(store)


__all__ = ["Item", "Launch", "LaunchError", "Sweep", "connect", "default_client", "submit", "sweep"]
