"""(c) command start-up: `jupyter launch items`, `show`, `logs` and `job create` as fresh
processes, wall time and what they import (``python -X importtime``).

``python benchmarks/bench_startup.py [--quick]`` (or ``run.py --only startup``). A small SQLite
store holds one finished item with a log; `job create` captures the 200-cell notebook of
bench_capture.py (its digest is stored after the warm-up, as when a notebook is captured
again). Each command runs once first (bytecode caches written, as an installed package has
them, and the dependency cache filled), then N times, each run next to one of ``python -c
pass`` and one of ``jupyter-launch`` itself: the p50 of wall time, command start to exit, is
the figure, and the p50 of ``python -c pass`` its baseline. ``-X importtime`` of one more
run gives the import time (its own overhead included) by top-level package.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import Figure, log, median, ms, temp_store, tool

TARGET = 0.250  # seconds, issue #18


def imports(argv: list[str], env: dict[str, str], cwd: str) -> dict[str, float]:
    """Milliseconds of import (self time) per top-level package, from ``-X importtime``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], env=env, cwd=cwd,
                          capture_output=True, text=True, check=True)
    by_package: dict[str, float] = defaultdict(float)
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line[len("import time:"):].split("|")
        by_package[name.strip().split(".")[0]] += int(self_us) / 1000.0
    return dict(sorted(by_package.items(), key=lambda kv: -kv[1]))


def wall(argv: list[str], env: dict[str, str], cwd: str, runs: int) -> list[float]:
    """Seconds of ``runs`` runs of ``argv`` to exit (output discarded; must exit 0)."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return samples


def _finished_item(url: str) -> str:
    """One item run through the lease protocol, with a log of a few lines."""
    import hashlib

    from launch_jupyter.store import Store

    store = Store(url)
    content = b"print('hi')\n"
    sha = hashlib.sha256(content).hexdigest()
    job, _ = store.add_job("hello", sha, {"mode": "script", "entrypoint": "job.py",
                                          "parameters": {}, "schema": {}},
                           [("job.py", sha, content)])
    item = store.submit(job=job, queue="local", overrides={}, parameters={},
                        lease_owner="bench")
    assert store.start_run(item["id"], "bench", "run", 30, {})
    store.append_log(item["id"], "run", 1, b"".join(b"line %d\n" % n for n in range(50)))
    assert store.finish(item["id"], "run", "succeeded", exit_code=0)
    store.close()
    return item["id"]


def run(quick: bool = False) -> list[Figure]:
    from bench_capture import write_notebook

    runs = 7 if quick else 21
    figures: list[Figure] = []
    with temp_store("startup") as ts:
        env = ts.env()
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its caches
        item = _finished_item(ts.url)
        notebook, _modules = write_notebook(ts.root / "big.ipynb")
        cwd = str(ts.root)
        jupyter, launch = tool("jupyter"), tool("jupyter-launch")
        for words in (["items"], ["show", item], ["logs", item],
                      ["job", "create", notebook.name]):
            shown = " ".join(w if w != item else "ID" for w in words)
            wall([launch, *words], env, cwd, 1)  # warm-up: bytecode and dependency caches
            # The baseline's runs alternate with the command's: the load weighs on both alike.
            samples: dict[str, list[float]] = {"base": [], "direct": [], "jupyter": []}
            for _ in range(runs):
                for key, argv in (("base", [sys.executable, "-c", "pass"]),
                                  ("jupyter", [jupyter, "launch", *words]),
                                  ("direct", [launch, *words])):
                    samples[key] += wall(argv, env, cwd, 1)
            baseline, direct = median(samples["base"]), median(samples["direct"])
            value = median(samples["jupyter"])
            packages = imports([launch, *words], env, cwd)
            top = {name: round(t, 1) for name, t in list(packages.items())[:8]}
            log(f"  jupyter launch {shown}: {ms(value)} ms (jupyter-launch {ms(direct)} ms; "
                f"python -c pass {ms(baseline)} ms); imports {sum(packages.values()):.0f} ms: "
                + ", ".join(f"{k} {v}" for k, v in list(top.items())[:5]))
            details: dict[str, Any] = {"jupyter_launch_p50_ms": ms(direct),
                                       "import_ms_by_package": top}
            figures.append(Figure(
                name=f"`jupyter launch {shown}` fresh process, p50 of {runs}", value=ms(value),
                unit="ms", baseline_name="`python -c pass`", baseline=ms(baseline),
                target="<= 250 ms", met=value <= TARGET, details=details))
            figures.append(Figure(
                name=f"`jupyter-launch {shown}` imports (`python -X importtime`, self times "
                     "summed)", value=round(sum(packages.values()), 1), unit="ms",
                target="-", details={"import_ms_by_package": top}))
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    for figure in run("--quick" in sys.argv):
        print(figure.as_json())
