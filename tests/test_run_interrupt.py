"""Ctrl-C at any moment of a foreground run cancels its item: also between the submit and
the following of its log (a user's Ctrl-C there had left the item queued behind a
traceback). Real store, the run's own private agent."""

from __future__ import annotations

from pathlib import Path

from launch_jupyter.api import Launch

from .conftest import write_script


def interrupt(item: object) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_right_after_the_submit_cancels_the_run(client: Launch, tmp_path: Path) -> None:
    if "local" not in {q["name"] for q in client.queues()}:
        client.create_queue("local")
    script = write_script(tmp_path, "never.py", "print('never ran', flush=True)\n")
    told = []
    item = client.run(script, queue="local", on_start=interrupt,
                      on_interrupt=lambda: told.append("cancelling"))
    info = item.info()
    assert info["state"] == "cancelled", info
    assert told == ["cancelling"]
    assert "never ran" not in item.logs()
    assert client.items(state="queued") == []
