"""Metric points on both backends: stored by the lease holder only, summarised as they arrive,
read back in order from a cursor, shown on the item of their latest attempt."""

from __future__ import annotations

from launch_jupyter.store import Store

from .conftest import stored_job


def _claimed(store: Store) -> tuple[str, str]:
    job = stored_job(store)
    item = store.submit(job=job, queue="local", overrides={}, parameters={})
    claimed = store.claim("local", "agent-1", 30.0)
    assert claimed is not None and claimed["id"] == item["id"]
    return item["id"], "agent-1"


def test_points_are_stored_summarised_and_read_from_a_cursor(store_url: str) -> None:
    store = Store(store_url)
    item_id, token = _claimed(store)
    assert store.add_metrics(item_id, token, 1, [("loss", 0, 0.9, 1.0), ("loss", 1, 0.5, 2.0),
                                                 ("acc", 0, 0.6, 2.0)])
    assert store.add_metrics(item_id, token, 1, [("loss", 2, 0.7, 3.0)])
    summary = store.get_item(item_id)["metrics"]
    assert summary == {"loss": {"last": 0.7, "min": 0.5, "max": 0.9, "step": 2, "count": 3},
                       "acc": {"last": 0.6, "min": 0.6, "max": 0.6, "step": 0, "count": 1}}
    [listed] = store.list_items()[0]
    assert listed["metrics"] == summary
    points, cursor = store.metric_points(item_id, limit=2)
    assert [(p["name"], p["step"], p["value"]) for p in points] == [("loss", 0, 0.9),
                                                                    ("loss", 1, 0.5)]
    rest, end = store.metric_points(item_id, after=cursor)
    assert [(p["name"], p["step"]) for p in rest] == [("acc", 0), ("loss", 2)]
    assert store.metric_points(item_id, after=end) == ([], end)


def test_only_the_lease_holder_adds_points(store_url: str) -> None:
    store = Store(store_url)
    item_id, _ = _claimed(store)
    assert store.add_metrics(item_id, "somebody-else", 1, [("loss", 0, 1.0, 1.0)]) is False
    assert store.get_item(item_id)["metrics"] == {}
    assert store.metric_points(item_id)[0] == []


def test_deleting_an_item_deletes_its_points(store_url: str) -> None:
    store = Store(store_url)
    item_id, token = _claimed(store)
    store.add_metrics(item_id, token, 1, [("loss", 0, 1.0, 1.0)])
    assert store.finish(item_id, token, "succeeded")
    store.delete_item(item_id)
    with store.read() as conn:
        left = [conn.exec_driver_sql(f"SELECT count(*) FROM {table} WHERE item_id = "
                                     f"'{item_id}'").scalar()
                for table in ("launch_metrics", "launch_metric_summary")]
    assert left == [0, 0]
