"""Migration v8: the indexes newest-first paging and state counts need on large stores, added
to a store made by an older launch-jupyter, on both backends; on SQLite, the paging queries
read them (no sort of every matching row)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from launch_jupyter.store import Store
from launch_jupyter.store import schema as t

V8 = {index.name for index in t.SCALE_INDEXES}


def _indexes(store: Store) -> set[str]:
    with store.read() as conn:
        return {i["name"] for i in sa.inspect(conn).get_indexes(t.items.name)}


def test_v8_adds_the_paging_indexes_to_an_older_store(store_url: str) -> None:
    store = Store(store_url)
    assert _indexes(store) >= V8
    with store.write() as conn:  # as a v7 store left it
        for name in V8:
            conn.exec_driver_sql(f"DROP INDEX {name}")
        conn.execute(t.schema_version.update().values(version=7))
    store.close()

    again = Store(store_url)
    assert again.schema_version() == t.LATEST_VERSION >= 8
    assert _indexes(again) >= V8
    again.close()


def test_sqlite_pages_read_an_index_in_id_order(home: Path) -> None:
    # PostgreSQL plans by its table statistics: its figures are in docs/benchmarks.md.
    store = Store(f"sqlite:///{home}/launch.db")
    pages = {
        "queue": "SELECT id FROM launch_items WHERE queue = 'local' ORDER BY id DESC LIMIT 20",
        "state": "SELECT id FROM launch_items WHERE state = 'failed' ORDER BY id DESC LIMIT 20",
        "queue and state": "SELECT id FROM launch_items WHERE queue = 'local' AND "
                           "state = 'failed' ORDER BY id DESC LIMIT 20",
        "job": "SELECT id FROM launch_items WHERE job_id = 1 ORDER BY id DESC LIMIT 20",
        "sweep": "SELECT id FROM launch_items WHERE sweep_id = 'x' ORDER BY id DESC LIMIT 20",
    }
    with store.read() as conn:
        for what, sql in pages.items():
            plan = " ".join(row[-1] for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {sql}").all())
            assert "USING" in plan and "INDEX" in plan, (what, plan)
            assert "TEMP B-TREE" not in plan, (what, plan)
    store.close()
