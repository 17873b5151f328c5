"""%launch for run-after, queue limits and GPUs in a real kernel: ``submit --after``,
``%%launch --after``, ``queue create|update --concurrency`` and ``agent start --gpus``."""

from __future__ import annotations

from pathlib import Path

from launch_jupyter.api import Launch
from tests.conftest import write_script
from tests.magics.kernel import Kernel

STEP = """\
import json, os
import launch_jupyter
p = launch_jupyter.parameters(name="A")
print("upstream", sorted(json.loads(os.environ.get("LAUNCH_UPSTREAM", "{}"))))
print("gpus", os.environ.get("CUDA_VISIBLE_DEVICES"))
"""


def test_submit_after_and_gpus_from_the_magics(kernel: Kernel, client: Launch,
                                               tmp_path: Path) -> None:
    write_script(tmp_path, "step.py", STEP)
    (tmp_path / "gpu.yaml").write_text("gpus_per_item: 1\n")
    kernel.execute("%launch queue create gpu --config gpu.yaml --concurrency 1")
    assert client.queue("gpu")["concurrency"] == 1
    out = kernel.execute("%launch queue update gpu --concurrency 2").stdout
    assert "at most 2 item(s) leased or running at once" in out
    kernel.execute("%launch job create step.py")
    kernel.execute("a = %launch submit step --queue gpu")
    kernel.execute("b = %launch submit step --queue gpu --after {a.id} -p name=B")
    waiting = client.item_info(kernel.value("b.id").strip("'"))
    a_id = kernel.value("a.id").strip("'")
    assert waiting["waiting_on"] == [a_id]
    # The CLI's wording (no `start`) starts one as well.
    started = kernel.execute("%launch agent --gpus 3 --max-jobs 2").stdout
    assert "started" in started
    kernel.execute("b.wait(120, progress=False)", timeout=150)
    b = client.item(waiting["id"])
    assert b.info()["state"] == "succeeded", b.logs()
    assert f"upstream ['{a_id}']" in b.logs() and "gpus 3" in b.logs()
    assert b.info()["run"]["gpus"] == [3]
    kernel.execute("%launch agent stop")


def test_bad_after_and_gpus_are_one_line_errors(kernel: Kernel, client: Launch,
                                                tmp_path: Path) -> None:
    write_script(tmp_path, "step.py", STEP)
    kernel.execute("%launch job create step.py")
    missing = kernel.execute("%launch submit step --after 01NOSUCH")
    assert "error: --after '01NOSUCH': no such item" in missing.stderr
    bad = kernel.execute("%launch agent start --gpus one")
    assert "error: --gpus: 'one' is no GPU index" in bad.stderr
    assert client.items() == []
