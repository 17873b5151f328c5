"""Sweeps that search, end to end with real agent processes and local runs: a bayes sweep
of 8 trials (parallel 2) whose trials after the random start-up come from Optuna's TPE
rebuilt from the store, surviving ``kill -9`` of its agent (exactly 8 trials, none twice);
and hyperband pruning a run whose logged values are clearly worse."""

from __future__ import annotations

import collections
import os
import signal
from pathlib import Path

from launch_jupyter.api import Launch
from launch_jupyter.jobs.sweep import (
    BAYES_STARTUP,
    bayes_sampler,
    optuna_distributions,
    replay_study,
)
from launch_jupyter.jobs.sweep_config import SweepConfig
from tests.conftest import CLI, wait_for, write_script

OBJECTIVE = """\
import os, time
import launch_jupyter
p = launch_jupyter.parameters(
    x=0.0,  # launch: minimum=-2, maximum=2
    y=0.0,  # launch: minimum=-2, maximum=2
)
fd = os.open({ran!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, (os.environ["LAUNCH_ITEM_ID"] + "\\n").encode())
time.sleep(1.5)
launch_jupyter.log(loss=(p.x - 0.3) ** 2 + (p.y + 0.5) ** 2)
"""

BAYES = """\
program: objective.py
method: bayes
metric:
  name: loss
  goal: minimize
parameters:
  x:
    min: -2.0
    max: 2.0
  y:
    distribution: uniform
    min: -2.0
    max: 2.0
run_cap: 8
parallel: 2
"""


def test_bayes_sweep_survives_kill_9_of_its_agent_with_exactly_8_trials(
        cli: CLI, client: Launch, tmp_path: Path) -> None:
    ran = tmp_path / "ran.txt"
    client.create_job(write_script(tmp_path, "objective.py",
                                   OBJECTIVE.replace("{ran!r}", repr(str(ran)))))
    config_path = tmp_path / "bayes.yaml"
    config_path.write_text(BAYES)
    made = cli.json("sweep", "objective", "--config", str(config_path))
    sweep_id = made["sweep_id"]
    assert len(made["items"]) == 2  # parallel 2

    first = cli.popen("agent", "--max-jobs", "2")
    wait_for(lambda: client.sweep_info(sweep_id)["counts"]["succeeded"] >= 3, timeout=120,
             what="three trials to finish under the first agent")
    os.kill(first.pid, signal.SIGKILL)  # mid-sweep: trials are queued or running now
    first.wait(timeout=30)
    at_kill = client.sweep_info(sweep_id)
    assert at_kill["trials"] < 8

    second = cli.popen("agent", "--max-jobs", "2", "--until-idle")
    assert second.wait(timeout=300) == 0, second.stderr.read()

    info = client.sweep_info(sweep_id)
    assert info["state"] == "finished" and info["trials"] == 8
    trials = info["trials_detail"]
    assert [t["trial"] for t in trials] == list(range(8))
    items = client.items(sweep=sweep_id)
    assert len(items) == 8 and {i["state"] for i in items} == {"succeeded"}
    assert {t["item"] for t in trials} == {i["id"] for i in items}
    counts = collections.Counter(ran.read_text().split())
    assert set(counts) == {i["id"] for i in items} and set(counts.values()) == {1}
    assert info["best"]["value"] == min(i["metrics"]["loss"]["last"] for i in items)

    # After the random start-up, each trial is what Optuna's TPE asks of a study rebuilt from
    # the trials that had finished, as the store holds them now.
    config = SweepConfig.from_json(client.store.get_sweep(sweep_id)["config"])
    stored = client.store.sweep_trials(sweep_id)
    suggested = {t["item"]: t["proposal"]["suggested"] for t in stored}
    samplers = []
    for trial in stored:
        proposal = trial["proposal"]
        history = []
        for item_id in proposal["history"]:
            item = client.item_info(item_id)
            history.append({"suggested": suggested[item_id], "state": "complete",
                            "value": item["metrics"]["loss"]["last"]})
        samplers.append(proposal["sampler"])
        assert proposal["sampler"] == ("tpe" if len(history) >= BAYES_STARTUP
                                       else "random-startup")
        study = replay_study(config, history, proposal["seed"])
        asked = study.ask(optuna_distributions(config)).params
        assert asked == proposal["suggested"]
        assert trial["parameters"]["x"] == asked["x"] and trial["parameters"]["y"] == asked["y"]
    assert samplers[:2] == ["random-startup"] * 2 and "tpe" in samplers
    # A sampler without the history would have asked something else: the history counts.
    last = stored[-1]["proposal"]
    import optuna

    blank = optuna.create_study(sampler=bayes_sampler(last["seed"]))
    assert blank.ask(optuna_distributions(config)).params != last["suggested"]


HYPERBAND_JOB = """\
import time
import launch_jupyter
p = launch_jupyter.parameters(bad=False)
for i in range(8 if not p.bad else 300):
    launch_jupyter.log(loss=10.0 + i if p.bad else 1.0 / (i + 1))
    time.sleep(0.05 if not p.bad else 0.1)
"""

HYPERBAND = {
    "method": "grid", "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {"bad": {"values": [False, True]}}, "parallel": 1,
    "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
}


def test_hyperband_prunes_a_run_whose_values_are_clearly_worse(cli: CLI, client: Launch,
                                                               tmp_path: Path) -> None:
    client.create_job(write_script(tmp_path, "hb.py", HYPERBAND_JOB))
    sweep = client.sweep("hb", config=HYPERBAND)
    good = sweep[0]
    agent = client.agent(until_idle=True).start()
    try:
        bad_id = wait_for(lambda: next((t["item"] for t in client.sweep_info(sweep.id)
                                        ["trials_detail"] if t["trial"] == 1), None),
                          timeout=60, what="the second trial")
        bad = client.item(bad_id)
        bad.wait(timeout=60, progress=False)  # it would run for 30 s unpruned
    finally:
        agent.stop()
    assert good.info()["state"] == "succeeded"
    record = bad.info()
    assert record["state"] == "cancelled" and record["error"]["stage"] == "pruned"
    assert "hyperband" in record["error"]["message"]
    assert record["metrics"]["loss"]["count"] < 100
    # Every view says pruned.
    assert [r["state"] for r in client.result_rows(sweep=sweep.id)] == ["succeeded", "pruned"]
    assert {t["state"] for t in client.sweep_info(sweep.id)["trials_detail"]} == {
        "succeeded", "pruned"}
    assert "pruned" in cli("items", check=True).stdout
    assert f"item {bad_id}  pruned" in cli("show", bad_id, check=True).stdout
    from launch_jupyter.views.html import item_card_html

    assert "lj-pruned" in item_card_html(record)


def test_sweep_wait_exits_0_when_trials_succeeded_or_were_pruned(cli: CLI, client: Launch,
                                                                  tmp_path: Path) -> None:
    """``sweep --config --wait`` counts a pruned trial as the search at work: exit 0 (it was
    1, so a hyperband sweep never 'succeeded' for a script)."""
    import json

    client.create_job(write_script(tmp_path, "hb.py", HYPERBAND_JOB))
    path = tmp_path / "hb.yaml"
    path.write_text(json.dumps(HYPERBAND))
    agent = client.agent().start()
    try:
        out = cli("sweep", "hb", "--config", str(path), "--wait", "--json", timeout=90)
    finally:
        agent.stop()
    made = json.loads(out.stdout)
    states = [r["state"] for r in client.result_rows(sweep=made["sweep_id"])]
    assert states == ["succeeded", "pruned"] and out.returncode == 0, out.stderr
