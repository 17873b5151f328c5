"""Run-after into a container: the upstream item's outputs are unpacked into the work dir
(``upstream/<item id>/``) and ``LAUNCH_UPSTREAM`` names that folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from tests.conftest import write_script

from .conftest import make_queue, unique_name


@pytest.mark.slow
def test_container_job_finds_its_upstream_outputs_in_the_work_dir(
        docker_launch: Launch, agent: object, tmp_path: Path) -> None:
    queue = make_queue(docker_launch)
    first = write_script(tmp_path, "prepare.py", """
        import os
        out = os.environ["LAUNCH_OUTPUT_DIR"]
        os.makedirs(os.path.join(out, "data"))
        with open(os.path.join(out, "data", "rows.csv"), "w") as fh:
            fh.write("a,b\\n1,2\\n")
    """)
    second = write_script(tmp_path, "train.py", """
        import json, os
        upstream = json.loads(os.environ["LAUNCH_UPSTREAM"])
        [(item_id, folder)] = upstream.items()
        print("folder", item_id, folder, os.getcwd())
        with open(os.path.join("upstream", item_id, "data", "rows.csv")) as fh:
            print("rows", fh.read().replace("\\n", "|"))
    """)
    a = docker_launch.submit(first)  # the local queue: outputs on the agent's machine
    b = docker_launch.submit(docker_launch.create_job(second, name=unique_name("train")).ref,
                             queue=queue, after=[a.id])
    assert b.wait(300, progress=False).state == "succeeded", b.logs()
    logs = b.logs()
    assert f"folder {a.id} /launch/job/upstream/{a.id} /launch/job" in logs
    assert "rows a,b|1,2|" in logs
