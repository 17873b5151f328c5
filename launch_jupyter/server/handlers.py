"""REST handlers for ``/launch/api``: parse the request, call the LaunchManager, answer JSON.

Every verb is authenticated and authorized: on the ``launch`` resource (read and submit), and
creating or changing queues on its own ``launch-queues`` resource, so a deployment can let users
submit without letting them administer queues. POSTs from cookie sessions need the XSRF token
(APIHandler checks it). Errors answer ``{"message": ...}`` with 400 for bad input, 404 for
unknown things, 409 for conflicts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..errors import LaunchError
from .manager import LaunchManager

T = TypeVar("T")

#: The jupyter_server resource of reading and submitting (actions ``read``, ``write``).
LAUNCH_RESOURCE = "launch"
#: The resource of queue administration: creating, changing and deleting queues (``write``).
QUEUE_ADMIN_RESOURCE = "launch-queues"
#: The request header that makes a requeue idempotent (a fresh value per user action).
IDEMPOTENCY_HEADER = "Idempotency-Key"

#: JSON type names as messages say them.
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "an object",
               list: "a list", type(None): "null"}


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # JSON true/false is no integer, whatever Python says
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


class LaunchHandler(APIHandler):
    """Base of the launch handlers: the manager, JSON bodies, errors mapped to status codes."""

    auth_resource = LAUNCH_RESOURCE

    @property
    def manager(self) -> LaunchManager:
        return self.settings["launch_manager"]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """``{"message", "reason"}`` with the message verbatim (APIHandler would double '%')."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError):
            message = exc.get_message() if hasattr(exc, "get_message") else exc.log_message
            if message:
                self.log.warning("wrote error: %r", message)
                self.set_header("Content-Type", "application/json")
                self.finish(json.dumps({"message": message, "reason": exc.reason}))
                return
        super().write_error(status_code, **kwargs)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking manager method in a thread; LaunchError -> its HTTP status."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except LaunchError as err:
            raise web.HTTPError(err.http_status, str(err)) from err

    def body(self, fields: dict[str, tuple[type, ...]], required: tuple[str, ...] = ()
             ) -> dict[str, Any]:
        """The JSON object body, checked against ``fields`` (name -> allowed types)."""
        if not self.request.body.strip():
            if required:
                raise web.HTTPError(400, f"Missing JSON body; required fields: "
                                         f"{', '.join(required)}")
            return {}
        try:
            data = json.loads(self.request.body)
        except (UnicodeDecodeError, ValueError) as err:
            raise web.HTTPError(400, f"Invalid JSON in body of request: {err}") from None
        except RecursionError:
            raise web.HTTPError(400, "Invalid JSON in body of request: nested too deeply"
                                ) from None
        if data is None and not required:  # a literal null: as good as no body
            return {}
        allowed = ", ".join(fields) or "none, send no body"
        if not isinstance(data, dict):
            raise web.HTTPError(400, f"The JSON body must be an object (fields: {allowed})")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise web.HTTPError(400, f"Unknown field(s) in JSON data: {', '.join(unknown)}; "
                                     f"allowed: {allowed}")
        for name in required:
            if data.get(name) is None:
                raise web.HTTPError(400, f"Missing field in JSON data: {name}")
        for name, value in data.items():
            kinds = fields[name]
            if not _is(value, kinds):
                expected = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
                raise web.HTTPError(400, f"Field {name!r} must be {expected}, "
                                         f"got {json.dumps(value)}")
        return data

    def int_argument(self, name: str, default: int | None) -> int | None:
        """An integer query argument (400 when it is not one)."""
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise web.HTTPError(400, f"Query argument {name!r} must be an integer, "
                                     f"got {raw[:80]!r}") from None
        if not -(2**62) <= value <= 2**62:  # no store holds that many rows or log bytes
            raise web.HTTPError(400, f"Query argument {name!r} is out of range: {raw[:80]}")
        return value

    def reply(self, data: Any, status: int = 200, location: str | None = None) -> None:
        self.set_status(status)
        if location is not None:
            self.set_header("Location", url_path_join(self.base_url, "launch/api", location))
        self.finish(json.dumps(data))


class QueuesHandler(LaunchHandler):
    """``/launch/api/queues``: list queues, create one."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.manager.queues))

    @web.authenticated
    @authorized(resource=QUEUE_ADMIN_RESOURCE)
    async def post(self) -> None:
        data = self.body({"name": (str,), "runner": (str,), "max_attempts": (int,),
                          "timeout": (float, type(None)), "config": (dict,),
                          "concurrency": (int, type(None))}, ("name",))
        queue = await self.call(self.manager.create_queue, **data)
        self.reply(queue, 201, f"queues/{queue['name']}")


class QueueHandler(LaunchHandler):
    """``/launch/api/queues/{name}``: one queue with its counts per state."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.call(self.manager.queue, name))

    @web.authenticated
    @authorized(resource=QUEUE_ADMIN_RESOURCE)
    async def patch(self, name: str) -> None:
        """Change the queue's settings (``concurrency``; null or 0: no limit)."""
        data = self.body({"concurrency": (int, type(None))})
        self.reply(await self.call(self.manager.update_queue, name, **data))

    @web.authenticated
    @authorized(resource=QUEUE_ADMIN_RESOURCE)
    async def delete(self, name: str) -> None:
        """Delete the queue (409 while it holds unfinished items, unless ``?force=true``)."""
        force = self.get_query_argument("force", "false").lower()
        if force not in ("true", "false", "1", "0"):
            raise web.HTTPError(400, f"Query argument 'force' must be true or false, "
                                     f"got {force[:20]!r}")
        self.reply(await self.call(self.manager.delete_queue, name,
                                   force=force in ("true", "1")))


class QueuePauseHandler(LaunchHandler):
    """``/launch/api/queues/{name}/pause``: agents stop starting the queue's items."""

    @web.authenticated
    @authorized(resource=QUEUE_ADMIN_RESOURCE)
    async def post(self, name: str) -> None:
        self.body({})
        self.reply(await self.call(self.manager.pause_queue, name))


class QueueResumeHandler(LaunchHandler):
    """``/launch/api/queues/{name}/resume``: agents start the paused queue's items again."""

    @web.authenticated
    @authorized(resource=QUEUE_ADMIN_RESOURCE)
    async def post(self, name: str) -> None:
        self.body({})
        self.reply(await self.call(self.manager.resume_queue, name))


class VacuumHandler(LaunchHandler):
    """``/launch/api/store/vacuum``: retention, as ``jupyter launch store vacuum`` (store
    administration: ``write`` on ``launch-queues``)."""

    @web.authenticated
    @authorized(resource=QUEUE_ADMIN_RESOURCE)
    async def post(self) -> None:
        data = self.body({"keep_days": (float, type(None)), "keep_last": (int, type(None)),
                          "dry_run": (bool,)})
        self.reply(await self.call(self.manager.vacuum, **data))


class JobsHandler(LaunchHandler):
    """``/launch/api/jobs``: newest version of every job; capture a notebook as a job."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.manager.jobs))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        data = self.body({"path": (str,), "name": (str, type(None)),
                          "alias": (str, type(None)), "include": (list,), "strict": (bool,)},
                         ("path",))
        include = data.pop("include", [])
        if not all(isinstance(p, str) for p in include):
            raise web.HTTPError(400, "Field 'include' must be a list of glob patterns (strings)")
        job = await self.call(self.manager.create_job, include=include, **data)
        self.reply(job, 201, f"jobs/{job['name']}")


class JobHandler(LaunchHandler):
    """``/launch/api/jobs/{name}``: every version of a job."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.call(self.manager.job_versions, name))


class JobVersionsHandler(LaunchHandler):
    """``/launch/api/jobs/{name}/versions``: store a job a client captured (its spec and files),
    as is, after checking its shape, size, file hashes and digest (the remote client's upload;
    docs/team.md). Same content as a stored version: that version."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        data = self.body({"spec": (dict,), "files": (list,), "alias": (str, type(None))},
                         ("spec", "files"))
        job = await self.call(self.manager.upload_job, name, data)
        self.reply(job, 201, f"jobs/{job['name']}")


class ItemsHandler(LaunchHandler):
    """``/launch/api/items``: list items (filters, paging); submit a job to a queue."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        states = [s.strip() for arg in self.get_query_arguments("state")
                  for s in arg.split(",") if s.strip()]
        listing = await self.call(
            self.manager.items, state=states or None,
            queue=self.get_query_argument("queue", None) or None,
            job=self.get_query_argument("job", None) or None,
            sweep=self.get_query_argument("sweep", None) or None,
            limit=self.int_argument("limit", None), offset=self.int_argument("offset", 0) or 0,
        )
        self.reply(listing)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        data = self.body({"job": (str,), "queue": (str, type(None)),
                          "parameters": (dict, type(None)), "priority": (str, int, type(None)),
                          "template_values": (dict, type(None)),
                          "timeout": (float, type(None)), "after": (list, type(None))},
                         ("job",))
        item = await self.call(self.manager.submit, data.pop("job"), **data)
        self.reply(item, 201, f"items/{item['id']}")


class ItemHandler(LaunchHandler):
    """``/launch/api/items/{id}``: the item as ``jupyter launch show --json`` prints it."""

    @web.authenticated
    @authorized
    async def get(self, item_id: str) -> None:
        self.reply(await self.call(self.manager.item, item_id))

    @web.authenticated
    @authorized
    async def delete(self, item_id: str) -> None:
        """Delete a finished or queued item with its log (409 while it runs)."""
        self.reply(await self.call(self.manager.delete_item, item_id))


class CancelHandler(LaunchHandler):
    """``/launch/api/items/{id}/cancel``: cancel a queued or running item."""

    @web.authenticated
    @authorized
    async def post(self, item_id: str) -> None:
        self.body({})  # no fields, but a body with any is a mistake worth a 400
        self.reply(await self.call(self.manager.cancel, item_id))


class RequeueHandler(LaunchHandler):
    """``/launch/api/items/{id}/requeue``: a new item like a finished one.

    With an ``Idempotency-Key`` header, a repeat with the same key answers the item the first
    request made (a double click, a retried request): one item, not two.
    """

    @web.authenticated
    @authorized
    async def post(self, item_id: str) -> None:
        self.body({})
        key = self.request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            item = await self.call(self.manager.requeue, item_id)
        else:
            item = await self.call(self.manager.requeue, item_id, idempotency_key=key)
        self.reply(item, 201, f"items/{item['id']}")


class LogsHandler(LaunchHandler):
    """``/launch/api/items/{id}/logs?offset=N``: log text from byte N."""

    @web.authenticated
    @authorized
    async def get(self, item_id: str) -> None:
        offset = self.int_argument("offset", 0) or 0
        self.reply(await self.call(self.manager.logs, item_id, offset))


class MetricsHandler(LaunchHandler):
    """``/launch/api/items/{id}/metrics?after=CURSOR``: metric points stored after a cursor."""

    @web.authenticated
    @authorized
    async def get(self, item_id: str) -> None:
        after = self.int_argument("after", 0) or 0
        self.reply(await self.call(self.manager.metrics, item_id, after))


class NotebookHandler(LaunchHandler):
    """``/launch/api/items/{id}/notebook``: where the executed notebook is, for Lab to open.

    GET only looks (409 when the notebook lies outside the root dir with no copy under it yet);
    POST also copies it under ``<root>/launch-runs/<item>/`` when Lab cannot reach it.
    """

    @web.authenticated
    @authorized
    async def get(self, item_id: str) -> None:
        self.reply(await self.call(self.manager.notebook, item_id))

    @web.authenticated
    @authorized
    async def post(self, item_id: str) -> None:
        self.body({})
        self.reply(await self.call(self.manager.notebook, item_id, copy=True))


class OutputHandler(LaunchHandler):
    """``/launch/api/items/{id}/outputs/{name}``: where one output file is, for Lab to open.

    Only names listed in the item's ``outputs``; GET only looks, POST also copies the file
    under ``<root>/launch-runs/<item>/output/`` when Lab cannot reach it.
    """

    @web.authenticated
    @authorized
    async def get(self, item_id: str, name: str) -> None:
        self.reply(await self.call(self.manager.output, item_id, name))

    @web.authenticated
    @authorized
    async def post(self, item_id: str, name: str) -> None:
        self.body({})
        self.reply(await self.call(self.manager.output, item_id, name, copy=True))


class ResultsHandler(LaunchHandler):
    """``/launch/api/results``: one row per item with the parameters that vary and each
    metric's last value, best first by the sweep's metric (or ``sort``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        states = [s.strip() for arg in self.get_query_arguments("state")
                  for s in arg.split(",") if s.strip()]
        self.reply(await self.call(
            self.manager.results, state=states or None,
            sweep=self.get_query_argument("sweep", None) or None,
            queue=self.get_query_argument("queue", None) or None,
            job=self.get_query_argument("job", None) or None,
            sort=self.get_query_argument("sort", None) or None,
            limit=self.int_argument("limit", None)))


class ResultsChartHandler(LaunchHandler):
    """``/launch/api/charts/results``: the results rows (filtered as ``/results``), the best
    row and the comparison chart's Vega-Lite spec, for the lab's Results view."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        states = [s.strip() for arg in self.get_query_arguments("state")
                  for s in arg.split(",") if s.strip()]
        self.reply(await self.call(
            self.manager.results_chart, state=states or None,
            sweep=self.get_query_argument("sweep", None) or None,
            queue=self.get_query_argument("queue", None) or None,
            job=self.get_query_argument("job", None) or None,
            sort=self.get_query_argument("sort", None) or None,
            limit=self.int_argument("limit", None)))


class ItemChartHandler(LaunchHandler):
    """``/launch/api/charts/items/{id}``: the item's metric summary and the Vega-Lite chart of
    each metric against step."""

    @web.authenticated
    @authorized
    async def get(self, item_id: str) -> None:
        self.reply(await self.call(self.manager.item_chart, item_id))


class SweepsHandler(LaunchHandler):
    """``/launch/api/sweeps``: list sweeps; start one from a W&B sweep config or a grid."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.manager.sweeps))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        data = self.body({"job": (str,), "queue": (str, type(None)),
                          "config": (dict, type(None)), "grid": (dict, type(None)),
                          "random": (int, type(None)), "parameters": (dict, type(None)),
                          "priority": (str, int, type(None)), "timeout": (float, type(None)),
                          "seed": (int, type(None)), "parallel": (int, type(None))}, ("job",))
        made = await self.call(self.manager.create_sweep, data.pop("job"), **data)
        self.reply(made, 201, f"sweeps/{made['sweep_id']}")


class SweepHandler(LaunchHandler):
    """``/launch/api/sweeps/{id}``: one sweep with its config and trials."""

    @web.authenticated
    @authorized
    async def get(self, sweep_id: str) -> None:
        self.reply(await self.call(self.manager.sweep, sweep_id))


class SweepStopHandler(LaunchHandler):
    """``/launch/api/sweeps/{id}/stop``: propose no more trials (running ones go on)."""

    @web.authenticated
    @authorized
    async def post(self, sweep_id: str) -> None:
        self.body({})
        self.reply(await self.call(self.manager.stop_sweep, sweep_id))


class SweepResumeHandler(LaunchHandler):
    """``/launch/api/sweeps/{id}/resume``: propose trials of a stopped sweep again."""

    @web.authenticated
    @authorized
    async def post(self, sweep_id: str) -> None:
        self.body({})
        self.reply(await self.call(self.manager.resume_sweep, sweep_id))


class SchedulesHandler(LaunchHandler):
    """``/launch/api/schedules``: list cron schedules; create one."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.manager.schedules))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        data = self.body({"name": (str,), "job": (str,), "cron": (str,),
                          "queue": (str, type(None)), "timezone": (str, type(None)),
                          "parameters": (dict, type(None)),
                          "template_values": (dict, type(None)),
                          "priority": (str, int, type(None)), "timeout": (float, type(None)),
                          "catch_up": (bool,)}, ("name", "job", "cron"))
        made = await self.call(self.manager.create_schedule, data.pop("name"),
                               data.pop("job"), **data)
        self.reply(made, 201, f"schedules/{made['name']}")


class ScheduleHandler(LaunchHandler):
    """``/launch/api/schedules/{name}``: one schedule; delete it (its items stay)."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.call(self.manager.schedule, name))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.call(self.manager.delete_schedule, name)
        self.set_status(204)
        self.finish()


class SchedulePauseHandler(LaunchHandler):
    """``/launch/api/schedules/{name}/pause``: stop firing until resumed."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self.body({})
        self.reply(await self.call(self.manager.pause_schedule, name))


class ScheduleResumeHandler(LaunchHandler):
    """``/launch/api/schedules/{name}/resume``: fire again from the cron's next time."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self.body({})
        self.reply(await self.call(self.manager.resume_schedule, name))


class MetaHandler(LaunchHandler):
    """``/launch/api/meta``: states, symbols, colours, priorities, default queue, lease ttl
    and runners, so front ends render and submit as the Python side does."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.manager.meta))


class AgentsHandler(LaunchHandler):
    """``/launch/api/agents``: running agents and their heartbeats."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.manager.agents))


_NAME = r"(?P<name>[^/]+)"
_ITEM = r"(?P<item_id>[^/]+)"
_SWEEP = r"(?P<sweep_id>[^/]+)"

#: (path under ``<base_url>/launch/api``, handler)
ROUTES: list[tuple[str, type[LaunchHandler]]] = [
    ("queues", QueuesHandler),
    (f"queues/{_NAME}", QueueHandler),
    (f"queues/{_NAME}/pause", QueuePauseHandler),
    (f"queues/{_NAME}/resume", QueueResumeHandler),
    ("store/vacuum", VacuumHandler),
    ("jobs", JobsHandler),
    (f"jobs/{_NAME}", JobHandler),
    (f"jobs/{_NAME}/versions", JobVersionsHandler),
    ("items", ItemsHandler),
    (f"items/{_ITEM}", ItemHandler),
    (f"items/{_ITEM}/cancel", CancelHandler),
    (f"items/{_ITEM}/requeue", RequeueHandler),
    (f"items/{_ITEM}/logs", LogsHandler),
    (f"items/{_ITEM}/metrics", MetricsHandler),
    (f"items/{_ITEM}/notebook", NotebookHandler),
    (f"items/{_ITEM}/outputs/(?P<name>.+)", OutputHandler),
    ("results", ResultsHandler),
    ("charts/results", ResultsChartHandler),
    (f"charts/items/{_ITEM}", ItemChartHandler),
    ("sweeps", SweepsHandler),
    (f"sweeps/{_SWEEP}", SweepHandler),
    (f"sweeps/{_SWEEP}/stop", SweepStopHandler),
    (f"sweeps/{_SWEEP}/resume", SweepResumeHandler),
    ("schedules", SchedulesHandler),
    (f"schedules/{_NAME}", ScheduleHandler),
    (f"schedules/{_NAME}/pause", SchedulePauseHandler),
    (f"schedules/{_NAME}/resume", ScheduleResumeHandler),
    ("agents", AgentsHandler),
    ("meta", MetaHandler),
]


def setup_handlers(web_app: web.Application, base_url: str) -> None:
    """Register every route under ``<base_url>launch/api/``."""
    web_app.add_handlers(
        ".*$", [(url_path_join(base_url, "launch/api", path), handler) for path, handler in ROUTES]
    )
