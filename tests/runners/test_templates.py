"""Queue config templates: validated at queue creation and at submit, rendered at start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError, ParameterError
from launch_jupyter.runners.templates import (
    load_queue_config,
    render,
    validate_queue_config,
    validate_template_values,
)

from ..conftest import write_script

CONFIG = """
template:
  gpus: "{{gpus}}"
  shm: "{{memory}}"
  name: "job-${item_id}-{{gpus}}"
variables:
  gpus: {type: integer, minimum: 0, maximum: 4, default: 0}
  memory: {type: string, enum: [4g, 16g], default: 4g}
admin: {allow_privileged: false}
"""


def test_queue_config_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "q.yaml"
    good.write_text(CONFIG)
    assert load_queue_config(good)["variables"]["gpus"]["maximum"] == 4
    with pytest.raises(LaunchError, match="undeclared variable"):
        validate_queue_config({"template": {"x": "{{cpus}}"}})
    with pytest.raises(LaunchError, match="unknown key"):
        validate_queue_config({"templates": {}})
    with pytest.raises(LaunchError, match="needs a type"):
        validate_queue_config({"variables": {"gpus": {"minimum": 0}}})
    with pytest.raises(LaunchError, match="cannot read"):
        load_queue_config(tmp_path / "missing.yaml")


def test_template_values_are_typed_bounded_and_defaulted(tmp_path: Path) -> None:
    (tmp_path / "q.yaml").write_text(CONFIG)
    config = load_queue_config(tmp_path / "q.yaml")
    assert validate_template_values(config, pairs=["gpus=2"]) == {"gpus": 2, "memory": "4g"}
    for pairs, needle in [(["gpus=9"], "<= 4"), (["gpus=two"], "not a valid integer"),
                          (["memory=8g"], "not one of"), (["cpus=1"], "unknown template"),
                          (["gpus"], "--set key=value")]:
        with pytest.raises(ParameterError, match=needle):
            validate_template_values(config, pairs=pairs)


def test_render_keeps_types_and_fills_macros(tmp_path: Path) -> None:
    config = validate_queue_config({"template": {"gpus": "{{gpus}}", "n": "x-${item_id}-{{gpus}}",
                                                 "home": "${HOME}", "keep": "${NOT_SET_XYZ}"},
                                    "variables": {"gpus": {"type": "integer"}}})
    out = render(config["template"], {"gpus": 2}, {"item_id": "01ABC"})
    assert out["gpus"] == 2 and out["n"] == "x-01ABC-2"
    # Without an agent's policy (a server checking a queue) no environment is read.
    assert out["home"] == "${HOME}" and out["keep"] == "${NOT_SET_XYZ}"
    from launch_jupyter.runners.policy import AgentPolicy

    env = AgentPolicy(template_env=("HOME",)).template_environment("docker")
    assert render({"home": "${HOME}"}, {}, {}, env)["home"] == os.environ["HOME"]
    with pytest.raises(LaunchError, match="NOT_SET_XYZ.*LaunchConfig.template_env"):
        render(config["template"], {"gpus": 2}, {"item_id": "01ABC"}, env)


def test_out_of_bounds_template_value_is_rejected_at_submit(client: Launch,
                                                            tmp_path: Path) -> None:
    (tmp_path / "q.yaml").write_text(CONFIG)
    client.create_queue("gpu", config=load_queue_config(tmp_path / "q.yaml"))
    job = client.create_job(write_script(tmp_path, "j.py", "print(1)\n"))
    with pytest.raises(ParameterError, match="<= 4"):
        client.submit(job, queue="gpu", template_pairs=["gpus=5"])
    assert client.items() == []
    item = client.submit(job, queue="gpu", template_values={"gpus": 1})
    assert item.info()["template_values"] == {"gpus": 1, "memory": "4g"}
