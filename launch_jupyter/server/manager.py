"""LaunchManager: what the REST handlers call, over the same service (``Launch``) as the CLI.

Every method is blocking (store calls, notebook capture); the handlers run them in a thread.
Methods raise ``LaunchError`` subclasses, whose ``http_status`` becomes the HTTP answer.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from ..config import LaunchConfig
from ..errors import ConflictError, LaunchError, NotFoundError
from ..service import Launch
from ..service.logs import complete_utf8_prefix
from ..store import Store

__all__ = ["LaunchManager", "complete_utf8_prefix"]

#: Most log bytes one ``logs`` answer carries; the client asks again from ``next_offset``.
LOG_PAGE_BYTES = 1024 * 1024
METRIC_PAGE_POINTS = 10_000  # metric points per answer

#: Items one list answer carries when the request names no ``limit``, and the most it may ask.
DEFAULT_ITEMS_LIMIT = 100
MAX_ITEMS_LIMIT = 1000


class LaunchManager:
    """The server's view of one launch store, with paths resolved under the server's root.

    Parameters: ``root_dir`` (the Jupyter server's root dir), ``config`` (a LaunchConfig),
    ``allow_hidden`` (whether hidden files may be captured, as the contents manager says).
    """

    def __init__(self, root_dir: str | os.PathLike[str], config: LaunchConfig, *,
                 allow_hidden: bool = False) -> None:
        self.root_dir = Path(root_dir).resolve()
        self.allow_hidden = allow_hidden
        self.client = Launch(config=config)
        self._open_lock = threading.Lock()

    @property
    def launch(self) -> Launch:
        """The client, its store opened once even when two request threads ask at once."""
        with self._open_lock:
            self.client.store  # noqa: B018 - the property opens (and migrates) the store
        return self.client

    @property
    def store(self) -> Store:
        """The client's store (see ``launch``)."""
        return self.launch.store

    def close(self) -> None:
        """Release the store's connections."""
        with self._open_lock:
            self.client.close()

    # -- queues -------------------------------------------------------------------------

    def queues(self) -> list[dict]:
        return self.launch.queues()

    def queue(self, name: str) -> dict:
        return self.launch.queue(name)

    def create_queue(self, name: str, *, runner: str = "local", max_attempts: int = 3,
                     timeout: float | None = None, config: dict | None = None,
                     concurrency: int | None = None) -> dict:
        """Create a queue; ``config`` is checked as ``queue create --config FILE`` checks it."""
        from ..runners.templates import validate_queue_config

        config = validate_queue_config(config, where="queue config")
        return self.launch.create_queue(name, runner=runner, max_attempts=max_attempts,
                                        timeout=timeout, config=config,
                                        concurrency=concurrency)

    def update_queue(self, name: str, **changes: int | None) -> dict:
        """``queue update``: change the settings given (``concurrency``)."""
        return self.launch.update_queue(name, **changes)

    def pause_queue(self, name: str) -> dict:
        return self.launch.pause_queue(name)

    def resume_queue(self, name: str) -> dict:
        return self.launch.resume_queue(name)

    def delete_queue(self, name: str, *, force: bool = False) -> dict:
        """``{"name", "items"}``: the queue deleted and how many items went with it."""
        return {"name": name, "items": self.launch.delete_queue(name, force=force)}

    def vacuum(self, *, keep_days: float | None = None, keep_last: int | None = None,
               dry_run: bool = False) -> dict:
        """Retention (``store vacuum``): what was freed, or with ``dry_run`` would be."""
        return dict(self.launch.vacuum(keep_days=keep_days, keep_last=keep_last,
                                       dry_run=dry_run))

    # -- jobs ---------------------------------------------------------------------------

    def jobs(self) -> list[dict]:
        """The newest version of every job."""
        return [job.to_json() for job in self.launch.jobs()]

    def job_versions(self, name: str) -> list[dict]:
        """Every version of job ``name``, oldest first (unknown name: NotFoundError)."""
        return [job.to_json() for job in self.launch.job_versions(name)]

    def resolve_path(self, path: str) -> Path:
        """``path`` (relative to the root dir, '/' separated) as an existing file under it."""
        posix = path.replace("\\", "/")
        if not posix.strip() or "\0" in posix:
            raise LaunchError(f"path {path!r} is empty or invalid; give a notebook path "
                              "relative to the server's root dir, e.g. 'work/train.ipynb'")
        if os.path.isabs(path) or posix.startswith(("/", "~")):
            raise LaunchError(f"path {path!r} is absolute; give it relative to the server's "
                              "root dir, e.g. 'work/train.ipynb'")
        try:
            full = (self.root_dir / posix).resolve()
            found, is_file = full.exists(), full.is_file()
        except (OSError, ValueError) as err:  # a name too long, an unpaired surrogate...
            reason = getattr(err, "strerror", None) or "not valid Unicode"
            raise LaunchError(f"path {path[:200]!r} is invalid ({reason}); give a notebook path "
                              "relative to the server's root dir, e.g. 'work/train.ipynb'"
                              ) from None
        if not full.is_relative_to(self.root_dir):
            raise LaunchError(f"path {path!r} points outside the server's root dir; only "
                              "notebooks under the root dir can be captured")
        rel = full.relative_to(self.root_dir)
        if not self.allow_hidden and any(part.startswith(".") for part in rel.parts):
            raise LaunchError(f"path {path!r} is hidden; the server does not serve hidden "
                              "files (ContentsManager.allow_hidden is False)")
        if not found:
            raise NotFoundError(f"no file {path!r} under the server's root dir; check the "
                                "path in the file browser")
        if not is_file:
            raise LaunchError(f"path {path!r} is a directory; give a .ipynb notebook or a "
                              ".py script")
        return full

    def create_job(self, path: str, *, name: str | None = None, alias: str | None = None,
                   include: Sequence[str] = (), strict: bool = False) -> dict:
        """Capture the notebook or script at ``path`` (under the root dir) as a job version;
        the answer's ``warnings`` say what the capture could not record."""
        source = self.resolve_path(path)
        return self.launch.create_job(source, name=name, alias=alias, include=include,
                                      root=self.root_dir, allow_hidden=self.allow_hidden,
                                      strict=strict).to_json()

    def upload_job(self, name: str, body: dict) -> dict:
        """Store the job a client captured and uploaded (``jobs.upload.pack``), as is, once
        its shape, size, file hashes and digest check out; the stored version."""
        from ..jobs import validate_alias
        from ..jobs.upload import unpack

        alias = body.get("alias")
        if alias is not None:
            validate_alias(alias)
        return self.launch.add_captured(unpack(body, name=name), alias=alias).to_json()

    # -- items --------------------------------------------------------------------------

    def items(self, *, state: Sequence[str] | None = None, queue: str | None = None,
              job: str | None = None, sweep: str | None = None, limit: int | None = None,
              offset: int = 0) -> dict:
        """``{items, total, counts}``: items newest first, how many match in all, and
        per-state counts (the service's one paging rule; at most MAX_ITEMS_LIMIT a page)."""
        return dict(self.launch.page(
            queue=queue, state=state or None, job=job, sweep=sweep,
            limit=DEFAULT_ITEMS_LIMIT if limit is None else limit, offset=offset,
            max_limit=MAX_ITEMS_LIMIT))

    def submit(self, job: str, *, queue: str | None = None, parameters: dict | None = None,
               priority: str | int | None = None,
               template_values: dict | None = None, timeout: float | None = None,
               after: list | None = None) -> dict:
        """Put job ``job`` (``name``, ``name:vN``, ``name:alias``) on a queue; the new item
        (``after``: item ids it runs after)."""
        ref = self.launch.job(job)  # a ref only: REST never captures files by path
        item = self.launch.submit(ref, queue=queue, parameters=parameters or {},
                                  priority=priority, template_values=template_values or {},
                                  timeout=timeout, after=after)
        return item.info(refresh=False)

    def results(self, *, sweep: str | None = None, queue: str | None = None,
                job: str | None = None, state: Sequence[str] | None = None,
                sort: str | None = None, limit: int | None = None) -> list[dict]:
        """``results --json``: one row per item, best first by the sweep's metric or
        ``sort`` (at most MAX_ITEMS_LIMIT rows)."""
        return self.launch.result_rows(sweep=sweep, queue=queue, job=job, state=state or None,
                                       sort=sort, limit=limit, max_limit=MAX_ITEMS_LIMIT)

    def results_chart(self, *, sweep: str | None = None, queue: str | None = None,
                      job: str | None = None, state: Sequence[str] | None = None,
                      sort: str | None = None, limit: int | None = None) -> dict:
        """The Results view in one answer: ``{"rows", "best", "metric", "goal", "metrics",
        "spec"}``; ``spec`` is the comparison chart (Vega-Lite) of ``metric``, or null."""
        from ..service.results import sorted_by
        from ..views.charts import comparison_chart

        rows = self.results(sweep=sweep, queue=queue, job=job, state=state, sort=sort,
                            limit=limit)
        names = sorted({name for row in rows for name in row["metrics"]})
        metric, goal = sorted_by(self.launch, sweep, sort) or (names[0] if names else None, None)
        best = self.launch.best_result(rows, sweep=sweep, sort=sort)
        return {"rows": rows, "best": best, "metric": metric, "goal": goal, "metrics": names,
                "spec": comparison_chart(rows, metric, goal, best=best)}

    def item_chart(self, item_id: str) -> dict:
        """``{"item", "metrics", "spec"}``: the item's metric summary and the chart
        (Vega-Lite) of each metric against step in its latest attempt, or null."""
        from ..views.charts import metric_chart

        item = self.store.get_item(item_id)
        return {"item": item_id, "metrics": item["metrics"],
                "spec": metric_chart(self.launch.metrics(item_id))}

    def sweeps(self) -> list[dict]:
        """``sweeps --json``."""
        return self.launch.sweeps()

    def sweep(self, sweep_id: str) -> dict:
        """``sweep show ID --json``."""
        return self.launch.sweep_info(sweep_id)

    def create_sweep(self, job: str, *, queue: str | None = None, config: dict | None = None,
                     grid: dict | None = None, random: int | None = None,
                     parameters: dict | None = None, priority: str | int | None = None,
                     timeout: float | None = None, seed: int | None = None,
                     parallel: int | None = None) -> dict:
        """Start a sweep of job ``job`` (a ref, never a server path): ``{"sweep_id", "items",
        "note"}``."""
        ref = self.launch.job(job)  # a ref only: REST never captures files by path
        sweep = self.launch.sweep(ref, queue=queue, config=config, grid=grid or (),
                                  random=random, parameters=parameters, priority=priority,
                                  timeout=timeout, seed=seed, parallel=parallel)
        return {"sweep_id": sweep.id, "items": [item.id for item in sweep], "note": sweep.note}

    def stop_sweep(self, sweep_id: str) -> dict:
        return self.launch.stop_sweep(sweep_id)

    def resume_sweep(self, sweep_id: str) -> dict:
        return self.launch.resume_sweep(sweep_id)

    def schedules(self) -> list[dict]:
        """``schedule list --json``."""
        return self.launch.list_schedules()

    def schedule(self, name: str) -> dict:
        """``schedule show NAME --json``."""
        return self.launch.get_schedule(name)

    def create_schedule(self, name: str, job: str, *, cron: str, queue: str | None = None,
                        timezone: str | None = None, parameters: dict | None = None,
                        template_values: dict | None = None,
                        priority: str | int | None = None, timeout: float | None = None,
                        catch_up: bool = False) -> dict:
        """Schedule job ``job`` (a ref, never a server path)."""
        ref = self.launch.job(job)  # a ref only: REST never captures files by path
        return self.launch.create_schedule(name, ref, cron=cron, queue=queue,
                                           timezone=timezone, parameters=parameters,
                                           template_values=template_values,
                                           priority=priority, timeout=timeout,
                                           catch_up=catch_up)

    def pause_schedule(self, name: str) -> dict:
        return self.launch.pause_schedule(name)

    def resume_schedule(self, name: str) -> dict:
        return self.launch.resume_schedule(name)

    def delete_schedule(self, name: str) -> None:
        self.launch.delete_schedule(name)

    def item(self, item_id: str) -> dict:
        """The item as ``jupyter launch show --json`` prints it."""
        return self.launch.item(item_id).info()

    def cancel(self, item_id: str) -> dict:
        return self.launch.cancel(item_id)

    def delete_item(self, item_id: str) -> dict:
        """``{"id"}`` of the deleted item."""
        self.launch.delete(item_id)
        return {"id": item_id}

    def requeue(self, item_id: str, *, idempotency_key: str | None = None) -> dict:
        return self.launch.requeue(item_id, idempotency_key=idempotency_key).info(refresh=False)

    def logs(self, item_id: str, offset: int = 0) -> dict:
        """``{text, next_offset, done}``: log text from byte ``offset`` of the UTF-8 log.

        ``done`` is true once the item is finished and nothing is left to read.
        """
        return dict(self.launch.log_page(item_id, offset, limit=LOG_PAGE_BYTES))

    def metrics(self, item_id: str, after: int = 0) -> dict:
        """``{points, next, done}``: at most METRIC_PAGE_POINTS points stored after the cursor
        ``after``; ``done`` once the item is finished and every point was read."""
        return dict(self.launch.metric_page(item_id, after, limit=METRIC_PAGE_POINTS))

    def notebook(self, item_id: str, *, copy: bool = False) -> dict:
        """``{path}`` of the item's executed notebook, relative to the server's root dir.

        A notebook outside the root dir (runs usually live in the Jupyter data dir) is opened
        from a copy under ``<root>/launch-runs/<item>/``: made or refreshed only with ``copy``
        (a POST); without it (a GET) nothing is written and ConflictError says to POST.
        """
        item = self.store.get_item(item_id)
        # A notebook run's executed notebook grows cell by cell: it can be opened mid-run.
        paths = [item["executed_notebook"]] if item.get("executed_notebook") else [
            o["path"] for o in item.get("outputs", []) if o.get("kind") == "notebook"]
        if not paths:
            raise NotFoundError(f"item {item_id} has no executed notebook ({item['state']}); "
                                "only notebook-mode items that have started keep one")
        full = Path(paths[0]).resolve()
        return self._under_root(item_id, full, "the executed notebook", "notebook",
                                Path(full.name), copy=copy)

    def output(self, item_id: str, name: str, *, copy: bool = False) -> dict:
        """``{path}`` of the item's output file ``name``, relative to the server's root dir.

        Only a ``name`` listed in the item's ``outputs`` is served; outside the root dir it is
        copied to ``<root>/launch-runs/<item>/output/<name>``, only with ``copy`` (a POST).
        """
        item = self.store.get_item(item_id)
        found = [o for o in item.get("outputs", []) if o.get("name") == name]
        if not found:
            listed = ", ".join(repr(o.get("name")) for o in item.get("outputs", [])) or "none"
            raise NotFoundError(f"item {item_id} has no output named {name!r} (its outputs: "
                                f"{listed}); use a name from GET items/{item_id}")
        full = Path(found[0]["path"]).resolve()
        return self._under_root(item_id, full, f"output {name!r}", f"outputs/{name}",
                                Path("output", name), copy=copy)

    def _under_root(self, item_id: str, full: Path, what: str, route: str, relative: Path, *,
                    copy: bool) -> dict:
        """``{path}`` of ``full`` under the root dir, else of its copy at
        ``launch-runs/<item>/<relative>`` (written only with ``copy``, never through a link)."""
        if full.is_relative_to(self.root_dir):
            return {"path": full.relative_to(self.root_dir).as_posix()}
        if not full.is_file():
            raise NotFoundError(f"{what} of item {item_id} ({full}) is gone")
        folder = self.root_dir / "launch-runs" / item_id
        target = folder / relative
        try:
            fresh = target.is_file() and target.stat().st_mtime >= full.stat().st_mtime
            if not fresh and not copy:
                raise ConflictError(
                    f"{what} of item {item_id} lies outside the server's root dir and has no "
                    f"up-to-date copy under it; POST to items/{item_id}/{route} to copy it to "
                    f"launch-runs/{item_id}/"
                )
            if not fresh:
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.parent.resolve().is_relative_to(folder.resolve()) or \
                        not folder.resolve().is_relative_to(self.root_dir):
                    raise ConflictError(f"launch-runs/{item_id} under the server's root dir "
                                        "links outside it; remove that link and try again")
                if target.is_symlink():  # never write through a link planted in its place
                    target.unlink()
                shutil.copyfile(full, target)
        except OSError as err:
            raise NotFoundError(
                f"{what} of item {item_id} is at {full}, outside the server's root dir, and "
                f"copying it under the root failed ({err.strerror}); set "
                "LaunchConfig.data_dir to a folder under the root dir"
            ) from None
        return {"path": target.relative_to(self.root_dir).as_posix()}

    # -- meta and agents ----------------------------------------------------------------

    def meta(self) -> dict:
        """States, symbols, colours, priorities, default queue, lease ttl and runners."""
        return self.launch.meta()

    def agents(self) -> list[dict]:
        """Running agents with their heartbeats."""
        return self.launch.agents()
