"""``RemoteLaunch``: the service API spoken over a Jupyter server's REST API (``launch/api``).

A laptop with a server URL and a token, but no database credentials, gets the same ``Launch``
methods the doors use (docs/team.md): capture stays here and the captured job is uploaded
(``jobs/upload.py``); everything else is one REST call, answered by the server's own
``Launch``. Errors come back as the same ``LaunchError`` classes; logs are read through the
same ``LogReader`` and ``follow`` as a local store's, over a REST log source that reconnects
when the server restarts.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..config import LaunchConfig
from ..errors import (
    AuthError,
    ConflictError,
    LaunchError,
    NotFoundError,
    ParameterError,
    StoreError,
    StoreFullError,
)
from ..store import JobRecord
from . import checks
from .client import METRIC_PAGE, JobRef, Launch, _cursor, is_job_file, other_file_warning
from .logs import LogReader, follow
from .records import AgentRecord, ItemRecord, LogPage, MetricPage, MetricPoint, Page, QueueRecord

if TYPE_CHECKING:
    import requests

    from .handles import Item, Sweep
    from .records import ScheduleRecord

#: The server URL and token when no flag names them (flags win).
SERVER_ENV, TOKEN_ENV = "LAUNCH_JUPYTER_SERVER", "LAUNCH_JUPYTER_TOKEN"
#: Methods retried after a failure (a POST is never repeated: it could act twice).
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Items one list request asks for (the server's most).
PAGE_LIMIT = 1000
#: How long ``follow`` keeps reconnecting to a server that went away, in seconds.
RECONNECT_SECONDS = 300.0

#: Fields of a job's JSON that belong to the stored record, not to its spec.
_RECORD_FIELDS = frozenset({"version", "ref", "aliases", "created_at", "created_by",
                            "warnings"})

_STATUS_ERRORS: dict[int, type[LaunchError]] = {
    400: ParameterError, 404: NotFoundError, 409: ConflictError, 503: StoreError,
    507: StoreFullError}


class ServerUnreachableError(StoreError):
    """The server did not answer (refused, reset, timed out): it may be restarting."""


def is_server_url(value: Any) -> bool:
    """True for an ``http://`` or ``https://`` URL (a server, not a store)."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def client_for(store: str | None = None, server: str | None = None,
               token: str | None = None) -> Launch:
    """The client a door's settings name: ``server`` > ``store`` > LAUNCH_JUPYTER_SERVER >
    LAUNCH_JUPYTER_STORE (and the config files); ``token`` > LAUNCH_JUPYTER_TOKEN."""
    if server is None and store is None:
        server = os.environ.get(SERVER_ENV) or None
    if server is not None:
        return RemoteLaunch(server, token=token)
    if token is not None:
        raise ParameterError("--token goes with --server URL (or LAUNCH_JUPYTER_SERVER); a "
                             "store URL carries its own credentials")
    return Launch(store)


#: What ``server_base`` drops from the end of a pasted URL's path.
_PAGE = re.compile(r"/lab(/(tree|workspaces)/.*)?$|/tree$|/launch/api$")


def server_base(url: str) -> tuple[str, str | None]:
    """The server's base URL and the token in it, from what a user pastes: the URL Jupyter
    prints at start (``http://127.0.0.1:8888/lab?token=T``) works as well as the base."""
    from urllib.parse import parse_qs, urlsplit, urlunsplit

    parts = urlsplit(url)
    token = (parse_qs(parts.query).get("token") or [None])[0]
    # The front end's page (/lab, /tree, a notebook open in Lab: the browser's address) or
    # the API itself is not part of the base URL.
    path = _PAGE.sub("", parts.path.rstrip("/"), count=1)
    return urlunsplit((parts.scheme, parts.netloc, path + "/", "", "")), token


@functools.cache
def _retry_class() -> type:
    from urllib3.util.retry import Retry

    class IdempotentRetry(Retry):
        """urllib3's Retry, but a failed non-idempotent request is never sent again (urllib3
        itself retries any method whose connection failed)."""

        def increment(self, method: str | None = None, url: str | None = None, *args: Any,
                      **kwargs: Any) -> Retry:
            if method is not None and method.upper() not in IDEMPOTENT:
                return Retry(total=0, raise_on_status=False).increment(method, url, *args,
                                                                       **kwargs)
            return super().increment(method, url, *args, **kwargs)

    return IdempotentRetry


def job_record(data: Mapping[str, Any]) -> JobRecord:
    """A ``JobRecord`` from its REST JSON (``JobRecord.to_json``); env values stay on the
    server, so the spec names the variables with empty values."""
    # Every field but the record's own is the spec's, so fields capture adds later travel.
    spec = {key: value for key, value in data.items() if key not in _RECORD_FIELDS}
    spec["env"] = dict.fromkeys(data.get("env") or [], "")
    created = datetime.fromisoformat(data["created_at"]).timestamp() \
        if data.get("created_at") else 0.0
    return JobRecord(id=0, name=data["name"], version=data["version"], digest=data["digest"],
                     spec=spec, created_at=created, created_by=data.get("created_by") or "",
                     aliases=tuple(data.get("aliases") or ()))


class RemoteLaunch(Launch):
    """``Launch`` over a Jupyter server's REST API: ``RemoteLaunch(URL, token=...)``, or
    ``Launch(URL)`` / ``Launch.connect(URL, token=...)`` for an http(s) URL.

    Parameters: ``store`` (the server URL; default LAUNCH_JUPYTER_SERVER), ``token`` (default
    LAUNCH_JUPYTER_TOKEN), ``verify`` (TLS: True, a CA bundle path, or False), ``timeout``
    (seconds per request), ``retries`` (of idempotent requests, with backoff); other keywords
    set LaunchConfig traits of this side (the server's own config rules its store).
    """

    def __init__(self, store: str | None = None, *, token: str | None = None,
                 config: LaunchConfig | None = None, verify: bool | str = True,
                 timeout: float = 60.0, retries: int = 4, **settings: Any) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        url = store or os.environ.get(SERVER_ENV) or ""
        if not is_server_url(url):
            raise ParameterError(f"server URL {url!r} must start with http:// or https:// "
                                 "(e.g. https://hub.example.org/user/ada/)")
        self.url, url_token = server_base(url)
        self.api = self.url + "launch/api/"
        self.token = token or url_token or os.environ.get(TOKEN_ENV) or None
        self.config = config or checks.settings(**settings)
        self._store = None
        self.timeout = timeout
        self.verify = verify  # per request: a session's own verify loses to REQUESTS_CA_BUNDLE
        self.session = requests.Session()
        if self.token:
            self.session.headers["Authorization"] = f"token {self.token}"
        retry = _retry_class()(total=retries, connect=retries, read=retries, status=retries,
                               backoff_factor=0.2, status_forcelist=(502, 503, 504),
                               allowed_methods=IDEMPOTENT, raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"<RemoteLaunch {self.url}>"

    # -- transport ------------------------------------------------------------------------

    @property
    def store(self) -> Any:
        raise LaunchError(f"{self.url} is a server: its store is on the server's side, and "
                          "this client reaches it only through the server's REST API")

    @property
    def store_label(self) -> str:
        return self.url

    def store_version(self, *, migrate: bool) -> int:
        raise LaunchError(f"store maintenance runs where the store is: run `jupyter launch "
                          f"store {'migrate' if migrate else 'check'}` on {self.url}'s host")

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        """One REST call to ``launch/api/<path>``: its decoded JSON, or the LaunchError its
        status means (401/403 AuthError, 400, 404, 409...)."""
        import requests

        try:
            response = self.session.request(
                method, self.api + path, timeout=self.timeout, json=json, headers=headers,
                verify=self.verify, allow_redirects=False,
                params={k: v for k, v in (params or {}).items() if v is not None})
        except requests.exceptions.SSLError as err:
            raise StoreError(f"server {self.url}: TLS verification failed ({_reason(err)}); "
                             "give the server's CA bundle (REQUESTS_CA_BUNDLE) or fix its "
                             "certificate") from None
        except (requests.ConnectionError, requests.Timeout) as err:
            raise ServerUnreachableError(
                f"cannot reach server {self.url} ({_reason(err)}); check the URL and that its "
                "Jupyter server runs with the launch_jupyter extension") from None
        if response.is_redirect:  # an API answers; a login page redirects
            where = response.headers.get("Location", "")
            if "login" in where:
                raise AuthError(f"server {self.url} sent the request to its login page "
                                f"({where[:120]}): pass its token with --token or "
                                "LAUNCH_JUPYTER_TOKEN")
            raise LaunchError(f"server {self.url} redirected launch/api/{path} to "
                              f"{where[:120]}; give the URL the server answers at")
        if response.status_code < 400:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise LaunchError(f"server {self.url} answered launch/api/{path} with no "
                                  "JSON; is it a Jupyter server with the launch_jupyter "
                                  "extension?") from None
        raise self._error(response, path)

    def _error(self, response: requests.Response, path: str) -> LaunchError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        if status in (401, 403):
            why = ("no token was given: pass --token or set LAUNCH_JUPYTER_TOKEN"
                   if not self.token else "the token is wrong or lacks permission: check "
                   "--token or LAUNCH_JUPYTER_TOKEN")
            if status == 403 and message and "not authorized" in message:
                # The token is fine; the server's Authorizer refused this action (e.g. queue
                # administration, resource launch-queues): say which, not "check --token".
                why = (f"{message.rstrip('.')}; ask the server's admin for that permission "
                       "(docs/security.md)")
            return AuthError(f"server {self.url} refused the request ({status} "
                             f"{response.reason}): {why}")
        if not message and status == 404:
            return LaunchError(f"server {self.url} has no launch API at launch/api/{path} "
                               "(404); enable the launch_jupyter server extension there")
        if not message:
            message = f"server {self.url} answered {status} {response.reason}"
        return _STATUS_ERRORS.get(status, LaunchError)(message)

    # -- jobs -----------------------------------------------------------------------------

    def add_captured(self, captured: Any, *, alias: str | None = None) -> JobRecord:
        """Upload a job captured here; the server checks and stores it as is."""
        from ..jobs.upload import pack

        previous = self._latest(captured.name) if captured.default_name else None
        record = job_record(self.request("POST", f"jobs/{_q(captured.name)}/versions",
                                         json=pack(captured, alias=alias)))
        # The capture ran here: its warnings are this side's to show.
        warnings = list(captured.warnings)
        if previous is None or record.version > previous.version:  # a new version
            warnings += other_file_warning(captured, previous, record)
        return dataclasses.replace(record, warnings=tuple(warnings))

    def _latest(self, name: str) -> JobRecord | None:
        try:
            return self.job(name)
        except NotFoundError:
            return None

    def jobs(self, name: str | None = None) -> list[JobRecord]:
        path = "jobs" if name is None else f"jobs/{_q(checks.key(name, 'job'))}"
        return [job_record(data) for data in self.request("GET", path)]

    def job(self, ref: str) -> JobRecord:
        from ..jobs import parse_ref

        name, version, alias = parse_ref(ref)
        versions = self.jobs(name)  # unknown name: the server's NotFoundError
        if alias is not None:
            found = [j for j in versions if alias in j.aliases]
            if not found:
                names = sorted({a for j in versions for a in j.aliases})
                raise NotFoundError(f"job {name!r} has no alias {alias!r} (aliases: "
                                    f"{', '.join(names)}); set one with `jupyter launch job "
                                    f"create PATH --name {name} --alias {alias}`")
            return found[0]
        if version is None:
            return max(versions, key=lambda j: j.version)
        for job in versions:
            if job.version == version:
                return job
        raise NotFoundError(f"job {name!r} has no version v{version}; versions: "
                            + ", ".join(f"v{j.version}" for j in versions))

    def export_job(self, ref: str, dest: str | os.PathLike, *,
                   item: str | None = None) -> dict:
        raise ParameterError(f"job export reads the job's files from the store, which "
                             f"{self.url} keeps on its side: run `jupyter launch job export "
                             f"{ref} {os.fspath(dest)}` where the store is (docs/team.md)")

    # -- queues ---------------------------------------------------------------------------

    def create_queue(self, name: str, *, runner: str = "local", max_attempts: int = 3,
                     timeout: float | None = None, config: dict | None = None,
                     **options: Any) -> QueueRecord:
        """``Launch.create_queue`` over REST; ``options`` the server's route takes go as
        given (a field it does not take: its 400 names it)."""
        body = {"name": name, "runner": runner, "max_attempts": max_attempts,
                "timeout": timeout, "config": config or None, **options}
        return self.request("POST", "queues",
                            json={k: v for k, v in body.items() if v is not None})

    def update_queue(self, name: str, **changes: Any) -> QueueRecord:
        """``Launch.update_queue`` over REST (``PATCH queues/NAME``): ``concurrency``."""
        return self.request("PATCH", f"queues/{_q(checks.key(name, 'queue'))}", json=changes)

    def queue(self, name: str) -> QueueRecord:
        return self.request("GET", f"queues/{_q(checks.key(name, 'queue'))}")

    def queues(self) -> list[QueueRecord]:
        return self.request("GET", "queues")

    def pause_queue(self, name: str) -> QueueRecord:
        return self.request("POST", f"queues/{_q(checks.key(name, 'queue'))}/pause")

    def resume_queue(self, name: str) -> QueueRecord:
        return self.request("POST", f"queues/{_q(checks.key(name, 'queue'))}/resume")

    def delete_queue(self, name: str, *, force: bool = False) -> int:
        return self.request("DELETE", f"queues/{_q(checks.key(name, 'queue'))}",
                            params={"force": "true" if force else "false"})["items"]

    # -- items ----------------------------------------------------------------------------

    def submit(
        self, ref: JobRef, *, queue: str | None = None,
        parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
        priority: str | int | None = None, timeout: float | None = None,
        sweep_id: str | None = None, lease_owner: str | None = None,
        template_values: Mapping[str, Any] | None = None, template_pairs: Iterable[str] = (),
        name: str | None = None, **options: Any,
    ) -> Item:
        """``Launch.submit`` over REST: a file is captured here and uploaded first; ``k=v``
        overrides are typed by the job's schema here, then the server checks everything.
        ``options`` (``after``...) go to the server's route as given."""
        from ..jobs import CapturedJob, capture
        from .handles import Item

        if sweep_id is not None or lease_owner is not None:
            raise ParameterError("sweep_id and lease_owner are set by the server's side; a "
                                 "remote submit takes neither")
        overrides = list(overrides)
        if options.get("after"):
            options["after"] = checks.item_ids(options["after"])
        job: JobRecord | str
        if isinstance(ref, CapturedJob) or (not isinstance(ref, JobRecord)
                                            and is_job_file(ref)):
            captured = ref if isinstance(ref, CapturedJob) else capture(os.fspath(ref),
                                                                        name=name)
            self.check_values(captured.spec(), parameters=parameters, overrides=overrides)
            self.queue(queue or self.config.default_queue)  # refused: no stray version
            job = self.add_captured(captured)
        elif overrides or (not isinstance(ref, JobRecord)
                           and os.fspath(ref).lower().endswith((".ipynb", ".py"))):
            # its schema types the k=v overrides; a missing path says "no such file"
            job = self.resolve_job(ref, name=name)
        else:
            if name is not None and not isinstance(ref, JobRecord):
                raise ParameterError(f"name={name!r} only applies when submitting a file path")
            job = ref if isinstance(ref, JobRecord) else os.fspath(ref)
        values: Mapping[str, Any] | None = parameters
        if isinstance(job, JobRecord):
            values = self.check_values(job.spec, parameters=parameters, overrides=overrides)
        template_values = self._typed_template_values(queue, template_values, template_pairs)
        data = self.request("POST", "items", json={
            "job": job.ref if isinstance(job, JobRecord) else job, "queue": queue,
            "parameters": dict(values) if values else None, "priority": priority,
            "template_values": dict(template_values) if template_values else None,
            "timeout": checks.positive_timeout(timeout),
            **{k: v for k, v in options.items() if v not in (None, [], ())}})
        handle = Item(self, data["id"], data)
        handle.warnings = job.warnings if isinstance(job, JobRecord) else ()
        return handle

    def sweep(
        self, ref: JobRef, *, queue: str | None = None,
        config: str | os.PathLike | Mapping[str, Any] | None = None,
        grid: Mapping[str, Sequence[Any]] | Sequence[str] = (), random: int | None = None,
        parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
        priority: str | int | None = None, timeout: float | None = None,
        seed: int | None = None, template_pairs: Iterable[str] = (),
        name: str | None = None, parallel: int | None = None,
    ) -> Sweep:
        """``Launch.sweep`` over REST: a file is captured here and uploaded, a config file
        read here, ``k=v`` and grid strings typed by the job's schema; the server checks
        the rest and proposes the first trials."""
        from ..jobs import parse_grid
        from .handles import Item, Sweep
        from .sweeps import load_config

        if list(template_pairs):
            raise ParameterError("--set is not taken by the server's sweep route; put the "
                                 "values in the queue config's defaults, or start the sweep "
                                 "where the store is")
        job = self.resolve_job(ref, name=name)
        values = self.check_values(job.spec, parameters=parameters, overrides=overrides)
        if grid and not isinstance(grid, Mapping):
            grid = parse_grid(list(grid), job.spec.get("schema") or {})
        made = self.request("POST", "sweeps", json={
            "job": job.ref, "queue": queue,
            "config": None if config is None else load_config(config),
            "grid": dict(grid) or None, "random": random, "parameters": values or None,
            "priority": priority, "timeout": checks.positive_timeout(timeout), "seed": seed,
            "parallel": parallel})
        sweep = Sweep(self, made["sweep_id"], [Item(self, i) for i in made["items"]])
        sweep.note = made.get("note")
        return sweep

    def sweeps(self) -> list[dict]:
        return self.request("GET", "sweeps")

    def sweep_info(self, sweep_id: str) -> dict:
        return self.request("GET", f"sweeps/{_q(checks.key(sweep_id, 'sweep'))}")

    def sweep_record(self, sweep_id: str) -> dict:
        info = self.sweep_info(sweep_id)
        return {**{k: info.get(k) for k in ("id", "state", "metric", "goal", "run_cap")},
                "proposed": info.get("trials")}

    def stop_sweep(self, sweep_id: str) -> dict:
        return self.request("POST", f"sweeps/{_q(checks.key(sweep_id, 'sweep'))}/stop")

    def resume_sweep(self, sweep_id: str) -> dict:
        return self.request("POST", f"sweeps/{_q(checks.key(sweep_id, 'sweep'))}/resume")

    def _typed_template_values(self, queue: str | None,
                               template_values: Mapping[str, Any] | None,
                               template_pairs: Iterable[str]) -> Mapping[str, Any] | None:
        """``VAR=VALUE`` pairs typed by ``queue``'s template variables here (the server only
        takes typed values), merged over ``template_values``; unchanged without pairs."""
        template_pairs = list(template_pairs)
        if not template_pairs:
            return template_values
        from ..runners.templates import validate_template_values

        config = self.queue(queue or self.config.default_queue)["config"]
        return validate_template_values(config, template_values, template_pairs)

    def create_schedule(
        self, name: str, job: JobRef, *, cron: str, queue: str | None = None,
        timezone: str | None = None, parameters: Mapping[str, Any] | None = None,
        overrides: Iterable[str] = (), template_values: Mapping[str, Any] | None = None,
        template_pairs: Iterable[str] = (), priority: str | int | None = None,
        timeout: float | None = None, catch_up: bool = False,
    ) -> ScheduleRecord:
        """``Launch.create_schedule`` over REST: a file is captured here and uploaded first;
        ``k=v`` overrides and ``VAR=VALUE`` template pairs are typed here, the server checks
        everything."""
        record = self.resolve_job(job)
        values = self.check_values(record.spec, parameters=parameters, overrides=overrides)
        template_values = self._typed_template_values(queue, template_values, template_pairs)
        made = self.request("POST", "schedules", json={
            "name": name, "job": record.ref, "cron": cron, "queue": queue,
            "timezone": timezone, "parameters": values or None,
            "template_values": dict(template_values) if template_values else None,
            "priority": priority, "timeout": checks.positive_timeout(timeout),
            "catch_up": catch_up})
        if not isinstance(job, JobRecord) and is_job_file(job):  # captured here: its warnings
            made["warnings"] = list(record.warnings)
        return made

    def list_schedules(self) -> list[ScheduleRecord]:
        return self.request("GET", "schedules")

    def get_schedule(self, name: str) -> ScheduleRecord:
        return self.request("GET", f"schedules/{_q(checks.key(name, 'schedule'))}")

    def pause_schedule(self, name: str) -> ScheduleRecord:
        return self.request("POST", f"schedules/{_q(checks.key(name, 'schedule'))}/pause")

    def resume_schedule(self, name: str) -> ScheduleRecord:
        return self.request("POST", f"schedules/{_q(checks.key(name, 'schedule'))}/resume")

    def delete_schedule(self, name: str) -> None:
        self.request("DELETE", f"schedules/{_q(checks.key(name, 'schedule'))}")

    def result_rows(self, *, sweep: str | None = None, queue: str | None = None,
                    job: str | None = None, state: str | Sequence[str] | None = None,
                    sort: str | None = None, limit: int | None = None,
                    max_limit: int | None = None) -> list[dict]:
        return self.request("GET", "results", params={
            "sweep": sweep, "queue": queue, "job": job, "state": _states(state),
            "sort": sort, "limit": limit})

    def _notify(self, queue: str, *, submitted: bool = True) -> None:
        """The server wakes its agents itself."""

    def item(self, item_id: str) -> Item:
        from .handles import Item

        return Item(self, item_id, self.item_info(item_id))

    def item_info(self, item_id: str) -> ItemRecord:
        return self.request("GET", f"items/{_q(checks.key(item_id, 'item'))}")

    def page(self, *, queue: str | None = None, state: str | Sequence[str] | None = None,
             job: str | None = None, sweep: str | None = None, limit: int | None = None,
             offset: int = 0, max_limit: int | None = None) -> Page:
        """``Launch.page`` over REST; no ``limit`` reads every page the server gives."""
        limit, offset = checks.bounds(limit, offset, max_limit=max_limit)
        params = {"queue": queue, "state": _states(state), "job": job, "sweep": sweep}
        page = self.request("GET", "items", params={
            **params, "offset": offset, "limit": PAGE_LIMIT if limit is None else limit})
        while limit is None and len(page["items"]) < page["total"] - offset:
            more = self.request("GET", "items", params={
                **params, "offset": offset + len(page["items"]), "limit": PAGE_LIMIT})
            if not more["items"]:
                break
            page["items"] += more["items"]
        return page

    def items(self, *, queue: str | None = None, state: str | Sequence[str] | None = None,
              limit: int | None = None, offset: int = 0, job: str | None = None,
              sweep: str | None = None) -> list[ItemRecord]:
        return self.page(queue=queue, state=state, job=job, sweep=sweep, limit=limit,
                         offset=offset)["items"]

    def cancel(self, item_id: str) -> ItemRecord:
        return self.request("POST", f"items/{_q(checks.key(item_id, 'item'))}/cancel")

    def requeue(self, item_id: str, *, idempotency_key: str | None = None) -> Item:
        from .handles import Item

        headers = None if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        new = self.request("POST", f"items/{_q(checks.key(item_id, 'item'))}/requeue",
                           headers=headers)
        return Item(self, new["id"], new)

    def delete(self, item_id: str) -> None:
        self.request("DELETE", f"items/{_q(checks.key(item_id, 'item'))}")

    def vacuum(self, *, keep_days: float | None = None, keep_last: int | None = None,
               dry_run: bool = False) -> Any:
        keep_days, keep_last = checks.retention(keep_days, keep_last)
        return self.request("POST", "store/vacuum", json={
            "keep_days": keep_days, "keep_last": keep_last, "dry_run": dry_run})

    # -- logs and metrics -----------------------------------------------------------------

    def logs(self, item_id: str, offset: int = 0) -> tuple[str, int]:
        """The whole log from byte ``offset`` (every page the server gives)."""
        parts: list[str] = []
        while True:
            page = self.log_page(item_id, offset)
            parts.append(page["text"])
            moved, offset = page["next_offset"] != offset, page["next_offset"]
            if page["done"] or not moved:
                return "".join(parts), offset

    def log_page(self, item_id: str, offset: int = 0, limit: int | None = None) -> LogPage:
        """``{text, next_offset, done}`` from byte ``offset`` (the server's page size)."""
        _, offset = checks.bounds(None, offset)
        return self.request("GET", f"items/{_q(checks.key(item_id, 'item'))}/logs",
                            params={"offset": offset})

    def log_reader(self, item_id: str, offset: int = 0) -> LogReader:
        self.item_info(item_id)  # unknown item: NotFoundError
        return LogReader(_RemoteLog(self), item_id, offset)  # type: ignore[arg-type]

    def follow(self, item_id: str, write: Callable[[str], Any], *, interval: float = 0.2,
               tick: Callable[[], Any] | None = None,
               on_progress: Callable[[ItemRecord], Any] | None = None,
               reconnect: float = RECONNECT_SECONDS, offset: int = 0) -> ItemRecord:
        """``Launch.follow`` over REST; a server that goes away (a restart) is waited for up
        to ``reconnect`` seconds and the log goes on from the last offset read."""
        self.item_info(item_id)
        return follow(_RemoteLog(self, reconnect=reconnect), item_id,  # type: ignore[arg-type]
                      write, interval=interval, tick=tick, offset=offset,
                      on_progress=on_progress)  # type: ignore[arg-type]

    def metric_page(self, item_id: str, after: int = 0, limit: int | None = None
                    ) -> MetricPage:
        """``{points, next, done}`` after the cursor ``after`` (the server's page size)."""
        return self.request("GET", f"items/{_q(checks.key(item_id, 'item'))}/metrics",
                            params={"after": _cursor(after, "after")})

    def metrics(self, item_id: str, attempt: int | None = None) -> list[MetricPoint]:
        """Every point of the item's latest attempt (the REST API serves no other)."""
        if attempt is not None:
            latest = self.item_info(item_id)["attempt"]
            if _cursor(attempt, "attempt") != latest:
                raise ParameterError(f"the server serves the points of item {item_id}'s latest "
                                     f"attempt ({latest}) only; ask without attempt")
        found: list[MetricPoint] = []
        cursor = 0
        while True:
            page = self.metric_page(item_id, cursor)
            found += page["points"]
            cursor = page["next"]
            if page["done"] or len(page["points"]) < METRIC_PAGE:
                return found

    # -- agents ---------------------------------------------------------------------------

    def agent(self, queues: Sequence[str] | None = None, **options: Any) -> Any:
        raise LaunchError(f"an agent runs next to the store, not through a server: start it "
                          f"where {self.url} keeps its store (`jupyter launch agent`, "
                          "docs/team.md)")

    def agents(self) -> list[AgentRecord]:
        return self.request("GET", "agents")

    def run(self, path: str | os.PathLike, *, queue: str | None = None,
            parameters: Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
            timeout: float | None = None, template_pairs: Iterable[str] = (),
            name: str | None = None, include: Sequence[str] = (), kernel: str | None = None,
            mode: str | None = None, env: Sequence[str] = (),
            on_start: Callable[[Item], Any] | None = None,
            write: Callable[[str], Any] | None = None,
            on_interrupt: Callable[[], Any] | None = None,
            on_progress: Callable[[ItemRecord], Any] | None = None,
            **options: Any) -> Item:
        """``Launch.run`` through the server: capture here, upload, submit, and follow the
        log while an agent on the server's side runs it; Ctrl-C cancels it. Options of the
        local private agent (``isolated``...) do not apply."""
        from .foreground import cancel_on_interrupt, follow_to_end

        given = sorted(k for k, v in options.items() if v)
        if given:
            raise ParameterError(f"{', '.join(given)}: an option of a run on this machine; "
                                 f"through a server the item runs on its agents' hosts")

        job = self.create_job(path, name=name, include=include, kernel=kernel, mode=mode,
                              env=env)
        item = self.submit(job, queue=queue, parameters=parameters, overrides=overrides,
                           timeout=timeout, template_pairs=template_pairs)
        with cancel_on_interrupt(self, item.id, on_interrupt):
            if on_start is not None:
                on_start(item)
            queue_name = item.info(refresh=False)["queue"]
            if write is not None and self.unserved_queues({queue_name}):
                # No private agent here (unlike a local run): say why nothing starts yet.
                write(f"waiting: no live agent serves queue {queue_name} on {self.url}'s "
                      f"side; start one where its store is (`jupyter launch agent --queue "
                      f"{queue_name}`)\n")
        follow_to_end(self, item.id, write=write, on_interrupt=on_interrupt,
                      on_progress=on_progress)
        item.info()
        return item

    def download_notebook(self, item_id: str, folder: str | os.PathLike | None = None
                          ) -> Path:
        """Copy the item's executed notebook from the server to
        ``folder/<item>/<name>.ipynb`` (``folder`` defaults to ``./launch-runs``, the layout
        the server keeps under its root dir) and return that path. Through the server's
        ``items/{id}/notebook`` route and Jupyter's contents API, with the same token."""
        import requests

        item_id = checks.key(item_id, "item")
        where = self.request("POST", f"items/{_q(item_id)}/notebook", json={})["path"]
        try:
            response = self.session.get(
                self.url + "api/contents/" + quote(where, safe="/"), timeout=self.timeout,
                params={"type": "file", "format": "text", "content": "1"},
                verify=self.verify, allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as err:
            raise ServerUnreachableError(f"cannot reach server {self.url} ({_reason(err)})"
                                         ) from None
        if response.status_code in (401, 403):
            raise self._error(response, "")
        try:
            text = response.json().get("content") if response.status_code < 300 else None
        except ValueError:
            text = None
        if not isinstance(text, str):
            raise LaunchError(f"server {self.url} did not send {where} through its contents "
                              f"API ({response.status_code} {response.reason}); open it in "
                              "the server's JupyterLab instead")
        target = Path(folder if folder is not None else "launch-runs") / item_id \
            / Path(where).name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name("." + target.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
        return target

    def meta(self) -> dict[str, Any]:
        return self.request("GET", "meta")


class _RemoteLog:
    """What ``LogReader`` and ``follow`` read from a store, over REST: ``get_item`` and
    ``read_log`` (the server's pages end on whole characters already). With ``reconnect``,
    a server that does not answer is asked again, with backoff, for that many seconds."""

    def __init__(self, client: RemoteLaunch, reconnect: float | None = None) -> None:
        self.client = client
        self.reconnect = reconnect

    def _patiently(self, call: Callable[[], Any]) -> Any:
        deadline = None if self.reconnect is None else time.monotonic() + self.reconnect
        pause = 0.2
        while True:
            try:
                return call()
            except ServerUnreachableError:
                if deadline is None or time.monotonic() + pause > deadline:
                    raise
            except StoreError as err:  # a 503 while the server (or its store) restarts
                if deadline is None or type(err) is not StoreError or \
                        time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def get_item(self, item_id: str) -> ItemRecord:
        return self._patiently(lambda: self.client.item_info(item_id))

    def read_log(self, item_id: str, offset: int, limit: int | None = None
                 ) -> tuple[bytes, int]:
        page = self._patiently(lambda: self.client.log_page(item_id, offset))
        return page["text"].encode(), page["next_offset"]


def _q(segment: str) -> str:
    """One URL path segment, every reserved character escaped."""
    return quote(segment, safe="")


def _states(state: str | Sequence[str] | None) -> str | None:
    """A state filter as the REST API takes it: comma-separated."""
    if state is None or isinstance(state, str):
        return state or None
    return ",".join(state) or None


def _reason(err: Exception) -> str:
    """The innermost reason of a requests/urllib3 error, short."""
    reason: Any = err
    while reason.args and isinstance(reason.args[0], Exception):
        reason = reason.args[0]
    reason = getattr(reason, "reason", reason)
    text = str(reason)
    return text.split(": ", 1)[-1] if "Connection refused" in text else text[:200]



__all__ = ["SERVER_ENV", "TOKEN_ENV", "RemoteLaunch", "ServerUnreachableError", "client_for",
           "is_server_url", "job_record"]
