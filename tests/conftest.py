"""Shared fixtures: a SQLite store in a tmp dir, a client, CLI and agent processes.

Everything a test starts (agent processes, supervisors, jobs) is killed when it ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest

from launch_jupyter.api import Launch

TTL = 10.0  # leases in tests: short enough to be seen lapsing, long enough for a loaded box
SHORT_TTL = 5.0  # recovery tests, where a lease must lapse quickly


def wait_for(cond: Callable[[], object], timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> object:
    """Poll ``cond`` until truthy; fail the test with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _processes_mentioning(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().decode(errors="replace")
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            pids.append(int(entry))
    return pids


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder for the store and runs; kills every process that mentions it at the end."""
    root = tmp_path / "launch"
    root.mkdir()
    url = f"sqlite:///{root}/launch.db"
    monkeypatch.setenv("LAUNCH_JUPYTER_STORE", url)
    monkeypatch.setenv("LAUNCH_JUPYTER_LEASE_TTL", str(TTL))
    monkeypatch.setenv("LAUNCH_JUPYTER_CANCEL_GRACE", "2")
    monkeypatch.delenv("LAUNCH_ITEM_ID", raising=False)
    yield root
    for _ in range(3):
        pids = _processes_mentioning(str(root))
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


@pytest.fixture
def store_url(home: Path) -> str:
    return f"sqlite:///{home}/launch.db"


@pytest.fixture
def client(store_url: str) -> Iterator[Launch]:
    c = Launch(store_url)
    yield c
    c.close()


@pytest.fixture
def agent(client: Launch) -> Iterator[object]:
    """An in-process agent thread on every queue (max 2 runs)."""
    a = client.agent(max_jobs=2).start()
    yield a
    a.stop()



def run_to_end(client: Launch, item: object, *, queues: list[str] | None = None,
               timeout: float = 120) -> object:
    """Start an in-process agent (on ``queues``, default all), wait until ``item`` has
    finished, stop the agent; returns the finished item (TimeoutError after ``timeout``)."""
    agent = client.agent(queues).start()
    try:
        return item.wait(timeout, progress=False)  # type: ignore[attr-defined]
    finally:
        agent.stop()

class CLI:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.procs: list[subprocess.Popen] = []

    def __call__(self, *args: str, check: bool = False, timeout: float = 120,
                 **kw: object) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "launch_jupyter.cli", *args],
                              capture_output=True, text=True, timeout=timeout, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"jupyter launch {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json", check=True).stdout)

    def popen(self, *args: str, **kw: object) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "launch_jupyter.cli", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def cli(home: Path) -> Iterator[CLI]:
    c = CLI(home)
    yield c
    c.close()


def write_script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def write_notebook(folder: Path, name: str, cells: list[str], parameters: str | None = None,
                   ) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in cells)
    path = folder / name
    nbformat.write(nb, path)
    return path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


def require_service(name: str, why: str) -> None:
    """Skip (on a user's machine) or fail (CI=true) when a real service is missing."""
    message = f"{name} is not available: {why}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: scripts/test.sh should have started it)")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the test server; dropped afterwards."""
    import secrets

    import sqlalchemy as sa

    base = os.environ.get("LAUNCH_JUPYTER_TEST_POSTGRES")
    if not base:
        require_service("PostgreSQL", "LAUNCH_JUPYTER_TEST_POSTGRES is not set")
    admin_url = sa.engine.make_url(base).set(drivername="postgresql+psycopg")
    name = f"launch_t_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as err:
        admin.dispose()
        require_service("PostgreSQL", str(err.orig))
    yield admin_url.set(database=name, drivername="postgresql").render_as_string(
        hide_password=False)
    try:
        # FORCE ends the test's leftover sessions; it is refused while a backend it may not
        # signal (an autovacuum worker, a session being set up) is on the database: retry.
        deadline = time.monotonic() + 30
        while True:
            try:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except sa.exc.DBAPIError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        admin.dispose()


def assert_agents_race_exactly_once(client: Launch, cli: CLI, tmp_path: Path, *, items: int,
                                    agents: int, agent_args: tuple[str, ...] = (),
                                    timeout: float = 900) -> None:
    """``agents`` agent processes over ``items`` queued items: each ran exactly once.

    Proved from the jobs' own side effect (each appends its item id to one file, O_APPEND),
    and from the store: all succeeded, and more than one agent claimed items.
    """
    import collections

    ran = tmp_path / "ran.txt"
    path = write_script(tmp_path, "once.py", f"""
        import os
        fd = os.open({str(ran)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, (os.environ["LAUNCH_ITEM_ID"] + "\\n").encode())
    """)
    ref = client.create_job(path).ref
    ids = [client.submit(ref).id for _ in range(items)]
    procs = [cli.popen("agent", *agent_args, "--until-idle") for _ in range(agents)]
    for proc in procs:
        proc.wait(timeout=timeout)
        assert proc.returncode == 0, proc.stderr.read()
    counts = collections.Counter(ran.read_text().split())
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
    stored = client.items()
    assert collections.Counter(i["state"] for i in stored) == {"succeeded": items}
    assert len({i["attempts"][0]["agent"] for i in stored}) > 1  # they really raced
