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


def test_ctrl_c_while_following_does_not_print_the_log_again(client: Launch,
                                                             tmp_path: Path) -> None:
    # After Ctrl-C the run went on following from byte 0: everything printed before the
    # Ctrl-C was printed a second time under "cancelling…".
    if "local" not in {q["name"] for q in client.queues()}:
        client.create_queue("local")
    script = write_script(tmp_path, "slow.py", "import time\nprint('started', flush=True)\n"
                                               "time.sleep(120)\n")
    written: list[str] = []

    def write(text: str) -> None:
        written.append(text)
        if "started" in text and "cancelling" not in written:
            raise KeyboardInterrupt

    item = client.run(script, queue="local", write=write,
                      on_interrupt=lambda: written.append("cancelling"))
    assert item.info()["state"] == "cancelled"
    assert "cancelling" in written
    assert "".join(written).count("started") == 1, written
