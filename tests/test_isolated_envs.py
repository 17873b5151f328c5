"""Isolated environments (runners/envs.py): a local run in a virtualenv built with uv from
the job's lock, cached by the lock's hash, built once when agents race, listed and pruned.

Real parts: uv from PyPI (packages come from PyPI through its cache), real agents, real
kernels. PyYAML is pinned to a version the agent's environment does not have.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import sys
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import LaunchError
from launch_jupyter.jobs import capture
from launch_jupyter.jobs.lock import lock_for
from launch_jupyter.runners import envs
from launch_jupyter.views.text import item_detail
from tests.conftest import CLI, wait_for, write_notebook, write_script

pytestmark = pytest.mark.slow

INSTALLED = importlib.metadata.version("pyyaml")
PINNED = "6.0.1" if INSTALLED != "6.0.1" else "6.0.2"


@pytest.fixture
def data_dir(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The agents' data dir (runs and envs) inside the test's folder."""
    folder = home / "data"
    monkeypatch.setenv("LAUNCH_JUPYTER_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def iso(data_dir: Path, store_url: str) -> Launch:
    client = Launch(store_url)
    client.create_queue("iso", config={"environment": "isolated"})
    yield client
    client.close()


def _log(client: Launch, item_id: str) -> str:
    return client.logs(item_id)[0]


def test_a_pinned_version_the_agent_lacks_runs_in_its_own_environment(iso: Launch,
                                                                       tmp_path: Path,
                                                                       data_dir: Path):
    assert INSTALLED != PINNED
    nb = write_notebook(tmp_path, "pinned.ipynb", [
        f"%pip install pyyaml=={PINNED}\nimport sys, yaml",
        "print('yaml', yaml.__version__, 'in', sys.prefix)",
    ])
    job = iso.create_job(nb)
    assert f"pyyaml=={PINNED}" in job.spec["lock"]["packages"]
    agent = iso.agent(["iso"]).start()
    try:
        first = iso.submit(job.ref, queue="iso").wait(300, progress=False)
        second = iso.submit(job.ref, queue="iso").wait(120, progress=False)
    finally:
        agent.stop()
    env_dir = data_dir / "envs" / job.spec["lock"]["hash"][:16]
    for item in (first, second):
        info = item.info()
        assert info["state"] == "succeeded", (info["error"], _log(iso, item.id))
        assert f"yaml {PINNED} in {env_dir}" in _log(iso, item.id)
    assert first.info()["run"]["phase"] == "running"  # after "building"
    assert f"building environment {env_dir.name}" in _log(iso, first.id)
    # The second item starts in the cached environment: no build, no install.
    assert "building environment" not in _log(iso, second.id)
    assert "Installed" not in _log(iso, second.id)
    assert "warning" not in _log(iso, first.id)  # the agent's own 6.0.x does not matter
    assert [e["name"] for e in iso.envs()] == [env_dir.name]


def test_agents_racing_for_one_environment_build_it_once(iso: Launch, tmp_path: Path,
                                                          data_dir: Path, cli: CLI):
    script = write_script(tmp_path, "race.py", f"""
        # %pip install pyyaml=={PINNED}
        import launch_jupyter, yaml
        p = launch_jupyter.parameters(n=1)
        print("yaml", yaml.__version__, "n", p.n)
    """)
    captured = capture(script)
    captured.requirements = [f"pyyaml=={PINNED}"]
    captured.lock = lock_for(captured.requirements, captured.python)
    job = iso.add_captured(captured)
    env_dir = data_dir / "envs" / job.spec["lock"]["hash"][:16]
    env_dir.parent.mkdir(parents=True)
    # Hold the build lock as a builder would, until both items wait for it: a real race.
    holder = os.open(f"{env_dir}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    ids = [iso.submit(job.ref, queue="iso", overrides=[f"n={n}"]).id for n in (1, 2)]
    agents = [cli.popen("agent", "--queue", "iso", "--until-idle") for _ in range(2)]
    try:
        wait_for(lambda: all("is being built by another run" in _log(iso, i) for i in ids),
                 timeout=120, what="both items waiting for the environment")
        assert {iso.item(i).info()["run"]["phase"] for i in ids} == {"building"}
    finally:
        os.close(holder)
    for proc in agents:
        proc.wait(timeout=300)
    logs = [_log(iso, i) for i in ids]
    infos = [iso.item(i).info() for i in ids]
    assert [i["state"] for i in infos] == ["succeeded", "succeeded"], logs
    assert len({i["attempts"][0]["agent"] for i in infos}) == 2  # two agents raced
    assert sum(f"building environment {env_dir.name}" in log for log in logs) == 1
    assert sum("ready (built by another run)" in log for log in logs) == 1
    for log, n in zip(logs, (1, 2), strict=True):
        assert f"yaml {PINNED} n {n}" in log


def test_the_lock_python_must_be_installed(iso: Launch, tmp_path: Path, data_dir: Path):
    script = write_script(tmp_path, "old.py", "print('never')\n")
    captured = capture(script)
    captured.lock = lock_for([], "3.4.10")
    job = iso.add_captured(captured)
    agent = iso.agent(["iso"]).start()
    try:
        item = iso.submit(job.ref, queue="iso").wait(120, progress=False)
    finally:
        agent.stop()
    info = item.info()
    assert info["state"] == "failed"
    assert info["error"]["stage"] == "build"
    assert "needs Python 3.4" in info["error"]["message"]
    assert "install Python 3.4" in info["error"]["message"]
    with pytest.raises(LaunchError, match="needs Python 3.4"):
        envs.build(data_dir / "envs", captured.lock, out=sys.stderr)


def test_run_isolated_env_list_and_prune(iso: Launch, tmp_path: Path, data_dir: Path,
                                         cli: CLI):
    script = write_script(tmp_path, "where.py", "import sys\nprint('prefix', sys.prefix)\n")
    done = cli("run", str(script), "--isolated", check=True)
    listed = json.loads(cli("env", "list", "--json", check=True).stdout)
    assert len(listed) == 1 and listed[0]["ready"] and not listed[0]["in_use"]
    assert listed[0]["python"] == ".".join(map(str, sys.version_info[:2]))
    assert f"prefix {listed[0]['path']}" in done.stderr + done.stdout
    assert "1 environments" in cli("env", "list", check=True).stdout
    bad = cli("env", "prune", "--max-size", "lots")
    assert bad.returncode == 2 and "--max-size 5G" in bad.stderr
    kept = json.loads(cli("env", "prune", "--max-size", "100G", "--json", check=True).stdout)
    assert kept == []
    removed = json.loads(cli("env", "prune", "--max-size", "0", "--json", check=True).stdout)
    assert [e["name"] for e in removed] == [listed[0]["name"]]
    assert not Path(listed[0]["path"]).exists()
    assert "no isolated environments" in cli("env", "list", check=True).stdout


def test_prune_keeps_environments_in_use_and_drops_least_recently_used(tmp_path: Path):
    root = tmp_path / "envs"
    for name, used in (("old", 1000.0), ("new", 2000.0), ("busy", 500.0)):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "blob").write_bytes(b"x" * 1000)
        (folder / envs.READY).write_text(json.dumps({"size": 1100, "python": "3.11",
                                                     "packages": []}))
        os.utime(folder / envs.READY, (used, used))
    held = envs.hold(root / "busy")
    try:
        removed = envs.prune(root, 2500)  # busy is oldest, but in use
    finally:
        os.close(held)
    assert [e["name"] for e in removed] == ["old"]
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["busy", "new"]


def test_queue_environment_option_is_checked(iso: Launch):
    with pytest.raises(LaunchError, match="environment must be one of current, isolated"):
        iso.create_queue("bad", config={"environment": "conda"})
    # A container's image is its environment: a docker queue that asks for isolated would
    # silently run in the image, so it is refused.
    with pytest.raises(LaunchError, match="environment: isolated is an option of local queues"):
        iso.create_queue("img", runner="docker", config={"environment": "isolated"})


def test_run_isolated_takes_a_bool_only(iso: Launch, tmp_path: Path):
    script = write_script(tmp_path, "a.py", "print(1)\n")
    with pytest.raises(LaunchError, match="isolated must be true or false, got 'yes'"):
        iso.run(script, isolated="yes")  # type: ignore[arg-type]
    assert iso.items() == []  # refused before anything was submitted
    with pytest.raises(LaunchError, match="not a size"):
        iso.prune_envs(True)  # type: ignore[arg-type]


def test_cancel_while_building_ends_cancelled_and_leaves_nothing_built(iso: Launch,
                                                                      tmp_path: Path,
                                                                      data_dir: Path):
    captured = capture(write_script(tmp_path, "c.py", "print('never')\n"))
    captured.lock = lock_for([f"pyyaml=={PINNED}"], captured.python)
    job = iso.add_captured(captured)
    env_dir = data_dir / "envs" / job.spec["lock"]["hash"][:16]
    env_dir.parent.mkdir(parents=True)
    holder = os.open(f"{env_dir}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another builder, for as long as the test wants
    agent = iso.agent(["iso"]).start()
    try:
        item = iso.submit(job.ref, queue="iso")
        wait_for(lambda: "being built by another run" in _log(iso, item.id), timeout=60,
                 what="the item waiting for the environment")
        assert item.info()["run"]["phase"] == "building"
        assert "phase: building its isolated environment" in item_detail(item.info())
        iso.cancel(item.id)
        final = item.wait(60, progress=False).info()
    finally:
        os.close(holder)
        agent.stop()
    assert final["state"] == "cancelled"
    assert "never" not in _log(iso, item.id)
    assert envs.ready(env_dir) is None


def test_an_isolated_run_on_postgresql(postgres_url: str, data_dir: Path, tmp_path: Path):
    client = Launch(postgres_url)
    try:
        client.create_queue("iso", config={"environment": "isolated"})
        script = write_script(tmp_path, "pg.py", f"""
            # %pip install pyyaml=={PINNED}
            import yaml
            print("yaml", yaml.__version__)
        """)
        captured = capture(script)
        captured.requirements = [f"pyyaml=={PINNED}"]
        captured.lock = lock_for(captured.requirements, captured.python)
        job = client.add_captured(captured)
        agent = client.agent(["iso"]).start()
        try:
            items = [client.submit(job.ref, queue="iso").wait(300, progress=False)
                     for _ in range(2)]
        finally:
            agent.stop()
        for item in items:
            assert item.info()["state"] == "succeeded", _log(client, item.id)
            assert f"yaml {PINNED}" in _log(client, item.id)
        assert items[0].info()["run"]["phase"] == "running"
        assert "building environment" not in _log(client, items[1].id)
    finally:
        client.close()


def test_a_notebook_in_another_language_is_refused_clearly(iso: Launch, tmp_path: Path):
    nb = write_notebook(tmp_path, "r.ipynb", ["x <- 1"])
    data = json.loads(nb.read_text())
    data["metadata"]["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    data["metadata"]["language_info"] = {"name": "R"}
    nb.write_text(json.dumps(data))
    job = iso.create_job(nb)
    agent = iso.agent(["iso"]).start()
    try:
        final = iso.submit(job.ref, queue="iso").wait(60, progress=False).info()
    finally:
        agent.stop()
    assert final["state"] == "failed" and final["error"]["stage"] == "start"
    assert "language is r" in final["error"]["message"]
    assert "environment: current" in final["error"]["message"]
