"""The Python API validates like the CLI: a clear LaunchError and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import (
    CaptureError,
    ConflictError,
    InvalidNameError,
    LaunchError,
    NotFoundError,
    ParameterError,
)

from .conftest import write_notebook


@pytest.fixture
def job(client: Launch, tmp_path: Path):
    nb = write_notebook(tmp_path, "train.ipynb", ["print(lr)"],
                        parameters="lr = 0.1  # launch: minimum=0, maximum=1\nname = 'a'")
    return client.create_job(nb)


@pytest.mark.parametrize(("kwargs", "error", "needle"), [
    ({"parameters": {"lr": "fast"}}, ParameterError, "lr"),
    ({"parameters": {"lr": True}}, ParameterError, "lr"),
    ({"parameters": {"lr": 2.0}}, ParameterError, "<= 1"),
    ({"parameters": {"momentum": 0.9}}, ParameterError, "momentum"),
    ({"parameters": ["lr", 0.1]}, ParameterError, "dict"),
    ({"overrides": ["lr"]}, ParameterError, "key=value"),
    ({"priority": "urgent"}, ParameterError, "urgent"),
    ({"queue": "nope"}, NotFoundError, "nope"),
    ({"timeout": 0}, ParameterError, "timeout"),
    ({"timeout": "soon"}, ParameterError, "timeout"),
    ({"template_values": {"gpus": 1}}, ParameterError, "no template variables"),
])
def test_bad_submit_arguments_write_nothing(client: Launch, job, kwargs: dict,
                                            error: type, needle: str) -> None:
    with pytest.raises(error, match=needle):
        client.submit(job.ref, **kwargs)
    assert client.items() == []


def test_bad_refs_names_and_paths(client: Launch, job, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="v7"):
        client.job("train:v7")
    with pytest.raises(InvalidNameError):
        client.job("train:")
    with pytest.raises(InvalidNameError):
        client.create_queue("../q")
    with pytest.raises(CaptureError, match="nothing.ipynb"):
        client.create_job(tmp_path / "nothing.ipynb")
    with pytest.raises(InvalidNameError, match="v2"):
        client.create_job(tmp_path / "train.ipynb", alias="v2")
    with pytest.raises(LaunchError, match="runner"):
        client.create_queue("q", runner="slurm")
    assert [q["name"] for q in client.queues()] == ["local"]
    assert [j.ref for j in client.jobs()] == ["train:v1"]


def test_typed_parameters_are_normalised(client: Launch, job) -> None:
    item = client.submit(job.ref, parameters={"lr": 1}, overrides=["name=b c"])
    assert item.info()["parameters"] == {"lr": 1.0, "name": "b c"}


def test_cancel_and_delete_guards(client: Launch, job) -> None:
    item = client.submit(job.ref)
    client.cancel(item.id)
    with pytest.raises(ConflictError):
        client.cancel(item.id)
    client.delete(item.id)
    with pytest.raises(NotFoundError):
        client.item(item.id)
