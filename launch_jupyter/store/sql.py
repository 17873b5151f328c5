"""The SQL store: jobs, queues, items, attempts, events, agents and log chunks.

One code path for SQLite and PostgreSQL (SQLAlchemy Core). Every item state change is one
guarded UPDATE (``WHERE id=? AND state=? [AND lease_owner=?]``) plus one row in ``events``,
inside one transaction. On SQLite, write transactions start with ``BEGIN IMMEDIATE`` so a
claim is atomic across processes.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from ..errors import (
    ConflictError,
    LaunchError,
    NotFoundError,
    StoreError,
    StoreFullError,
    did_you_mean,
)
from . import schema as t
from .ids import new_id

QUEUED, LEASED, RUNNING = "queued", "leased", "running"
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
STATES = (QUEUED, LEASED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
ACTIVE = (LEASED, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
PRIORITY_NAMES = {0: "low", 1: "medium", 2: "high", 3: "critical"}
NOTIFY_CHANNEL = "launch_jupyter"
DEFAULT_QUEUE = "local"
#: states of a sweep: proposing trials, stopped by a user (resumable), or done proposing with
#: every trial finished
SWEEP_RUNNING, SWEEP_STOPPED, SWEEP_FINISHED = "running", "stopped", "finished"
#: how an upstream's end reads in its dependents' error messages
_ENDED = {FAILED: "failed", CANCELLED: "was cancelled", "deleted": "was deleted"}


def whoami() -> str:
    """``user@host`` of this process, recorded on what it submits."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _progress_json(row: Any) -> dict | None:
    """The running cell of ``row``'s current attempt (show --json ``progress``), else None."""
    if row.state != RUNNING or not row.progress:
        return None
    progress = json.loads(row.progress)
    if progress.get("attempt") != row.attempt:
        return None  # an earlier attempt's
    return {"cell": progress["cell"], "cells": progress["cells"],
            "cell_started_at": iso(progress.get("started")),
            "source": progress.get("source", ""), "log_offset": progress.get("log_offset")}


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class JobRecord:
    """One stored job version."""

    id: int
    name: str
    version: int
    digest: str
    spec: dict
    created_at: float
    created_by: str
    aliases: tuple[str, ...] = ()
    #: what the capture that returned this record warned about (not stored: empty when read)
    warnings: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}:v{self.version}"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "aliases": list(self.aliases),
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "mode": self.spec.get("mode"),
            "entrypoint": self.spec.get("entrypoint"),
            "kernel": self.spec.get("kernel"),
            "python": self.spec.get("python"),
            "parameters": self.spec.get("parameters", {}),
            "schema": self.spec.get("schema", {}),
            "requirements": self.spec.get("requirements", []),
            "env": sorted(self.spec.get("env", {})),
            "files": self.spec.get("files", {}),
            "source_path": self.spec.get("source_path"),
            "unresolved": self.spec.get("unresolved", []),
            "unresolved_conditional": self.spec.get("unresolved_conditional", []),
            "lock": self.spec.get("lock"),  # jobs/lock.py
            "git": self.spec.get("git"),  # jobs/gitinfo.py
            "warnings": list(self.warnings),
        }


def _sqlite_engine(url: str) -> sa.Engine:
    path = url[len("sqlite:///"):]
    if path and path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    engine = sa.create_engine(
        url, connect_args={"timeout": 60, "check_same_thread": False}, pool_pre_ping=False
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so we can BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("launch_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _disk_full(err: sa.exc.DBAPIError) -> bool:
    """True when a driver error says the disk is full (not that the store is away or busy)."""
    orig = err.orig
    code = getattr(orig, "sqlite_errorcode", None)  # SQLite (Python 3.11+): SQLITE_FULL is 13
    if code is not None:
        return code & 0xFF == 13
    if getattr(orig, "sqlstate", None) == "53100":  # PostgreSQL: disk_full
        return True
    return "database or disk is full" in str(orig)  # SQLite on Python 3.10


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages and logs (even when it does not parse)."""
    try:
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        # Unparsable: mask whatever sits between "user:" and "@" in the authority.
        shown = re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", str(url))
    # libpq also takes the password as a query argument (?password=...), which SQLAlchemy
    # renders as is.
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", shown, flags=re.IGNORECASE)


#: Longest ``Idempotency-Key`` kept (a UUID is 36 characters).
MAX_IDEMPOTENCY_KEY = 255
_IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}")


def check_idempotency_key(key: str) -> str:
    """``key`` when it is 1-255 printable ASCII characters without spaces, else LaunchError."""
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
        shown_key = key[:40] if isinstance(key, str) else type(key).__name__
        raise LaunchError(
            f"idempotency key {shown_key!r} is invalid: use 1 to {MAX_IDEMPOTENCY_KEY} printable "
            "ASCII characters without spaces, e.g. a UUID from crypto.randomUUID()"
        )
    return key


def create_engine(url: str) -> sa.Engine:
    """An engine for a store URL (``sqlite:///path`` or ``postgresql://...``)."""
    try:
        parsed = sa.engine.make_url(url)
        parsed.port  # noqa: B018 - a port that is no number raises here, not at connect time
    except (sa.exc.ArgumentError, ValueError) as err:
        raise StoreError(
            f"cannot parse store URL {safe_url(url)!r}; use sqlite:////abs/path/launch.db "
            "or postgresql://user:password@host:5432/dbname"
        ) from err
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, pool_pre_ping=True)
    raise StoreError(
        f"unsupported store URL {safe_url(url)!r}: use sqlite:///PATH or "
        "postgresql://user@host/db"
    )


class Store:
    """Typed access to the launch tables. Safe to share between threads."""

    def __init__(self, url: str, *, migrate: bool = True, check: bool = True) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._local = threading.local()
        try:
            if migrate:
                self.migrate()
            elif check:
                self.check_version()
        except sa.exc.OperationalError as err:
            raise StoreError(f"cannot open the store at {safe_url(url)}: {err.orig}"
                             ) from err

    # -- plumbing -------------------------------------------------------------------------

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        return safe_url(self.url)

    def _unreachable(self, err: sa.exc.DBAPIError) -> StoreError:
        if _disk_full(err):
            return StoreFullError(
                f"the store at {self.safe_url} is full: no space left on its disk "
                f"({err.orig}); free some space there (`jupyter launch delete ITEM` removes "
                "an old item and its log)"
            )
        return StoreError(
            f"the store at {self.safe_url} is unreachable or busy ({err.orig}); "
            "operations retry on their own in agents; try the command again shortly"
        )

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE, so it serialises with other writers)."""
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(launch_write=True)
                with conn.begin():
                    yield conn
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as err:
            raise self._unreachable(err) from err

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read transaction."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as err:
            raise self._unreachable(err) from err

    # -- wake-ups across machines (PostgreSQL LISTEN/NOTIFY) ------------------------------

    def notify(self, queue: str) -> None:
        """Tell agents on other machines that ``queue`` has work (PostgreSQL only)."""
        if not self.is_sqlite:
            with self.write() as conn:
                conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, queue)))

    def listener(self) -> Any:
        """A wake-up source for ``wakeup.Waker`` (PostgreSQL LISTEN), or None on SQLite."""
        if self.is_sqlite:
            return None
        from .wakeup import PgListener

        return PgListener(self.url)

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def schema_version(self) -> int:
        with self.read() as conn:
            if not sa.inspect(conn).has_table(t.schema_version.name):
                return 0
            return conn.execute(sa.select(sa.func.max(t.schema_version.c.version))).scalar() or 0

    def check_version(self) -> int:
        version = self.schema_version()
        if version > t.LATEST_VERSION:
            raise StoreError(
                f"the store at {self.safe_url} has schema version {version}, newer than this "
                f"launch-jupyter understands ({t.LATEST_VERSION}); upgrade launch-jupyter"
            )
        if version < t.LATEST_VERSION:
            raise StoreError(
                f"the store at {self.safe_url} has schema version {version} but "
                f"{t.LATEST_VERSION} is needed; run `jupyter launch store migrate`"
            )
        return version

    def migrate(self) -> int:
        """Apply pending migrations (idempotent, safe with concurrent openers)."""
        if self.schema_version() == t.LATEST_VERSION:  # the usual case: no write lock taken
            return t.LATEST_VERSION
        with self.write() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7246327)")
            t.schema_version.create(conn, checkfirst=True)
            current = conn.execute(sa.select(sa.func.max(t.schema_version.c.version))).scalar()
            current = current or 0
            if current > t.LATEST_VERSION:
                raise StoreError(
                    f"the store at {self.safe_url} has schema version {current}, newer than this "
                    f"launch-jupyter understands ({t.LATEST_VERSION}); upgrade launch-jupyter"
                )
            for version, migration in t.MIGRATIONS:
                if version > current:
                    migration(conn)
                    conn.execute(t.schema_version.delete())
                    conn.execute(t.schema_version.insert().values(version=version))
                    if version == 1:
                        conn.execute(
                            t.queues.insert().values(
                                name=DEFAULT_QUEUE, runner="local", config="{}", max_attempts=3,
                                timeout=None, paused=False, created_at=time.time(),
                            )
                        )
            return t.LATEST_VERSION

    def _event(
        self, conn: sa.Connection, item_id: str, kind: str, from_state: str | None,
        to_state: str | None, actor: str | None = None, detail: Any = None,
    ) -> None:
        conn.execute(
            t.events.insert().values(
                item_id=item_id, ts=time.time(), kind=kind, from_state=from_state,
                to_state=to_state, actor=actor, detail=None if detail is None else _dumps(detail),
            )
        )

    def _transition(
        self, conn: sa.Connection, item_id: str, from_states: Sequence[str], to_state: str,
        *, kind: str, owner: str | None = None, actor: str | None = None,
        detail: Any = None, extra_where: Sequence[Any] = (), **values: Any,
    ) -> str | None:
        """Guarded state change; returns the previous state, or None when the guard failed."""
        row = conn.execute(
            sa.select(t.items.c.state, t.items.c.lease_owner).where(t.items.c.id == item_id)
        ).first()
        if row is None or row.state not in from_states:
            return None
        if owner is not None and row.lease_owner != owner:
            return None
        where = [t.items.c.id == item_id, t.items.c.state == row.state, *extra_where]
        if owner is not None:
            where.append(t.items.c.lease_owner == owner)
        result = conn.execute(
            t.items.update().where(*where).values(state=to_state, updated_at=time.time(), **values)
        )
        if result.rowcount != 1:
            return None
        self._event(conn, item_id, kind, row.state, to_state, actor, detail)
        if to_state in (FAILED, CANCELLED):
            self._cancel_dependents(conn, item_id, to_state, actor)
        elif to_state == SUCCEEDED and not self.is_sqlite:
            self._notify_dependents(conn, item_id)
        return row.state

    # -- run-after (``submit --after``) ----------------------------------------------------

    def _cancel_dependents(self, conn: sa.Connection, item_id: str, state: str,
                           actor: str | None) -> list[str]:
        """Cancel the queued items waiting on ``item_id``, which just ended ``state``
        (failed or cancelled), and theirs in turn: in the caller's transaction, so a
        dependent is never left waiting on an item that can no longer succeed. Returns them."""
        cancelled: list[str] = []
        ended = [(item_id, state, None)]  # (item, how it ended, the upstream that caused it)
        while ended:
            upstream, how, cause = ended.pop()
            waiting = conn.execute(
                sa.select(t.item_deps.c.item_id)
                .join(t.items, t.items.c.id == t.item_deps.c.item_id)
                .where(t.item_deps.c.upstream_id == upstream, t.items.c.state == QUEUED)
                .order_by(t.item_deps.c.item_id)).scalars().all()
            for dependent in waiting:
                message = f"not started: upstream item {upstream} {_ENDED.get(how, how)}"
                if cause is not None:
                    message += f" (its upstream item {cause[0]} {_ENDED.get(cause[1], cause[1])})"
                error = {"message": message, "stage": "dependency", "cell": None,
                         "upstream": upstream}
                now = time.time()
                moved = conn.execute(t.items.update().where(
                    t.items.c.id == dependent, t.items.c.state == QUEUED).values(
                    state=CANCELLED, finished_at=now, updated_at=now, error=_dumps(error)))
                if moved.rowcount != 1:
                    continue
                self._event(conn, dependent, "cancelled", QUEUED, CANCELLED, actor, error)
                cancelled.append(dependent)
                ended.append((dependent, CANCELLED, cause or (upstream, how)))
        return cancelled

    def _notify_dependents(self, conn: sa.Connection, item_id: str) -> None:
        """Wake agents on the queues of items waiting on ``item_id`` (PostgreSQL NOTIFY, sent
        at commit): it just succeeded, so they may be claimable now."""
        queues = conn.execute(
            sa.select(t.items.c.queue).distinct()
            .join(t.item_deps, t.item_deps.c.item_id == t.items.c.id)
            .where(t.item_deps.c.upstream_id == item_id, t.items.c.state == QUEUED)
        ).scalars().all()
        for queue in queues:
            conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, queue)))

    def _add_dependencies(self, conn: sa.Connection, item_id: str, after: Sequence[str],
                          actor: str) -> None:
        """Record that new item ``item_id`` runs after each of ``after`` (existing items:
        so there can be no cycle). An upstream that already failed or was cancelled cancels
        it at once. The upstream rows are locked (PostgreSQL) so an upstream ending at the
        same moment sees the new dependency in its own finish transaction."""
        ended: tuple[str, str] | None = None
        for upstream in dict.fromkeys(after):
            query = sa.select(t.items.c.id, t.items.c.state).where(t.items.c.id == upstream)
            if not self.is_sqlite:  # SQLite: BEGIN IMMEDIATE already serialises writers
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise NotFoundError(
                    f"--after {upstream!r}: no such item; name an existing item id "
                    "(see `jupyter launch items`)")
            conn.execute(t.item_deps.insert().values(item_id=item_id, upstream_id=upstream))
            if row.state in (FAILED, CANCELLED) and ended is None:
                ended = (upstream, row.state)
        if ended is not None:
            upstream, how = ended
            error = {"message": f"not started: upstream item {upstream} {_ENDED.get(how, how)}",
                     "stage": "dependency", "cell": None, "upstream": upstream}
            self._transition(conn, item_id, [QUEUED], CANCELLED, kind="cancelled",
                             actor=actor, detail=error, finished_at=time.time(),
                             error=_dumps(error))

    def _dependencies(self, conn: sa.Connection, ids: Sequence[str]
                      ) -> dict[str, list[tuple[str, str | None]]]:
        """item id -> [(upstream id, its state or None when deleted)] in the order given."""
        found: dict[str, list[tuple[str, str | None]]] = {}
        ids = list(ids)
        for chunk in range(0, len(ids), 500):
            for r in conn.execute(
                sa.select(t.item_deps.c.item_id, t.item_deps.c.upstream_id, t.items.c.state)
                .select_from(t.item_deps.outerjoin(
                    t.items, t.items.c.id == t.item_deps.c.upstream_id))
                .where(t.item_deps.c.item_id.in_(ids[chunk:chunk + 500]))
                .order_by(t.item_deps.c.item_id, t.item_deps.c.upstream_id)):
                found.setdefault(r.item_id, []).append((r.upstream_id, r.state))
        return found

    # -- jobs -----------------------------------------------------------------------------

    def _job_record(self, conn: sa.Connection, row: Any) -> JobRecord:
        aliases = conn.execute(
            sa.select(t.job_aliases.c.alias).where(
                t.job_aliases.c.name == row.name, t.job_aliases.c.version == row.version
            ).order_by(t.job_aliases.c.alias)
        ).scalars().all()
        latest = conn.execute(
            sa.select(sa.func.max(t.jobs.c.version)).where(t.jobs.c.name == row.name)
        ).scalar()
        names = tuple(aliases) + (("latest",) if latest == row.version else ())
        return JobRecord(
            id=row.id, name=row.name, version=row.version, digest=row.digest,
            spec=json.loads(row.spec), created_at=row.created_at, created_by=row.created_by,
            aliases=names,
        )

    def add_job(
        self, name: str, digest: str, spec: dict, files: Iterable[tuple[str, str, bytes]],
        *, alias: str | None = None, created_by: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Store a job version unless one with the same digest exists; (record, created)."""
        files = list(files)
        for attempt in range(5):
            try:
                return self._add_job(name, digest, spec, files, alias, created_by)
            except sa.exc.IntegrityError:
                # Two captures raced for the same version number (PostgreSQL): go again.
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _add_job(
        self, name: str, digest: str, spec: dict, files: list[tuple[str, str, bytes]],
        alias: str | None, created_by: str | None,
    ) -> tuple[JobRecord, bool]:
        with self.write() as conn:
            row = conn.execute(
                sa.select(t.jobs).where(t.jobs.c.name == name, t.jobs.c.digest == digest)
            ).first()
            created = row is None
            if created:
                version = (
                    conn.execute(
                        sa.select(sa.func.max(t.jobs.c.version)).where(t.jobs.c.name == name)
                    ).scalar() or 0
                ) + 1
                job_id = conn.execute(
                    t.jobs.insert().values(
                        name=name, version=version, digest=digest, spec=_dumps(spec),
                        created_at=time.time(), created_by=created_by or whoami(),
                    )
                ).inserted_primary_key[0]
                conn.execute(
                    t.job_files.insert(),
                    [
                        {"job_id": job_id, "path": path, "sha256": sha, "content": content}
                        for path, sha, content in files
                    ],
                )
                row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).first()
            if alias:
                conn.execute(
                    t.job_aliases.delete().where(
                        t.job_aliases.c.name == name, t.job_aliases.c.alias == alias
                    )
                )
                conn.execute(
                    t.job_aliases.insert().values(name=name, alias=alias, version=row.version)
                )
            return self._job_record(conn, row), created

    def get_job(self, name: str, version: int | None = None, alias: str | None = None) -> JobRecord:
        """Resolve ``name`` (latest), ``name:vN`` or ``name:alias``."""
        with self.read() as conn:
            versions = conn.execute(
                sa.select(t.jobs.c.version).where(t.jobs.c.name == name)
            ).scalars().all()
            if not versions:
                known = conn.execute(
                    sa.select(t.jobs.c.name).distinct().order_by(t.jobs.c.name).limit(20)
                ).scalars().all()
                hint = f"jobs: {', '.join(known)}" if known else "there are no jobs yet"
                every = conn.execute(sa.select(t.jobs.c.name).distinct()).scalars().all()
                raise NotFoundError(
                    f"job {name!r} does not exist ({hint}).{did_you_mean(name, every)} "
                    "Create it with `jupyter launch job create PATH`"
                )
            if alias is not None:
                version = conn.execute(
                    sa.select(t.job_aliases.c.version).where(
                        t.job_aliases.c.name == name, t.job_aliases.c.alias == alias
                    )
                ).scalar()
                if version is None:
                    aliases = conn.execute(
                        sa.select(t.job_aliases.c.alias).where(t.job_aliases.c.name == name)
                    ).scalars().all()
                    raise NotFoundError(
                        f"job {name!r} has no alias {alias!r} (aliases: "
                        f"{', '.join(['latest', *sorted(aliases)])}); set one with "
                        f"`jupyter launch job create PATH --name {name} --alias {alias}`"
                    )
            elif version is None:
                version = max(versions)
            elif version not in versions:
                raise NotFoundError(
                    f"job {name!r} has no version v{version}; versions: "
                    + ", ".join(f"v{v}" for v in sorted(versions))
                )
            row = conn.execute(
                sa.select(t.jobs).where(t.jobs.c.name == name, t.jobs.c.version == version)
            ).first()
            return self._job_record(conn, row)

    def get_job_by_id(self, job_id: int) -> JobRecord:
        with self.read() as conn:
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).first()
            if row is None:
                raise NotFoundError(f"job id {job_id} does not exist")
            return self._job_record(conn, row)

    def job_files(self, job_id: int) -> list[tuple[str, bytes]]:
        with self.read() as conn:
            rows = conn.execute(
                sa.select(t.job_files.c.path, t.job_files.c.content)
                .where(t.job_files.c.job_id == job_id)
                .order_by(t.job_files.c.path)
            ).all()
            return [(r.path, bytes(r.content)) for r in rows]

    def list_jobs(self, name: str | None = None) -> list[JobRecord]:
        """Newest version of every job, or every version of ``name``."""
        with self.read() as conn:
            query = sa.select(t.jobs)
            if name is not None:
                query = query.where(t.jobs.c.name == name).order_by(t.jobs.c.version)
            else:
                newest = (
                    sa.select(t.jobs.c.name, sa.func.max(t.jobs.c.version).label("v"))
                    .group_by(t.jobs.c.name).subquery()
                )
                query = query.join(
                    newest, sa.and_(t.jobs.c.name == newest.c.name, t.jobs.c.version == newest.c.v)
                ).order_by(t.jobs.c.name)
            return [self._job_record(conn, row) for row in conn.execute(query).all()]

    # -- queues ---------------------------------------------------------------------------

    def create_queue(
        self, name: str, *, runner: str = "local", max_attempts: int = 3,
        timeout: float | None = None, config: dict | None = None,
        concurrency: int | None = None,
    ) -> dict:
        if max_attempts < 1:
            raise LaunchError(f"--max-attempts must be at least 1, got {max_attempts}")
        if timeout is not None and timeout <= 0:
            raise LaunchError(f"--timeout must be a positive number of seconds, got {timeout}")
        exists = ConflictError(
            f"queue {name!r} already exists; see it with `jupyter launch queue show {name}`"
        )
        try:
            with self.write() as conn:
                if conn.execute(
                    sa.select(t.queues.c.name).where(t.queues.c.name == name)
                ).first():
                    raise exists
                conn.execute(
                    t.queues.insert().values(
                        name=name, runner=runner, config=_dumps(config or {}),
                        max_attempts=max_attempts, timeout=timeout, paused=False,
                        created_at=time.time(), concurrency=concurrency,
                    )
                )
        except sa.exc.IntegrityError:  # created concurrently by someone else
            raise exists from None
        return self.get_queue(name)

    def _queue_json(self, conn: sa.Connection, row: Any,
                    counts: dict[str, int] | None = None) -> dict:
        if counts is None:
            counts = dict.fromkeys(STATES, 0)
            for state, n in conn.execute(
                sa.select(t.items.c.state, sa.func.count())
                .where(t.items.c.queue == row.name).group_by(t.items.c.state)
            ).all():
                counts[state] = n
        return {
            "name": row.name, "runner": row.runner, "config": json.loads(row.config),
            "max_attempts": row.max_attempts, "timeout": row.timeout, "paused": bool(row.paused),
            "created_at": iso(row.created_at), "counts": counts,
            "concurrency": row.concurrency,
        }

    def get_queue(self, name: str) -> dict:
        with self.read() as conn:
            row = conn.execute(sa.select(t.queues).where(t.queues.c.name == name)).first()
            if row is None:
                raise self._unknown_queue(conn, name)
            return self._queue_json(conn, row)

    def _unknown_queue(self, conn: sa.Connection, name: str) -> NotFoundError:
        names = conn.execute(sa.select(t.queues.c.name).order_by(t.queues.c.name)).scalars().all()
        return NotFoundError(
            f"queue {name!r} does not exist;{did_you_mean(name, names)} queues: "
            f"{', '.join(names) or '(none)'}. "
            f"Create it with `jupyter launch queue create {name}`"
        )

    def queue_names(self) -> list[str]:
        """Names of all queues (cheap: no item counts)."""
        with self.read() as conn:
            return list(conn.execute(
                sa.select(t.queues.c.name).order_by(t.queues.c.name)).scalars())

    def list_queues(self) -> list[dict]:
        with self.read() as conn:
            rows = conn.execute(sa.select(t.queues).order_by(t.queues.c.name)).all()
            # Every queue's counts from one pass over the items, not one pass per queue.
            counts = {row.name: dict.fromkeys(STATES, 0) for row in rows}
            for queue, state, n in conn.execute(
                    sa.select(t.items.c.queue, t.items.c.state, sa.func.count())
                    .group_by(t.items.c.queue, t.items.c.state)).all():
                if queue in counts:
                    counts[queue][state] = n
            return [self._queue_json(conn, row, counts[row.name]) for row in rows]

    def update_queue(self, name: str, **values: Any) -> dict:
        """Change settings of a queue (``concurrency``: an int, or None for no limit)."""
        unknown = set(values) - {"concurrency"}
        if unknown:
            raise LaunchError(f"queue settings that can be updated: concurrency; not "
                              f"{', '.join(sorted(unknown))}")
        if not values:
            return self.get_queue(name)
        with self.write() as conn:
            result = conn.execute(
                t.queues.update().where(t.queues.c.name == name).values(**values))
            if result.rowcount != 1:
                raise self._unknown_queue(conn, name)
        return self.get_queue(name)

    def set_paused(self, name: str, paused: bool) -> dict:
        with self.write() as conn:
            result = conn.execute(
                t.queues.update().where(t.queues.c.name == name).values(paused=paused)
            )
            if result.rowcount != 1:
                raise self._unknown_queue(conn, name)
        return self.get_queue(name)

    def delete_queue(self, name: str, *, force: bool = False) -> int:
        """Delete a queue; with ``force`` its items too. Returns the number of items deleted."""
        with self.write() as conn:
            if not conn.execute(sa.select(t.queues.c.name).where(t.queues.c.name == name)).first():
                raise self._unknown_queue(conn, name)
            unfinished = conn.execute(
                sa.select(sa.func.count()).where(
                    t.items.c.queue == name, t.items.c.state.not_in(TERMINAL)
                )
            ).scalar()
            if unfinished and not force:
                raise ConflictError(
                    f"queue {name!r} holds {unfinished} unfinished item(s); cancel them first "
                    f"or delete anyway with `jupyter launch queue delete {name} --force`"
                )
            scheduled = conn.execute(sa.select(t.schedules.c.name).where(
                t.schedules.c.queue == name).order_by(t.schedules.c.name)).scalars().all()
            if scheduled and not force:  # no schedule may name a queue that is gone
                raise ConflictError(
                    f"schedule(s) {', '.join(scheduled)} fire on queue {name!r}; delete them "
                    "first (`jupyter launch schedule delete NAME`) or delete the queue and "
                    f"them with `jupyter launch queue delete {name} --force`")
            conn.execute(t.schedules.delete().where(t.schedules.c.queue == name))
            ids = conn.execute(sa.select(t.items.c.id).where(t.items.c.queue == name)).scalars()
            ids = list(ids)
            for chunk in range(0, len(ids), 500):
                self._delete_items(conn, ids[chunk:chunk + 500])
            conn.execute(t.queues.delete().where(t.queues.c.name == name))
            return len(ids)

    # -- items ----------------------------------------------------------------------------

    def submit(
        self, *, job: JobRecord, queue: str, overrides: dict, parameters: dict,
        priority: int = 1, timeout: float | None = None, template_values: dict | None = None,
        requeued_from: str | None = None, sweep_id: str | None = None,
        submitted_by: str | None = None, lease_owner: str | None = None,
        lease_ttl: float = 30.0, after: Sequence[str] = (),
    ) -> dict:
        """Put an item on a queue. With ``lease_owner`` it is created already leased to it;
        with ``after`` it stays queued until each of those items has succeeded."""
        with self.write() as conn:
            item_id = self._insert_item(
                conn, job=job, queue=queue, overrides=overrides, parameters=parameters,
                priority=priority, timeout=timeout, template_values=template_values,
                requeued_from=requeued_from, sweep_id=sweep_id, submitted_by=submitted_by,
                lease_owner=lease_owner, lease_ttl=lease_ttl,
            )
            if after:
                if lease_owner:
                    raise LaunchError("an item leased at submit cannot wait on other items")
                self._add_dependencies(conn, item_id, after, submitted_by or whoami())
        return self.get_item(item_id)

    def _insert_item(
        self, conn: sa.Connection, *, job: JobRecord, queue: str, overrides: dict,
        parameters: dict, priority: int, timeout: float | None, template_values: dict | None,
        requeued_from: str | None, sweep_id: str | None, submitted_by: str | None,
        lease_owner: str | None = None, lease_ttl: float = 30.0,
    ) -> str:
        """Insert a new item (and its events) in ``conn``'s transaction; its id."""
        now = time.time()
        item_id = new_id()
        q = conn.execute(sa.select(t.queues).where(t.queues.c.name == queue)).first()
        if q is None:
            raise self._unknown_queue(conn, queue)
        state = LEASED if lease_owner else QUEUED
        conn.execute(
            t.items.insert().values(
                id=item_id, queue=queue, job_id=job.id, job=job.ref, state=state,
                priority=priority, overrides=_dumps(overrides),
                parameters=_dumps(parameters), template_values=_dumps(template_values or {}),
                attempt=1 if lease_owner else 0, max_attempts=q.max_attempts,
                timeout=timeout if timeout is not None else q.timeout,
                lease_owner=lease_owner,
                lease_expires_at=now + lease_ttl if lease_owner else None,
                cancel_requested=False, outputs="[]", run_info="{}",
                requeued_from=requeued_from, sweep_id=sweep_id,
                submitted_by=submitted_by or whoami(), created_at=now, updated_at=now,
                log_bytes=0,
            )
        )
        if not self.is_sqlite and not lease_owner:  # delivered to listeners at commit
            conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, queue)))
        self._event(conn, item_id, "submitted", None, QUEUED, submitted_by or whoami(),
                    {"requeued_from": requeued_from} if requeued_from else None)
        if lease_owner:
            conn.execute(t.attempts.insert().values(item_id=item_id, attempt=1,
                                                    agent_id=lease_owner,
                                                    host=socket.gethostname()))
            self._event(conn, item_id, "claimed", QUEUED, LEASED, lease_owner)
        return item_id

    def _item_row(self, conn: sa.Connection, item_id: str, *, lock: bool = False) -> Any:
        query = sa.select(t.items).where(t.items.c.id == item_id)
        if lock and not self.is_sqlite:  # SQLite: BEGIN IMMEDIATE already serialises writers
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(
                f"item {item_id!r} does not exist; list items with `jupyter launch items`"
            )
        return row

    def _item_json(self, conn: sa.Connection, row: Any, attempts: list | None = None,
                   metrics: dict | None = None,
                   deps: list[tuple[str, str | None]] | None = None) -> dict:
        if metrics is None:
            metrics = self._metric_summaries(conn, [row])[row.id]
        if deps is None:
            deps = self._dependencies(conn, [row.id]).get(row.id, [])
        if attempts is None:
            attempts = conn.execute(
                sa.select(t.attempts).where(t.attempts.c.item_id == row.id)
                .order_by(t.attempts.c.attempt)
            ).all()
        return {
            "id": row.id,
            "queue": row.queue,
            "job": row.job,
            "state": row.state,
            "attempt": row.attempt,
            "max_attempts": row.max_attempts,
            "attempts": [
                {
                    "attempt": a.attempt, "agent": a.agent_id, "host": a.host,
                    "start": iso(a.started_at), "end": iso(a.finished_at),
                    "exit_code": a.exit_code, "error": _loads(a.error),
                }
                for a in attempts
            ],
            "priority": PRIORITY_NAMES.get(row.priority, str(row.priority)),
            "parameters": json.loads(row.parameters),
            "overrides": json.loads(row.overrides),
            "template_values": json.loads(row.template_values),
            "timeout": row.timeout,
            "exit_code": row.exit_code,
            "error": _loads(row.error),
            "warning": row.warning,
            "cancel_requested": bool(row.cancel_requested),
            "created_at": iso(row.created_at),
            "started_at": iso(row.started_at),
            "finished_at": iso(row.finished_at),
            "duration": (
                None if row.started_at is None
                else round((row.finished_at or time.time()) - row.started_at, 3)
            ),
            "outputs": json.loads(row.outputs),
            "requeued_from": row.requeued_from,
            "sweep_id": row.sweep_id,
            "schedule": row.schedule,
            "submitted_by": row.submitted_by,
            "lease_owner": row.lease_owner,
            "run": json.loads(row.run_info),
            "log_bytes": row.log_bytes,
            "metrics": metrics,
            "progress": _progress_json(row),
            "cells": _loads(row.cell_times) if row.state in TERMINAL else None,
            "executed_notebook": row.executed_notebook or next(
                (o.get("path") for o in json.loads(row.outputs) if o.get("kind") == "notebook"),
                None),
            # run-after: every item it runs after, and (while queued) those not yet succeeded
            "after": [upstream for upstream, _state in deps],
            "waiting_on": [upstream for upstream, state in deps
                           if state != SUCCEEDED] if row.state == QUEUED else [],
        }

    def get_item(self, item_id: str) -> dict:
        with self.read() as conn:
            return self._item_json(conn, self._item_row(conn, item_id))

    def item_state(self, item_id: str) -> tuple[str, bool]:
        """(state, cancel_requested): the cheap check supervisors make often."""
        with self.read() as conn:
            row = conn.execute(
                sa.select(t.items.c.state, t.items.c.cancel_requested)
                .where(t.items.c.id == item_id)
            ).first()
            if row is None:
                raise NotFoundError(f"item {item_id!r} does not exist")
            return row.state, bool(row.cancel_requested)

    @staticmethod
    def _item_filters(queue: str | None, job: str | None, sweep_id: str | None,
                      job_version: int | None = None) -> list:
        """WHERE clauses for items of a queue, a job (by name; a version too) and a sweep."""
        where = []
        if queue is not None:
            where.append(t.items.c.queue == queue)
        if job is not None:
            jobs = sa.select(t.jobs.c.id).where(t.jobs.c.name == job)
            if job_version is not None:
                jobs = jobs.where(t.jobs.c.version == job_version)
            where.append(t.items.c.job_id.in_(jobs))
        if sweep_id is not None:
            where.append(t.items.c.sweep_id == sweep_id)
        return where

    def count_items(self, *, queue: str | None = None, job: str | None = None,
                    job_version: int | None = None, sweep_id: str | None = None
                    ) -> dict[str, int]:
        """How many items are in each state (every state named, zeros included)."""
        where = self._item_filters(queue, job, sweep_id, job_version)
        with self.read() as conn:
            rows = conn.execute(sa.select(t.items.c.state, sa.func.count())
                                .where(*where).group_by(t.items.c.state)).all()
        counts = dict.fromkeys(STATES, 0)
        counts.update({state: n for state, n in rows})
        return counts

    def list_items(
        self, *, queue: str | None = None, state: str | Sequence[str] | None = None,
        limit: int | None = None, offset: int = 0, sweep_id: str | None = None,
        job: str | None = None, job_version: int | None = None, count: bool = True,
    ) -> tuple[list[dict], int | None]:
        """Items newest first, and the total matching count (None without ``count``: a
        caller that counts per state already has it, and a count reads every match)."""
        where = self._item_filters(queue, job, sweep_id, job_version)
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            for s in states:
                if s not in STATES:
                    raise LaunchError(f"unknown state {s!r}; use one of: {', '.join(STATES)}")
            where.append(t.items.c.state.in_(states))
        with self.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(t.items).where(
                *where)).scalar() if count else None
            query = sa.select(t.items).where(*where).order_by(t.items.c.id.desc()).offset(offset)
            if limit is not None:
                query = query.limit(limit)
            rows = conn.execute(query).all()
            all_attempts: dict[str, list] = {}
            ids = [r.id for r in rows]
            for chunk in range(0, len(ids), 500):
                for a in conn.execute(
                    sa.select(t.attempts).where(t.attempts.c.item_id.in_(ids[chunk:chunk + 500]))
                    .order_by(t.attempts.c.attempt)
                ).all():
                    all_attempts.setdefault(a.item_id, []).append(a)
            summaries = self._metric_summaries(conn, rows)
            deps = self._dependencies(conn, ids)
            return [self._item_json(conn, r, all_attempts.get(r.id, []), summaries[r.id],
                                    deps.get(r.id, []))
                    for r in rows], total

    def events(self, item_id: str) -> list[dict]:
        with self.read() as conn:
            rows = conn.execute(
                sa.select(t.events).where(t.events.c.item_id == item_id).order_by(t.events.c.id)
            ).all()
            return [
                {"ts": iso(r.ts), "kind": r.kind, "from": r.from_state, "to": r.to_state,
                 "actor": r.actor, "detail": _loads(r.detail)}
                for r in rows
            ]

    def request_cancel(self, item_id: str, actor: str | None = None) -> dict:
        """Queued -> cancelled at once; leased/running -> flag for the run's holder.

        Never lost to a racing claim: the row is locked (PostgreSQL ``FOR UPDATE``; SQLite
        serialises writers), and a transition that loses anyway falls back to the flag.
        """
        with self.write() as conn:
            row = self._item_row(conn, item_id, lock=True)
            if row.state in TERMINAL:
                raise ConflictError(
                    f"item {item_id} already {row.state}; nothing to cancel. "
                    f"Run it again with `jupyter launch requeue {item_id}`"
                )
            if row.state == QUEUED:
                now = time.time()
                if self._transition(conn, item_id, [QUEUED], CANCELLED, kind="cancelled",
                                    actor=actor or whoami(), cancel_requested=True,
                                    finished_at=now, error=_dumps({
                                        "message": "cancelled before it started",
                                        "stage": "queued", "cell": None})) is None:
                    row = self._item_row(conn, item_id, lock=True)
            if row.state in ACTIVE and not row.cancel_requested:
                conn.execute(
                    t.items.update().where(t.items.c.id == item_id)
                    .values(cancel_requested=True, updated_at=time.time())
                )
                self._event(conn, item_id, "cancel_requested", row.state, row.state,
                            actor or whoami())
        return self.get_item(item_id)

    def requeue(self, item_id: str, *, submitted_by: str | None = None,
                idempotency_key: str | None = None) -> dict:
        """A new item with the same job, parameters, template values and priority.

        With ``idempotency_key``, a repeat with the same key on the same item (a double click,
        a retried request) answers the item the first call made instead of a new one.
        """
        if idempotency_key is not None:
            idempotency_key = check_idempotency_key(idempotency_key)
        for attempt in range(5):
            try:
                return self._requeue(item_id, submitted_by, idempotency_key)
            except sa.exc.IntegrityError:
                # A concurrent requeue with the same key won (PostgreSQL): answer its item.
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _requeue(self, item_id: str, submitted_by: str | None, key: str | None) -> dict:
        with self.write() as conn:
            row = self._item_row(conn, item_id)
            if key is not None:
                done = conn.execute(sa.select(t.requeue_keys.c.new_item_id).where(
                    t.requeue_keys.c.item_id == item_id, t.requeue_keys.c.key == key)).scalar()
                if done is not None and conn.execute(
                        sa.select(t.items.c.id).where(t.items.c.id == done)).first():
                    return self._item_json(conn, self._item_row(conn, done))
                if done is not None:  # its item was deleted since: the key is free again
                    conn.execute(t.requeue_keys.delete().where(
                        t.requeue_keys.c.item_id == item_id, t.requeue_keys.c.key == key))
            if row.state not in TERMINAL:
                raise ConflictError(
                    f"item {item_id} is {row.state}; requeue works on finished items. "
                    f"Cancel it first with `jupyter launch cancel {item_id}`"
                )
            job = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == row.job_id)).first()
            new = self._insert_item(
                conn, job=self._job_record(conn, job), queue=row.queue,
                overrides=json.loads(row.overrides), parameters=json.loads(row.parameters),
                priority=row.priority, timeout=row.timeout,
                template_values=json.loads(row.template_values), requeued_from=item_id,
                sweep_id=row.sweep_id, submitted_by=submitted_by,
            )
            if key is not None:
                conn.execute(t.requeue_keys.insert().values(
                    item_id=item_id, key=key, new_item_id=new, created_at=time.time()))
            return self._item_json(conn, self._item_row(conn, new))

    def _delete_items(self, conn: sa.Connection, ids: Sequence[str]) -> None:
        # Items still waiting on a deleted one can never start: cancel them (and theirs).
        for upstream in conn.execute(sa.select(t.items.c.id).where(
                t.items.c.id.in_(ids), t.items.c.state != SUCCEEDED)).scalars().all():
            self._cancel_dependents(conn, upstream, "deleted", None)
        conn.execute(t.item_deps.delete().where(sa.or_(
            t.item_deps.c.item_id.in_(ids), t.item_deps.c.upstream_id.in_(ids))))
        conn.execute(t.requeue_keys.delete().where(sa.or_(
            t.requeue_keys.c.item_id.in_(ids), t.requeue_keys.c.new_item_id.in_(ids))))
        for table in (t.log_chunks, t.events, t.attempts, t.metrics, t.metric_summary):
            conn.execute(table.delete().where(table.c.item_id.in_(ids)))
        conn.execute(t.items.delete().where(t.items.c.id.in_(ids)))

    def delete_item(self, item_id: str) -> None:
        with self.write() as conn:
            row = self._item_row(conn, item_id)
            if row.state not in TERMINAL and row.state != QUEUED:
                raise ConflictError(
                    f"item {item_id} is {row.state}; cancel it first with "
                    f"`jupyter launch cancel {item_id}`, then delete it"
                )
            self._delete_items(conn, [item_id])

    # -- retention (``jupyter launch store vacuum``) -----------------------------------------

    def _removable(self) -> list:
        """WHERE clauses of items retention may delete: finished, not a trial of a sweep that
        still proposes trials (it learns from them), and no unfinished item runs after it."""
        dependents = (sa.select(t.item_deps.c.item_id)
                      .join(t.items, t.items.c.id == t.item_deps.c.item_id)
                      .where(t.items.c.state.not_in(TERMINAL)))
        waiting_on = sa.select(t.item_deps.c.upstream_id).where(
            t.item_deps.c.item_id.in_(dependents.scalar_subquery()))
        live_sweeps = sa.select(t.sweeps.c.id).where(t.sweeps.c.state == SWEEP_RUNNING)
        return [t.items.c.state.in_(TERMINAL), t.items.c.id.not_in(waiting_on),
                sa.or_(t.items.c.sweep_id.is_(None), t.items.c.sweep_id.not_in(live_sweeps))]

    def expired_items(self, *, keep_days: float | None = None, keep_last: int | None = None,
                      now: float | None = None) -> list[dict]:
        """Finished items no retention rule keeps, oldest first: ``{id, queue, log_bytes}``.

        ``keep_days``: keep those that finished less than this many days ago; ``keep_last``:
        keep the newest this many finished items of each queue. An item either rule keeps
        stays; with neither rule, nothing expires. Queued, leased and running items never do.
        """
        if keep_days is None and keep_last is None:
            return []
        now = time.time() if now is None else now
        ended = sa.func.coalesce(t.items.c.finished_at, t.items.c.created_at)
        rank = sa.func.row_number().over(partition_by=t.items.c.queue,
                                         order_by=t.items.c.id.desc())
        finished = (sa.select(t.items.c.id, t.items.c.queue, t.items.c.log_bytes,
                              ended.label("ended"), rank.label("rank"))
                    .where(t.items.c.state.in_(TERMINAL)).subquery())
        query = sa.select(finished.c.id, finished.c.queue, finished.c.log_bytes).where(
            finished.c.id.in_(sa.select(t.items.c.id).where(*self._removable())))
        if keep_days is not None:
            query = query.where(finished.c.ended < now - keep_days * 86400.0)
        if keep_last is not None:
            query = query.where(finished.c.rank > keep_last)
        with self.read() as conn:
            return [r._asdict() for r in conn.execute(query.order_by(finished.c.id)).all()]

    def delete_expired(self, item_ids: Sequence[str], *, batch: int = 200) -> list[str]:
        """Delete those of ``item_ids`` retention may still delete (see ``_removable``), with
        their logs, attempts, events and metrics, a batch per transaction so agents are never
        held up for long. Returns the ids deleted."""
        deleted: list[str] = []
        for start in range(0, len(item_ids), batch):
            with self.write() as conn:
                ids = conn.execute(sa.select(t.items.c.id).where(
                    t.items.c.id.in_(list(item_ids[start:start + batch])),
                    *self._removable())).scalars().all()
                if ids:
                    self._delete_items(conn, ids)
            deleted.extend(ids)
        return deleted

    # -- the agent's side ----------------------------------------------------------------

    def claim(self, queue: str, owner: str, ttl: float, *, host: str | None = None) -> dict | None:
        """Atomically lease the next queued item of ``queue`` to ``owner``, or None."""
        now = time.time()
        with self.write() as conn:
            if not self._room_in(conn, queue):
                return None
            upstream = t.items.alias("upstream")
            unmet = sa.exists().where(  # run-after: an upstream that has not succeeded (yet)
                t.item_deps.c.item_id == t.items.c.id,
                upstream.c.id == t.item_deps.c.upstream_id, upstream.c.state != SUCCEEDED)
            query = (
                sa.select(t.items.c.id, t.items.c.attempt)
                .join(t.queues, t.queues.c.name == t.items.c.queue)
                .where(t.items.c.queue == queue, t.items.c.state == QUEUED,
                       t.queues.c.paused == sa.false(), ~unmet)
                .order_by(t.items.c.priority.desc(), t.items.c.id)
                .limit(1)
            )
            if not self.is_sqlite:
                query = query.with_for_update(skip_locked=True, of=t.items)
            row = conn.execute(query).first()
            if row is None:
                return None
            attempt = row.attempt + 1
            prev = self._transition(
                conn, row.id, [QUEUED], LEASED, kind="claimed", actor=owner,
                lease_owner=owner, lease_expires_at=now + ttl, attempt=attempt,
            )
            if prev is None:
                return None
            conn.execute(t.attempts.insert().values(
                item_id=row.id, attempt=attempt, agent_id=owner,
                host=host or socket.gethostname()))
            return self._item_json(conn, self._item_row(conn, row.id))

    def _room_in(self, conn: sa.Connection, queue: str) -> bool:
        """Whether ``queue`` may have one more leased or running item (its concurrency).

        Counting is only safe when claims on the queue are serialised: SQLite's BEGIN
        IMMEDIATE does that; on PostgreSQL SKIP LOCKED does not, so a capped queue's row is
        locked FOR UPDATE until the claim commits (and the next claimer counts after it)."""
        query = sa.select(t.queues.c.concurrency).where(t.queues.c.name == queue)
        cap = conn.execute(query).scalar()
        if cap is None:
            return True
        if not self.is_sqlite:
            conn.execute(query.with_for_update())
        running = conn.execute(sa.select(sa.func.count()).select_from(t.items).where(
            t.items.c.queue == queue, t.items.c.state.in_(ACTIVE))).scalar()
        return running < cap

    def start_run(self, item_id: str, owner: str, token: str, ttl: float, run_info: dict) -> bool:
        """leased -> running; the lease passes from the agent to the run's ``token``."""
        now = time.time()
        with self.write() as conn:
            attempt = conn.execute(
                sa.select(t.items.c.attempt).where(t.items.c.id == item_id)
            ).scalar()
            prev = self._transition(
                conn, item_id, [LEASED], RUNNING, kind="started", owner=owner, actor=token,
                lease_owner=token, lease_expires_at=now + ttl, started_at=now,
                run_info=_dumps(run_info), extra_where=[t.items.c.cancel_requested == sa.false()],
                # A new attempt runs anew: no cell times or notebook of an earlier one.
                progress=None, cell_times=None, executed_notebook=None,
            )
            if prev is None:
                return False
            conn.execute(
                t.attempts.update()
                .where(t.attempts.c.item_id == item_id, t.attempts.c.attempt == attempt)
                .values(started_at=now)
            )
            return True

    def update_run_info(self, item_id: str, token: str, **info: Any) -> None:
        with self.write() as conn:
            row = conn.execute(
                sa.select(t.items.c.run_info)
                .where(t.items.c.id == item_id, t.items.c.lease_owner == token)
            ).first()
            if row is not None:
                merged = {**json.loads(row.run_info), **info}
                conn.execute(
                    t.items.update()
                    .where(t.items.c.id == item_id, t.items.c.lease_owner == token)
                    .values(run_info=_dumps(merged))
                )

    def set_progress(self, item_id: str, token: str, attempt: int, progress: dict,
                     executed_notebook: str | None = None) -> bool:
        """Record the running cell of a notebook run (``cell``, ``cells``, ``started``
        (epoch s), ``source``), by the lease holder only: one UPDATE. False if not held."""
        values: dict[str, Any] = {"progress": _dumps({**progress, "attempt": attempt})}
        if executed_notebook is not None:
            values["executed_notebook"] = executed_notebook
        with self.write() as conn:
            result = conn.execute(
                t.items.update()
                .where(t.items.c.id == item_id, t.items.c.lease_owner == token,
                       t.items.c.state == RUNNING)
                .values(**values)
            )
            return result.rowcount == 1

    def renew(self, item_id: str, token: str, ttl: float) -> tuple[bool, bool]:
        """Extend the lease; (still held, cancel requested)."""
        with self.write() as conn:
            result = conn.execute(
                t.items.update()
                .where(t.items.c.id == item_id, t.items.c.lease_owner == token,
                       t.items.c.state.in_(ACTIVE))
                .values(lease_expires_at=time.time() + ttl)
            )
            if result.rowcount != 1:
                return False, False
            cancel = conn.execute(
                sa.select(t.items.c.cancel_requested).where(t.items.c.id == item_id)
            ).scalar()
            return True, bool(cancel)

    def states(self, item_ids: Sequence[str]) -> dict[str, str]:
        """Current state of each of ``item_ids`` (missing ids are left out)."""
        if not item_ids:
            return {}
        with self.read() as conn:
            rows = conn.execute(
                sa.select(t.items.c.id, t.items.c.state).where(t.items.c.id.in_(list(item_ids)))
            ).all()
            return {r.id: r.state for r in rows}

    def job_id_of(self, item_id: str) -> int:
        with self.read() as conn:
            job_id = conn.execute(
                sa.select(t.items.c.job_id).where(t.items.c.id == item_id)
            ).scalar()
            if job_id is None:
                raise NotFoundError(f"item {item_id!r} does not exist")
            return job_id

    def take_over(self, item_id: str, old_token: str, new_token: str, ttl: float) -> bool:
        """Move a *lapsed* lease from ``old_token`` to ``new_token`` (adoption of a run)."""
        now = time.time()
        with self.write() as conn:
            result = conn.execute(
                t.items.update()
                .where(t.items.c.id == item_id, t.items.c.lease_owner == old_token,
                       t.items.c.state == RUNNING, t.items.c.lease_expires_at < now)
                .values(lease_owner=new_token, lease_expires_at=now + ttl, updated_at=now)
            )
            if result.rowcount != 1:
                return False
            self._event(conn, item_id, "adopted", RUNNING, RUNNING, new_token,
                        {"from": old_token})
            return True

    def expire_lease(self, item_id: str, token: str, margin: float = 0.0) -> bool:
        """Let a lease lapse ``margin`` s from now (its holder is known to be dead)."""
        with self.write() as conn:
            result = conn.execute(
                t.items.update()
                .where(t.items.c.id == item_id, t.items.c.lease_owner == token,
                       t.items.c.state.in_(ACTIVE))
                .values(lease_expires_at=sa.func.min(t.items.c.lease_expires_at,
                                                     time.time() + margin)
                        if self.is_sqlite else sa.func.least(t.items.c.lease_expires_at,
                                                             time.time() + margin))
            )
            return result.rowcount == 1

    def set_warning(self, item_id: str, warning: str | None) -> None:
        with self.write() as conn:
            conn.execute(t.items.update().where(t.items.c.id == item_id).values(warning=warning))

    def finish(
        self, item_id: str, token: str, state: str, *, exit_code: int | None = None,
        error: dict | None = None, outputs: list | None = None, cells: list | None = None,
        executed_notebook: str | None = None,
    ) -> bool:
        """running/leased -> a terminal state, by the lease holder only. ``cells``: each
        notebook cell's ``{"cell", "seconds"}``; ``executed_notebook``: its final path."""
        if state not in TERMINAL:
            raise ValueError(f"not a terminal state: {state}")
        now = time.time()
        with self.write() as conn:
            attempt = conn.execute(
                sa.select(t.items.c.attempt).where(t.items.c.id == item_id)
            ).scalar()
            if state == CANCELLED:  # a sweep trial an agent pruned says so
                error = self._pruned_error(conn, item_id) or error
            values: dict[str, Any] = dict(
                exit_code=exit_code, error=None if error is None else _dumps(error),
                finished_at=now, lease_expires_at=None,
            )
            if outputs is not None:
                values["outputs"] = _dumps(outputs)
            if cells is not None:
                values["cell_times"] = _dumps(cells)
            if executed_notebook is not None:
                values["executed_notebook"] = executed_notebook
            prev = self._transition(conn, item_id, ACTIVE, state, kind=state, owner=token,
                                    actor=token, detail=error, **values)
            if prev is None:
                return False
            conn.execute(
                t.attempts.update()
                .where(t.attempts.c.item_id == item_id, t.attempts.c.attempt == attempt)
                .values(finished_at=now, exit_code=exit_code,
                        error=None if error is None else _dumps(error))
            )
            return True

    def hand_back(self, item_id: str, owner: str) -> bool:
        """leased -> queued without using an attempt (an agent stopping before the start)."""
        with self.write() as conn:
            attempt = conn.execute(
                sa.select(t.items.c.attempt).where(t.items.c.id == item_id)
            ).scalar()
            prev = self._transition(
                conn, item_id, [LEASED], QUEUED, kind="handed_back", owner=owner, actor=owner,
                lease_owner=None, lease_expires_at=None, attempt=max(0, (attempt or 1) - 1),
            )
            if prev is None:
                return False
            conn.execute(t.attempts.delete().where(
                t.attempts.c.item_id == item_id, t.attempts.c.attempt == attempt))
            return True

    def retry(self, item_id: str, token: str, error: dict) -> str | None:
        """running -> queued for another attempt, by the lease holder (its run was disrupted
        by the cluster, not by the job): failed once the queue's max attempts are used up.
        Returns the new state, or None when ``token`` no longer holds the lease."""
        now = time.time()
        with self.write() as conn:
            row = conn.execute(sa.select(t.items.c.attempt, t.items.c.max_attempts)
                               .where(t.items.c.id == item_id)).first()
            if row is None:
                return None
            common = dict(owner=token, actor=token, lease_owner=None, lease_expires_at=None)
            if row.attempt < row.max_attempts:
                state = QUEUED
                prev = self._transition(conn, item_id, ACTIVE, QUEUED, kind="retried",
                                        detail=error, **common)
            else:
                state = FAILED
                error = {**error, "message": f"{error.get('message')} (attempt {row.attempt} "
                                             f"of {row.max_attempts}; no attempts left)"}
                prev = self._transition(conn, item_id, ACTIVE, FAILED, kind="failed",
                                        detail=error, finished_at=now, error=_dumps(error),
                                        **common)
            if prev is None:
                return None
            conn.execute(
                t.attempts.update()
                .where(t.attempts.c.item_id == item_id, t.attempts.c.attempt == row.attempt)
                .values(finished_at=now, error=_dumps(error))
            )
            return state

    def expired_leases(self, now: float | None = None) -> list[dict]:
        """Leased/running items whose lease lapsed (id, state, owner, attempt, run)."""
        now = time.time() if now is None else now
        with self.read() as conn:
            rows = conn.execute(
                sa.select(t.items.c.id, t.items.c.state, t.items.c.lease_owner,
                          t.items.c.attempt, t.items.c.max_attempts, t.items.c.cancel_requested,
                          t.items.c.run_info, t.items.c.queue)
                .where(t.items.c.state.in_(ACTIVE), t.items.c.lease_expires_at < now)
            ).all()
            return [r._asdict() for r in rows]

    def recover(self, item_id: str, owner: str, actor: str) -> str | None:
        """Handle a lapsed lease: back to queued, or failed("agent lost"), or cancelled."""
        now = time.time()
        with self.write() as conn:
            row = conn.execute(sa.select(t.items).where(
                t.items.c.id == item_id, t.items.c.lease_owner == owner,
                t.items.c.state.in_(ACTIVE), t.items.c.lease_expires_at < now)).first()
            if row is None:
                return None
            lost = {"message": "lease lapsed: the agent or supervisor running it was lost",
                    "stage": "lease", "cell": None}
            conn.execute(
                t.attempts.update()
                .where(t.attempts.c.item_id == item_id, t.attempts.c.attempt == row.attempt)
                .values(finished_at=now, error=_dumps(lost))
            )
            common = dict(owner=owner, actor=actor, lease_owner=None, lease_expires_at=None,
                          extra_where=[t.items.c.lease_expires_at < now])
            if row.cancel_requested:
                err = self._pruned_error(conn, item_id) or {
                    "message": "cancelled (its run was lost)", "stage": "lease", "cell": None}
                self._transition(conn, item_id, ACTIVE, CANCELLED, kind="cancelled",
                                 finished_at=now, error=_dumps(err), **common)
                return CANCELLED
            if row.attempt < row.max_attempts:
                self._transition(conn, item_id, ACTIVE, QUEUED, kind="lease_lapsed",
                                 detail=lost, **common)
                return QUEUED
            err = {"message": f"agent lost (lease lapsed on attempt {row.attempt} of "
                              f"{row.max_attempts})", "stage": "lease", "cell": None}
            self._transition(conn, item_id, ACTIVE, FAILED, kind="failed", detail=err,
                             finished_at=now, error=_dumps(err), **common)
            return FAILED

    def has_queued(self, queues: Sequence[str]) -> bool:
        with self.read() as conn:
            return conn.execute(
                sa.select(t.items.c.id).where(t.items.c.queue.in_(queues),
                                              t.items.c.state == QUEUED).limit(1)
            ).first() is not None

    # -- logs -----------------------------------------------------------------------------

    def append_log(self, item_id: str, token: str, attempt: int, data: bytes) -> int | None:
        """Append a chunk while holding the lease; returns the new log size or None if lost."""
        if not data:
            return None
        with self.write() as conn:
            row = conn.execute(
                sa.select(t.items.c.log_bytes)
                .where(t.items.c.id == item_id, t.items.c.lease_owner == token)
            ).first()
            if row is None:
                return None
            offset = row.log_bytes
            conn.execute(t.log_chunks.insert().values(
                item_id=item_id, offset=offset, attempt=attempt, ts=time.time(), data=data))
            conn.execute(t.items.update().where(t.items.c.id == item_id)
                         .values(log_bytes=offset + len(data)))
            return offset + len(data)

    # -- metrics --------------------------------------------------------------------------

    def add_metrics(self, item_id: str, token: str, attempt: int,
                    points: Sequence[tuple[str, int, float, float]]) -> bool:
        """Store metric points ``(name, step, value, time)`` of an attempt while holding its
        lease, and fold them into the running summary; False when the lease is lost."""
        if not points:
            return True
        with self.write() as conn:
            held = conn.execute(sa.select(t.items.c.id).where(
                t.items.c.id == item_id, t.items.c.lease_owner == token)).first()
            if held is None:
                return False
            conn.execute(t.metrics.insert(), [
                {"item_id": item_id, "attempt": attempt, "name": name, "step": step,
                 "value": value, "time": at} for name, step, value, at in points])
            names = sorted({p[0] for p in points})
            summary = {r.name: r for r in conn.execute(sa.select(t.metric_summary).where(
                t.metric_summary.c.item_id == item_id, t.metric_summary.c.attempt == attempt,
                t.metric_summary.c.name.in_(names)))}
            folded: dict[str, dict] = {}
            for name, step, value, _at in points:
                old = folded.get(name)
                if old is None and name in summary:
                    r = summary[name]
                    old = {"last": r.last, "step": r.step, "min": r.min, "max": r.max,
                           "count": r.count}
                folded[name] = {"last": value, "step": step,
                                "min": value if old is None else min(old["min"], value),
                                "max": value if old is None else max(old["max"], value),
                                "count": 1 if old is None else old["count"] + 1}
            for name, values in folded.items():
                key = (t.metric_summary.c.item_id == item_id,
                       t.metric_summary.c.attempt == attempt, t.metric_summary.c.name == name)
                if name in summary:
                    conn.execute(t.metric_summary.update().where(*key).values(**values))
                else:
                    conn.execute(t.metric_summary.insert().values(
                        item_id=item_id, attempt=attempt, name=name, **values))
            return True

    def metric_points(self, item_id: str, *, attempt: int | None = None, after: int = 0,
                      limit: int | None = None) -> tuple[list[dict], int]:
        """Points of an attempt (default: the item's latest) in the order they were stored,
        from after the cursor ``after``; and the cursor to ask with next."""
        with self.read() as conn:
            row = self._item_row(conn, item_id)
            attempt = row.attempt if attempt is None else attempt
            query = (sa.select(t.metrics.c.id, t.metrics.c.name, t.metrics.c.step,
                               t.metrics.c.value, t.metrics.c.time)
                     .where(t.metrics.c.item_id == item_id, t.metrics.c.attempt == attempt,
                            t.metrics.c.id > after)
                     .order_by(t.metrics.c.id))
            if limit is not None:
                query = query.limit(limit)
            rows = conn.execute(query).all()
        points = [{"name": r.name, "step": r.step, "value": r.value, "time": iso(r.time)}
                  for r in rows]
        return points, (rows[-1].id if rows else after)

    def _metric_summaries(self, conn: sa.Connection, rows: Sequence[Any]) -> dict[str, dict]:
        """item id -> {metric: {last, min, max, step, count}} of each item's latest attempt."""
        attempts = {r.id: r.attempt for r in rows}
        found: dict[str, dict] = {item_id: {} for item_id in attempts}
        ids = list(attempts)
        for chunk in range(0, len(ids), 500):
            for r in conn.execute(sa.select(t.metric_summary).where(
                    t.metric_summary.c.item_id.in_(ids[chunk:chunk + 500]))):
                if r.attempt == attempts[r.item_id]:
                    found[r.item_id][r.name] = {"last": r.last, "min": r.min, "max": r.max,
                                                "step": r.step, "count": r.count}
        return found

    def read_log(
        self, item_id: str, offset: int = 0, limit: int | None = None
    ) -> tuple[bytes, int]:
        """Log bytes from ``offset`` (at most ``limit``) and the offset to ask for next."""
        offset = max(0, int(offset))
        with self.read() as conn:
            self._item_row(conn, item_id)
            start = conn.execute(
                sa.select(sa.func.max(t.log_chunks.c.offset))
                .where(t.log_chunks.c.item_id == item_id, t.log_chunks.c.offset <= offset)
            ).scalar() or 0
            query = (
                sa.select(t.log_chunks.c.offset, t.log_chunks.c.data)
                .where(t.log_chunks.c.item_id == item_id, t.log_chunks.c.offset >= start)
                .order_by(t.log_chunks.c.offset)
            )
            out = bytearray()
            end = offset
            for chunk_offset, data in conn.execute(query):
                data = bytes(data)
                piece = data[max(0, offset - chunk_offset):]
                if limit is not None and len(out) + len(piece) > limit:
                    piece = piece[: max(0, limit - len(out))]
                    out += piece
                    end = max(offset, chunk_offset) + len(piece)
                    break
                out += piece
                end = chunk_offset + len(data)
            return bytes(out), max(end, offset)

    # -- sweeps ---------------------------------------------------------------------------

    def create_sweep(self, *, sweep_id: str, job: JobRecord, queue: str, method: str,
                     metric: str | None, goal: str | None, config: dict, submit: dict,
                     run_cap: int | None, parallel: int, seed: int,
                     created_by: str | None = None) -> dict:
        """Record a sweep (state running, nothing proposed yet)."""
        now = time.time()
        with self.write() as conn:
            if conn.execute(sa.select(t.queues.c.name).where(t.queues.c.name == queue)
                            ).first() is None:
                raise self._unknown_queue(conn, queue)
            conn.execute(t.sweeps.insert().values(
                id=sweep_id, job_id=job.id, job=job.ref, queue=queue, method=method,
                metric=metric, goal=goal, config=_dumps(config), submit=_dumps(submit),
                run_cap=run_cap, parallel=parallel, seed=seed, state=SWEEP_RUNNING,
                proposed=0, created_by=created_by or whoami(), created_at=now,
                updated_at=now))
        return self.get_sweep(sweep_id)

    def _sweep_json(self, conn: sa.Connection, row: Any) -> dict:
        counts = dict.fromkeys(STATES, 0)
        counts.update(dict(conn.execute(
            sa.select(t.items.c.state, sa.func.count())
            .where(t.items.c.sweep_id == row.id).group_by(t.items.c.state)).all()))
        return {"id": row.id, "job": row.job, "job_id": row.job_id, "queue": row.queue,
                "method": row.method, "metric": row.metric, "goal": row.goal,
                "config": json.loads(row.config), "submit": json.loads(row.submit),
                "run_cap": row.run_cap, "parallel": row.parallel, "seed": row.seed,
                "state": row.state, "proposed": row.proposed, "counts": counts,
                "created_by": row.created_by, "created_at": iso(row.created_at),
                "updated_at": iso(row.updated_at)}

    def _unknown_sweep(self, sweep_id: str) -> NotFoundError:
        return NotFoundError(f"sweep {sweep_id!r} does not exist; list sweeps with "
                             "`jupyter launch sweeps`")

    def get_sweep(self, sweep_id: str) -> dict:
        """A sweep with its item counts per state."""
        with self.read() as conn:
            row = conn.execute(sa.select(t.sweeps).where(t.sweeps.c.id == sweep_id)).first()
            if row is None:
                raise self._unknown_sweep(sweep_id)
            return self._sweep_json(conn, row)

    def list_sweeps(self, *, queues: Sequence[str] | None = None,
                    state: str | None = None) -> list[dict]:
        """Sweeps newest first (of ``queues``, in ``state``, when given)."""
        query = sa.select(t.sweeps).order_by(t.sweeps.c.id.desc())
        if queues is not None:
            query = query.where(t.sweeps.c.queue.in_(list(queues)))
        if state is not None:
            query = query.where(t.sweeps.c.state == state)
        with self.read() as conn:
            return [self._sweep_json(conn, row) for row in conn.execute(query).all()]

    def set_sweep_state(self, sweep_id: str, state: str, from_states: Sequence[str]) -> bool:
        """Move a sweep from one of ``from_states`` to ``state``; False when it was in none."""
        with self.write() as conn:
            result = conn.execute(t.sweeps.update().where(
                t.sweeps.c.id == sweep_id, t.sweeps.c.state.in_(list(from_states)))
                .values(state=state, updated_at=time.time()))
            if result.rowcount == 0 and conn.execute(sa.select(t.sweeps.c.id).where(
                    t.sweeps.c.id == sweep_id)).first() is None:
                raise self._unknown_sweep(sweep_id)
            return result.rowcount == 1

    def add_sweep_trial(self, sweep_id: str, trial: int, *, overrides: dict,
                        parameters: dict, proposal: dict) -> str | None:
        """Insert trial number ``trial`` of a running sweep as a queued item: exactly once.

        The sweep's ``proposed`` count goes from ``trial`` to ``trial + 1`` by one guarded
        UPDATE in the same transaction as the item's insert, so of two agents proposing the
        same trial one inserts it and the other gets None (as when the sweep was stopped).
        """
        now = time.time()
        with self.write() as conn:
            moved = conn.execute(t.sweeps.update().where(
                t.sweeps.c.id == sweep_id, t.sweeps.c.proposed == trial,
                t.sweeps.c.state == SWEEP_RUNNING).values(proposed=trial + 1, updated_at=now))
            if moved.rowcount != 1:
                return None
            sweep = conn.execute(sa.select(t.sweeps).where(t.sweeps.c.id == sweep_id)).one()
            job = self._job_record(conn, conn.execute(
                sa.select(t.jobs).where(t.jobs.c.id == sweep.job_id)).one())
            submit = json.loads(sweep.submit)
            item_id = self._insert_item(
                conn, job=job, queue=sweep.queue, overrides=overrides, parameters=parameters,
                priority=submit.get("priority", 1), timeout=submit.get("timeout"),
                template_values=submit.get("template_values") or {}, requeued_from=None,
                sweep_id=sweep_id, submitted_by=sweep.created_by)
            conn.execute(t.sweep_trials.insert().values(
                sweep_id=sweep_id, trial=trial, item_id=item_id, proposal=_dumps(proposal),
                pruned=None, created_at=now))
            return item_id

    def sweep_trials(self, sweep_id: str) -> list[dict]:
        """The sweep's trials in order: trial, item id, proposal, pruned (why), and the item's
        state, attempt, error stage, parameters and metric summary (latest attempt); state
        ``deleted`` when its item was deleted."""
        with self.read() as conn:
            rows = conn.execute(
                sa.select(t.sweep_trials, t.items.c.state, t.items.c.attempt,
                          t.items.c.error, t.items.c.parameters)
                .select_from(t.sweep_trials.outerjoin(
                    t.items, t.items.c.id == t.sweep_trials.c.item_id))
                .where(t.sweep_trials.c.sweep_id == sweep_id)
                .order_by(t.sweep_trials.c.trial)).all()
            found = [r for r in rows if r.state is not None]
            summaries = self._metric_summaries(conn, [
                SimpleNamespace(id=r.item_id, attempt=r.attempt) for r in found])
        return [{"trial": r.trial, "item": r.item_id, "proposal": json.loads(r.proposal),
                 "pruned": _loads(r.pruned), "state": r.state or "deleted",
                 "attempt": r.attempt,
                 "error_stage": (_loads(r.error) or {}).get("stage") if r.error else None,
                 "parameters": json.loads(r.parameters) if r.parameters else {},
                 "metrics": summaries.get(r.item_id, {})} for r in rows]

    def sweep_metric_values(self, sweep_id: str, name: str) -> dict[str, list[float]]:
        """item id -> the values of metric ``name`` its latest attempt logged, in order."""
        with self.read() as conn:
            rows = conn.execute(
                sa.select(t.metrics.c.item_id, t.metrics.c.value)
                .join(t.items, sa.and_(t.items.c.id == t.metrics.c.item_id,
                                       t.items.c.attempt == t.metrics.c.attempt))
                .where(t.items.c.sweep_id == sweep_id, t.metrics.c.name == name)
                .order_by(t.metrics.c.id)).all()
        values: dict[str, list[float]] = {}
        for r in rows:
            values.setdefault(r.item_id, []).append(r.value)
        return values

    def prune(self, item_id: str, reason: str, actor: str) -> bool:
        """Ask the run of a running sweep trial to stop: it ends ``cancelled`` with
        ``error.stage == "pruned"``. False when it is no longer running or already pruned."""
        with self.write() as conn:
            query = sa.select(t.items.c.state).where(t.items.c.id == item_id)
            if not self.is_sqlite:  # SQLite: BEGIN IMMEDIATE already serialises writers
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None or row.state not in ACTIVE:
                return False
            marked = conn.execute(t.sweep_trials.update().where(
                t.sweep_trials.c.item_id == item_id, t.sweep_trials.c.pruned.is_(None))
                .values(pruned=_dumps({"reason": reason, "by": actor, "at": time.time()})))
            if marked.rowcount != 1:
                return False
            conn.execute(t.items.update().where(t.items.c.id == item_id)
                         .values(cancel_requested=True, updated_at=time.time()))
            self._event(conn, item_id, "pruned", RUNNING, RUNNING, actor, {"reason": reason})
            return True

    def _pruned_error(self, conn: sa.Connection, item_id: str) -> dict | None:
        """The error a pruned trial ends with (``stage: pruned``), or None if not pruned."""
        pruned = conn.execute(sa.select(t.sweep_trials.c.pruned).where(
            t.sweep_trials.c.item_id == item_id)).scalar()
        if pruned is None:
            return None
        return {"message": f"pruned: {_loads(pruned).get('reason')}", "stage": "pruned",
                "cell": None}

    # -- schedules (cron) -----------------------------------------------------------------

    def create_schedule(self, *, name: str, job: JobRecord, queue: str, cron: str,
                        timezone: str, overrides: dict, parameters: dict,
                        template_values: dict, priority: int, timeout: float | None,
                        catch_up: bool, next_fire_at: float,
                        created_by: str | None = None) -> dict:
        """Record a schedule (active, first firing at ``next_fire_at``); ConflictError when
        the name is taken."""
        now = time.time()
        exists = ConflictError(f"schedule {name!r} already exists; see it with `jupyter launch "
                               f"schedule show {name}` or delete it first")
        try:
            with self.write() as conn:
                if conn.execute(sa.select(t.queues.c.name).where(t.queues.c.name == queue)
                                ).first() is None:
                    raise self._unknown_queue(conn, queue)
                if conn.execute(sa.select(t.schedules.c.name).where(
                        t.schedules.c.name == name)).first() is not None:
                    raise exists
                conn.execute(t.schedules.insert().values(
                    name=name, job_id=job.id, job=job.ref, queue=queue, cron=cron,
                    timezone=timezone, overrides=_dumps(overrides),
                    parameters=_dumps(parameters), template_values=_dumps(template_values),
                    priority=priority, timeout=timeout, catch_up=catch_up, paused=False,
                    next_fire_at=next_fire_at, last_fired_at=None, last_item=None,
                    created_by=created_by or whoami(), created_at=now, updated_at=now))
        except sa.exc.IntegrityError:  # created concurrently by someone else
            raise exists from None
        return self.get_schedule(name)

    @staticmethod
    def _schedule_json(row: Any, fired: int) -> dict:
        return {"name": row.name, "job": row.job, "job_id": row.job_id, "queue": row.queue,
                "cron": row.cron, "timezone": row.timezone,
                "overrides": json.loads(row.overrides),
                "parameters": json.loads(row.parameters),
                "template_values": json.loads(row.template_values),
                "priority": PRIORITY_NAMES.get(row.priority, str(row.priority)),
                "timeout": row.timeout, "catch_up": bool(row.catch_up),
                "paused": bool(row.paused), "state": "paused" if row.paused else "active",
                "next_fire_at": iso(row.next_fire_at), "next_fire_ts": row.next_fire_at,
                "last_fired_at": iso(row.last_fired_at), "last_item": row.last_item,
                "items": fired, "created_by": row.created_by,
                "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}

    def _schedules(self, conn: sa.Connection, query: Any) -> list[dict]:
        rows = conn.execute(query).all()
        fired = dict(conn.execute(
            sa.select(t.items.c.schedule, sa.func.count())
            .where(t.items.c.schedule.in_([r.name for r in rows]))
            .group_by(t.items.c.schedule)).all()) if rows else {}
        return [self._schedule_json(r, fired.get(r.name, 0)) for r in rows]

    def _unknown_schedule(self, conn: sa.Connection, name: str) -> NotFoundError:
        names = conn.execute(sa.select(t.schedules.c.name).order_by(t.schedules.c.name)
                             ).scalars().all()
        return NotFoundError(f"schedule {name!r} does not exist;{did_you_mean(name, names)} "
                             f"schedules: {', '.join(names) or '(none)'}. List them with "
                             "`jupyter launch schedule list`")

    def get_schedule(self, name: str) -> dict:
        """One schedule with how many items it made."""
        with self.read() as conn:
            found = self._schedules(conn, sa.select(t.schedules).where(
                t.schedules.c.name == name))
            if not found:
                raise self._unknown_schedule(conn, name)
            return found[0]

    def list_schedules(self, *, queues: Sequence[str] | None = None,
                       due_by: float | None = None) -> list[dict]:
        """Schedules by name (of ``queues``; with ``due_by`` only the active ones due by then,
        earliest first)."""
        query = sa.select(t.schedules).order_by(t.schedules.c.name)
        if queues is not None:
            query = query.where(t.schedules.c.queue.in_(list(queues)))
        if due_by is not None:
            query = query.where(t.schedules.c.paused == sa.false(),
                                t.schedules.c.next_fire_at <= due_by
                                ).order_by(None).order_by(t.schedules.c.next_fire_at)
        with self.read() as conn:
            return self._schedules(conn, query)

    def next_schedule_at(self, queues: Sequence[str]) -> float | None:
        """When the next active schedule of ``queues`` is due (epoch seconds), or None."""
        with self.read() as conn:
            return conn.execute(sa.select(sa.func.min(t.schedules.c.next_fire_at)).where(
                t.schedules.c.queue.in_(list(queues)),
                t.schedules.c.paused == sa.false())).scalar()

    def set_schedule_paused(self, name: str, paused: bool,
                            next_fire_at: float | None = None) -> bool:
        """Pause or resume (resuming sets ``next_fire_at``); False when it already was."""
        values: dict[str, Any] = {"paused": paused, "updated_at": time.time()}
        if next_fire_at is not None:
            values["next_fire_at"] = next_fire_at
        with self.write() as conn:
            was = sa.false() if paused else sa.true()
            result = conn.execute(t.schedules.update().where(
                t.schedules.c.name == name, t.schedules.c.paused == was).values(**values))
            if result.rowcount == 0 and conn.execute(sa.select(t.schedules.c.name).where(
                    t.schedules.c.name == name)).first() is None:
                raise self._unknown_schedule(conn, name)
            return result.rowcount == 1

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule; the items it made stay (still naming it)."""
        with self.write() as conn:
            if conn.execute(t.schedules.delete().where(t.schedules.c.name == name)
                            ).rowcount != 1:
                raise self._unknown_schedule(conn, name)

    def fire_schedule(self, name: str, due: float, next_fire_at: float, *,
                      make_item: bool, pause: bool = False) -> tuple[bool, str | None]:
        """Move an active schedule's firing from ``due`` to ``next_fire_at`` (with ``pause``:
        pause it, after its last firing) and, with ``make_item``, queue its item: exactly
        once however many agents try.

        The guarded UPDATE (``WHERE name=? AND next_fire_at=due``) and the item's insert are
        one transaction, so only the agent whose update moved the row inserts. Returns
        (moved, new item id or None).
        """
        now = time.time()
        with self.write() as conn:
            moved = conn.execute(t.schedules.update().where(
                t.schedules.c.name == name, t.schedules.c.next_fire_at == due,
                t.schedules.c.paused == sa.false()).values(next_fire_at=next_fire_at,
                                                        paused=pause, updated_at=now))
            if moved.rowcount != 1:
                return False, None
            if not make_item:
                return True, None
            row = conn.execute(sa.select(t.schedules).where(t.schedules.c.name == name)).one()
            job = self._job_record(conn, conn.execute(
                sa.select(t.jobs).where(t.jobs.c.id == row.job_id)).one())
            item_id = self._insert_item(
                conn, job=job, queue=row.queue, overrides=json.loads(row.overrides),
                parameters=json.loads(row.parameters), priority=row.priority,
                timeout=row.timeout, template_values=json.loads(row.template_values),
                requeued_from=None, sweep_id=None, submitted_by=row.created_by)
            conn.execute(t.items.update().where(t.items.c.id == item_id)
                         .values(schedule=name))
            conn.execute(t.schedules.update().where(t.schedules.c.name == name)
                         .values(last_fired_at=now, last_item=item_id))
            return True, item_id

    # -- agents ---------------------------------------------------------------------------

    def register_agent(self, agent_id: str, queues: Sequence[str], max_jobs: int,
                       wake: str | None) -> None:
        now = time.time()
        with self.write() as conn:
            conn.execute(t.agents.insert().values(
                id=agent_id, host=socket.gethostname(), pid=os.getpid(),
                queues=_dumps(list(queues)), max_jobs=max_jobs, started_at=now,
                heartbeat_at=now, stopped_at=None, wake=wake))

    def heartbeat_agent(self, agent_id: str) -> None:
        with self.write() as conn:
            conn.execute(t.agents.update().where(t.agents.c.id == agent_id)
                         .values(heartbeat_at=time.time()))

    def stop_agent(self, agent_id: str) -> None:
        with self.write() as conn:
            conn.execute(t.agents.update().where(t.agents.c.id == agent_id)
                         .values(stopped_at=time.time(), wake=None))

    def list_agents(self, *, include_stopped: bool = False) -> list[dict]:
        with self.read() as conn:
            query = sa.select(t.agents).order_by(t.agents.c.started_at)
            if not include_stopped:
                query = query.where(t.agents.c.stopped_at.is_(None))
            rows = conn.execute(query).all()
            running = dict(conn.execute(
                sa.select(t.attempts.c.agent_id, sa.func.count())
                .join(t.items, t.items.c.id == t.attempts.c.item_id)
                .where(t.items.c.state.in_(ACTIVE), t.attempts.c.attempt == t.items.c.attempt)
                .group_by(t.attempts.c.agent_id)).all())
            return [
                {"id": r.id, "host": r.host, "pid": r.pid, "queues": json.loads(r.queues),
                 "max_jobs": r.max_jobs, "started_at": iso(r.started_at),
                 "heartbeat_at": iso(r.heartbeat_at), "stopped_at": iso(r.stopped_at),
                 "heartbeat_age": round(time.time() - r.heartbeat_at, 3),
                 "running": running.get(r.id, 0)}
                for r in rows
            ]

    def wake_addresses(self, queue: str, max_age: float) -> list[str]:
        """Wake-up addresses of live agents (recent heartbeat) that serve ``queue``."""
        with self.read() as conn:
            rows = conn.execute(sa.select(t.agents.c.wake, t.agents.c.queues).where(
                t.agents.c.stopped_at.is_(None), t.agents.c.wake.is_not(None),
                t.agents.c.heartbeat_at > time.time() - max_age)).all()
            return [r.wake for r in rows if queue in json.loads(r.queues)]
