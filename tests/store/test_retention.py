"""Retention (`jupyter launch store vacuum`) on both backends: only finished items older than
asked, or beyond each queue's newest N, go, with their logs, attempts, events, metrics and run
folders; queued, leased and running items never do; the store stays consistent."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from launch_jupyter.api import Launch
from launch_jupyter.errors import NotFoundError, ParameterError
from launch_jupyter.store import CANCELLED, FAILED, SUCCEEDED, JobRecord, Store
from launch_jupyter.store import schema as t

from ..conftest import CLI
from ..integrity import assert_store_consistent
from .conftest import stored_job

DAY = 86400.0
ITEM_TABLES = (t.log_chunks, t.events, t.attempts, t.metrics, t.metric_summary)


@pytest.fixture
def launch(store_url: str, home: Path) -> Iterator[Launch]:
    client = Launch(store_url, data_dir=str(home))
    yield client
    client.close()


def backdate(store: Store, item_id: str, days: float) -> None:
    """Move an item's times ``days`` into the past, as if it had been submitted then."""
    shift = days * DAY
    with store.write() as conn:
        conn.execute(t.items.update().where(t.items.c.id == item_id).values(
            created_at=t.items.c.created_at - shift,
            finished_at=t.items.c.finished_at - shift))


def run(launch: Launch, job: JobRecord, *, queue: str = "local", end: str | None = SUCCEEDED,
        log: bytes = b"", days_ago: float = 0.0) -> str:
    """An item that ran through the store's lease protocol: leased, running (a run folder,
    log chunks, a metric), then ``end`` (None: still running); finished ``days_ago``."""
    store = launch.store
    item = store.submit(job=job, queue=queue, overrides={}, parameters={},
                        lease_owner="agent-1")
    folder = launch.config.runs_dir / item["id"] / "1"
    folder.mkdir(parents=True)
    (folder / "job.py").write_bytes(b"print('hi')\n" * 10)
    assert store.start_run(item["id"], "agent-1", "run-1", 30, {"run_dir": str(folder)})
    for piece in (log[: len(log) // 2], log[len(log) // 2:]):
        if piece:
            store.append_log(item["id"], "run-1", 1, piece)
    assert store.add_metrics(item["id"], "run-1", 1, [("loss", 0, 0.5, time.time())])
    if end is not None:
        assert store.finish(item["id"], "run-1", end, exit_code=0 if end == SUCCEEDED else 1)
    backdate(store, item["id"], days_ago)
    return item["id"]


def queued(launch: Launch, job: JobRecord, *, queue: str = "local", days_ago: float = 0.0,
           after: tuple[str, ...] = ()) -> str:
    item = launch.store.submit(job=job, queue=queue, overrides={}, parameters={}, after=after)
    backdate(launch.store, item["id"], days_ago)
    return item["id"]


def rows_of(store: Store, ids: list[str]) -> int:
    """How many rows of the per-item tables (logs, events, attempts, metrics) ``ids`` have."""
    with store.read() as conn:
        return sum(conn.execute(sa.select(sa.func.count()).select_from(table)
                                .where(table.c.item_id.in_(ids))).scalar()
                   for table in ITEM_TABLES)


def assert_consistent(launch: Launch, store_url: str) -> None:
    """The integrity check of the fault tests on SQLite; on PostgreSQL the same item checks
    through the store API: events chain to the state, whole logs, one attempt row each."""
    if store_url.startswith("sqlite:///"):
        assert_store_consistent(store_url[len("sqlite:///"):])
        return
    items, total = launch.store.list_items()
    assert total == len(items)
    for item in items:
        current = None
        for event in launch.store.events(item["id"]):
            assert event["from"] == current, (item["id"], event)
            current = event["to"]
        assert current == item["state"]
        assert [a["attempt"] for a in item["attempts"]] == list(range(1, item["attempt"] + 1))
        assert len(launch.store.read_log(item["id"])[0]) == item["log_bytes"]


def test_keep_days_deletes_only_finished_items_older_than_asked(launch: Launch,
                                                                store_url: str) -> None:
    job = stored_job(launch.store)
    old = [run(launch, job, end=SUCCEEDED, log=b"x" * 1000, days_ago=10),
           run(launch, job, end=FAILED, log=b"y" * 500, days_ago=8)]
    cancelled_early = queued(launch, job)
    launch.store.request_cancel(cancelled_early)
    backdate(launch.store, cancelled_early, 30)
    old.append(cancelled_early)
    recent = run(launch, job, end=SUCCEEDED, log=b"z" * 10, days_ago=1)
    running = run(launch, job, end=None, log=b"r" * 10, days_ago=20)
    waiting = queued(launch, job, days_ago=20)
    leased = launch.store.submit(job=job, queue="local", overrides={}, parameters={},
                                 lease_owner="agent-2")["id"]
    backdate(launch.store, leased, 20)

    report = launch.vacuum(keep_days=5)

    assert report["items"] == 3 and report["queues"] == {"local": 3}
    assert report["log_bytes"] == 1500
    assert report["run_folders"] == 2 and report["run_folder_bytes"] == 2 * 120
    assert not report["dry_run"]
    for item_id in old:
        with pytest.raises(NotFoundError):
            launch.item_info(item_id)
        assert not (launch.config.runs_dir / item_id).exists()
    assert rows_of(launch.store, old) == 0
    states = launch.store.states([recent, running, waiting, leased])
    assert states == {recent: SUCCEEDED, running: "running", waiting: "queued",
                      leased: "leased"}
    assert (launch.config.runs_dir / recent).is_dir()
    assert (launch.config.runs_dir / running).is_dir()
    assert launch.logs(running)[0] == "r" * 10
    assert_consistent(launch, store_url)
    # Nothing more is old enough: a second run frees nothing.
    assert launch.vacuum(keep_days=5)["items"] == 0


def test_keep_last_keeps_each_queues_newest_finished_items(launch: Launch,
                                                           store_url: str) -> None:
    job = stored_job(launch.store)
    launch.create_queue("gpu")
    local = [run(launch, job, end=end, log=b"l" * 10)
             for end in (SUCCEEDED, FAILED, SUCCEEDED, CANCELLED, SUCCEEDED)]
    gpu = [run(launch, job, queue="gpu", end=SUCCEEDED, log=b"g" * 10) for _ in range(2)]
    waiting = queued(launch, job, days_ago=100)

    report = launch.vacuum(keep_last=2)

    assert report["items"] == 3 and report["queues"] == {"local": 3}
    assert report["log_bytes"] == 30 and report["run_folders"] == 3
    remaining = {i["id"] for i in launch.items()}
    assert remaining == {*local[3:], *gpu, waiting}
    assert rows_of(launch.store, local[:3]) == 0
    assert_consistent(launch, store_url)


def test_an_item_either_rule_keeps_stays(launch: Launch) -> None:
    job = stored_job(launch.store)
    ancient = [run(launch, job, days_ago=40 - n) for n in range(3)]
    fresh = [run(launch, job) for _ in range(3)]

    report = launch.vacuum(keep_days=7, keep_last=4)

    # The newest 4 are kept by --keep-last (one of them old), the fresh ones by --keep-days.
    assert report["items"] == 2
    assert {i["id"] for i in launch.items()} == {ancient[2], *fresh}


def test_dry_run_reports_what_would_be_freed_and_deletes_nothing(launch: Launch) -> None:
    job = stored_job(launch.store)
    ids = [run(launch, job, log=b"a" * 100, days_ago=3) for _ in range(2)]

    report = launch.vacuum(keep_days=1, dry_run=True)

    assert report["dry_run"] and report["items"] == 2 and report["log_bytes"] == 200
    assert report["run_folders"] == 2
    assert {i["id"] for i in launch.items()} == set(ids)
    assert all((launch.config.runs_dir / i).is_dir() for i in ids)
    assert rows_of(launch.store, ids) > 0


def test_what_an_unfinished_item_runs_after_is_kept(launch: Launch) -> None:
    job = stored_job(launch.store)
    upstream = run(launch, job, days_ago=10)
    lone = run(launch, job, days_ago=10)
    dependent = queued(launch, job, after=(upstream,))
    # No agent runs here: the dependent stays queued while retention runs.
    assert launch.store.states([dependent]) == {dependent: "queued"}

    report = launch.vacuum(keep_days=1)

    assert report["items"] == 1
    assert launch.store.states([upstream, lone, dependent]) == {upstream: SUCCEEDED,
                                                                dependent: "queued"}


def test_rules_are_checked_before_anything_is_deleted(launch: Launch) -> None:
    job = stored_job(launch.store)
    item = run(launch, job, days_ago=10)
    with pytest.raises(ParameterError, match="--keep-days N"):
        launch.vacuum()
    for bad in ({"keep_days": -1}, {"keep_days": "soon"}, {"keep_last": -2},
                {"keep_last": 1.5}, {"keep_days": float("nan")},
                {"keep_days": 1, "dry_run": "no"}):
        with pytest.raises(ParameterError):
            launch.vacuum(**bad)
    assert launch.store.states([item]) == {item: SUCCEEDED}


def test_rules_beyond_any_store_keep_everything(launch: Launch) -> None:
    job = stored_job(launch.store)
    item = run(launch, job, days_ago=10)
    report = launch.vacuum(keep_last=10**20, keep_days=1e308)  # SQL integers are 64 bits
    assert report["items"] == 0 and report["keep_last"] == 10**20
    assert launch.vacuum(keep_last=10**20)["items"] == 0
    assert launch.store.states([item]) == {item: SUCCEEDED}


def test_store_vacuum_command_reports_what_it_freed(cli: CLI, home: Path) -> None:
    launch = Launch(f"sqlite:///{home}/launch.db")
    try:
        job = stored_job(launch.store)
        gone = run(launch, job, log=b"q" * 2048, days_ago=9)
        kept = run(launch, job, days_ago=1)
    finally:
        launch.close()

    dry = cli("store", "vacuum", "--keep-days", "2", "--dry-run", check=True)
    assert dry.stdout.startswith("would free (--keep-days 2): 1 finished item(s) (local 1), "
                                 "2.0K of logs, 1 run folder(s)")
    report = json.loads(cli("store", "vacuum", "--keep-days", "2", "--json",
                            check=True).stdout)
    assert report["items"] == 1 and report["log_bytes"] == 2048 and report["run_folders"] == 1
    assert not (home / "runs" / gone).exists() and (home / "runs" / kept).is_dir()
    again = cli("store", "vacuum", "--keep-last", "5", check=True)
    assert again.stdout.startswith("freed (--keep-last 5): 0 finished item(s), 0B of logs")
    for argv in (["store", "vacuum"], ["store", "vacuum", "--keep-last", "-1"],
                 ["store", "vacuum", "--keep-days", "x"]):
        proc = cli(*argv)
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        assert "keep" in proc.stderr
    assert_store_consistent(home / "launch.db")


def test_trials_of_a_sweep_still_proposing_are_kept(launch: Launch) -> None:
    from launch_jupyter.store import SWEEP_FINISHED, SWEEP_RUNNING
    from launch_jupyter.store.ids import new_id

    store = launch.store
    job = stored_job(store)
    sweep = store.create_sweep(sweep_id=new_id(), job=job, queue="local", method="grid",
                               metric=None, goal=None, config={}, submit={}, run_cap=None,
                               parallel=1, seed=0)["id"]
    trial = store.add_sweep_trial(sweep, 0, overrides={}, parameters={}, proposal={})
    claimed = store.claim("local", "agent-1", 30)
    assert claimed["id"] == trial
    assert store.start_run(trial, "agent-1", "run-1", 30, {})
    assert store.finish(trial, "run-1", SUCCEEDED, exit_code=0)
    backdate(store, trial, 10)

    assert launch.vacuum(keep_days=1)["items"] == 0
    assert store.set_sweep_state(sweep, SWEEP_FINISHED, [SWEEP_RUNNING])
    assert launch.vacuum(keep_days=1)["items"] == 1
    assert store.sweep_trials(sweep)[0]["state"] == "deleted"
