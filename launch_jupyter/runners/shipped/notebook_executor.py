"""Run a notebook with nbclient (shipped by launch-jupyter).

python3 launch_notebook.py --input NB --output EXECUTED --error-file ERR [--kernel K]
The parameters are already injected in NB. Stream output is echoed as it arrives; the
executed notebook is written even on failure; a failing cell is described in ERR.
"""
import argparse
import json
import os
import re
import signal
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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
    args = parser.parse_args()

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(args.input, as_version=4)
    injected = next((i for i, c in enumerate(nb.cells)
                     if "injected-parameters" in c.get("metadata", {}).get("tags", [])), None)

    class Client(NotebookClient):
        current_cell = -1

        async def async_execute_cell(self, cell, cell_index, *a, **kw):
            self.current_cell = cell_index
            return await super().async_execute_cell(cell, cell_index, *a, **kw)

        def output(self, outs, msg, display_id, cell_index):
            echo(msg)
            return super().output(outs, msg, display_id, cell_index)

    client = Client(nb, kernel_name=args.kernel, timeout=None, allow_errors=False,
                    extra_arguments=["--IPKernelApp.log_level=ERROR"],
                    resources={"metadata": {"path": os.getcwd()}})

    def write_output():
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        nbformat.write(nb, args.output)

    def on_term(signum, frame):
        try:
            os.killpg(client.km.provisioner.process.pid, signal.SIGKILL)
        except Exception:
            pass
        try:
            write_output()
        finally:
            os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)

    def original(index):
        return index - 1 if injected is not None and index > injected else index

    def fail(error):
        with open(args.error_file, "w") as fh:
            json.dump(error, fh)
        write_output()
        return 1

    try:
        client.execute()
    except CellExecutionError as err:
        index = original(client.current_cell)
        return fail({"message": f"cell {index} raised {err.ename}: {err.evalue}",
                     "stage": "execute", "cell": index, "ename": err.ename,
                     "evalue": err.evalue})
    except Exception as err:
        message = f"{type(err).__name__}: {err}"
        print("launch-jupyter: notebook execution failed: " + message, file=sys.stderr)
        return fail({"message": message, "stage": "kernel",
                     "cell": original(client.current_cell) if client.current_cell >= 0
                     else None})
    write_output()
    return 0


if __name__ == "__main__":
    sys.exit(main())
