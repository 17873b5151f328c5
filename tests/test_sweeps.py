"""Sweeps from W&B sweep configs: W&B's documented examples accepted unchanged, bad configs
refused before anything is written (naming the key), durable sweep records, and the
``sweeps`` / ``sweep show|stop|resume`` commands in the CLI and the magics."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError, ParameterError
from launch_jupyter.jobs.sweep import hyperband_verdict, next_trial
from launch_jupyter.jobs.sweep_config import (
    SweepConfig,
    check_against_schema,
    load_sweep_file,
    parse_sweep_config,
)
from tests.conftest import CLI, write_script

# W&B's documented example sweep configurations, verbatim (docs.wandb.ai, "Define a sweep
# configuration"): basic structure, the random example, double-nested parameters, the bayes
# hyperband example, and the macro/custom command example.
WANDB_EXAMPLES = {
    "sweepdemo": """\
program: train.py
name: sweepdemo
method: bayes
metric:
  goal: minimize
  name: validation_loss
parameters:
  learning_rate:
    min: 0.0001
    max: 0.1
  batch_size:
    values: [16, 32, 64]
  epochs:
    values: [5, 10, 15]
  optimizer:
    values: ["adam", "sgd"]
""",
    "random": """\
program: train.py
method: random
metric:
  goal: minimize
  name: loss
parameters:
  batch_size:
    distribution: q_log_uniform_values
    max: 256
    min: 32
    q: 8
  dropout:
    values: [0.3, 0.4, 0.5]
  epochs:
    value: 1
  fc_layer_size:
    values: [128, 256, 512]
  learning_rate:
    distribution: uniform
    max: 0.1
    min: 0
  optimizer:
    values: ["adam", "sgd"]
""",
    "nested": """\
program: sweep_nest.py
name: nested_sweep
method: random
metric:
  name: loss
  goal: minimize
parameters:
  optimizer:
    values: ['adam', 'sgd']
  fc_layer_size:
    values: [128, 256, 512]
  dropout:
    values: [0.3, 0.4, 0.5]
  epochs:
    value: 1
  learning_rate:
    distribution: uniform
    min: 0
    max: 0.1
  batch_size:
    distribution: q_log_uniform_values
    q: 8
    min: 32
    max: 256
  nested_category_1:
    parameters:
      momentum:
        distribution: uniform
        min: 0.0
        max: 0.9
      weight_decay:
        values: [0.0001, 0.0005, 0.001]
  nested_category_2:
    parameters:
      momentum:
        distribution: uniform
        min: 0.0
        max: 0.9
      weight_decay:
        values: [0.1, 0.2, 0.3]
  nested_category_3:
    parameters:
      momentum:
        distribution: uniform
        min: 0.5
        max: 0.7
      weight_decay:
        values: [0.2, 0.3, 0.4]
""",
    "bayes_hyperband": """\
program: train.py
method: bayes
metric:
  goal: minimize
  name: val_loss
parameters:
  dropout:
    values: [0.15, 0.2, 0.25, 0.3, 0.4]
  hidden_layer_size:
    values: [96, 128, 148]
  layer_1_size:
    values: [10, 12, 14, 16, 18, 20]
  layer_2_size:
    values: [24, 28, 32, 36, 40, 44]
  learn_rate:
    values: [0.001, 0.01, 0.003]
  decay:
    values: [1e-5, 1e-6, 1e-7]
  momentum:
    values: [0.8, 0.9, 0.95]
  epochs:
    value: 27
early_terminate:
  type: hyperband
  s: 2
  eta: 3
  max_iter: 27
""",
    "macro": """\
program: run.py
method: random
metric:
  name: validation_loss
parameters:
  learning_rate:
    min: 0.0001
    max: 0.1
command:
  - ${env}
  - ${interpreter}
  - ${program}
  - "--batch_size=${batch_size}"
  - "--optimizer=${optimizer}"
  - "--test=True"
""",
}

#: a job taking every parameter the examples sweep
TRAIN = """\
import launch_jupyter
p = launch_jupyter.parameters(
    learning_rate=0.01,  # launch: minimum=0, maximum=1
    batch_size=32,  # launch: minimum=1, maximum=1024
    epochs=5,
    optimizer="adam",  # launch: enum=["adam", "sgd"]
    dropout=0.3,
    fc_layer_size=128,
    nested_category_1={"momentum": 0.5, "weight_decay": 0.001},
    nested_category_2={"momentum": 0.5, "weight_decay": 0.1},
    nested_category_3={"momentum": 0.6, "weight_decay": 0.2},
    hidden_layer_size=96,
    layer_1_size=10,
    layer_2_size=24,
    learn_rate=0.001,
    decay=1e-05,
    momentum=0.9,
)
"""


@pytest.fixture
def train(client: Launch, tmp_path: Path) -> str:
    return client.create_job(write_script(tmp_path, "train.py", TRAIN)).ref


def _yaml(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("name", sorted(WANDB_EXAMPLES))
def test_wandb_example_configs_are_accepted_unchanged(name: str, client: Launch, train: str,
                                                      tmp_path: Path) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(WANDB_EXAMPLES[name])
    sweep = client.sweep(train, config=path)
    assert sweep.note is not None and "program" in sweep.note  # one note, W&B keys named
    info = sweep.info()
    assert info["method"] in ("bayes", "random")
    assert info["state"] == "running" and info["trials"] == len(sweep) >= 1
    # The first trial's parameters fit the job and come from the config.
    first = sweep[0].info()["parameters"]
    config = load_sweep_file(str(path))
    for key, spec in config["parameters"].items():
        if "values" in spec:
            assert first[key] in spec["values"]
        elif "value" in spec:
            assert first[key] == spec["value"]
        elif "parameters" in spec:
            assert set(first[key]) == set(spec["parameters"])
        else:
            assert spec["min"] <= first[key] <= spec["max"]
    client.stop_sweep(sweep.id)


def test_yaml_exponents_without_a_dot_are_numbers_as_in_wandb(tmp_path: Path) -> None:
    path = tmp_path / "decay.yaml"
    path.write_text(WANDB_EXAMPLES["bayes_hyperband"])
    decay = load_sweep_file(str(path))["parameters"]["decay"]["values"]
    assert decay == [1e-5, 1e-6, 1e-7]
    hb = parse_sweep_config(load_sweep_file(str(path))).early_terminate
    assert hb is not None and hb.brackets(100) == [3, 9]  # W&B's "[27/eta, 27/eta/eta]"
    assert parse_sweep_config({"method": "random", "parameters": {"x": {"value": 1}},
                               "metric": {"name": "m"},
                               "early_terminate": {"type": "hyperband", "min_iter": 3}}
                              ).early_terminate.brackets(100) == [3, 9, 27, 81]


@pytest.mark.parametrize("config, message", [
    ({"method": "bayes", "metrics": {"name": "x"}, "parameters": {"lr": {"values": [1]}}},
     "unknown key 'metrics'"),
    ({"method": "hyperopt", "parameters": {"lr": {"values": [0.1]}}}, "method must be"),
    ({"method": "random", "parameters": {"learning_rate": {"min": 0.1, "maxx": 1}}},
     "parameters.learning_rate.maxx"),
    ({"method": "random", "metric": {"name": "l", "goal": "lowest"},
      "parameters": {"learning_rate": {"values": [0.1]}}}, "metric.goal"),
    ({"method": "bayes", "parameters": {"learning_rate": {"values": [0.1]}}},
     "bayes needs metric"),
    ({"method": "grid", "parameters": {"learning_rate": {"min": 0.1, "max": 0.5}}},
     "cannot be gridded"),
    ({"method": "random", "parameters": {"learning_rate": {"distribution": "zipf", "min": 1,
                                                           "max": 2}}}, "distribution 'zipf'"),
    ({"method": "random", "run_cap": 0, "parameters": {"learning_rate": {"values": [0.1]}}},
     "run_cap must be a positive integer"),
    ({"method": "random", "parallel": "two", "parameters": {"epochs": {"values": [1]}}},
     "parallel must be a positive integer"),
    ({"method": "random", "metric": {"name": "l"}, "parameters": {"epochs": {"values": [1]}},
      "early_terminate": {"type": "median"}}, "early_terminate.type must be hyperband"),
    ({"method": "random", "metric": {"name": "l"}, "parameters": {"epochs": {"values": [1]}},
      "early_terminate": {"type": "hyperband", "max_iter": 27}}, "min_iter, or max_iter and s"),
    ({"method": "random", "parameters": {"nope": {"values": [1, 2]}}},
     "parameters.nope: the job has no parameter 'nope'"),
    ({"method": "random", "parameters": {"learning_rate": {"min": 0.1, "max": 5.0}}},
     "parameters.learning_rate may give 5.0"),
    ({"method": "random", "parameters": {"optimizer": {"values": ["adam", "lion"]}}},
     "parameters.optimizer may give 'lion'"),
    ({"method": "random", "parameters": {"epochs": {"distribution": "uniform", "min": 1,
                                                    "max": 9}}}, "parameters.epochs"),
    # keys of two kinds of parameter: one would be ignored silently
    ({"method": "random", "parameters": {"epochs": {"values": [1, 2], "value": 3}}},
     "parameters.epochs.value does not go with categorical"),
    ({"method": "random", "parameters": {"dropout": {"values": [0.1], "min": 0, "max": 1}}},
     "parameters.dropout.max does not go with categorical"),
    ({"method": "random", "parameters": {"dropout": {"distribution": "normal", "mu": 0.3,
                                                     "sigma": 0.1, "min": 0}}},
     "parameters.dropout.min does not go with distribution normal"),
])
def test_bad_configs_are_refused_before_anything_is_written(
        config: dict, message: str, client: Launch, train: str, cli: CLI,
        tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(".", r"\.")):
        client.sweep(train, config=config)
    assert client.sweeps() == [] and client.items() == []
    if config.get("method") == "hyperopt":  # the CLI says the same, exit status 2
        path = tmp_path / "bad.yaml"
        path.write_text(json.dumps(config))
        out = cli("sweep", "train", "--config", str(path))
        assert out.returncode == 2 and "method must be" in out.stderr


def test_a_refused_sweep_of_a_file_leaves_no_job_version(client: Launch, tmp_path: Path
                                                         ) -> None:
    """A file is captured in memory and becomes a job version only once the sweep is valid,
    as with submit (a bad config, an unknown parameter or queue wrote the job first)."""
    path = write_script(tmp_path, "fresh.py", TRAIN)
    for config, queue in [({"method": "grid", "foo": 1}, None),
                          ({"method": "grid", "parameters": {"nope": {"values": [1]}}}, None),
                          ({"method": "grid", "parameters": {"epochs": {"values": [1]}}},
                           "nosuch")]:
        with pytest.raises(LaunchError):
            client.sweep(path, config=config, queue=queue)
    assert client.jobs() == [] and client.sweeps() == [] and client.items() == []
    sweep = client.sweep(path, config={"method": "grid",
                                       "parameters": {"epochs": {"values": [1, 2]}}})
    assert [j.name for j in client.jobs()] == ["fresh"] and len(sweep) == 2


def test_a_grid_config_proposes_every_point_once_in_order(client: Launch, train: str) -> None:
    config = {"method": "grid", "metric": {"name": "loss"},
              "parameters": {"epochs": {"values": [1, 2]},
                             "optimizer": {"values": ["adam", "sgd"]},
                             "dropout": {"value": 0.1}}}
    sweep = client.sweep(train, config=config)
    assert [i.info()["overrides"] for i in sweep] == [
        {"epochs": 1, "optimizer": "adam", "dropout": 0.1},
        {"epochs": 1, "optimizer": "sgd", "dropout": 0.1},
        {"epochs": 2, "optimizer": "adam", "dropout": 0.1},
        {"epochs": 2, "optimizer": "sgd", "dropout": 0.1}]
    info = sweep.info()
    assert info["run_cap"] == 4 and info["trials"] == 4 and info["parallel"] == 4
    assert [t["sampler"] for t in info["trials_detail"]] == ["grid"] * 4


def test_random_draws_follow_their_distributions(client: Launch, train: str) -> None:
    config = parse_sweep_config(load_sweep_file_text(WANDB_EXAMPLES["random"]))
    for trial in range(200):
        p = next_trial(config, trial, seed=7)["parameters"]
        assert p["batch_size"] % 8 == 0 and 32 <= p["batch_size"] <= 256
        assert isinstance(p["batch_size"], int)
        assert 0 <= p["learning_rate"] <= 0.1 and p["epochs"] == 1
        assert p["optimizer"] in ("adam", "sgd")
    assert next_trial(config, 3, seed=7) == next_trial(config, 3, seed=7)  # replayable
    assert next_trial(config, 3, seed=7) != next_trial(config, 3, seed=8)


def load_sweep_file_text(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


def test_config_survives_the_store_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "nested.yaml"
    path.write_text(WANDB_EXAMPLES["nested"])
    config = parse_sweep_config(load_sweep_file(str(path)))
    assert SweepConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    point = next_trial(config, 0, seed=1)["parameters"]
    assert set(point["nested_category_3"]) == {"momentum", "weight_decay"}
    assert 0.5 <= point["nested_category_3"]["momentum"] <= 0.7
    check_against_schema(config, {"type": "object", "properties": {
        k: {} for k in point}})


def test_hyperband_stops_a_trial_clearly_worse_at_a_bracket() -> None:
    config = parse_sweep_config({
        "method": "random", "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"values": [1]}},
        "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2}})
    good = [1.0, 0.8, 0.6, 0.5]
    assert hyperband_verdict(config, [9.0], [good]) is None  # no bracket reached yet
    assert "hyperband" in hyperband_verdict(config, [9.0, 9.0], [good])
    assert hyperband_verdict(config, [1.0, 0.7], [good]) is None
    assert hyperband_verdict(config, good, []) is None  # the first trial is never pruned
    maximize = parse_sweep_config({**config.to_json(), "method": "random",
                                   "metric": {"name": "acc", "goal": "maximize"},
                                   "parameters": {"x": {"values": [1]}},
                                   "early_terminate": {"type": "hyperband", "min_iter": 2,
                                                       "eta": 2}})
    assert hyperband_verdict(maximize, [0.9, 0.95], [[0.1, 0.2]]) is None
    assert hyperband_verdict(maximize, [0.1, 0.2], [[0.9, 0.95]]) is not None


def test_cli_sweep_config_prints_the_sweep_id_and_one_note(cli: CLI, client: Launch,
                                                          train: str, tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(WANDB_EXAMPLES["sweepdemo"])
    out = cli("sweep", "train", "--config", str(path), "--parallel", "2", check=True)
    sweep_id = out.stdout.strip()  # the sweep id alone: sweep_id=$(jupyter launch sweep ...)
    assert out.stderr.count("note: ignored W&B key(s) program, name") == 1
    assert "2 trial(s) queued" in out.stderr  # parallel 2: two trials queued at once
    assert len(cli.json("items", "--sweep", sweep_id)) == 2
    made = cli.json("sweep", "train", "--config", str(path))
    assert set(made) == {"sweep_id", "items"} and len(made["items"]) == 1  # bayes: 1 at once
    listed = cli.json("sweeps")
    assert [s["id"] for s in listed] == [made["sweep_id"], sweep_id]
    assert set(listed[0]) >= {"id", "job", "method", "metric", "goal", "trials", "run_cap",
                              "best"}
    assert listed[0]["metric"] == "validation_loss" and listed[0]["goal"] == "minimize"
    assert listed[0]["best"] is None and listed[0]["trials"] == 1

    shown = cli.json("sweep", "show", sweep_id)
    assert shown["id"] == sweep_id and len(shown["trials_detail"]) == 2
    assert cli("sweep", "stop", sweep_id, check=True).stdout.strip() == f"sweep {sweep_id} stopped"
    again = cli("sweep", "stop", sweep_id)
    assert again.returncode == 2 and "not running" in again.stderr
    assert cli.json("sweep", "resume", sweep_id)["state"] == "running"
    text = cli("sweep", "show", sweep_id, check=True).stdout
    assert sweep_id in text and "random-startup" in text
    assert "validation_loss (minimize)" in cli("sweeps", check=True).stdout
    # Two words that are no action are refused, and so is an action with sweep options.
    odd = cli("sweep", "train", sweep_id)
    assert odd.returncode == 2 and "show|stop|resume" in odd.stderr
    mixed = cli("sweep", "stop", sweep_id, "--config", str(path))
    assert mixed.returncode == 2 and "takes no --config" in mixed.stderr
    missing = cli("sweep", "show", "01NOSUCHSWEEP")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    # An action without its ID asks for the ID (it was 'job 'show' does not exist'), and a
    # sweep without a config, grid or random points names --config too.
    no_id = cli("sweep", "show")
    assert no_id.returncode == 2 and "`sweep show` needs the sweep ID" in no_id.stderr
    nothing = cli("sweep", "train")
    assert nothing.returncode == 2 and "--config SWEEP.yaml" in nothing.stderr


def test_magics_take_the_same_sweep_commands(client: Launch, train: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from launch_jupyter.magics import LaunchMagics

    shell = InteractiveShell.instance()  # the process's one shell, whichever test made it
    shell.register_magics(LaunchMagics)
    path = tmp_path / "demo.yaml"
    path.write_text(WANDB_EXAMPLES["sweepdemo"])
    sweep = shell.run_line_magic("launch", f"sweep train --config {path}")
    assert sweep.note is not None and len(sweep) == 1
    capsys.readouterr()
    shell.run_line_magic("launch", "sweeps --json")
    assert json.loads(capsys.readouterr().out)[0]["id"] == sweep.id
    shell.run_line_magic("launch", f"sweep stop {sweep.id}")
    assert capsys.readouterr().out.strip() == f"sweep {sweep.id} stopped"
    assert client.sweep_info(sweep.id)["state"] == "stopped"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_racing_agents_propose_each_trial_exactly_once(
        backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Many threads advance the same sweep at once (as agents on many machines would): every
    trial number is inserted exactly once, by one of them."""
    import threading

    from launch_jupyter.agent import advance_sweep

    url = (f"sqlite:///{tmp_path}/race.db" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    client = Launch(url)
    try:
        client.create_job(write_script(tmp_path, "train.py", TRAIN))
        race = client.sweep("train", config={
            "method": "random", "run_cap": 30,
            "parameters": {"learning_rate": {"min": 0.001, "max": 0.1}}}, parallel=1, seed=4)
        client.cancel(race[0].id)  # trial 0 ends: the agents race for trial 1, 2, ...
        made: list[str] = []
        errors: list[BaseException] = []

        def agent() -> None:
            try:
                for _ in range(12):
                    new = advance_sweep(client.store, client.store.get_sweep(race.id))
                    made.extend(new)
                    for item_id in new:  # finish it at once, so the next trial may come
                        client.cancel(item_id)
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=agent) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        trials = client.store.sweep_trials(race.id)
        numbers = [t["trial"] for t in trials]
        assert numbers == list(range(len(numbers))) and 5 < len(numbers) <= 30
        assert len({t["item"] for t in trials}) == len(numbers)
        assert sorted(made + [race[0].id]) == sorted(t["item"] for t in trials)
        assert client.store.get_sweep(race.id)["proposed"] == len(numbers)
        assert len(client.items(sweep=race.id)) == len(numbers)
    finally:
        client.close()
