"""Requeue honours an idempotency key: the same key on the same item answers the same new item
(security row 10), on SQLite and on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from launch_jupyter.errors import LaunchError
from launch_jupyter.store import Store

from .conftest import stored_job


@pytest.fixture
def store(store_url: str) -> Store:
    return Store(store_url)


@pytest.fixture
def finished(store: Store) -> str:
    """A cancelled item (finished, so it can be requeued)."""
    item = store.submit(job=stored_job(store), queue="local", overrides={}, parameters={})
    store.request_cancel(item["id"])
    return item["id"]


def requeued_from(store: Store, item_id: str) -> list[str]:
    items, _ = store.list_items()
    return sorted(i["id"] for i in items if i["requeued_from"] == item_id)


def test_concurrent_requeues_with_one_key_make_one_item(store: Store, finished: str) -> None:
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(
            lambda _: store.requeue(finished, idempotency_key="click-1")["id"], range(3)))
    assert len(set(answers)) == 1
    assert requeued_from(store, finished) == answers[:1]
    # A later retry of the same request still answers that item, not a new one.
    assert store.requeue(finished, idempotency_key="click-1")["id"] == answers[0]


def test_different_keys_or_no_key_make_separate_items(store: Store, finished: str) -> None:
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(
            lambda n: store.requeue(finished, idempotency_key=f"click-{n}")["id"], range(3)))
    assert len(set(answers)) == 3
    unkeyed = [store.requeue(finished)["id"] for _ in range(2)]
    assert len(set(unkeyed)) == 2
    assert requeued_from(store, finished) == sorted(answers + unkeyed)


def test_a_key_is_per_source_item(store: Store, finished: str) -> None:
    first = store.requeue(finished, idempotency_key="same")
    store.request_cancel(first["id"])
    second = store.requeue(first["id"], idempotency_key="same")
    assert second["id"] != first["id"] and second["requeued_from"] == first["id"]


def test_deleting_the_new_item_frees_its_key(store: Store, finished: str) -> None:
    first = store.requeue(finished, idempotency_key="k")
    store.delete_item(first["id"])
    again = store.requeue(finished, idempotency_key="k")
    assert again["id"] != first["id"]
    assert requeued_from(store, finished) == [again["id"]]


@pytest.mark.parametrize("key", ["", "a b", "x" * 256, "é", "a\nb", "\0"])
def test_malformed_keys_are_refused_and_change_nothing(store: Store, finished: str,
                                                       key: str) -> None:
    with pytest.raises(LaunchError, match="idempotency key"):
        store.requeue(finished, idempotency_key=key)
    assert requeued_from(store, finished) == []


def test_a_version_1_store_gains_the_keys_on_open(store_url: str) -> None:
    from launch_jupyter.store import schema
    from launch_jupyter.store.sql import create_engine

    engine = create_engine(store_url)
    with engine.begin() as conn:  # a store as launch-jupyter with schema 1 left it
        schema.schema_version.create(conn)
        schema.MIGRATIONS[0][1](conn)
        conn.execute(schema.schema_version.insert().values(version=1))
    engine.dispose()
    store = Store(store_url)
    assert store.schema_version() == schema.LATEST_VERSION >= 2
    store.create_queue("local")
    item = store.submit(job=stored_job(store), queue="local", overrides={}, parameters={})
    store.request_cancel(item["id"])
    first = store.requeue(item["id"], idempotency_key="k")
    assert store.requeue(item["id"], idempotency_key="k")["id"] == first["id"]
