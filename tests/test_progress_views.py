"""Cell progress where users see it: `show`, `logs -f`, `run`, `agent --until-idle`, the
terminal bar, the item card and the panel in a real kernel."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from launch_jupyter.api import Launch
from launch_jupyter.views.html import item_card_html
from launch_jupyter.views.terminal import CellProgress
from tests.magics.conftest import kernel, start_kernel  # noqa: F401
from tests.magics.kernel import Kernel, comm_updates

from .conftest import CLI, wait_for, write_notebook, write_script
from .test_progress import waiting_notebook

RUNNING = {"id": "01J0000000000000000000000", "job": "nb:v1", "queue": "local",
           "state": "running", "priority": "normal", "parameters": {}, "overrides": {},
           "attempt": 1, "max_attempts": 3, "created_at": "2026-01-01T00:00:00Z",
           "started_at": "2026-01-01T00:00:00Z", "duration": 31.0, "outputs": [],
           "progress": {"cell": 4, "cells": 6, "cell_started_at": "2026-01-01T00:00:19Z",
                        "source": "import os, time"}}


def test_item_card_shows_a_bar_with_cell_n_of_m_and_the_elapsed_time() -> None:
    now = time.time()
    item = {**RUNNING, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                   time.gmtime(now - 31))}
    html = item_card_html(item)
    assert "data-cell='4' data-cells='6'" in html
    assert "cell 4 of 6 \u00b7 3" in html  # 31 s or 32 s elapsed
    assert "width:50%" in html  # 3 of 6 cells done
    assert "lj-progress" not in item_card_html({**item, "state": "succeeded",
                                                "progress": None})


def test_the_wait_line_of_a_notebook_cell_shows_the_running_cell() -> None:
    from launch_jupyter.views.html import wait_line

    html = wait_line(RUNNING, 31.0, last_line="one")
    assert "cell 4 of 6" in html and "import os, time" in html


def test_terminal_bar_shows_the_cell_and_keeps_log_lines_above_it() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    cells = CellProgress(screen)
    cells.update(RUNNING)
    cells.write("released\npartial")
    cells.close()
    text = screen.getvalue()
    assert "cell 4 of 6" in text and "import os, time" in text
    assert "released\n" in text and text.endswith("partial")


def test_show_logs_follow_and_the_agent_mark_cells_and_items(
    client: Launch, agent: object, cli: CLI, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    item = client.submit(client.create_job(waiting_notebook(tmp_path)).ref,
                         parameters={"go": str(go)})
    follower = cli.popen("logs", "-f", item.id)
    wait_for(lambda: (item.info()["progress"] or {}).get("cell") == 4, 60,
             what="the waiting cell to run")
    shown = cli("show", item.id, check=True).stdout
    assert "progress: cell 4 of 6 \u00b7 " in shown and "import os, time" in shown
    assert f"executed notebook: {item.info()['executed_notebook']}" in shown
    boundary = "\u2500\u2500 cell 4 of 6: import os, time \u2500\u2500\n"
    lines: list[str] = []

    def read() -> None:
        for line in follower.stdout:  # type: ignore[union-attr]
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_for(lambda: boundary in lines, 30, what="logs -f to mark the waiting cell")
    go.touch()
    assert follower.wait(60) == 0, follower.stderr.read()
    reader.join(10)
    out = "".join(lines)
    assert out.index("one\n") < out.index(boundary) < out.index("released\n"), out
    shown = cli("show", item.id, check=True).stdout
    assert "progress:" not in shown and "slowest cells: cell 4 " in shown


def test_run_marks_cells_and_the_agent_prints_a_line_per_item(
    client: Launch, cli: CLI, tmp_path: Path
) -> None:
    path = write_notebook(tmp_path, "slow.ipynb", [
        "import time; time.sleep(0.8); print('a')", "time.sleep(0.8); print('b')"])
    done = cli("run", str(path), check=True)
    assert "\u2500\u2500 cell 2 of 2: time.sleep(0.8); print('b') \u2500\u2500\n" in done.stderr
    assert done.stderr.index("a\n") < done.stderr.index("cell 2 of 2") < done.stderr.index("b\n")

    script = write_script(tmp_path, "quick.py", "print('hi')\n")
    first = client.submit(client.create_job(script).ref)
    second = client.submit("quick")
    agent = cli("agent", "--until-idle", check=True)
    for item in (first, second):
        assert f"item {item.id} started: quick:v1 on queue local, attempt 1" in agent.stderr
        assert f"item {item.id} succeeded after " in agent.stderr, agent.stderr


def test_panel_shows_the_running_cell_while_the_kernel_is_idle(
    kernel: Kernel, client: Launch, tmp_path: Path  # noqa: F811
) -> None:
    go = tmp_path / "go"
    item = client.submit(client.create_job(waiting_notebook(tmp_path)).ref,
                         parameters={"go": str(go)})
    kernel.execute("panel = %launch panel local --interval 0.2\npanel")
    card = kernel.value("panel.detail.card.model_id").strip("'")
    table = kernel.value("panel.table.model_id").strip("'")
    agent = client.agent().start()
    try:
        seen = {"card": "", "table": ""}

        def shows_cell_4() -> bool:
            messages = kernel.iopub_messages(0.3)
            seen["card"] = (comm_updates(messages, card) or [seen["card"]])[-1]
            seen["table"] = (comm_updates(messages, table) or [seen["table"]])[-1]
            return "cell 4 of 6" in seen["card"] and "cell 4/6" in seen["table"]

        wait_for(shows_cell_4, 60, interval=0, what="the panel to show cell 4 of 6")
        assert "data-cell='4' data-cells='6'" in seen["card"]
        assert item.state == "running"
        go.touch()
        wait_for(lambda: item.state == "succeeded", 60, what="the item to succeed")
    finally:
        agent.stop()
