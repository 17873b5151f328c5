"""Run a notebook with nbclient (shipped by launch-jupyter).

python3 launch_notebook.py --input NB --output EXECUTED --error-file ERR [--kernel K]
                           [--progress-file P]
The parameters are already injected in NB. Stream output is echoed as it arrives; the
executed notebook is written after every cell (at most every WRITE_EVERY s) and at the end,
even on failure; a failing cell is described in ERR. Each cell's start and end are appended
to P as JSON lines {"cell", "cells", "at", "source"} and {"cell", "end", "outputs",
"execution_count"} (outputs over MAX_OUTPUTS bytes: {"cell", "end", "omitted": size}) (P
defaults to the job's LAUNCH_METRICS_FILE, the side channel the run wrapper passes to the
runner, which keeps a copy of the executed notebook from them: progress.NotebookMirror). Cells are
numbered from 1 in the executed notebook, the injected parameters cell included.
"""
import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
WRITE_EVERY = 0.5
MAX_SOURCE = 120
#: a cell's outputs travel with its end record up to this size (the run wrapper passes
#: records under 4 KB to the runner); bigger ones come with the notebook at the end
MAX_OUTPUTS = 3000
FALLBACK_KERNEL = "python3"  # ipykernel's own kernelspec: present wherever ipykernel is


def exit_status(value: str) -> int:
    """The exit code of ``sys.exit(value)`` from the kernel's ``evalue`` text (papermill's
    convention): 0 for nothing, ``None``, ``False`` or 0; N for an integer N (1 when it does
    not fit an exit code); 1 for a message. runners/notebook.py uses it too."""
    text = value.strip()
    if text in ("", "None", "False"):  # sys.exit(False) exits 0, sys.exit(True) 1, as bools
        return 0
    if text == "True":
        return 1
    try:
        code = int(text)
    except ValueError:
        return 1
    return code if 0 <= code <= 255 else 1


def kernel_or_fallback(kernel: str, nb) -> str:
    """``kernel``, or this runner's Python kernel when ``kernel`` is not installed here and
    the notebook is Python (said in the log); a missing non-Python kernel fails at start.
    The chosen kernel's spec goes into ``nb``'s metadata: the executed notebook says what
    ran, and JupyterLab finds nothing to rewrite (and mark unsaved) when it opens it.
    runners/notebook.py uses it too."""
    from jupyter_client.kernelspec import find_kernel_specs

    specs = find_kernel_specs()
    chosen = kernel
    if kernel not in specs:
        meta = nb.get("metadata", {})
        language = ((meta.get("kernelspec") or {}).get("language")
                    or (meta.get("language_info") or {}).get("name") or "python")
        if not language.lower().startswith("python"):
            return kernel
        print(f"launch-jupyter: kernel {kernel!r} is not installed on this runner; running "
              f"the notebook with its Python kernel ({FALLBACK_KERNEL})", file=sys.stderr,
              flush=True)
        chosen = FALLBACK_KERNEL
    record_kernelspec(nb, chosen, specs.get(chosen))
    return chosen


def record_kernelspec(nb, name, folder=None):
    """Write kernelspec ``name`` (found in ``folder``) into ``nb``'s metadata as JupyterLab
    does: name, display_name, language."""
    try:  # the spec's own file: a few hundred bytes, no traitlets
        with open(os.path.join(folder, "kernel.json"), encoding="utf-8") as fh:
            spec = json.load(fh)
    except (TypeError, OSError, ValueError):
        from jupyter_client.kernelspec import KernelSpecManager

        try:  # ipykernel's native python3 has no kernel.json of its own
            spec = KernelSpecManager().get_kernel_spec(name).to_dict()
        except Exception:  # not installed here (fails at start): keep what the job says
            return
    if not isinstance(spec, dict) or not isinstance(spec.get("display_name"), str):
        return
    recorded = {"name": name, "display_name": spec["display_name"]}
    if isinstance(spec.get("language"), str) and spec["language"]:
        recorded["language"] = spec["language"]
    nb.setdefault("metadata", {})["kernelspec"] = recorded


def first_line(source):
    for line in source.splitlines():
        if line.strip():
            line = line.rstrip()
            return line if len(line) <= MAX_SOURCE else line[:MAX_SOURCE - 1] + "\u2026"
    return ""


def save_notebook(nb, path):
    """Write nb atomically, unvalidated (the last write goes through nbformat)."""
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, "." + name + ".partial")
    with open(partial, "w", encoding="utf-8") as fh:
        json.dump(nb, fh, sort_keys=True, indent=1, ensure_ascii=False)
    os.replace(partial, path)


class Progress:
    """Cell starts and ends as JSON lines, and the executed notebook after each cell."""

    def __init__(self, nb, output, path):
        self.nb, self.output, self.path = nb, output, path
        self.written, self.dirty, self.pending = 0.0, False, None

    def line(self, data):
        if not self.path:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (json.dumps(data) + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            self.path = None  # nowhere to write progress: run without it

    def start(self, index, source):
        self.line({"cell": index + 1, "cells": len(self.nb.cells), "at": time.time(),
                   "source": first_line(source)})

    def end(self, index, cell):
        record = {"cell": index + 1, "end": time.time()}
        outputs = json.dumps(cell.get("outputs", []))
        if len(outputs) <= MAX_OUTPUTS:
            record["outputs"] = json.loads(outputs)
            record["execution_count"] = cell.get("execution_count")
        else:
            record["omitted"] = len(outputs)
        self.line(record)
        self.dirty = True
        wait = self.written + WRITE_EVERY - time.monotonic()
        if wait <= 0:
            self.write()
        elif self.pending is None:
            self.pending = asyncio.get_running_loop().call_later(wait, self.write)

    def write(self):
        self.pending = None
        if self.dirty:
            self.dirty = False
            try:
                save_notebook(self.nb, self.output)
            except OSError:
                pass
            self.written = time.monotonic()


def echo(msg):
    kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
    content = msg.get("content", {})
    if kind == "stream":
        out = sys.stderr if content.get("name") == "stderr" else sys.stdout
        out.write(content.get("text", ""))
        out.flush()
    elif kind == "error":
        sys.stderr.write(ANSI.sub("", "\n".join(content.get("traceback", []))) + "\n")
        sys.stderr.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--error-file", required=True)
    parser.add_argument("--progress-file", default=os.environ.get("LAUNCH_METRICS_FILE"))
    args = parser.parse_args()

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(args.input, as_version=4)
    progress = Progress(nb, args.output, args.progress_file)

    class Client(NotebookClient):
        current_cell = -1
        term_handled = False

        async def async_execute_cell(self, cell, cell_index, *a, **kw):
            self.current_cell = cell_index
            if not self.term_handled:
                # nbclient's SIGTERM handler would fail the run with a bare AssertionError.
                asyncio.get_running_loop().add_signal_handler(
                    signal.SIGTERM, on_term, signal.SIGTERM, None)
                self.term_handled = True
            if (cell.cell_type != "code" or not cell.source.strip()
                    or self.skip_cells_with_tag in cell.metadata.get("tags", [])):
                return await super().async_execute_cell(cell, cell_index, *a, **kw)
            progress.start(cell_index, cell.source)
            try:
                return await super().async_execute_cell(cell, cell_index, *a, **kw)
            finally:
                progress.end(cell_index, cell)

        def output(self, outs, msg, display_id, cell_index):
            echo(msg)
            return super().output(outs, msg, display_id, cell_index)

    client = Client(nb, kernel_name=kernel_or_fallback(args.kernel, nb), timeout=None,
                    allow_errors=False, extra_arguments=["--IPKernelApp.log_level=ERROR"],
                    resources={"metadata": {"path": os.getcwd()}})

    def write_output():
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        nbformat.write(nb, args.output)

    def on_term(signum, frame):
        index = client.current_cell
        if 0 <= index < len(nb.cells):
            source = first_line(nb.cells[index].source)
            where = f"cell {index + 1} of {len(nb.cells)} ({source})"
            print("launch-jupyter: notebook stopped at " + where, file=sys.stderr, flush=True)
        try:
            os.killpg(client.km.provisioner.process.pid, signal.SIGKILL)
        except Exception:
            pass
        try:
            write_output()
        finally:
            os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)

    def fail(error):
        with open(args.error_file, "w") as fh:
            json.dump(error, fh)
        write_output()
        return 1

    try:
        client.execute()
    except CellExecutionError as err:
        index = client.current_cell + 1
        if err.ename == "SystemExit":  # papermill's convention: sys.exit(0) ends the run well
            code = exit_status(err.evalue)
            if code == 0:
                print(f"launch-jupyter: cell {index} called sys.exit({err.evalue}): the run "
                      "ends here, successfully", file=sys.stderr, flush=True)
                write_output()
                return 0
            fail({"message": f"cell {index} called sys.exit({err.evalue}): exit code {code}",
                  "stage": "execute", "cell": index, "ename": err.ename, "evalue": err.evalue})
            return code
        return fail({"message": f"cell {index} raised {err.ename}: {err.evalue}",
                     "stage": "execute", "cell": index, "ename": err.ename,
                     "evalue": err.evalue})
    except Exception as err:
        message = f"{type(err).__name__}: {err}"
        print("launch-jupyter: notebook execution failed: " + message, file=sys.stderr)
        return fail({"message": message, "stage": "kernel",
                     "cell": client.current_cell + 1 if client.current_cell >= 0
                     else None})
    write_output()
    return 0


if __name__ == "__main__":
    sys.exit(main())
