"""What the fault tests check after a fault: the SQLite store is whole and tells one story.

``assert_store_consistent`` is the skeptic's look at a store file: SQLite's own integrity and
foreign-key checks, then for every item: its events form one unbroken chain of state changes
ending in its current state, it has one attempt row per attempt, its log chunks are contiguous
and add up to ``log_bytes``, and the store API can list it and read its whole log.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from launch_jupyter.store import Store


def assert_store_consistent(db_path: str | Path) -> dict[str, dict]:
    """Fail unless the SQLite store at ``db_path`` is consistent; returns its items by id."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=60)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = db.execute("SELECT id, state, attempt, log_bytes FROM launch_items").fetchall()
        for item_id, state, attempt, log_bytes in rows:
            events = db.execute(
                "SELECT kind, from_state, to_state FROM launch_events WHERE item_id = ? "
                "ORDER BY id", (item_id,)).fetchall()
            current = None
            for kind, from_state, to_state in events:
                assert from_state == current, (item_id, kind, from_state, current, events)
                current = to_state
            assert current == state, (item_id, state, events)
            attempts = db.execute("SELECT attempt FROM launch_attempts WHERE item_id = ? "
                                  "ORDER BY attempt", (item_id,)).fetchall()
            assert [a for (a,) in attempts] == list(range(1, attempt + 1)), (item_id, attempts)
            chunks = db.execute("SELECT offset, length(data) FROM launch_log_chunks "
                                "WHERE item_id = ? ORDER BY offset", (item_id,)).fetchall()
            end = 0
            for offset, size in chunks:
                assert offset == end, (item_id, "log chunks overlap or leave a hole", chunks)
                end += size
            assert end == log_bytes, (item_id, end, log_bytes)
    finally:
        db.close()
    store = Store(f"sqlite:///{db_path}", migrate=False)
    try:
        items, total = store.list_items()
        assert total == len(rows) == len(items)
        for item in items:
            data, _next = store.read_log(item["id"])
            assert len(data) == item["log_bytes"]
        return {item["id"]: item for item in items}
    finally:
        store.close()
