"""Team scale on a real PostgreSQL: racing agent processes, and a server restart mid-run."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from launch_jupyter.api import Launch

from .conftest import (
    CLI,
    assert_agents_race_exactly_once,
    require_service,
    wait_for,
    write_script,
)


@pytest.fixture
def pg_client(postgres_url: str, home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LAUNCH_JUPYTER_STORE", postgres_url)
    monkeypatch.setenv("LAUNCH_JUPYTER_DATA_DIR", str(home))
    client = Launch(postgres_url)
    yield client
    client.close()


@pytest.mark.slow
def test_eight_agents_over_500_items_run_each_exactly_once(
    pg_client: Launch, cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAUNCH_JUPYTER_LEASE_TTL", "30")
    assert_agents_race_exactly_once(pg_client, cli, tmp_path, items=500, agents=8)


def test_postgres_restart_mid_run_loses_nothing_and_never_overlaps(
    pg_client: Launch, cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    restart = os.environ.get("LAUNCH_JUPYTER_TEST_POSTGRES_RESTART")
    if not restart:
        require_service("a PostgreSQL server this test may restart",
                        "LAUNCH_JUPYTER_TEST_POSTGRES_RESTART is not set")
    monkeypatch.setenv("LAUNCH_JUPYTER_LEASE_TTL", "10")
    marks = tmp_path / "marks.txt"
    path = write_script(tmp_path, "steady.py", f"""
        import fcntl, os, time
        item = os.environ["LAUNCH_ITEM_ID"]
        fd = os.open({str(tmp_path)!r} + "/" + item + ".lock", os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = "locked"
        except BlockingIOError:
            held = "OVERLAP"
        with open({str(marks)!r}, "a") as fh:
            fh.write(f"start {{item}} {{held}}\\n")
        print("working", flush=True)
        time.sleep(1.5)
        print("done", flush=True)
    """)
    ref = pg_client.create_job(path).ref
    items = [pg_client.submit(ref) for _ in range(8)]
    for _ in range(2):
        cli.popen("agent", "--max-jobs", "2")
    wait_for(lambda: marks.exists() and len(marks.read_text().splitlines()) >= 2, 60,
             what="runs to be under way")
    subprocess.run(shlex.split(restart), check=True, timeout=120)
    for item in items:
        wait_for(lambda item=item: _state(item) in ("succeeded", "failed", "cancelled"), 180,
                 what=f"item {item.id} to finish after the restart")
    assert [_state(i) for i in items] == ["succeeded"] * 8
    rows = [line.split() for line in marks.read_text().splitlines()]
    assert all(r[2] == "locked" for r in rows), rows
    assert {r[1] for r in rows} == {i.id for i in items}
    for item in items:
        assert "done" in item.logs()


def _state(item: object) -> str | None:
    try:
        return item.state  # type: ignore[attr-defined]
    except Exception:  # the server is still coming back
        time.sleep(0.2)
        return None
