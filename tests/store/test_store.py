"""The SQL store on a real SQLite file: queues, claims, transitions, leases, logs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import ConflictError, NotFoundError, StoreError
from launch_jupyter.store import Store
from launch_jupyter.store.schema import LATEST_VERSION

from ..conftest import write_script


@pytest.fixture
def job(client: Launch, tmp_path: Path):
    path = write_script(tmp_path, "job.py", "print('hi')\n")
    return client.create_job(path)


def test_fresh_store_has_local_queue_and_current_schema(store_url: str) -> None:
    store = Store(store_url)
    assert [q["name"] for q in store.list_queues()] == ["local"]
    assert store.list_queues()[0]["runner"] == "local"
    assert store.schema_version() == LATEST_VERSION
    # Opening again migrates nothing and keeps the data.
    again = Store(store_url)
    assert again.schema_version() == LATEST_VERSION
    assert len(again.list_queues()) == 1


def test_store_refuses_a_newer_schema(store_url: str) -> None:
    store = Store(store_url)
    with store.write() as conn:
        conn.exec_driver_sql(f"UPDATE launch_schema_version SET version = {LATEST_VERSION + 1}")
    with pytest.raises(StoreError, match="upgrade launch-jupyter"):
        Store(store_url)


def test_claim_is_fifo_within_priority(client: Launch, job) -> None:
    low = client.submit(job, priority="low")
    first = client.submit(job)
    second = client.submit(job)
    urgent = client.submit(job, priority="critical")
    order = [client.store.claim("local", "a", 30)["id"] for _ in range(4)]
    assert order == [urgent.id, first.id, second.id, low.id]
    assert client.store.claim("local", "a", 30) is None


def test_paused_queue_is_not_claimed_until_resumed(client: Launch, job) -> None:
    client.create_queue("gpu")
    item = client.submit(job, queue="gpu")
    client.pause_queue("gpu")
    assert client.queue("gpu")["paused"] is True
    assert client.store.claim("gpu", "a", 30) is None
    client.resume_queue("gpu")
    assert client.store.claim("gpu", "a", 30)["id"] == item.id


def test_every_transition_is_guarded_and_recorded(client: Launch, job) -> None:
    item = client.submit(job)
    claimed = client.store.claim("local", "agent-a", 30)
    assert claimed["state"] == "leased" and claimed["attempt"] == 1
    # Not the lease holder: refused.
    assert not client.store.start_run(item.id, "agent-b", "tok", 30, {})
    assert client.store.start_run(item.id, "agent-a", "tok", 30, {})
    assert not client.store.finish(item.id, "agent-a", "succeeded")  # the run holds it now
    assert client.store.finish(item.id, "tok", "succeeded", exit_code=0)
    assert not client.store.finish(item.id, "tok", "failed")  # terminal never changes
    events = [(e["from"], e["to"]) for e in client.store.events(item.id)]
    assert events == [(None, "queued"), ("queued", "leased"), ("leased", "running"),
                      ("running", "succeeded")]
    data = client.item(item.id).info()
    assert data["state"] == "succeeded" and data["exit_code"] == 0
    assert data["attempts"][0]["start"] and data["attempts"][0]["end"]


def test_cancel_queued_is_immediate_and_finished_is_refused(client: Launch, job) -> None:
    item = client.submit(job)
    assert client.cancel(item.id)["state"] == "cancelled"
    with pytest.raises(ConflictError, match="already cancelled"):
        client.cancel(item.id)


def test_cancel_running_sets_the_flag_for_the_holder(client: Launch, job) -> None:
    item = client.submit(job)
    client.store.claim("local", "a", 30)
    client.store.start_run(item.id, "a", "tok", 30, {})
    assert client.cancel(item.id)["state"] == "running"
    held, cancel = client.store.renew(item.id, "tok", 30)
    assert held and cancel


def test_requeue_makes_a_new_linked_item_and_keeps_the_old(client: Launch, job) -> None:
    item = client.submit(job, overrides=[], priority="high")
    client.cancel(item.id)
    new = client.requeue(item.id)
    assert new.id != item.id
    data = new.info()
    assert data["requeued_from"] == item.id and data["priority"] == "high"
    assert data["state"] == "queued"
    assert client.item(item.id).state == "cancelled"


def test_requeue_of_an_unfinished_item_is_refused(client: Launch, job) -> None:
    item = client.submit(job)
    with pytest.raises(ConflictError, match="Cancel it first"):
        client.requeue(item.id)


def test_lapsed_lease_requeues_then_fails_as_agent_lost(client: Launch, job) -> None:
    client.create_queue("q", max_attempts=2)
    item = client.submit(job, queue="q")
    for attempt in (1, 2):
        claimed = client.store.claim("q", "gone", 0.01)
        assert claimed["attempt"] == attempt
        time.sleep(0.02)  # let the 10 ms lease lapse
        expired = [r["id"] for r in client.store.expired_leases()]
        assert expired == [item.id]
        client.store.recover(item.id, "gone", "reaper")
    data = client.item(item.id).info()
    assert data["state"] == "failed"
    assert "agent lost" in data["error"]["message"]
    assert [a["attempt"] for a in data["attempts"]] == [1, 2]
    assert all("lease lapsed" in a["error"]["message"] for a in data["attempts"])


def test_hand_back_uses_no_attempt(client: Launch, job) -> None:
    item = client.submit(job)
    client.store.claim("local", "a", 30)
    assert client.store.hand_back(item.id, "a")
    data = client.item(item.id).info()
    assert data["state"] == "queued" and data["attempt"] == 0 and data["attempts"] == []


def test_log_chunks_read_from_any_byte_offset(client: Launch, job) -> None:
    item = client.submit(job)
    client.store.claim("local", "a", 30)
    client.store.start_run(item.id, "a", "tok", 30, {})
    for part in ("héllo ", "wörld\n", "bye\n"):
        client.store.append_log(item.id, "tok", 1, part.encode())
    text, end = client.logs(item.id)
    assert text == "héllo wörld\nbye\n" and end == len(text.encode())
    tail, end2 = client.logs(item.id, len("héllo wö".encode()))
    assert tail == "rld\nbye\n" and end2 == end
    assert client.logs(item.id, end) == ("", end)
    # Someone without the lease cannot write.
    assert client.store.append_log(item.id, "other", 1, b"x") is None


def test_delete_queue_refuses_unfinished_items_unless_forced(client: Launch, job) -> None:
    client.create_queue("tmp")
    client.submit(job, queue="tmp")
    with pytest.raises(ConflictError, match="--force"):
        client.delete_queue("tmp")
    assert client.delete_queue("tmp", force=True) == 1
    with pytest.raises(NotFoundError):
        client.queue("tmp")
    assert client.items() == []


def test_duplicate_queue_is_a_conflict(client: Launch) -> None:
    with pytest.raises(ConflictError, match="already exists"):
        client.create_queue("local")


def test_items_list_filters_and_pages(client: Launch, job) -> None:
    ids = [client.submit(job).id for _ in range(5)]
    client.cancel(ids[0])
    assert [i["id"] for i in client.items(state="queued")] == ids[:0:-1]
    assert len(client.items(limit=2, offset=1)) == 2
    items, total = client.store.list_items(limit=2)
    assert total == 5 and len(items) == 2
