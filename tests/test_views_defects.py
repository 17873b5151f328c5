"""The view defects a new user saw (issue 15, item 5), each asserted as the user sees it:
messages, widget values and rendered text, in-process (no front end needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError
from tests.conftest import write_script

TRAIN = """\
import launch_jupyter
p = launch_jupyter.parameters(
    learning_rate=0.01,  # launch: exclusiveMinimum=0, maximum=1
    layers=2,  # launch: minimum=1, maximum=2
    optimizer="adam",  # launch: enum=["adam", "sgd"]
)
print("trained", p.layers)
"""


@pytest.fixture
def train(client: Launch, tmp_path: Path) -> str:
    write_script(tmp_path, "train.py", TRAIN)
    return client.create_job(tmp_path / "train.py").ref


def test_unknown_parameter_queue_and_job_say_did_you_mean(client: Launch, train: str) -> None:
    with pytest.raises(LaunchError) as err:
        client.submit(train, parameters={"learning_rat": 0.1})
    assert "did you mean 'learning_rate'?" in str(err.value)
    with pytest.raises(LaunchError) as err:
        client.submit(train, overrides=["learningrate=0.1"])
    assert "did you mean 'learning_rate'?" in str(err.value)
    with pytest.raises(LaunchError) as err:
        client.submit(train, queue="locl")
    assert "did you mean 'local'?" in str(err.value)
    with pytest.raises(LaunchError) as err:
        client.submit("trian")
    assert "did you mean 'train'?" in str(err.value)
    with pytest.raises(LaunchError) as err:  # nothing close: no guess
        client.submit(train, parameters={"zzz": 1})
    assert "did you mean" not in str(err.value)
    assert client.items() == []
    # A filter naming no job is a typo too, not an empty list ("nothing ran").
    for listing in (client.items, client.page):
        with pytest.raises(LaunchError) as err:
            listing(job="trian")
        assert "did you mean 'train'?" in str(err.value)
    assert client.page(job="train")["total"] == 0


def test_form_never_clamps_a_value_and_says_why_it_is_refused(client: Launch, train: str) -> None:
    from launch_jupyter.widgets import SubmitForm

    form = SubmitForm(client, train)
    assert "\u2265 1, \u2264 2" in form.hints["layers"].value  # bounds next to the field
    assert "one of &quot;adam&quot;, &quot;sgd&quot;" in form.hints["optimizer"].value
    form.fields["layers"].value = 3
    assert form.fields["layers"].value == 3  # as typed, not clamped to 2
    assert form.submit_button.disabled
    assert "layers" in form.feedback.value and "2" in form.feedback.value
    assert form.submit() is None and client.items() == []
    form.fields["layers"].value = 2
    assert not form.submit_button.disabled and form.feedback.value == ""
    item = form.submit()
    assert item is not None and "submitted" in form.feedback.value
    form.close()


def test_the_log_of_a_cancelled_notebook_run_says_at_which_cell_and_by_whom(
        client: Launch, tmp_path: Path) -> None:
    import getpass

    from tests.conftest import wait_for
    from tests.test_progress import waiting_notebook

    item = client.submit(client.create_job(waiting_notebook(tmp_path)).ref,
                         parameters={"go": str(tmp_path / "never")})
    agent = client.agent().start()
    try:
        wait_for(lambda: (item.info().get("progress") or {}).get("cell") == 4, 60,
                 what="the run waiting in cell 4")
        client.cancel(item.id)
        wait_for(lambda: item.state == "cancelled", 60, what="the item cancelled")
    finally:
        agent.stop()
    log = client.logs(item.id)[0]
    assert f"cancel requested by {getpass.getuser()}" in log, log
    assert "notebook stopped at cell 4 of 6 (import os, time)" in log, log
    assert "execution failed" not in log and "AssertionError" not in log, log
    assert log.index("cancel requested by") < log.index("notebook stopped at")


def test_items_waiting_on_a_queue_no_live_agent_serves_say_so(
        client: Launch, train: str, cli: object) -> None:
    from launch_jupyter.views.html import items_table_html
    from tests.conftest import wait_for

    client.create_queue("gpu")
    item = client.submit(train)  # queue local: no agent at all
    listed = cli("items", check=True).stdout  # type: ignore[operator]
    assert ("1 queued item waiting: no live agent serves queue local; start one with "
            "`jupyter launch agent --queue local`") in listed
    row = client.page()["items"][0]
    assert row["id"] == item.id and "no live agent serves queue local" in row["waiting"]
    assert ">no agent</span>" in items_table_html([row])

    agent = client.agent(["gpu"]).start()  # serves gpu only: local still waits
    try:
        wait_for(lambda: client.unserved_queues(["local", "gpu"]) == {"local"}, 30,
                 what="the gpu agent registered")
        assert client.page()["items"][0]["waiting"] is not None
    finally:
        agent.stop()
    agent = client.agent().start()  # no queue list: serves every queue
    try:
        item.wait(60, progress=False)
        assert client.unserved_queues(["local", "gpu"]) == set()
    finally:
        agent.stop()
    assert "waiting" not in cli("items", check=True).stdout  # type: ignore[operator]


def test_a_refused_submit_of_a_file_leaves_no_new_job_version(
        client: Launch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    path = write_script(tmp_path, "train.py", TRAIN)
    with pytest.raises(LaunchError) as err:
        client.submit(path, overrides=["layrs=3"])
    assert "did you mean 'layers'?" in str(err.value)
    with pytest.raises(LaunchError):
        client.submit(path, parameters={"layers": 3})  # out of bounds
    with pytest.raises(LaunchError):
        client.submit(path, queue="nope")
    assert client.jobs() == [] and client.items() == []

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "launch_jupyter")
    shell.run_line_magic("launch", f"submit {path} -p layrs=3")  # says why, on stderr
    assert "did you mean 'layers'?" in capsys.readouterr().err
    assert client.jobs() == []
    item = shell.run_line_magic("launch", f"submit {path} -p layers=2")
    assert [j.ref for j in client.jobs()] == ["train:v1"] and item.info()["job"] == "train:v1"


def test_no_doubled_text_in_error_lines() -> None:
    from launch_jupyter.views.format import error_text
    from launch_jupyter.views.text import item_line, run_outcome

    cancelled = {"id": "A1", "state": "cancelled", "job": "train:v1", "overrides": {},
                 "error": {"message": "cancelled", "stage": "run", "cell": None}}
    failed = {"id": "B2", "state": "failed", "job": "train:v1", "overrides": {},
              "error": {"message": "cell 3 raised ValueError: bad", "cell": 3}}
    kernel = {**failed, "error": {"message": "DeadKernelError: died", "cell": 3}}
    assert "cancelled: cancelled" not in run_outcome(cancelled)
    assert item_line(cancelled).count("cancelled") == 1
    assert error_text(failed) == "cell 3 raised ValueError: bad"
    assert run_outcome(failed).count("cell 3") == 1
    assert error_text(kernel) == "DeadKernelError: died (cell 3)"
