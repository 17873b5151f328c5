"""(d) capture of a generated 200-cell notebook, dependency resolution included.

``launch_jupyter.jobs.capture(path)`` in this process, warm (after one call), median; the
cold first call in a fresh interpreter is reported too. The baseline is ``pip freeze`` as a
subprocess alone, which is what a capture that shells out for its pins would pay at least.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

import nbformat
from common import Figure, log, ms, temp_store
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CANDIDATES = ["numpy", "nbformat", "traitlets", "sqlalchemy", "jupyter_client", "nbclient",
              "jupyter_core", "ipykernel", "scipy", "yaml", "requests", "tornado", "zmq"]
CELLS = 200


def write_notebook(path: Path) -> tuple[Path, list[str]]:
    """200 cells: a parameters cell, ~10 imports spread across the notebook, plain code."""
    modules = [m for m in CANDIDATES if importlib.util.find_spec(m) is not None][:10]
    cells = [new_markdown_cell("# Generated notebook for the capture benchmark"),
             new_code_cell("lr = 0.01  # launch: minimum=0, maximum=1\nepochs = 10\n"
                           "name = 'run'", metadata={"tags": ["parameters"]})]
    step = (CELLS - len(cells)) // (len(modules) + 1)
    body = CELLS - len(cells)
    for i in range(body):
        if i % step == 0 and i // step < len(modules):
            module = modules[i // step]
            source = f"import {module}\nprint({module}.__name__)"
        elif i % 7 == 3:
            source = (f"def f{i}(a, b={i}):\n    \"\"\"Cell {i}.\"\"\"\n"
                      f"    return [a * k + b for k in range(10)]\n\nvalues{i} = f{i}(lr)")
        elif i % 11 == 5:
            new = new_markdown_cell(f"## Section {i}\nSome prose about step {i}.")
            cells.append(new)
            continue
        else:
            source = f"total{i} = sum(range({i}))\nprint(total{i} * epochs)"
        cells.append(new_code_cell(source))
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.write(nb, path)
    return path, modules


COLD = """\
import sys, time
t0 = time.perf_counter()
from launch_jupyter.jobs import capture
job = capture(sys.argv[1])
print(time.perf_counter() - t0)
"""


def run(quick: bool) -> list[Figure]:
    from launch_jupyter.jobs import capture

    n = 10 if quick else 30
    with temp_store("capture") as store:
        path, modules = write_notebook(store.root / "big.ipynb")
        first_t0 = time.perf_counter()
        job = capture(path)
        first = time.perf_counter() - first_t0
        warm = []
        for _ in range(n):
            t0 = time.perf_counter()
            capture(path)
            warm.append(time.perf_counter() - t0)
        cold = [float(subprocess.run([sys.executable, "-c", COLD, str(path)], check=True,
                                     capture_output=True, text=True).stdout)
                for _ in range(3)]
        # ...and with an empty dependency cache: the module -> distribution map is rebuilt.
        empty_cache = dict(os.environ, XDG_CACHE_HOME=str(store.root / "empty-cache"))
        no_cache = float(subprocess.run([sys.executable, "-c", COLD, str(path)], check=True,
                                        capture_output=True, text=True,
                                        env=empty_cache).stdout)
        spec = job.spec()
    freeze = []
    for _ in range(3 if quick else 5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "freeze"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        freeze.append(time.perf_counter() - t0)
    w, c, f = ms(median(warm)), ms(median(cold)), ms(median(freeze))
    log(f"  capture warm p50 {w} ms, first call in this process {ms(first)} ms, fresh "
        f"interpreter (import + capture) {c} ms, same with an empty cache {ms(no_cache)} ms; "
        f"pip freeze {f} ms; "
        f"{len(spec.get('requirements', []))} requirements")
    details = {"cells": CELLS, "imports": modules, "requirements": spec.get("requirements"),
               "warm_samples_ms": [ms(x) for x in warm], "first_call_ms": ms(first),
               "fresh_interpreter_samples_ms": [ms(x) for x in cold],
               "fresh_interpreter_empty_cache_ms": ms(no_cache),
               "pip_freeze_samples_ms": [ms(x) for x in freeze]}
    json.dumps(details)  # fail here, not in the report, if something is not serialisable
    return [
        Figure(name="capture 200-cell notebook, warm, p50", value=w, unit="ms",
               baseline_name="`pip freeze` (subprocess)", baseline=f,
               target="<= 150 ms and < pip freeze", met=w <= 150 and w < f, details=details),
        Figure(name="capture 200-cell notebook, fresh interpreter (import + capture), p50",
               value=c, unit="ms", baseline_name="`pip freeze` (subprocess)", baseline=f,
               target="-", met=None),
        Figure(name="capture 200-cell notebook, fresh interpreter, empty dependency cache",
               value=ms(no_cache), unit="ms", baseline_name="`pip freeze` (subprocess)",
               baseline=f, target="-", met=None),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    for figure in run(quick="--quick" in sys.argv):
        print(figure.as_json())
