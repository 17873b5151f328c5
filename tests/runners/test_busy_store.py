"""SQLite locked by another writer for seconds: operations wait, retry and succeed."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from launch_jupyter.api import Launch

from ..conftest import wait_for, write_script


def test_a_writer_holding_the_lock_for_seconds_loses_nothing(
    client: Launch, agent: object, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    path = write_script(tmp_path, "busy.py", f"""
        import os, time
        print("before the lock", flush=True)
        deadline = time.time() + 60
        while not os.path.exists({str(go)!r}) and time.time() < deadline:
            time.sleep(0.02)
        print("after the lock", flush=True)
    """)
    job = client.create_job(path)
    running = client.submit(job)
    wait_for(lambda: "before the lock" in running.logs(), 60, what="the job to start")

    locker = sqlite3.connect(home / "launch.db", timeout=1, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # the whole store is now write-locked
    submitted: list[str] = []
    submit = threading.Thread(target=lambda: submitted.append(client.submit(job).id))
    submit.start()
    go.touch()  # the job finishes while the lock is held: its outcome must wait, not vanish
    try:
        time.sleep(4)  # hold the lock: the point of this test is a lock that lasts seconds
        assert submitted == [] and running.info(refresh=True)["state"] == "running"
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    submit.join(30)
    assert len(submitted) == 1
    running.wait(60)
    assert running.state == "succeeded"
    assert "after the lock" in running.logs()
    second = client.item(submitted[0]).wait(60)
    assert second.state == "succeeded"
    db = sqlite3.connect(home / "launch.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM launch_items").fetchone() == (2,)
    finally:
        db.close()
