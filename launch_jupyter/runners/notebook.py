"""Execute a job's notebook: ``python -m launch_jupyter.runners.notebook --input NB ...``.

The job process of notebook mode. It injects the parameters as a cell of typed literals after
the ``parameters`` cell, runs every cell with nbclient, echoes stream output to stdout as it
arrives (so the supervisor can store it live), writes the executed notebook after every cell
(at most every ``WRITE_EVERY`` s, and at the end, even on failure), records each cell's start
and end in the progress file (``runners/progress.py``), and on a failing cell writes
``{message, stage, cell, ename, evalue}`` to the error file. Cells are numbered from 1 in the
executed notebook, the injected parameters cell included: what JupyterLab shows.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import signal
import sys
import time
from typing import Any

from launch_jupyter.runners.progress import first_line
from launch_jupyter.runners.shipped.notebook_executor import exit_status, kernel_or_fallback

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
WRITE_EVERY = 0.5  # seconds: the executed notebook is rewritten at most this often mid-run


def save_notebook(nb: Any, path: str) -> None:
    """Write ``nb`` to ``path`` atomically (a reader never sees half a file), unvalidated:
    mid-run copies are rewritten often; the last write goes through nbformat."""
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f".{name}.partial")
    with open(partial, "w", encoding="utf-8") as fh:
        json.dump(nb, fh, sort_keys=True, indent=1, ensure_ascii=False)
    os.replace(partial, path)


class Progress:
    """Each cell's start and end (a JSON line each, see ``runners/progress.py``) and the
    executed notebook, rewritten after a cell ends (at most every ``WRITE_EVERY`` s)."""

    def __init__(self, nb: Any, output: str, path: str | None) -> None:
        self.nb = nb
        self.output = output
        self.file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self.written = 0.0
        self.dirty = False
        self.pending: Any = None  # the deferred write's timer handle

    def _line(self, data: dict) -> None:
        assert self.file is not None
        self.file.write(json.dumps(data) + "\n")
        self.file.flush()

    def start(self, index: int, source: str) -> None:
        """Cell ``index`` (0-based) starts."""
        if self.file is None:
            return
        self._line({"cell": index + 1, "cells": len(self.nb.cells), "at": time.time(),
                    "source": first_line(source)})

    def end(self, index: int) -> None:
        """Cell ``index`` ended: its line, and the notebook now or in a moment."""
        if self.file is None:
            return
        self._line({"cell": index + 1, "end": time.time()})
        self.dirty = True
        wait = self.written + WRITE_EVERY - time.monotonic()
        if wait <= 0:
            self.write()
        elif self.pending is None:
            self.pending = asyncio.get_running_loop().call_later(wait, self.write)

    def write(self) -> None:
        """The executed notebook as far as it ran (outputs of the running cell so far)."""
        self.pending = None
        if self.dirty:
            self.dirty = False
            save_notebook(self.nb, self.output)
            self.written = time.monotonic()


def _stream(msg: dict) -> None:
    kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
    content = msg.get("content", {})
    if kind == "stream":
        out = sys.stderr if content.get("name") == "stderr" else sys.stdout
        out.write(content.get("text", ""))
        out.flush()
    elif kind == "error":
        # Stored logs are read in browsers and files too: drop the terminal colour codes.
        sys.stderr.write(_ANSI.sub("", "\n".join(content.get("traceback", []))) + "\n")
        sys.stderr.flush()


def kernel_arguments() -> list[str]:
    """The kernel's extra command-line arguments (the pool starts its kernels with them too).
    ipykernel warns about TCP transport on every start; keep real errors only."""
    return ["--IPKernelApp.log_level="
            + os.environ.get("LAUNCH_JUPYTER_KERNEL_LOG_LEVEL", "ERROR")]


@functools.cache
def kernel_manager_class() -> type:
    """jupyter_client's AsyncKernelManager that notices a killed kernel's exit within
    milliseconds (it polls every 0.1 s): each run ends ~0.1 s sooner. The pool uses it too."""
    from jupyter_client.manager import AsyncKernelManager

    class PromptKernelManager(AsyncKernelManager):
        async def _async_wait(self, pollinterval: float = 0.1) -> None:
            await super()._async_wait(pollinterval=0.005)

    return PromptKernelManager


def main(argv: list[str] | None = None, kernel: Any = None) -> int:
    """Execute the notebook; ``kernel``: a started (manager, client) pair to run it on
    instead of starting one (a warm kernel from ``runners/kernelpool.py``)."""
    parser = argparse.ArgumentParser(prog="launch_jupyter.runners.notebook")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--parameters", default="{}")
    parser.add_argument("--error-file", required=True)
    parser.add_argument("--progress-file", default=None)
    args = parser.parse_args(argv)

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from launch_jupyter.jobs.parameters import inject_parameters

    nb = nbformat.read(args.input, as_version=4)
    parameters = json.loads(args.parameters)
    if parameters:
        nb = inject_parameters(nb, parameters)
    progress = Progress(nb, args.output, args.progress_file)

    class StreamingClient(NotebookClient):
        current_cell = -1
        term_handled = False

        async def async_execute_cell(self, cell: Any, cell_index: int, *a: Any, **kw: Any) -> Any:
            self.current_cell = cell_index
            if not self.term_handled:
                # nbclient's own SIGTERM handler would shut the kernel down and fail the run
                # with a bare AssertionError: a cancel or timeout is ours to report.
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
                progress.end(cell_index)

        def output(self, outs: list, msg: dict, display_id: Any, cell_index: int) -> Any:
            _stream(msg)
            return super().output(outs, msg, display_id, cell_index)

    client = StreamingClient(
        nb, kernel_name=kernel_or_fallback(args.kernel, nb), timeout=None, allow_errors=False,
        # The run is over once the last cell ran: no need to wait for a polite kernel exit.
        shutdown_kernel="immediate",
        extra_arguments=kernel_arguments(), kernel_manager_class=kernel_manager_class(),
        resources={"metadata": {"path": os.getcwd()}},
    )
    if kernel is not None:  # nbclient skips its own start for a manager that has a kernel
        client.km, client.kc = kernel

    def write_output() -> None:
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        nbformat.write(nb, args.output)

    def on_term(signum: int, frame: Any) -> None:
        # Cancel or timeout: say where the run stopped, take the kernel down with us, keep
        # what ran so far (the supervisor's log line says why and who asked).
        index = client.current_cell
        if 0 <= index < len(nb.cells):
            where = (f"cell {index + 1} of {len(nb.cells)} "
                     f"({first_line(nb.cells[index].source)})")
            print(f"launch-jupyter: notebook stopped at {where}", file=sys.stderr, flush=True)
        try:
            pid = client.km.provisioner.process.pid  # type: ignore[union-attr]
            os.killpg(pid, signal.SIGKILL)
        except Exception:
            pass
        try:
            write_output()
        finally:
            os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)

    try:
        client.execute()
    except CellExecutionError as err:
        index = client.current_cell + 1
        if err.ename == "SystemExit":  # papermill's convention: sys.exit(0) ends the run well
            code = exit_status(err.evalue)
            if code:
                error = {"message": f"cell {index} called sys.exit({err.evalue}): exit code "
                                    f"{code}", "stage": "execute", "cell": index,
                         "ename": err.ename, "evalue": err.evalue}
                with open(args.error_file, "w") as fh:
                    json.dump(error, fh)
            else:
                print(f"launch-jupyter: cell {index} called sys.exit({err.evalue}): the run "
                      "ends here, successfully", file=sys.stderr, flush=True)
            write_output()
            return code
        error = {
            "message": f"cell {index} raised {err.ename}: {err.evalue}",
            "stage": "execute", "cell": index, "ename": err.ename, "evalue": err.evalue,
        }
        with open(args.error_file, "w") as fh:
            json.dump(error, fh)
        write_output()
        return 1
    except Exception as err:  # kernel failed to start, died, ...
        error = {"message": f"{type(err).__name__}: {err}", "stage": "kernel",
                 "cell": client.current_cell + 1 if client.current_cell >= 0 else None}
        with open(args.error_file, "w") as fh:
            json.dump(error, fh)
        print(f"launch-jupyter: notebook execution failed: {error['message']}", file=sys.stderr)
        write_output()
        return 1
    write_output()
    return 0


if __name__ == "__main__":
    sys.exit(main())
