"""The %launch magics in a real kernel: submit, %%launch, sweep, the in-kernel agent, errors."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from launch_jupyter.api import Launch
from tests.conftest import pid_alive, wait_for, write_notebook, write_script
from tests.magics.kernel import Kernel

SLEEPER = """\
import time
import launch_jupyter
params = launch_jupyter.parameters(seconds=3.0)
print("started", flush=True)
time.sleep(params.seconds)
print("finished", flush=True)
"""

TRAIN = """\
import launch_jupyter
params = launch_jupyter.parameters(lr=0.01, layers=2)
print(f"lr={params.lr} layers={params.layers}")
"""


def _execute_notebook(path: Path, env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    full_env = dict(os.environ, **(env or {}))
    client = NotebookClient(nb, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=full_env)
    return nb


def _outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            elif "data" in out:
                parts.append(out["data"].get("text/plain", ""))
    return "\n".join(parts)


def test_one_kernel_submits_itself_runs_a_cell_job_and_a_sweep(
        home: Path, tmp_path: Path, client: Launch) -> None:
    write_script(tmp_path, "train.py", TRAIN)
    path = write_notebook(tmp_path, "experiment.ipynb", [
        'print(f"x is {x}")',
        "def square(v):\n    return v * v",
        "%load_ext launch_jupyter",
        "%launch agent start --max-jobs 2",
        "%launch submit -p x=7 --wait",
        "%%launch -p x=5 --name squares --wait\nprint('square', square(x))",
        "%launch job create train.py",
        "%launch sweep train --grid lr=0.001,0.01,0.1 --grid layers=2,4 --wait",
        "%launch agent status",
    ], parameters="x = 1")
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].metadata["tags"] = ["launch-setup"]  # def square: travels with %%launch
    nbformat.write(nb, path)

    executed = _execute_notebook(path, {"JPY_SESSION_NAME": str(path)})
    text = _outputs_text(executed)
    assert "captured" in text and "experiment:v1" in text

    items = client.items()
    assert len(items) == 8, [i["job"] for i in items]
    assert all(i["state"] == "succeeded" for i in items), [(i["job"], i["state"], i["error"])
                                                           for i in items]
    # %launch submit: this notebook, with the override visible in the executed notebook.
    (mine,) = [i for i in items if i["job"].startswith("experiment:")]
    assert mine["overrides"] == {"x": 7}
    job_nb = nbformat.read(client.item(mine["id"]).output_notebook, as_version=4)
    assert "x is 7" in _outputs_text(job_nb)
    # %%launch: the parameters cell and the launch-setup cell travelled with the cell.
    (cell_item,) = [i for i in items if i["job"].startswith("squares:")]
    assert "square 25" in client.logs(cell_item["id"])[0]
    # the sweep: 6 items, one sweep id, every grid point once.
    swept = [i for i in items if i["job"].startswith("train:")]
    assert len(swept) == 6 and len({i["sweep_id"] for i in swept}) == 1
    assert swept[0]["sweep_id"] is not None
    points = sorted((i["overrides"]["lr"], i["overrides"]["layers"]) for i in swept)
    assert points == sorted((lr, n) for lr in (0.001, 0.01, 0.1) for n in (2, 4))
    assert "lr=0.1 layers=4" in "".join(client.logs(i["id"])[0] for i in swept)


def test_magics_are_inert_inside_a_running_job(
        start_kernel: Callable[..., Kernel], client: Launch, tmp_path: Path) -> None:
    write_script(tmp_path, "train.py", TRAIN)
    client.create_job(tmp_path / "train.py")
    k = start_kernel({"LAUNCH_ITEM_ID": "01TESTITEM"})
    k.execute("%load_ext launch_jupyter")
    for line in ("%launch agent start", "%launch submit train", "%launch sweep train --grid "
                 "lr=1,2"):
        out = k.execute(line)
        assert "inert inside a running job (item 01TESTITEM)" in out.stdout
    assert client.items() == []
    assert client.agents() == []


def test_submit_without_notebook_file_captures_the_cells_run_so_far(
        kernel: Kernel, client: Launch) -> None:
    kernel.execute("a = 2")
    kernel.execute("print('answer', a * 21)")
    kernel.execute("%launch agent start")
    out = kernel.execute("item = %launch submit --wait\nitem")
    assert "captured the 2 cell(s) executed so far" in out.stdout
    (item,) = client.items()
    assert item["state"] == "succeeded", item["error"]
    assert "answer 42" in client.logs(item["id"])[0]
    # .wait() showed a progress line that was updated in place, and the cell shows the card.
    assert any("waiting for item" in html for html in out.data("text/html"))
    assert any(f"data-item='{item['id']}'" in html for html in out.data("text/html"))


def test_help_usage_errors_and_domain_errors(kernel: Kernel, client: Launch) -> None:
    helped = kernel.execute("%launch?")
    assert "%launch agent start" in helped.page and "launch-setup" in helped.page
    # IPython shows a UsageError as one line on stderr (no traceback) and fails the cell.
    bad = kernel.execute("%launch submit --priority", allow_error=True)
    assert bad.reply["content"]["status"] == "error"
    assert bad.reply["content"]["ename"] == "UsageError"
    assert "UsageError: usage: %launch submit" in bad.stderr
    assert "expected one argument" in bad.stderr
    unknown = kernel.execute("%launch frobnicate", allow_error=True)
    assert "UsageError" in unknown.stderr and "invalid choice" in unknown.stderr
    missing = kernel.execute("%launch submit nosuchjob --queue local")
    assert "error:" in missing.stderr and "nosuchjob" in missing.stderr
    assert "Traceback" not in missing.stderr and missing.error is None
    no_queue = kernel.execute("%launch panel nosuchqueue")
    assert "queue 'nosuchqueue' does not exist" in no_queue.stderr
    sub_help = kernel.execute("%launch sweep -h")
    assert "--grid" in sub_help.stdout and "--random" in sub_help.stdout


def test_agent_keeps_running_while_cells_execute_and_kernel_shuts_down_promptly(
        start_kernel: Callable[..., Kernel], client: Launch, tmp_path: Path) -> None:
    write_script(tmp_path, "sleeper.py", SLEEPER)
    client.create_job(tmp_path / "sleeper.py")
    k = start_kernel()
    k.execute("%load_ext launch_jupyter")
    k.execute("%launch agent start")
    item = client.submit("sleeper", parameters={"seconds": 4.0})
    wait_for(lambda: item.state == "running", 30, what="item running")
    # Other cells run while the agent works; the agent thread is still alive afterwards.
    busy = k.execute("import time\nt = time.time()\ntotal = sum(range(3_000_000))\n"
                     "time.sleep(0.5)\nprint('cell took', round(time.time() - t, 1))")
    assert "cell took" in busy.stdout
    # (the item is marked running a moment before the agent's runner call returns)
    wait_for(lambda: item.id in k.execute("%launch agent status").stdout, 30,
             what="the kernel's agent reporting the running item")
    assert k.value("__import__('launch_jupyter.magics').magics.kernel_agent().running") == \
        "True"
    (live,) = client.agents()
    kernel_pid = k.pid
    took = k.shutdown()
    assert took < 20, f"kernel shutdown took {took:.1f}s with an agent running"
    assert kernel_pid is None or not pid_alive(kernel_pid)
    assert item.state == "running"  # the run outlives the kernel under its supervisor
    wait_for(lambda: item.done, 60, what="item finished after the kernel shut down")
    assert item.state == "succeeded", item.error
    assert "finished" in item.logs()
    assert live["id"] not in [a["id"] for a in client.agents()]  # it stopped, cleanly


def test_cancel_from_the_handle_stops_a_running_item(
        kernel: Kernel, client: Launch, tmp_path: Path) -> None:
    write_script(tmp_path, "sleeper.py", SLEEPER)
    kernel.execute("%launch job create sleeper.py")
    kernel.execute("%launch agent start")
    kernel.execute("item = %launch submit sleeper -p seconds=60")
    item_id = kernel.value("item.id").strip("'")
    wait_for(lambda: client.item(item_id).state == "running", 30, what="item running")
    started = time.monotonic()
    kernel.execute("item.cancel()")
    out = kernel.execute("item.wait(timeout=30).state")
    assert "'cancelled'" in out.data()[-1]
    assert time.monotonic() - started < 30
    requeued = kernel.execute("new = item.requeue()\nnew.id")
    assert client.item(requeued.data()[-1].strip("'")).info()["requeued_from"] == item_id
    kernel.execute("%launch cancel {new.id}")


def test_items_show_logs_and_queue_commands(kernel: Kernel, client: Launch,
                                            tmp_path: Path) -> None:
    write_script(tmp_path, "train.py", TRAIN)
    kernel.execute("%launch queue create cpu")
    assert "cpu" in kernel.execute("%launch queue list").stdout
    kernel.execute("%launch job create train.py")
    assert "lr" in kernel.execute("%launch job show train").stdout
    kernel.execute("%launch agent start --queue cpu")
    out = kernel.execute("%launch submit train --queue cpu -p lr=0.5 --wait")
    (item,) = client.items(queue="cpu")
    assert item["state"] == "succeeded"
    assert "lr=0.5" in kernel.execute(f"%launch logs {item['id']}").stdout
    shown = kernel.execute(f"%launch show {item['id']}").data("text/html")
    assert "succeeded" in shown[-1]
    listed = kernel.execute("%launch items --queue cpu")
    assert item["id"] in listed.data("text/html")[-1] and item["id"] in listed.data()[-1]
    assert out.error is None
    stopped = kernel.execute("%launch agent stop")
    assert "stopped" in stopped.stdout


def test_operations_once_only_in_the_cli_work_as_magics(home: Path, tmp_path: Path,
                                                        client: Launch) -> None:
    # The magics and the CLI share one option table: run, --set-less submit by path, items
    # --sweep, queue pause/resume/delete and delete ITEM all exist in a notebook too.
    write_script(tmp_path, "train.py", TRAIN)
    path = write_notebook(tmp_path, "ops.ipynb", [
        "%load_ext launch_jupyter",
        "%launch queue create spare",
        "%launch queue pause spare",
        "h = %launch submit train.py --queue spare -p lr=0.5",
        "%launch queue resume spare",
        "%launch sweep train --grid lr=0.1,0.2 --queue spare --json",
        "%launch items --sweep {sweep_id}",
        "%launch delete {h_id}",
        "done = %launch run train.py -p layers=3",
        "print('RUN', done.state, done.parameters['layers'])",
    ])
    nb = nbformat.read(path, as_version=4)
    # Fill the sweep id and item id in from earlier cells' values at run time.
    nb.cells[6].source = ("import json, io, contextlib\n"
                          "sweep_id = [i['sweep_id'] for i in "
                          "__import__('launch_jupyter.api').api.default_client().items() "
                          "if i['sweep_id']][0]\n"
                          "get_ipython().run_line_magic('launch', f'items --sweep {sweep_id}')")
    nb.cells[7].source = "get_ipython().run_line_magic('launch', f'delete {h.id}')"
    nbformat.write(nb, path)
    executed = _execute_notebook(path)
    text = _outputs_text(executed)
    assert "queue spare paused" in text and "queue spare resumed" in text
    assert "RUN succeeded 3" in text, text
    assert "deleted item" in text
    items = client.items()
    swept = [i for i in items if i["sweep_id"]]
    assert len(swept) == 2
    shown = [c for c in executed.cells if "items --sweep" in c.source][0]
    html = "".join(o.get("data", {}).get("text/html", "") for o in shown.outputs)
    assert all(i["id"] in html for i in swept) and html.count("data-item=") == 2
    assert not any(i["queue"] == "spare" and not i["sweep_id"] for i in items)  # deleted
