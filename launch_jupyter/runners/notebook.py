"""Execute a job's notebook: ``python -m launch_jupyter.runners.notebook --input NB ...``.

The job process of notebook mode. It injects the parameters as a cell of typed literals after
the ``parameters`` cell, runs every cell with nbclient, echoes stream output to stdout as it
arrives (so the supervisor can store it live), writes the executed notebook even on failure,
and on a failing cell writes ``{message, stage, cell, ename, evalue}`` to the error file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch_jupyter.runners.notebook")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--parameters", default="{}")
    parser.add_argument("--error-file", required=True)
    args = parser.parse_args(argv)

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from launch_jupyter.jobs.parameters import inject_parameters

    nb = nbformat.read(args.input, as_version=4)
    parameters = json.loads(args.parameters)
    if parameters:
        nb = inject_parameters(nb, parameters)
    injected_at = next(
        (i for i, c in enumerate(nb.cells)
         if "injected-parameters" in c.get("metadata", {}).get("tags", [])),
        None,
    )

    class StreamingClient(NotebookClient):
        current_cell = -1

        async def async_execute_cell(self, cell: Any, cell_index: int, *a: Any, **kw: Any) -> Any:
            self.current_cell = cell_index
            return await super().async_execute_cell(cell, cell_index, *a, **kw)

        def output(self, outs: list, msg: dict, display_id: Any, cell_index: int) -> Any:
            _stream(msg)
            return super().output(outs, msg, display_id, cell_index)

    client = StreamingClient(
        nb, kernel_name=args.kernel, timeout=None, allow_errors=False,
        # The run is over once the last cell ran: no need to wait for a polite kernel exit.
        shutdown_kernel="immediate",
        # ipykernel warns about TCP transport on every start; keep real errors only.
        extra_arguments=[
            "--IPKernelApp.log_level="
            + os.environ.get("LAUNCH_JUPYTER_KERNEL_LOG_LEVEL", "ERROR")
        ],
        resources={"metadata": {"path": os.getcwd()}},
    )

    def write_output() -> None:
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        nbformat.write(nb, args.output)

    def on_term(signum: int, frame: Any) -> None:
        # Cancel or timeout: take the kernel down with us, keep what ran so far.
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

    def original_index(index: int) -> int:
        return index - 1 if injected_at is not None and index > injected_at else index

    try:
        client.execute()
    except CellExecutionError as err:
        index = original_index(client.current_cell)
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
                 "cell": original_index(client.current_cell) if client.current_cell >= 0
                 else None}
        with open(args.error_file, "w") as fh:
            json.dump(error, fh)
        print(f"launch-jupyter: notebook execution failed: {error['message']}", file=sys.stderr)
        write_output()
        return 1
    write_output()
    return 0


if __name__ == "__main__":
    sys.exit(main())
