"""Cell progress of a notebook run in a container on a real engine: the running cell while a
cell waits, the executed notebook on the agent's host growing with the outputs so far, and
each cell's seconds at the end."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

from launch_jupyter.api import Launch

from ..conftest import wait_for
from ..test_progress import assert_waiting_at_cell_4, outputs_text, waiting_notebook
from .conftest import make_queue, unique_name

GO = "/tmp/go"  # inside the container: the test creates it there to release the cell


def _touch_in(container: Any, path: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(Path(path).name)
        tar.addfile(info, io.BytesIO(b""))
    container.put_archive(str(Path(path).parent), buf.getvalue())


def test_running_cell_and_outputs_so_far_while_a_container_cell_waits(
    docker_launch: Launch, agent: object, tmp_path: Path, docker_client: Any
) -> None:
    queue = make_queue(docker_launch)
    job = docker_launch.create_job(waiting_notebook(tmp_path), name=unique_name("wait"))
    item = docker_launch.submit(job.ref, queue=queue, parameters={"go": GO})
    wait_for(lambda: (item.info()["progress"] or {}).get("cell") == 4, 180,
             what="the waiting cell to be reported running")
    record = item.info()
    assert_waiting_at_cell_4(record)
    executed = record["executed_notebook"]
    assert executed and executed.startswith(str(Path(record["run"]["run_dir"])))
    texts = wait_for(lambda: Path(executed).is_file() and (t := outputs_text(executed))[2]
                     and t, 10, what="the host's executed notebook to hold cell 3's output")
    assert texts[2] == "one\n" and texts[3] == ""

    [container] = docker_client.containers.list(
        filters={"label": f"launch-jupyter.item={item.id}"})
    _touch_in(container, GO)
    data = item.wait(120).info()
    assert data["state"] == "succeeded", item.logs()
    assert data["progress"] is None
    assert [c["cell"] for c in data["cells"]] == [1, 2, 3, 4, 5, 6]
    assert data["executed_notebook"] == executed
    assert outputs_text(executed)[3:] == ["released\n", "after\n", "done\n"]
    assert "@@launch-jupyter" not in item.logs()  # the side channel stays out of the log
