"""Results: one row per item with the parameters that vary and each metric's last value,
sorted by the sweep's metric and goal (or --sort), filtered by sweep, queue, job and state,
in the CLI (table, --json, --csv read back by pandas), the magics and the Python API."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas
import pytest

from launch_jupyter.api import Launch
from tests.conftest import CLI, write_script

OBJECTIVE = """\
import launch_jupyter
p = launch_jupyter.parameters(
    x=0.5,  # launch: minimum=-5, maximum=5
    lr=0.1,
)
launch_jupyter.log(loss=(p.x - 1) ** 2, size=p.x)
"""
OTHER = """\
import launch_jupyter
p = launch_jupyter.parameters(n=1)
print("no metrics here", p.n)
"""
XS = [0.0, 0.9, 2.5, 1.2]  # loss 1, 0.01, 2.25, 0.04


@pytest.fixture
def finished(client: Launch, tmp_path: Path) -> dict:
    """A grid sweep of the objective (minimize loss), a maximize sweep of the same job, and
    an item of another job on another queue: all run to their end."""
    client.create_job(write_script(tmp_path, "obj.py", OBJECTIVE))
    client.create_job(write_script(tmp_path, "other.py", OTHER))
    client.create_queue("q2")
    low = client.sweep("obj", config={"method": "grid",
                                      "metric": {"name": "loss", "goal": "minimize"},
                                      "parameters": {"x": {"values": XS}}})
    high = client.sweep("obj", config={"method": "grid",
                                       "metric": {"name": "size", "goal": "maximize"},
                                       "parameters": {"x": {"values": XS}}})
    other = client.submit("other", queue="q2")
    client.agent(max_jobs=2, until_idle=True).run()
    states = {i["state"] for i in client.items()}
    assert states == {"succeeded"}, [(i["id"], i["error"]) for i in client.items()]
    return {"low": low.id, "high": high.id, "other": other.id}


def test_results_sort_by_the_sweeps_metric_for_min_and_max_goals(client: Launch,
                                                                 finished: dict) -> None:
    low = client.result_rows(sweep=finished["low"])
    assert [r["parameters"] for r in low] == [{"x": 0.9}, {"x": 1.2}, {"x": 0.0}, {"x": 2.5}]
    assert [r["metrics"]["loss"] for r in low] == pytest.approx([0.01, 0.04, 1.0, 2.25])
    high = client.result_rows(sweep=finished["high"])
    assert [r["parameters"]["x"] for r in high] == [2.5, 1.2, 0.9, 0.0]
    assert set(low[0]) == {"id", "state", "job", "parameters", "metrics", "duration"}
    assert low[0]["state"] == "succeeded" and low[0]["job"] == "obj:v1"
    assert low[0]["duration"] > 0
    assert client.best_result(low, sweep=finished["low"]) == low[0]["id"]
    # --sort overrides the sweep's own order; rows without the metric come last.
    by_size = client.result_rows(sweep=finished["low"], sort="size:max")
    assert [r["parameters"]["x"] for r in by_size] == [2.5, 1.2, 0.9, 0.0]
    everything = client.result_rows(sort="loss")
    assert everything[-1]["id"] == finished["other"] and everything[-1]["metrics"] == {}
    assert [r["metrics"]["loss"] for r in everything[:2]] == pytest.approx([0.01, 0.01])
    assert len(client.result_rows(sort="loss", limit=3)) == 3


def test_results_filter_by_sweep_queue_job_and_state(client: Launch, finished: dict) -> None:
    assert {r["id"] for r in client.result_rows(queue="q2")} == {finished["other"]}
    assert len(client.result_rows(job="obj")) == 8
    assert [r["id"] for r in client.result_rows(job="other")] == [finished["other"]]
    assert len(client.result_rows(sweep=finished["high"])) == 4
    assert client.result_rows(state="failed") == []
    assert len(client.result_rows(state="succeeded")) == 9
    # Only parameters that vary are columns: lr is the same everywhere.
    assert set(client.result_rows(job="obj")[0]["parameters"]) == {"x"}
    mixed = client.result_rows()
    assert set(mixed[0]["parameters"]) == {"x", "lr", "n"}


def test_results_as_a_dataframe_and_from_the_sweep_handle(client: Launch,
                                                          finished: dict) -> None:
    frame = client.results(sweep=finished["low"])
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == ["id", "state", "job", "x", "loss", "size", "duration"]
    assert list(frame["x"]) == [0.9, 1.2, 0.0, 2.5]
    assert list(client.results(finished["low"])["x"]) == [0.9, 1.2, 0.0, 2.5]  # by position
    from launch_jupyter.service.handles import Sweep

    handle = Sweep(client, finished["high"])
    assert list(handle.results()["x"]) == [2.5, 1.2, 0.9, 0.0]


def test_cli_results_table_json_and_csv_that_pandas_reads_back(cli: CLI, client: Launch,
                                                               finished: dict) -> None:
    rows = cli.json("results", "--sweep", finished["low"])
    assert [r["parameters"]["x"] for r in rows] == [0.9, 1.2, 0.0, 2.5]
    out = cli("results", "--sweep", finished["low"], "--csv", check=True).stdout
    frame = pandas.read_csv(io.StringIO(out))
    assert list(frame.columns) == ["id", "state", "job", "x", "loss", "size", "duration"]
    assert list(frame["id"]) == [r["id"] for r in rows]
    assert list(frame["loss"]) == pytest.approx([r["metrics"]["loss"] for r in rows])
    assert list(frame["state"]) == ["succeeded"] * 4
    text = cli("results", "--sweep", finished["low"], check=True).stdout
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATE", "JOB"] and "LOSS" in lines[0]
    assert lines[1].startswith("*" + rows[0]["id"])  # the best row is marked
    queued = cli.json("results", "--queue", "q2", "--limit", "5")
    assert [r["id"] for r in queued] == [finished["other"]]
    both = cli("results", "--json", "--csv")
    assert both.returncode == 2 and "not both" in both.stderr
    bad = cli("results", "--sort", "loss:upward")
    assert bad.returncode == 2 and "METRIC:max" in bad.stderr
    missing = cli("results", "--queue", "nope")
    assert missing.returncode == 2 and "nope" in missing.stderr


def test_magic_results_show_a_table_with_the_best_row(client: Launch, finished: dict,
                                                      capsys: pytest.CaptureFixture) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from launch_jupyter.magics import LaunchMagics

    shell = InteractiveShell.instance()  # the process's one shell, whichever test made it
    shell.register_magics(LaunchMagics)
    view = shell.run_line_magic("launch", f"results --sweep {finished['low']}")
    html = view._repr_html_()
    best = client.result_rows(sweep=finished["low"])[0]["id"]
    assert f"data-item='{best}'" in html and "lj-best' data-best='true' data-item" in html
    assert html.count("data-best") == 1
    shell.run_line_magic("launch", f"results --sweep {finished['low']} --json")
    assert len(json.loads(capsys.readouterr().out)) == 4
    # No widget front end (terminal IPython): the sweep's panel is this table, not its items.
    panel = shell.run_line_magic("launch", f"panel --sweep {finished['low']}")
    assert repr(panel) == repr(view) and "*" + best in repr(panel)
