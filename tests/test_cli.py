"""`jupyter launch` end to end as a user runs it: real processes, a real SQLite file."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

import nbformat
import pytest

from launch_jupyter.api import Launch

from .conftest import CLI, wait_for, write_notebook, write_script

ITEM_FIELDS = {"id", "queue", "job", "state", "attempt", "attempts", "priority", "parameters",
               "overrides", "exit_code", "error", "created_at", "started_at", "finished_at",
               "outputs", "requeued_from"}


def test_job_create_versions_by_content(cli: CLI, tmp_path: Path) -> None:
    nb = write_notebook(tmp_path, "train.ipynb", ["print(lr)"], parameters="lr = 0.1")
    assert cli("job", "create", str(nb), check=True).stdout.strip() == "train:v1"
    # Re-executing the notebook (outputs, counts) does not make a new version.
    data = nbformat.read(nb, as_version=4)
    data.cells[1].execution_count = 7
    data.cells[1].outputs = [nbformat.v4.new_output("stream", text="0.1\n")]
    nbformat.write(data, nb)
    assert cli("job", "create", str(nb), check=True).stdout.strip() == "train:v1"
    data.cells[1].source = "print(lr * 2)"
    nbformat.write(data, nb)
    assert cli("job", "create", str(nb), "--alias", "best", check=True).stdout.strip() == \
        "train:v2"
    shown = cli.json("job", "show", "train:best")
    assert shown["version"] == 2 and "best" in shown["aliases"] and "latest" in shown["aliases"]
    assert shown["schema"]["properties"]["lr"] == {"type": "number", "default": 0.1}
    assert shown["versions"] == ["train:v1", "train:v2"]
    assert cli.json("job", "show", "train:v1")["version"] == 1
    [listed] = cli.json("job", "list")
    assert listed["ref"] == "train:v2"


def test_item_runs_end_to_end_through_the_cli(cli: CLI, tmp_path: Path) -> None:
    script = write_script(tmp_path, "hello.py", """
        import launch_jupyter
        p = launch_jupyter.parameters(n=2, word="hi")
        for i in range(p["n"]):
            print(p["word"], i)
    """)
    cli("job", "create", str(script), check=True)
    cli("queue", "create", "cpu", "--max-attempts", "2", check=True)
    item_id = cli("submit", "hello", "--queue", "cpu", "-p", "n=3", "-p", "word=yo",
                  "--priority", "high", check=True).stdout.strip()
    agent = cli("agent", "--queue", "cpu", "--until-idle", timeout=120)
    assert agent.returncode == 0, agent.stderr
    shown = cli.json("show", item_id)
    assert set(shown) >= ITEM_FIELDS
    assert shown["id"] == item_id and shown["state"] == "succeeded"
    assert shown["job"] == "hello:v1" and shown["queue"] == "cpu"
    assert shown["priority"] == "high" and shown["attempt"] == 1
    assert shown["parameters"] == {"n": 3, "word": "yo"}
    assert shown["overrides"] == {"n": 3, "word": "yo"}
    assert shown["exit_code"] == 0 and shown["error"] is None
    assert shown["created_at"].endswith("Z") and shown["finished_at"] >= shown["started_at"]
    assert shown["attempts"][0]["exit_code"] == 0
    assert cli("logs", item_id, check=True).stdout == "yo 0\nyo 1\nyo 2\n"
    [listed] = cli.json("items", "--queue", "cpu")
    assert listed["id"] == item_id
    queues = {q["name"]: q for q in cli.json("queue", "list")}
    assert queues["cpu"]["counts"]["succeeded"] == 1 and queues["cpu"]["max_attempts"] == 2
    human = cli("show", item_id, check=True).stdout
    assert "succeeded" in human and "hello:v1" in human
    requeued = cli("requeue", item_id, check=True).stdout.strip()
    assert cli.json("show", requeued)["requeued_from"] == item_id
    assert cli("delete", requeued, check=True).returncode == 0
    assert cli("show", requeued).returncode == 2


def test_logs_follow_prints_lines_before_the_job_ends(cli: CLI, tmp_path: Path) -> None:
    go = tmp_path / "go"
    script = write_script(tmp_path, "slow.py", f"""
        import os, time
        print("early line", flush=True)
        deadline = time.time() + 60
        while not os.path.exists({str(go)!r}) and time.time() < deadline:
            time.sleep(0.02)
        print("late line")
    """)
    cli("job", "create", str(script), check=True)
    item_id = cli("submit", "slow", check=True).stdout.strip()
    cli.popen("agent")
    follower = cli.popen("logs", item_id, "-f")
    assert follower.stdout.readline() == "early line\n"
    assert cli.json("show", item_id)["state"] == "running"
    go.touch()
    out, _ = follower.communicate(timeout=30)
    assert out == "late line\n" and follower.returncode == 0


def test_submit_wait_without_an_agent_says_why_nothing_starts(cli: CLI, tmp_path: Path,
                                                              client: Launch) -> None:
    # `submit --wait` with no agent serving the queue printed nothing and never ended.
    script = write_script(tmp_path, "job.py", "print('hi')\n")
    proc = cli.popen("submit", str(script), "--wait")
    [item] = wait_for(lambda: client.items(state="queued"), 60, what="the item to be queued")
    client.cancel(item["id"])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert (f"item {item['id']} is waiting: no live agent serves queue local; start one with "
            "`jupyter launch agent --queue local`") in err


def test_run_prints_the_executed_notebook_last(cli: CLI, tmp_path: Path) -> None:
    nb = write_notebook(tmp_path, "nb.ipynb", ["print('value', x * 2)"], parameters="x = 1")
    proc = cli("run", str(nb), "-p", "x=21")
    assert proc.returncode == 0, proc.stderr
    executed = Path(proc.stdout.strip().splitlines()[-1])
    assert executed.name == "nb.ipynb" and executed.exists()
    assert "value 42" in proc.stderr
    out = nbformat.read(executed, as_version=4)
    assert out.cells[-1].outputs[0]["text"] == "value 42\n"


def test_run_exit_codes(cli: CLI, tmp_path: Path) -> None:
    bad = write_notebook(tmp_path, "bad.ipynb", ["raise RuntimeError('nope')"])
    proc = cli("run", str(bad))
    assert proc.returncode == 1
    assert "RuntimeError: nope" in proc.stderr
    proc = cli("run", str(bad), "-p", "lr=1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_ctrl_c_on_run_cancels_the_item(cli: CLI, tmp_path: Path, client: Launch) -> None:
    started = tmp_path / "started"
    script = write_script(tmp_path, "forever.py", f"""
        import time
        open({str(started)!r}, "w").close()
        time.sleep(120)
    """)
    proc = cli.popen("run", str(script))
    wait_for(started.exists, 30, what="the job to start")
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    assert proc.returncode == 1
    [item] = client.items()
    assert item["state"] == "cancelled"


# -- bad input: exit 2, a message naming the value, no traceback, nothing written ----------

def _snapshot(home: Path) -> dict[str, int]:
    db = sqlite3.connect(home / "launch.db")
    try:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        return {t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}
    finally:
        db.close()


@pytest.fixture
def prepared(client: Launch, tmp_path: Path, home: Path) -> dict[str, str]:
    # Set up through the Python API (fast); only the command under test runs as a process.
    nb = write_notebook(tmp_path, "train.ipynb", ["print(lr)"],
                        parameters="lr = 0.1  # launch: minimum=0, maximum=1\n"
                                   "opt = 'adam'  # launch: enum=['adam', 'sgd']")
    plain = write_notebook(tmp_path, "plain.ipynb", ["print(1)"])
    client.create_job(nb)
    client.create_job(plain)
    done = client.submit("plain").id
    client.cancel(done)
    (tmp_path / "truncated.ipynb").write_text(nb.read_text()[:50])
    (tmp_path / "garbage.ipynb").write_text("this is not json")
    empty = nbformat.v4.new_notebook()
    empty.cells = [nbformat.v4.new_markdown_cell("only words"), nbformat.v4.new_code_cell("  ")]
    nbformat.write(empty, tmp_path / "empty.ipynb")
    return {"dir": str(tmp_path), "done": done}


BAD_INPUTS = [
    (["submit", "train", "--queue", "nope"], "queue 'nope' does not exist"),
    (["submit", "nojob"], "job 'nojob' does not exist"),
    (["submit", "train:v9"], "no version v9"),
    (["submit", "train:best"], "no alias 'best'"),
    (["submit", "train", "-p", "momentum=0.9"], "momentum"),
    (["submit", "plain", "-p", "lr=0.1"], "parameters"),
    (["submit", "train", "-p", "lr=fast"], "lr"),
    (["submit", "train", "-p", "lr=5"], "lr"),
    (["submit", "train", "-p", "opt=rmsprop"], "rmsprop"),
    (["submit", "train", "-p", "lr"], "key=value"),
    (["submit", "train", "--priority", "urgent"], "urgent"),
    (["submit", "train", "--timeout", "-1"], "timeout"),
    (["job", "create", "{dir}/train.ipynb", "--name", "../evil"], "../evil"),
    (["job", "create", "{dir}/train.ipynb", "--alias", "v3"], "v3"),
    (["queue", "create", "a b"], "a b"),
    (["queue", "create", "gpu", "--runner", "slurm"], "slurm"),
    (["job", "create", "{dir}/missing.ipynb"], "missing.ipynb"),
    (["job", "create", "{dir}/truncated.ipynb"], "truncated.ipynb"),
    (["job", "create", "{dir}/garbage.ipynb"], "garbage.ipynb"),
    (["job", "create", "{dir}/empty.ipynb"], "code"),
    (["cancel", "{done}"], "already cancelled"),
    (["show", "01NOTANITEM"], "01NOTANITEM"),
    (["items", "--state", "sleeping"], "sleeping"),
    (["job", "create", "{dir}/train.ipynb", "--env", "API_TOKEN=x"], "API_TOKEN"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_INPUTS,
                         ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_a_clear_error_that_writes_nothing(
    cli: CLI, home: Path, prepared: dict[str, str], args: list[str], needle: str
) -> None:
    before = _snapshot(home)
    proc = cli(*[a.format(**prepared) for a in args])
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: ")
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _snapshot(home) == before


def test_help_for_every_command(cli: CLI) -> None:
    for args in (["--help"], ["job", "create", "--help"], ["submit", "--help"],
                 ["run", "--help"], ["agent", "--help"], ["queue", "delete", "--help"]):
        proc = cli(*args)
        assert proc.returncode == 0 and "usage: jupyter launch" in proc.stdout


def test_json_output_is_json(cli: CLI) -> None:
    queues = json.loads(cli("queue", "list", "--json", check=True).stdout)
    assert queues[0]["name"] == "local"
    assert json.loads(cli("items", "--json", check=True).stdout) == []
    assert json.loads(cli("job", "list", "--json", check=True).stdout) == []
