"""Remote, end to end: a laptop that knows only a Jupyter server's URL and token drives
everything through `jupyter launch --server URL --token T`, while an agent process on the
server's side of the store runs the items."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for, write_notebook, write_script

from .conftest import JupyterServer

pytestmark = pytest.mark.slow


class Laptop:
    """`jupyter launch` run as a subprocess in the client's environment, against one server."""

    def __init__(self, server: JupyterServer, env: dict[str, str], cwd: Path) -> None:
        self.server, self.env, self.cwd = server, env, cwd
        self.procs: list[subprocess.Popen] = []

    def argv(self, args: tuple[str, ...], token: str | None) -> list[str]:
        auth = [] if token is None else ["--token", token]
        return [sys.executable, "-m", "launch_jupyter.cli", "--server", self.server.url,
                *auth, *args]

    def __call__(self, *args: str, token: str | None = "", timeout: float = 120
                 ) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(args, self.server.token if token == "" else token),
                              capture_output=True, text=True, timeout=timeout, env=self.env,
                              cwd=self.cwd)

    def ok(self, *args: str, timeout: float = 120) -> str:
        proc = self(*args, timeout=timeout)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def popen(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(self.argv(args, self.server.token), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env, cwd=self.cwd,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


@pytest.fixture
def laptop(server: JupyterServer, client_env: dict[str, str], tmp_path: Path) -> Any:
    folder = tmp_path / "laptop"
    folder.mkdir()
    made = Laptop(server, client_env, folder)
    yield made
    made.close()


def test_everything_a_local_user_does_works_through_the_server(
        laptop: Laptop, server_agent: Any) -> None:
    assert "LAUNCH_JUPYTER_STORE" not in laptop.env
    laptop.ok("queue", "create", "remote")
    assert "remote" in [q["name"] for q in laptop.json("queue", "list")]

    # Capture here, upload: the server stores this content as job hello:v1.
    write_script(laptop.cwd, "hello.py", """
        import launch_jupyter, time
        n = launch_jupyter.parameters(n=3)["n"]
        for i in range(n):
            print("line", i, "ü", flush=True)
            time.sleep(0.1)
    """)
    assert laptop.ok("job", "create", "hello.py").strip() == "hello:v1"
    assert laptop.ok("job", "create", "hello.py").strip() == "hello:v1"  # same content
    job = laptop.json("job", "show", "hello")
    assert job["ref"] == "hello:v1" and job["parameters"] == {"n": 3}

    item_id = laptop.ok("submit", "hello", "-q", "remote", "-p", "n=4").strip()
    followed = laptop("logs", "-f", item_id)
    assert followed.returncode == 0, followed.stderr
    assert [line for line in followed.stdout.splitlines() if line.startswith("line")] == [
        f"line {i} ü" for i in range(4)]
    shown = laptop.json("show", item_id)
    assert shown["state"] == "succeeded" and shown["parameters"] == {"n": 4}
    assert laptop.ok("show", item_id).startswith(f"item {item_id}  succeeded")

    # cancel a running item, then requeue it: a new item with the same parameters.
    write_script(laptop.cwd, "slow.py", """
        import time
        print("started", flush=True)
        time.sleep(120)
    """)
    slow = laptop.ok("submit", "slow.py", "-q", "remote").strip()
    wait_for(lambda: laptop.json("show", slow)["state"] == "running", 60, 0.3,
             "the slow item to run")
    assert laptop.ok("cancel", slow).startswith(f"item {slow}")
    wait_for(lambda: laptop.json("show", slow)["state"] == "cancelled", 60, 0.3,
             "the slow item to be cancelled")
    again = laptop.ok("requeue", slow).strip()
    assert again != slow
    assert laptop.json("show", again)["requeued_from"] == slow
    assert laptop.ok("cancel", again)
    assert {i["id"] for i in laptop.json("items", "-q", "remote")} == {item_id, slow, again}
    wait_for(lambda: laptop.json("show", again)["state"] == "cancelled", 60, 0.3,
             "the requeued item to be cancelled")
    assert laptop.ok("delete", again).strip() == f"deleted item {again}"
    assert laptop("show", again).returncode == 2

    # Queue administration goes through the server too.
    laptop.ok("queue", "create", "spare")
    laptop.ok("queue", "pause", "spare")
    assert laptop.json("queue", "show", "spare")["paused"] is True
    laptop.ok("queue", "resume", "spare")
    assert laptop.ok("queue", "delete", "spare").strip() == "deleted queue spare"

    # Mistakes come back as the local client words them, exit 2.
    missing = laptop("show", "01NOSUCHITEM")
    assert missing.returncode == 2 and "01NOSUCHITEM" in missing.stderr
    finished = laptop("cancel", item_id)
    assert finished.returncode == 2 and "already succeeded" in finished.stderr

    # run a notebook in the foreground: its log streams here, the server's agent runs it.
    write_notebook(laptop.cwd, "train.ipynb", ["print('lr is', lr)"], parameters="lr = 0.1")
    run = laptop("run", "train.ipynb", "-q", "remote", "-p", "lr=0.5", timeout=180)
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert "lr is 0.5" in run.stderr and "succeeded" in run.stderr
    # The executed notebook is copied here: the path printed is on the laptop.
    copy = Path(run.stdout.strip())
    if not copy.is_absolute():
        copy = laptop.cwd / copy
    assert copy.is_relative_to(laptop.cwd / "launch-runs"), run.stdout
    executed = json.loads(copy.read_text())
    printed = ["".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])]
    assert "lr is 0.5\n" in printed


@pytest.mark.parametrize("token", ["wrong-token", None])
def test_a_wrong_or_missing_token_is_one_line_and_exit_2(laptop: Laptop,
                                                         token: str | None) -> None:
    proc = laptop("queue", "list", token=token)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert laptop.server.url in lines[0] and "403" in lines[0]
    assert ("no token" if token is None else "token is wrong") in lines[0]


def test_the_environment_names_the_server_and_flags_win(laptop: Laptop,
                                                        server_agent: Any) -> None:
    env = dict(laptop.env, LAUNCH_JUPYTER_SERVER=laptop.server.url,
               LAUNCH_JUPYTER_TOKEN=laptop.server.token)
    cmd = [sys.executable, "-m", "launch_jupyter.cli"]
    listed = subprocess.run([*cmd, "queue", "list", "--json"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert listed.returncode == 0 and "local" in {q["name"] for q in json.loads(listed.stdout)}, \
        listed.stderr
    refused = subprocess.run([*cmd, "queue", "list", "--token", "nope"], capture_output=True,
                             text=True, env=env, timeout=60)
    assert refused.returncode == 2 and "token is wrong" in refused.stderr


def test_logs_follow_survives_a_server_restart(laptop: Laptop, server_agent: Any) -> None:
    laptop.ok("queue", "create", "remote")
    write_script(laptop.cwd, "ticks.py", """
        import time
        for i in range(40):
            print("tick", i, flush=True)
            time.sleep(0.25)
    """)
    item_id = laptop.ok("submit", "ticks.py", "-q", "remote").strip()
    follower = laptop.popen("logs", "-f", item_id)
    assert follower.stdout is not None
    first = follower.stdout.readline()
    assert first.startswith("tick"), first
    laptop.server.stop()
    time.sleep(2)  # the job goes on logging while no server answers
    laptop.server.start()
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    ticks = [line for line in (first + out).splitlines() if line.startswith("tick")]
    assert ticks == [f"tick {i}" for i in range(40)]


def test_submit_wait_survives_a_server_restart(laptop: Laptop, server_agent: Any) -> None:
    laptop.ok("queue", "create", "remote")
    write_script(laptop.cwd, "slowish.py", """
        import time
        print("started", flush=True)
        time.sleep(8)
    """)
    waiter = laptop.popen("submit", "slowish.py", "-q", "remote", "--wait")
    wait_for(lambda: any(i["state"] == "running" for i in laptop.json("items", "-q", "remote")),
             60, 0.2, "the item to start")
    laptop.server.stop()
    time.sleep(2)  # --wait asks a server that does not answer
    laptop.server.start()
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    [item] = laptop.json("items", "-q", "remote")
    assert out.strip() == item["id"] and item["state"] == "succeeded"


def test_run_says_when_no_agent_serves_the_queue_and_ctrl_c_cancels(laptop: Laptop) -> None:
    laptop.ok("queue", "create", "unserved")
    write_script(laptop.cwd, "quick.py", "print('never', flush=True)\n")
    proc = laptop.popen("run", "quick.py", "-q", "unserved")
    assert proc.stderr is not None
    seen = ""
    while "waiting: no live agent serves queue unserved" not in seen:
        line = proc.stderr.readline()
        assert line, (seen, proc.poll())
        seen += line
    assert laptop.server.url in seen
    os.kill(proc.pid, signal.SIGINT)  # Ctrl-C: the queued item is cancelled at once
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert "cancelled" in err
    items = laptop.json("items", "-q", "unserved")
    assert [i["state"] for i in items] == ["cancelled"]
