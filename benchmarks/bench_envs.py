"""Isolated environments (runners/envs.py).

(1) The first build of examples/quickstart's environment from its lock (uv, as an isolated
queue builds it: venv with pip, the lock, ipykernel, kernelspec) against the plain way with
the same packages in the same run: ``python -m venv`` + ``pip install -r`` (the lock and
ipykernel). Each tool's download cache is warmed once first (not timed), so the figure is
install work, not the network.

(2) Submit -> the job's first line on an isolated queue whose environment is built (cached),
against a ``current`` queue, same store, same in-process agent, items alternating.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_latency import _read_stamp, write_script
from common import Figure, log, median, ms, summary, temp_store

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart.ipynb"


def _lock() -> dict:
    from launch_jupyter.jobs import capture

    return capture(QUICKSTART).lock


def _uv_build(lock: dict, folder: Path) -> float:
    from launch_jupyter.runners import envs

    t0 = time.perf_counter()
    envs.build(folder, lock, out=io.StringIO())
    return time.perf_counter() - t0


def _pip_build(lock: dict, folder: Path) -> float:
    from launch_jupyter.jobs.lock import requirements_txt

    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text(requirements_txt(lock))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True)
    subprocess.run([str(folder / "venv" / "bin" / "pip"), "install", "-q",
                    "--disable-pip-version-check", "-r", str(folder / "requirements.txt"),
                    "ipykernel"], check=True)
    return time.perf_counter() - t0


def build_figures(quick: bool) -> list[Figure]:
    lock = _lock()
    rounds = 1 if quick else 3
    uv, pip = [], []
    with tempfile.TemporaryDirectory(prefix="lj-bench-envs-") as tmp:
        base = Path(tmp)
        _uv_build(lock, base / "warm-uv")  # fills uv's cache
        _pip_build(lock, base / "warm-pip")  # fills pip's cache
        for n in range(rounds):
            uv.append(_uv_build(lock, base / f"uv-{n}"))
            pip.append(_pip_build(lock, base / f"pip-{n}"))
            shutil.rmtree(base / f"uv-{n}")
            shutil.rmtree(base / f"pip-{n}")
    value, baseline = median(uv), median(pip)
    log(f"  quickstart env ({len(lock['packages'])} locked packages + ipykernel): uv build "
        f"{value:.2f} s, venv + pip install -r {baseline:.2f} s")
    return [Figure(
        name="first build of the quickstart's isolated environment (uv)", value=value,
        unit="s", baseline_name="python -m venv + pip install -r (same packages)",
        baseline=baseline, target="<= 0.3x", met=value <= 0.3 * baseline,
        details={"uv_s": uv, "pip_s": pip, "packages": lock["packages"]})]


def start_figures(quick: bool) -> list[Figure]:
    from launch_jupyter.api import Launch

    n = 10 if quick else 30
    with temp_store("envs") as store:
        os.environ["LAUNCH_JUPYTER_DATA_DIR"] = str(store.root)
        client = Launch(store.url)
        stamps = store.root / "stamps"
        stamps.mkdir()
        job = client.create_job(write_script(store.root), name="stamp")
        client.create_queue("iso", config={"environment": "isolated"})
        client.create_queue("cur")
        agent = client.agent(["iso", "cur"]).start()
        samples: dict[str, list[float]] = {"iso": [], "cur": []}
        try:
            for i in range(n + 1):  # the first round builds the env and warms caches
                for queue in ("iso", "cur"):
                    t0 = time.time()
                    item = client.submit(job, queue=queue, parameters={"folder": str(stamps)})
                    item.wait(300, poll=0.01)
                    if item.info()["state"] != "succeeded":
                        raise RuntimeError(f"{queue} item {item.id}: {item.logs()}")
                    if i:
                        samples[queue].append(_read_stamp(stamps / item.id) - t0)
        finally:
            agent.stop()
            client.close()
            os.environ.pop("LAUNCH_JUPYTER_DATA_DIR", None)
    iso, cur = summary(samples["iso"]), summary(samples["cur"])
    extra = ms(iso["p50"]) - ms(cur["p50"])
    log(f"  submit -> first line p50: isolated (cached) {ms(iso['p50'])} ms, current "
        f"{ms(cur['p50'])} ms ({extra:+.1f} ms)")
    return [Figure(
        name="submit -> process start p50 (isolated queue, environment cached)",
        value=ms(iso["p50"]), unit="ms", baseline_name="same on a current queue",
        baseline=ms(cur["p50"]), target="<= +20 ms", met=extra <= 20,
        details={"isolated_ms": [ms(x) for x in samples["iso"]],
                 "current_ms": [ms(x) for x in samples["cur"]], "extra_ms": extra})]


def run(quick: bool) -> list[Figure]:
    return build_figures(quick) + start_figures(quick)
