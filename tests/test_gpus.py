"""GPUs on one workstation: an agent with ``--gpus`` hands each item of a ``gpus_per_item``
queue its own GPUs as CUDA_VISIBLE_DEVICES, never one GPU to two running items.

No GPU is needed: the agent hands out indices, and the jobs' own marks (what
CUDA_VISIBLE_DEVICES they saw, and when they ran) prove the assignment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError
from launch_jupyter.runners.gpus import GpuPool, detect_gpus, gpus_per_item, parse_gpus
from launch_jupyter.views.html import item_card_html
from tests.conftest import CLI, wait_for, write_script

MARKING = """
    import os, time
    marks = {marks!r}

    def mark(what):
        line = (f"{{os.environ['LAUNCH_ITEM_ID']}} {{what}} {{time.time():.6f}} "
                f"{{os.environ.get('CUDA_VISIBLE_DEVICES', '-')}}\\n")
        fd = os.open(marks, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, line.encode())
        os.close(fd)

    mark("start")
    time.sleep({seconds})
    mark("end")
"""


def gpu_queue(client: Launch, tmp_path: Path, name: str, per_item: int) -> None:
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"gpus_per_item: {per_item}\n")
    from launch_jupyter.runners.templates import load_queue_config

    client.create_queue(name, config=load_queue_config(config))


def runs(marks: Path) -> dict[str, dict]:
    """item -> {start, end, gpus} from the jobs' own marks."""
    found: dict[str, dict] = {}
    for line in marks.read_text().splitlines():
        item, what, at, gpus = line.split()
        found.setdefault(item, {})[what] = float(at)
        found[item]["gpus"] = set(gpus.split(","))
    return found


@pytest.mark.slow
def test_agent_gives_overlapping_items_disjoint_gpus(client: Launch, cli: CLI,
                                                     tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    gpu_queue(client, tmp_path, "gpu", 1)
    ref = client.create_job(write_script(tmp_path, "train.py", MARKING.format(
        marks=str(marks), seconds=1.5))).ref
    ids = [client.submit(ref, queue="gpu").id for _ in range(6)]

    agent = cli.popen("agent", "-q", "gpu", "--gpus", "0,1,2", "--until-idle")  # 1 per GPU
    agent.wait(timeout=600)
    assert agent.returncode == 0, agent.stderr.read()

    assert [client.item_info(i)["state"] for i in ids] == ["succeeded"] * 6
    seen = runs(marks)
    assert set(seen) == set(ids)
    for item_id, run in seen.items():
        assert len(run["gpus"]) == 1 and run["gpus"] <= {"0", "1", "2"}
        recorded = client.item_info(item_id)["run"]["gpus"]  # show --json says the same
        assert {str(g) for g in recorded} == run["gpus"]
    at_once = 0
    for a in seen.values():
        overlapping = [b for b in seen.values()
                       if b["start"] < a["end"] and a["start"] < b["end"]]
        at_once = max(at_once, len(overlapping))
        for b in overlapping:
            assert b is a or not (a["gpus"] & b["gpus"]), (a, b)
    assert at_once == 3  # all three GPUs were used at once, never more
    shown = cli("show", ids[0], check=True).stdout
    assert f"GPUs: {next(iter(seen[ids[0]]['gpus']))} (CUDA_VISIBLE_DEVICES)" in shown
    card = item_card_html(client.item_info(ids[0]))  # the panel's item card
    assert re.search(rf"GPUs</th><td [^>]*>{next(iter(seen[ids[0]]['gpus']))}</td>", card)


def test_agent_never_claims_an_item_needing_more_gpus_than_it_has(
        client: Launch, tmp_path: Path) -> None:
    gpu_queue(client, tmp_path, "big", 2)
    path = write_script(tmp_path, "job.py", "print('hi')\n")
    item = client.submit(path, queue="big")
    agent = client.agent(["big"], gpus="0").start()
    try:
        wait_for(lambda: "big" in agent.status()["unserved"], what="the queue left alone")
        assert "need 2 GPU(s) each and this agent has 1" in agent.status()["unserved"]["big"]
        assert item.info()["state"] == "queued"
    finally:
        agent.stop()
    assert item.info()["state"] == "queued"


def test_items_of_queues_without_gpus_see_no_assignment(client: Launch,
                                                        tmp_path: Path) -> None:
    seen = tmp_path / "env.json"
    path = write_script(tmp_path, "env.py", f"""
        import json, os
        with open({str(seen)!r}, "w") as fh:
            json.dump(os.environ.get("CUDA_VISIBLE_DEVICES"), fh)
    """)
    item = client.submit(path)
    agent = client.agent(gpus=[0, 1]).start()
    try:
        assert item.wait(120, progress=False).state == "succeeded"
    finally:
        agent.stop()
    assert "gpus" not in item.info()["run"]


def test_agent_gpus_default_to_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert detect_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus() == []
    # CUDA stops at the first entry it cannot read: Slurm's NoDevFiles and -1 mean none
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "NoDevFiles")
    assert detect_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,-1,2")
    assert detect_gpus() == ["1"]


def test_agent_gpus_default_to_nvidia_smi(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA A100 (UUID: GPU-aaa)'\n"
                   "echo 'GPU 1: NVIDIA A100 (UUID: GPU-bbb)'\n")
    smi.chmod(0o755)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert detect_gpus() == ["0", "1"]
    monkeypatch.setenv("PATH", "/nonexistent")
    assert detect_gpus() == []


def test_gpu_lists_and_queue_options_are_checked(client: Launch, cli: CLI,
                                                 tmp_path: Path) -> None:
    assert parse_gpus("0, 1,2") == ["0", "1", "2"] and parse_gpus("none") == []
    assert parse_gpus([0, 1]) == ["0", "1"]
    with pytest.raises(LaunchError, match="'x' is no GPU index"):
        parse_gpus("0,x")
    with pytest.raises(LaunchError, match="named twice"):
        parse_gpus("1,1")
    assert gpus_per_item({"template": {"gpus_per_item": 2}}) == 2
    assert gpus_per_item({}) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpus_per_item: two\n")
    proc = cli("queue", "create", "q", "--config", str(bad))
    assert proc.returncode == 2 and "gpus_per_item must be a whole number" in proc.stderr
    bad.write_text("gpus_per_item: 1\n")
    proc = cli("queue", "create", "d", "--runner", "docker", "--config", str(bad))
    assert proc.returncode == 2 and "gpus_per_item is an option of local queues" in proc.stderr
    proc = cli("agent", "--gpus", "0,zero", "--until-idle")
    assert proc.returncode == 2 and "'zero' is no GPU index" in proc.stderr


def test_pool_never_hands_one_gpu_to_two_items() -> None:
    pool = GpuPool(["0", "1", "2"])
    assert pool.take("a", 2) == ["0", "1"]
    assert pool.take("b", 2) is None and pool.fits(1) and not pool.fits(2)
    assert pool.take("b", 1) == ["2"]
    pool.release("a")
    assert pool.take("c", 2) == ["0", "1"]
    pool.hold("d", ["1", "7"])  # a run an earlier agent started: only our GPUs count
    assert json.dumps(sorted(pool.holders())) == '["b", "c", "d"]'


@pytest.mark.slow
def test_a_restarted_agent_does_not_reuse_gpus_of_runs_still_going(
        client: Launch, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    gpu_queue(client, tmp_path, "gpu", 1)
    ref = client.create_job(write_script(tmp_path, "train.py", MARKING.format(
        marks=str(marks), seconds=4))).ref
    first = client.submit(ref, queue="gpu")
    agent = client.agent(["gpu"], gpus="0").start()
    wait_for(lambda: first.info()["state"] == "running", what="the first run")
    agent.stop()  # its run goes on under its supervisor, holding GPU 0
    second = client.submit(ref, queue="gpu")
    agent = client.agent(["gpu"], gpus="0").start()
    try:
        assert second.wait(120, progress=False).state == "succeeded"
    finally:
        agent.stop()
    seen = runs(marks)
    assert seen[first.id]["gpus"] == seen[second.id]["gpus"] == {"0"}
    assert seen[second.id]["start"] >= seen[first.id]["end"]  # never both on GPU 0
