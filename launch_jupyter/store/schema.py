"""Table definitions and the ordered list of schema migrations.

Migrations are plain functions applied in order on open; the applied version is kept in
``schema_version``. Never edit a released migration: append a new one.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "launch_schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

jobs = sa.Table(
    "launch_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.UniqueConstraint("name", "version", name="uq_job_version"),
    sa.UniqueConstraint("name", "digest", name="uq_job_digest"),
)

job_files = sa.Table(
    "launch_job_files",
    metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("launch_jobs.id"), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
)

job_aliases = sa.Table(
    "launch_job_aliases",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("alias", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

queues = sa.Table(
    "launch_queues",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("runner", sa.String(32), nullable=False),
    sa.Column("config", sa.Text, nullable=False, default="{}"),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("timeout", sa.Float, nullable=True),
    sa.Column("paused", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # v6: at most this many leased or running items at once, across all agents (None: no cap)
    sa.Column("concurrency", sa.Integer, nullable=True),
)

items = sa.Table(
    "launch_items",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("queue", sa.String(63), nullable=False),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("launch_jobs.id"), nullable=False),
    sa.Column("job", sa.String(80), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("overrides", sa.Text, nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),
    sa.Column("template_values", sa.Text, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("timeout", sa.Float, nullable=True),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("warning", sa.Text, nullable=True),
    sa.Column("outputs", sa.Text, nullable=False, default="[]"),
    sa.Column("run_info", sa.Text, nullable=False, default="{}"),
    sa.Column("requeued_from", sa.String(26), nullable=True),
    sa.Column("sweep_id", sa.String(26), nullable=True),
    sa.Column("submitted_by", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("log_bytes", sa.BigInteger, nullable=False, default=0),
    # v5: the running cell of a notebook run (JSON), each cell's seconds once it ends (JSON),
    # and where its executed notebook is (written after every cell).
    sa.Column("progress", sa.Text, nullable=True),
    sa.Column("cell_times", sa.Text, nullable=True),
    sa.Column("executed_notebook", sa.Text, nullable=True),
    # v7: the cron schedule that made the item (None: submitted by hand)
    sa.Column("schedule", sa.String(63), nullable=True),
    sa.Index("ix_items_claim", "queue", "state", "priority", "id"),
    sa.Index("ix_items_lease", "state", "lease_expires_at"),
)

attempts = sa.Table(
    "launch_attempts",
    metadata,
    sa.Column("item_id", sa.String(26), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("agent_id", sa.String(128), nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

events = sa.Table(
    "launch_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.String(26), nullable=False, index=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=True),
    sa.Column("actor", sa.String(128), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
)

agents = sa.Table(
    "launch_agents",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("queues", sa.Text, nullable=False),
    sa.Column("max_jobs", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("stopped_at", sa.Float, nullable=True),
    sa.Column("wake", sa.String(255), nullable=True),
)

log_chunks = sa.Table(
    "launch_log_chunks",
    metadata,
    sa.Column("item_id", sa.String(26), primary_key=True),
    sa.Column("offset", sa.BigInteger, primary_key=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

requeue_keys = sa.Table(
    "launch_requeue_keys",
    metadata,
    sa.Column("item_id", sa.String(26), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("new_item_id", sa.String(26), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


metrics = sa.Table(
    "launch_metrics",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("item_id", sa.String(26), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Index("ix_metrics_item", "item_id", "attempt", "id"),
)

#: Per item, attempt and metric: last value (and its step), min, max and count, kept as points
#: arrive so listings never scan the points.
metric_summary = sa.Table(
    "launch_metric_summary",
    metadata,
    sa.Column("item_id", sa.String(26), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("last", sa.Float, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("min", sa.Float, nullable=False),
    sa.Column("max", sa.Float, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
)


#: Durable sweeps: the search's state, so whichever agent serves the queue proposes the next
#: trial (docs/usage.md "Sweeps"). ``proposed`` is advanced by one guarded UPDATE in the same
#: transaction that inserts the trial's item, so no two agents ever propose trial N.
sweeps = sa.Table(
    "launch_sweeps",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("launch_jobs.id"), nullable=False),
    sa.Column("job", sa.String(80), nullable=False),
    sa.Column("queue", sa.String(63), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("metric", sa.String(255), nullable=True),
    sa.Column("goal", sa.String(16), nullable=True),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("submit", sa.Text, nullable=False),
    sa.Column("run_cap", sa.Integer, nullable=True),
    sa.Column("parallel", sa.Integer, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("proposed", sa.Integer, nullable=False, default=0),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_sweeps_queue", "queue", "state"),
)

#: One row per trial: which item runs it, how it was proposed (sampler, seed, the trials it
#: learnt from) and, once an agent prunes it, why.
sweep_trials = sa.Table(
    "launch_sweep_trials",
    metadata,
    sa.Column("sweep_id", sa.String(26), primary_key=True),
    sa.Column("trial", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.String(26), nullable=False, unique=True),
    sa.Column("proposal", sa.Text, nullable=False),
    sa.Column("pruned", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)


#: v6 run-after: item ``item_id`` starts only once ``upstream_id`` has succeeded (and is
#: cancelled when it fails or is cancelled). Claims test it with NOT EXISTS; the index on
#: ``upstream_id`` finds an ending item's dependents in its finish transaction.
item_deps = sa.Table(
    "launch_item_deps",
    metadata,
    sa.Column("item_id", sa.String(26), primary_key=True),
    sa.Column("upstream_id", sa.String(26), primary_key=True),
    sa.Index("ix_item_deps_upstream", "upstream_id"),
)


#: v7 cron schedules: whichever agent serves the queue fires a due schedule; ``next_fire_at``
#: moves by one guarded UPDATE in the same transaction as the item's insert, so each firing
#: makes exactly one item however many agents run (docs/usage.md "Schedules").
schedules = sa.Table(
    "launch_schedules",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("launch_jobs.id"), nullable=False),
    sa.Column("job", sa.String(80), nullable=False),
    sa.Column("queue", sa.String(63), nullable=False),
    sa.Column("cron", sa.String(255), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("overrides", sa.Text, nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),
    sa.Column("template_values", sa.Text, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("timeout", sa.Float, nullable=True),
    sa.Column("catch_up", sa.Boolean, nullable=False, default=False),
    sa.Column("paused", sa.Boolean, nullable=False, default=False),
    sa.Column("next_fire_at", sa.Float, nullable=False),
    sa.Column("last_fired_at", sa.Float, nullable=True),
    sa.Column("last_item", sa.String(26), nullable=True),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_schedules_due", "queue", "paused", "next_fire_at"),
)


def _v1(conn: sa.Connection) -> None:
    """The initial schema."""
    metadata.create_all(
        conn,
        tables=[jobs, job_files, job_aliases, queues, items, attempts, events, agents, log_chunks],
    )


def _v2(conn: sa.Connection) -> None:
    """Idempotency keys of requeues: the same key on the same item gives the same new item."""
    metadata.create_all(conn, tables=[requeue_keys])


def _v3(conn: sa.Connection) -> None:
    """Metric points logged by runs (``launch_jupyter.log``) and their running summary."""
    metadata.create_all(conn, tables=[metrics, metric_summary])


def _v4(conn: sa.Connection) -> None:
    """Durable sweeps and their trials."""
    metadata.create_all(conn, tables=[sweeps, sweep_trials])


def _v5(conn: sa.Connection) -> None:
    """Cell progress of notebook runs: the running cell, cell durations, executed notebook."""
    present = {c["name"] for c in sa.inspect(conn).get_columns(items.name)}
    for name in ("progress", "cell_times", "executed_notebook"):
        if name not in present:  # a store created at v5 or later has them from _v1
            conn.exec_driver_sql(f"ALTER TABLE {items.name} ADD COLUMN {name} TEXT")


def _v6(conn: sa.Connection) -> None:
    """Run-after dependencies between items, and queue concurrency limits."""
    metadata.create_all(conn, tables=[item_deps])
    present = {c["name"] for c in sa.inspect(conn).get_columns(queues.name)}
    if "concurrency" not in present:  # a store created at v6 or later has it from _v1
        conn.exec_driver_sql(f"ALTER TABLE {queues.name} ADD COLUMN concurrency INTEGER")


def _v7(conn: sa.Connection) -> None:
    """Cron schedules, and which schedule made an item."""
    metadata.create_all(conn, tables=[schedules])
    present = {c["name"] for c in sa.inspect(conn).get_columns(items.name)}
    if "schedule" not in present:  # a store created at v7 or later has it from _v1
        conn.exec_driver_sql(f"ALTER TABLE {items.name} ADD COLUMN schedule VARCHAR(63)")


#: v8 indexes for large stores (100,000 items, 10 million log chunks): newest-first pages of
#: one queue, state (with or without a queue), job or sweep read only the rows they show, and
#: per-state counts read an index instead of the table. They attach to ``items``, so a store
#: created at v8 or later has them from _v1.
SCALE_INDEXES = (
    sa.Index("ix_items_queue_id", items.c.queue, items.c.id),
    sa.Index("ix_items_state_id", items.c.state, items.c.id),
    sa.Index("ix_items_queue_state_id", items.c.queue, items.c.state, items.c.id),
    sa.Index("ix_items_job_id", items.c.job_id, items.c.id),
    sa.Index("ix_items_sweep_id", items.c.sweep_id, items.c.id),
)


def _v8(conn: sa.Connection) -> None:
    """Indexes for newest-first paging and state counts on large stores."""
    for index in SCALE_INDEXES:
        index.create(conn, checkfirst=True)


#: (version, migration) in the order they apply.
MIGRATIONS: list[tuple[int, Callable[[sa.Connection], None]]] = [(1, _v1), (2, _v2), (3, _v3),
                                                                  (4, _v4), (5, _v5), (6, _v6),
                                                                  (7, _v7), (8, _v8)]
LATEST_VERSION = MIGRATIONS[-1][0]
