"""Queue concurrency limits: ``queue create|update --concurrency N`` caps the leased and
running items of a queue across all agents, on SQLite and on PostgreSQL.

Proved from the jobs' own start and end marks (each appends to one file, O_APPEND).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError
from launch_jupyter.store import Store
from tests.conftest import CLI, write_script

MARKING = """
    import os, time
    marks = {marks!r}

    def mark(what):
        fd = os.open(marks, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{{os.environ['LAUNCH_ITEM_ID']}} {{what}} {{time.time():.6f}}\\n".encode())
        os.close(fd)

    mark("start")
    time.sleep({seconds})
    mark("end")
"""


def most_at_once(marks: Path) -> int:
    """The largest number of jobs between their start and end marks at one time."""
    events = []
    for line in marks.read_text().splitlines():
        _item, what, at = line.split()
        events.append((float(at), 1 if what == "start" else -1))
    running = peak = 0
    for _at, step in sorted(events, key=lambda e: (e[0], e[1])):  # ends first on a tie
        running += step
        peak = max(peak, running)
    return peak


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, home: Path,
            monkeypatch: pytest.MonkeyPatch) -> Launch:
    """A client on each backend; agent processes started by ``cli`` use the same store."""
    url = (f"sqlite:///{home}/launch.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("LAUNCH_JUPYTER_STORE", url)
    launch = Launch(url)
    request.addfinalizer(launch.close)
    return launch


@pytest.mark.slow
def test_four_agents_never_run_more_than_the_queue_allows(
        backend: Launch, cli: CLI, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    path = write_script(tmp_path, "mark.py", MARKING.format(marks=str(marks), seconds=1.0))
    created = cli.json("queue", "create", "capped", "--concurrency", "2")
    assert created["concurrency"] == 2
    ref = backend.create_job(path).ref
    ids = [backend.submit(ref, queue="capped").id for _ in range(8)]

    procs = [cli.popen("agent", "-q", "capped", "--max-jobs", "2", "--until-idle")
             for _ in range(4)]
    for proc in procs:
        proc.wait(timeout=600)
        assert proc.returncode == 0, proc.stderr.read()

    assert [backend.item_info(i)["state"] for i in ids] == ["succeeded"] * 8
    assert most_at_once(marks) == 2  # the cap held, and it was reached
    assert len(marks.read_text().splitlines()) == 16


def test_claims_stop_at_the_cap_and_resume_when_a_slot_frees(backend: Launch,
                                                             tmp_path: Path) -> None:
    path = write_script(tmp_path, "job.py", "print('hi')\n")
    backend.create_queue("two", concurrency=2)
    ref = backend.create_job(path).ref
    for _ in range(4):
        backend.submit(ref, queue="two")
    store = Store(backend.config.store)
    try:
        first = store.claim("two", "agent-a", 30)
        second = store.claim("two", "agent-b", 30)
        assert first and second
        assert store.claim("two", "agent-c", 30) is None  # two leased: the queue is full
        assert store.start_run(first["id"], "agent-a", "run-1", 30, {})
        assert store.claim("two", "agent-c", 30) is None  # running counts as well
        assert store.finish(first["id"], "run-1", "succeeded", exit_code=0)
        assert store.claim("two", "agent-c", 30) is not None
    finally:
        store.close()


def test_queue_update_changes_and_lifts_the_limit(backend: Launch, cli: CLI,
                                                  tmp_path: Path) -> None:
    backend.create_queue("q")
    assert backend.queue("q")["concurrency"] is None
    assert cli.json("queue", "update", "q", "--concurrency", "3")["concurrency"] == 3
    shown = cli("queue", "show", "q", check=True).stdout
    assert "concurrency: 3" in shown
    assert "no concurrency limit" in cli("queue", "update", "q", "--concurrency", "0",
                                         check=True).stdout
    assert backend.queue("q")["concurrency"] is None


def test_bad_limits_are_refused_with_a_clear_message(client: Launch, cli: CLI) -> None:
    proc = cli("queue", "create", "q", "--concurrency", "-1")
    assert proc.returncode == 2
    assert "concurrency must be between 0 (no limit)" in proc.stderr
    proc = cli("queue", "update", "nope", "--concurrency", "2")
    assert proc.returncode == 2 and "queue 'nope' does not exist" in proc.stderr
    with pytest.raises(LaunchError, match="concurrency must be an integer"):
        client.create_queue("q2", concurrency="many")  # type: ignore[arg-type]
    assert cli("queue", "update", "q", "--concurrency", "x").returncode == 2  # argparse


def test_racing_claims_never_pass_the_cap(backend: Launch, tmp_path: Path) -> None:
    """Eight claimers at once, each with its own connection: two items leased, no more."""
    import threading

    path = write_script(tmp_path, "job.py", "print('hi')\n")
    backend.create_queue("race", concurrency=2)
    ref = backend.create_job(path).ref
    for _ in range(10):
        backend.submit(ref, queue="race")
    stores = [Store(backend.config.store) for _ in range(8)]
    start = threading.Barrier(len(stores))
    claimed: list[str] = []

    def claimer(store: Store, n: int) -> None:
        start.wait()
        for _ in range(5):
            item = store.claim("race", f"agent-{n}", 30)
            if item is not None:
                claimed.append(item["id"])

    threads = [threading.Thread(target=claimer, args=(s, n)) for n, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for store in stores:
            store.close()
    assert len(claimed) == 2 and len(set(claimed)) == 2
    assert backend.queue("race")["counts"]["leased"] == 2
