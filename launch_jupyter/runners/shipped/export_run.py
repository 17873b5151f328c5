"""Run an exported launch-jupyter job without launch-jupyter and without its store.

Written by ``jupyter launch job export REF DIR`` as ``DIR/run_job.py``. In a fresh
virtualenv::

    python -m venv .venv && .venv/bin/pip install -r requirements.txt
    .venv/bin/python run_job.py [parameters.json]

It reads the job (``.launch-jupyter/job.json``) and its parameters (``parameters.json``, or
the file given), sets ``LAUNCH_PARAMETERS`` and ``LAUNCH_OUTPUT_DIR`` (``DIR/output``) as a
runner would, and runs the entrypoint in ``DIR``: a script as ``__main__``; a notebook
with nbclient when nbclient and ipykernel are installed (the executed notebook goes to
``DIR/output``), else its code cells in order in one namespace (IPython-only lines are
reported and left out; ``%%writefile`` cells write their file, ``%%time``-like cells run
their body, other cell magics are left out whole).
The parameters are injected after the cell tagged ``parameters``, as papermill does.
"""
import json
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP_TAG = "skip-execution"


def parameters_source(values):
    lines = ["# Parameters (injected by run_job.py)"]
    lines += [f"{name} = {value!r}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def with_parameters(cells, values):
    """The code cells, the parameters injected after the one tagged ``parameters``."""
    out = []
    injected = False
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags") or []
        if SKIP_TAG in tags:
            continue
        source = cell.get("source", "")
        out.append("".join(source) if isinstance(source, list) else source)
        if "parameters" in tags and values and not injected:
            out.append(parameters_source(values))
            injected = True
    if values and not injected:
        out.insert(0, parameters_source(values))
    return out


#: cell magics whose body is Python that runs (run here once, without timing or capture)
PYTHON_BODY_MAGICS = ("time", "timeit", "capture", "prun")


def cell_magic(number, source):
    """The Python to run for a ``%%magic`` cell: ``%%writefile`` writes its body (the job's
    own modules), ``%%time`` and the like run theirs; any other is left out whole (its body
    is not Python)."""
    first, _, body = source.lstrip().partition("\n")
    words = first[2:].split()
    name = words[0] if words else ""
    if name in ("writefile", "file"):
        paths = [w for w in words[1:] if not w.startswith("-")]
        if paths:
            append = "-a" in words or "--append" in words
            print(f"{'Appending to' if append else 'Writing'} {paths[-1]}")
            with open(paths[-1], "a" if append else "w", encoding="utf-8") as fh:
                fh.write(body if body.endswith("\n") else body + "\n")
        return ""
    if name in PYTHON_BODY_MAGICS:
        return body
    print(f"[run_job.py: cell {number}: IPython cell left out: {first.strip()}]",
          file=sys.stderr)
    return ""


def run_cells(cells, name):
    namespace = {"__name__": "__main__"}
    for number, source in enumerate(cells, start=1):
        if source.lstrip().startswith("%%"):
            source = cell_magic(number, source)
        kept = []
        for line in source.splitlines():
            if line.lstrip().startswith(("%", "!")):
                print(f"[run_job.py: cell {number}: IPython line left out: {line.strip()}]",
                      file=sys.stderr)
                kept.append(line[: len(line) - len(line.lstrip())] + "pass")  # keeps a block
            else:
                kept.append(line)
        code = compile("\n".join(kept), f"{name} cell {number}", "exec")
        exec(code, namespace)  # noqa: S102 - the job's own code, as its notebook runs it


def run_notebook(path, values, output_dir):
    with open(path, encoding="utf-8") as fh:
        nb = json.load(fh)
    try:
        import ipykernel  # noqa: F401
        import nbclient
        import nbformat
    except ImportError:
        run_cells(with_parameters(nb["cells"], values), os.path.basename(path))
        return 0  # sys.exit(N) in a cell leaves with N, as in the notebook
    node = nbformat.reads(json.dumps(nb), as_version=4)
    cells = [c for c in node.cells
             if SKIP_TAG not in (c.get("metadata") or {}).get("tags", [])]
    at = next((i + 1 for i, c in enumerate(cells)
               if "parameters" in (c.get("metadata") or {}).get("tags", [])), 0)
    if values:
        cells.insert(at, nbformat.v4.new_code_cell(parameters_source(values)))
    node.cells = cells
    client = nbclient.NotebookClient(node, kernel_name="python3",
                                     resources={"metadata": {"path": os.getcwd()}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        if err.ename != "SystemExit":
            raise
        from launch_notebook import exit_status  # lib/: the runners' papermill convention

        code = exit_status(err.evalue)  # sys.exit(0) ends the run well; sys.exit(N): N
        print(f"[run_job.py: sys.exit({err.evalue}): the run ends here, exit code {code}]",
              file=sys.stderr)
        return code
    finally:
        nbformat.write(node, os.path.join(output_dir, os.path.basename(path)))
    return 0


def main(argv):
    with open(os.path.join(HERE, ".launch-jupyter", "job.json"), encoding="utf-8") as fh:
        job = json.load(fh)
    given = argv[0] if argv else os.path.join(HERE, "parameters.json")
    with open(given, encoding="utf-8") as fh:
        values = json.load(fh)
    output_dir = os.path.join(HERE, "output")
    os.makedirs(output_dir, exist_ok=True)
    os.environ["LAUNCH_PARAMETERS"] = json.dumps(values)
    os.environ["LAUNCH_OUTPUT_DIR"] = output_dir
    os.environ.setdefault("LAUNCH_JOB", job.get("ref", ""))
    for name, value in (job.get("env") or {}).items():
        os.environ.setdefault(name, value)
    lib = os.path.join(HERE, ".launch-jupyter", "lib")  # stand-in for `import launch_jupyter`
    sys.path.append(lib)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.environ.get("PYTHONPATH"), lib) if p)
    work = HERE
    os.chdir(work)
    sys.path.insert(0, work)
    entry = os.path.join(work, job["entrypoint"])
    if job.get("mode") == "notebook":
        return run_notebook(entry, values, output_dir)
    sys.argv = [entry]
    runpy.run_path(entry, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
