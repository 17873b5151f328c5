"""Where the time goes: the start-up costs of the processes a local run is made of.

Each figure is the wall time of a fresh interpreter doing one thing, next to a bare
``python -c pass``: the supervisor's imports before it spawns the job, the store it opens
after, the notebook runner's imports before it starts the kernel, and the requirements check
the supervisor runs before streaming logs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from statistics import median

from common import Figure, log, ms, temp_store, time_command

PROBES = [
    ("supervisor imports before spawning the job",
     "import launch_jupyter.runners.supervisor"),
    ("supervisor: import the store + open it (after the job is spawned)",
     "from launch_jupyter.store import Store; Store({url!r}, migrate=False, check=False)"),
    ("supervisor: requirements check (capture's pins of a notebook job)",
     "from launch_jupyter.jobs.deps import check_requirements; "
     "check_requirements(['numpy==0', 'nbformat==0'])"),
    ("notebook runner imports before the kernel starts",
     "import nbformat, nbclient, launch_jupyter.jobs.parameters"),
    ("`import launch_jupyter` + parameters() in a script job",
     "import launch_jupyter; launch_jupyter.parameters(a=1)"),
]


def run(quick: bool) -> list[Figure]:
    from launch_jupyter.api import Launch

    n = 3 if quick else 7
    figures = []
    with temp_store("breakdown") as store:
        Launch(store.url).store.close()  # create the schema once
        bare = median(time_command([sys.executable, "-c", "pass"]) for _ in range(n))
        log(f"  python -c pass: {ms(bare)} ms")
        for label, code in PROBES:
            code = code.format(url=store.url)
            value = median(time_command([sys.executable, "-c", code]) for _ in range(n))
            log(f"  {label}: {ms(value)} ms")
            figures.append(Figure(name=label, value=ms(value), unit="ms",
                                  baseline_name="`python -c pass`", baseline=ms(bare),
                                  target="-", met=None, details={"code": code}))
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    for figure in run(quick="--quick" in sys.argv):
        print(figure.as_json())
