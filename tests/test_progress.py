"""Cell progress of notebook runs on the local runner: the running cell, the executed notebook
growing while the run goes, each cell's seconds once it ends, and the cell numbers of errors."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from launch_jupyter.api import Launch

from .conftest import CLI, wait_for, write_notebook

WAIT_CELL = """\
import os, time
deadline = time.time() + 120
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
print('released')"""


def waiting_notebook(folder: Path) -> Path:
    """A 5-cell notebook whose third code cell waits for the file named by parameter ``go``.

    Run with ``go`` set, the executed notebook has 6 cells (the injected one is cell 2) and
    the waiting cell is cell 4 of 6."""
    return write_notebook(folder, "wait.ipynb", [
        "print('one')", WAIT_CELL, "print('after')", "print('done')",
    ], parameters="go = ''")


def outputs_text(path: str) -> list[str]:
    """Each cell's stream output in the executed notebook at ``path``."""
    notebook = nbformat.read(path, as_version=4)
    return ["".join(o.get("text", "") for o in cell.get("outputs", []))
            for cell in notebook.cells]


def assert_waiting_at_cell_4(record: dict) -> None:
    """What show --json says while the waiting cell runs."""
    assert record["state"] == "running"
    progress = record["progress"]
    assert progress["cell"] == 4 and progress["cells"] == 6, progress
    assert progress["source"] == "import os, time"
    assert progress["cell_started_at"].endswith("Z") or "T" in progress["cell_started_at"]
    assert record["cells"] is None


def test_show_reports_the_running_cell_and_the_executed_notebook_grows(
    client: Launch, agent: object, cli: CLI, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    item = client.submit(client.create_job(waiting_notebook(tmp_path)).ref,
                         parameters={"go": str(go)})
    wait_for(lambda: (item.info()["progress"] or {}).get("cell") == 4, 60,
             what="the waiting cell to be reported running")
    record = cli.json("show", item.id)
    assert_waiting_at_cell_4(record)
    executed = record["executed_notebook"]
    assert executed and Path(executed).is_file()
    assert item.output_notebook == executed  # the Python handle opens it mid-run too
    texts = wait_for(lambda: (t := outputs_text(executed))[2] and t, 10,
                     what="the executed notebook to hold cell 3's output")
    assert texts[2] == "one\n"  # cell 3 ran and its output is on disk mid-run
    assert texts[3] == texts[4] == ""  # the running cell and the ones after it have none yet

    go.touch()
    done = item.wait(60)
    data = done.info()
    assert data["state"] == "succeeded", done.logs()
    assert data["progress"] is None
    assert [c["cell"] for c in data["cells"]] == [1, 2, 3, 4, 5, 6]
    waited = data["cells"][3]["seconds"]
    assert waited >= max(c["seconds"] for c in data["cells"])  # the time went into cell 4
    assert data["executed_notebook"] == executed
    assert outputs_text(executed)[3:] == ["released\n", "after\n", "done\n"]


def test_error_cell_counts_the_injected_parameters_cell(
    client: Launch, agent: object, tmp_path: Path
) -> None:
    path = write_notebook(tmp_path, "bad.ipynb", ["x = 1", "raise ValueError(n)"],
                          parameters="n = 0")
    item = client.submit(client.create_job(path).ref, parameters={"n": 7}).wait(120)
    data = item.info()
    assert data["state"] == "failed"
    # parameters (1), injected (2), x = 1 (3), raise (4): what JupyterLab shows
    assert data["error"]["cell"] == 4
    assert data["error"]["message"].startswith("cell 4 raised ValueError: 7")
    assert [c["cell"] for c in data["cells"]] == [1, 2, 3, 4]


def test_a_script_item_has_no_progress(client: Launch, agent: object, tmp_path: Path) -> None:
    path = tmp_path / "s.py"
    path.write_text("print('hi')\n")
    data = client.submit(client.create_job(path).ref).wait(60).info()
    assert data["state"] == "succeeded"
    assert data["progress"] is None and data["cells"] is None
    assert data["executed_notebook"] is None


def test_shipped_executor_records_each_cell_and_numbers_the_failing_one(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from launch_jupyter.runners import build
    from launch_jupyter.runners.progress import CellClock, FileTail

    lib = tmp_path / "lib"
    for rel, content in build.support_files():
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        (lib / rel).write_bytes(content)
    source = write_notebook(tmp_path, "in.ipynb", ["print(1)", "raise ValueError('x')"],
                            parameters="a = 1")
    executed, error = tmp_path / "executed" / "out.ipynb", tmp_path / "error.json"
    progress = tmp_path / "progress.jsonl"
    proc = subprocess.run(
        [sys.executable, str(lib / "launch_notebook.py"), "--input", str(source), "--output",
         str(executed), "--error-file", str(error), "--progress-file", str(progress)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)} | {
            k: v for k, v in __import__("os").environ.items() if k.startswith("PY")
            and k != "PYTHONPATH"})
    assert proc.returncode == 1, proc.stderr
    assert json.loads(error.read_text())["cell"] == 3
    clock = CellClock()
    clock.feed(FileTail(str(progress)).read())
    assert clock.current == {"cell": 3, "cells": 3, "started": clock.current["started"],
                             "source": "raise ValueError('x')"}
    assert [c["cell"] for c in clock.durations() or []] == [1, 2, 3]
    assert outputs_text(str(executed))[1] == "1\n"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_v4_store_gains_progress_and_only_the_lease_holder_records_it(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import sqlalchemy as sa

    from launch_jupyter.store import Store, schema
    from launch_jupyter.store.sql import create_engine

    url = (f"sqlite:///{tmp_path}/old.db" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = create_engine(url)
    with engine.begin() as conn:  # a store as launch-jupyter left it at schema v4
        schema.schema_version.create(conn)
        for _version, migration in schema.MIGRATIONS[:4]:
            migration(conn)
        for name in ("progress", "cell_times", "executed_notebook"):
            conn.exec_driver_sql(f"ALTER TABLE launch_items DROP COLUMN {name}")
        conn.execute(schema.schema_version.insert().values(version=4))
    engine.dispose()

    client = Launch(url)  # migrates on open
    try:
        assert client.store.schema_version() == schema.LATEST_VERSION
        client.create_queue("nb")
        job = client.create_job(write_notebook(tmp_path, "n.ipynb", ["x = 1"]))
        item_id = client.submit(job.ref, queue="nb").id
        store: Store = client.store
        claimed = store.claim("nb", "agent-x", 30)
        assert claimed is not None and claimed["id"] == item_id
        assert store.start_run(item_id, "agent-x", "run-1", 30, {})
        running = {"cell": 2, "cells": 3, "started": 1_700_000_000.0, "source": "x = 1"}
        assert not store.set_progress(item_id, "someone-else", 1, running)
        assert store.get_item(item_id)["progress"] is None
        assert store.set_progress(item_id, "run-1", 1, running, executed_notebook="/r/n.ipynb")
        shown = store.get_item(item_id)
        assert shown["progress"] == {"cell": 2, "cells": 3,
                                     "cell_started_at": "2023-11-14T22:13:20.000Z",
                                     "source": "x = 1", "log_offset": None}
        assert shown["executed_notebook"] == "/r/n.ipynb" and shown["cells"] is None
        cells = [{"cell": 1, "seconds": 0.1}, {"cell": 2, "seconds": 2.5}]
        assert store.finish(item_id, "run-1", "succeeded", exit_code=0, cells=cells)
        done = store.get_item(item_id)
        assert done["progress"] is None and done["cells"] == cells
    finally:
        client.close()
    with sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://")).connect() as c:
        assert c.execute(sa.text("SELECT cell_times FROM launch_items")).scalar()
