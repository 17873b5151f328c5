"""Metrics from local runs (script and notebook), seen while the run goes and all there at its
end, through every door: show, metrics (table, --json, -f), Item.metrics()."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from launch_jupyter.api import Launch

from .conftest import CLI, wait_for, write_notebook, write_script
from .magics.conftest import kernel, start_kernel  # noqa: F401 - the kernel fixtures
from .magics.kernel import Kernel


def waiting_job(go: Path) -> str:
    """Python lines that block until ``go`` exists (at most a minute)."""
    return (f"import os, time\n"
            f"deadline = time.time() + 60\n"
            f"while not os.path.exists({str(go)!r}) and time.time() < deadline:\n"
            f"    time.sleep(0.02)\n")


def test_script_metrics_show_while_it_runs_and_every_point_arrives(
        client: Launch, agent: object, cli: CLI, tmp_path: Path) -> None:
    go = tmp_path / "go"
    path = write_script(tmp_path, "train.py", "import launch_jupyter\n"
                        "launch_jupyter.log({'loss': 1.0, 'acc': 0.5})\n" + waiting_job(go) +
                        "for step in range(1, 300):\n"
                        "    launch_jupyter.log({'loss': 1.0 / (step + 1)}, step=step)\n"
                        "launch_jupyter.log(acc=float('nan'))\n"
                        "launch_jupyter.log(acc='high')\n"
                        "launch_jupyter.log(acc=0.875, step=299)\n")
    item = client.submit(client.create_job(path).ref)
    first = wait_for(lambda: cli.json("show", item.id)["metrics"], 60,
                     what="the first metric in show --json")
    assert first == {"loss": {"last": 1.0, "min": 1.0, "max": 1.0, "step": 0, "count": 1},
                     "acc": {"last": 0.5, "min": 0.5, "max": 0.5, "step": 0, "count": 1}}
    assert item.state == "running"
    follower = cli.popen("metrics", item.id, "-f", "--json")
    go.touch()
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert item.wait(60, progress=False).state == "succeeded", item.logs()

    followed = [json.loads(line) for line in out.splitlines()]
    points = cli.json("metrics", item.id)
    assert followed == points
    assert [(p["name"], p["step"]) for p in points] == (
        [("loss", 0), ("acc", 0)] + [("loss", s) for s in range(1, 300)] + [("acc", 299)])
    assert points[-2]["value"] == 1.0 / 300 and points[-1]["value"] == 0.875
    assert cli.json("show", item.id)["metrics"]["loss"] == {
        "last": 1.0 / 300, "min": 1.0 / 300, "max": 1.0, "step": 299, "count": 300}
    assert item.logs().count("launch_jupyter.log: skipped 'acc'") == 1  # once per name

    table = cli("metrics", item.id, check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "STEP", "VALUE", "TIME"]
    assert table[1].split()[:3] == ["loss", "0", "1"] and len(table) == 303
    shown = cli("show", item.id, check=True).stdout
    assert "metrics:\n  acc   last 0.875  min 0.5  max 0.875  step 299  count 2\n" in shown
    assert "  loss  last 0.00333333  min 0.00333333  max 1  step 299  count 300" in shown

    frame = client.item(item.id).metrics()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 302
    assert list(frame.columns) == ["name", "step", "value", "time"]
    assert frame[frame.name == "loss"].value.min() == 1.0 / 300


def test_notebook_metrics_show_while_it_runs_and_the_last_cell_is_not_lost(
        client: Launch, agent: object, cli: CLI, tmp_path: Path) -> None:
    go = tmp_path / "go"
    path = write_notebook(tmp_path, "nb.ipynb", [
        "import launch_jupyter as lj\nlj.log(loss=1.0)",
        waiting_job(go),
        # The kernel is shut down at once after the last cell: its points must be in by then.
        "for step in range(1, 100):\n    lj.log({'loss': 1.0 / (step + 1)})",
    ], parameters="lr = 0.1")
    item = client.submit(client.create_job(path).ref)
    wait_for(lambda: cli.json("show", item.id)["metrics"], 120,
             what="the notebook's first metric in show --json")
    assert item.state == "running"
    go.touch()
    assert item.wait(120, progress=False).state == "succeeded", item.logs()
    points = client.metrics(item.id)
    assert [p["step"] for p in points] == list(range(100))
    assert client.item_info(item.id)["metrics"]["loss"]["count"] == 100


def test_metrics_of_an_unknown_item_name_it_and_a_run_without_metrics_says_so(
        client: Launch, agent: object, cli: CLI, tmp_path: Path) -> None:
    proc = cli("metrics", "01NOSUCHITEM")
    assert proc.returncode == 2 and "01NOSUCHITEM" in proc.stderr
    item = client.submit(client.create_job(write_script(tmp_path, "quiet.py", "print(1)\n")).ref)
    assert item.wait(60, progress=False).state == "succeeded"
    assert cli.json("metrics", item.id) == []
    assert "no metrics logged" in cli("metrics", item.id, check=True).stdout
    assert "metrics:" not in cli("show", item.id, check=True).stdout
    assert client.item(item.id).metrics().empty


def test_the_magics_print_metrics_and_log_outside_a_job_says_so_once(
        kernel: Kernel, client: Launch, tmp_path: Path) -> None:  # noqa: F811
    write_script(tmp_path, "fit.py", "import launch_jupyter\n"
                 "for step in range(5):\n    launch_jupyter.log(loss=1.0 / (step + 1))\n")
    kernel.execute("%launch job create fit.py")
    kernel.execute("%launch agent start")
    kernel.execute("%launch submit fit --wait")
    [item] = client.items()
    assert item["state"] == "succeeded"
    table = kernel.execute(f"%launch metrics {item['id']}").stdout.splitlines()
    assert table[0].split() == ["NAME", "STEP", "VALUE", "TIME"] and len(table) == 6
    points = json.loads(kernel.execute(f"%launch metrics {item['id']} --json").stdout)
    assert [(p["name"], p["step"], p["value"]) for p in points][-1] == ("loss", 4, 0.2)
    followed = kernel.execute(f"%launch metrics {item['id']} -f --json").stdout.splitlines()
    assert [json.loads(line) for line in followed] == points
    # The kernel itself is not a job: nothing recorded, said once.
    first = kernel.execute("import launch_jupyter\nlaunch_jupyter.log(loss=1)").stderr
    again = kernel.execute("launch_jupyter.log(loss=2)").stderr
    assert "nothing recorded: not inside a launch-jupyter job" in first and again == ""
