"""Through a server too, Ctrl-C between a foreground run's submit and the following of its
log cancels the item (the CLI's `run` had died with a traceback there, leaving it queued)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from tests.conftest import write_script

from .conftest import JupyterServer

pytestmark = pytest.mark.slow


def interrupt(item: object) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_right_after_a_remote_submit_cancels_the_run(server: JupyterServer,
                                                            tmp_path: Path) -> None:
    remote = Launch(server.url, token=server.token)
    try:
        remote.create_queue("unserved")
        script = write_script(tmp_path, "never.py", "print('never ran', flush=True)\n")
        told = []
        item = remote.run(script, queue="unserved", on_start=interrupt,
                          on_interrupt=lambda: told.append("cancelling"))
        assert item.info()["state"] == "cancelled"
        assert told == ["cancelling"]
        assert remote.items(state="queued") == []
    finally:
        remote.close()
