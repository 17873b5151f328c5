"""Outputs of a Kubernetes run come back through the pod's log: launch_run.py (shipped into
every container) writes them after the job between two marker lines, the runner takes them
out of the log again. The wrapper really runs here; the log reaches the runner through the
emulated API."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from launch_jupyter.api import Launch
from launch_jupyter.runners.build import extract_tar, support_files
from launch_jupyter.runners.kubernetes import KEY_VAR, OutputTrailer, output_marker

from ..conftest import run_to_end, write_script
from .cluster import Controller, JobHandle
from .conftest import jobs_of, make_queue

MARKER = output_marker("01TEST-key")


def wrapper(tmp: Path) -> Path:
    path = tmp / "launch_run.py"
    path.write_bytes(dict(support_files())["launch_run.py"])
    return path


def run_wrapped(tmp: Path, code: str, marker: str | None = MARKER, limit: int | None = None,
                key: str | None = None) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """launch_run.py around ``python3 -c code`` with OUT and EXEC dirs; stdout as bytes.
    With ``key`` the wrapper gets the attempt's outputs key as a pod's does (no --marker)."""
    out, executed = tmp / "output", tmp / "executed"
    out.mkdir(exist_ok=True)
    executed.mkdir(exist_ok=True)
    extra = ["--limit", str(limit)] if limit is not None else []
    if key is None:
        extra += ["--marker", marker or MARKER]
    env = {"OUT": str(out), "EXEC": str(executed), **({KEY_VAR: key} if key else {})}
    proc = subprocess.run(
        [sys.executable, str(wrapper(tmp)), "--dir", str(out),
         "--dir", str(executed), *extra, "--", sys.executable, "-c", code],
        capture_output=True, timeout=60, env=env)
    return proc, out, executed


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 8000), max_size=12),
       name=st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=12))
def test_any_output_split_anywhere_comes_back_whole_with_its_files(
        tmp_path_factory, text: bytes, cuts: list[int], name: str) -> None:
    tmp = tmp_path_factory.mktemp("wrap")
    code = (f"import os,sys; sys.stdout.buffer.write({text!r}); sys.stdout.flush(); "
            f"open(os.path.join(os.environ['OUT'], {name!r} + '.txt'), 'w').write('x' * 10)")
    proc, _out, _ = run_wrapped(tmp, code)
    assert proc.returncode == 0, proc.stderr
    trailer = OutputTrailer(MARKER)
    log = b"".join(trailer.feed(chunk) for chunk in split(proc.stdout, cuts)) + trailer.finish()
    assert log == text  # the job's output, byte for byte; nothing of the block leaks
    back = tmp / "back"
    extract_tar(trailer.archive(), back)
    assert (back / "output" / f"{name}.txt").read_text() == "x" * 10


def test_exit_status_and_signals_pass_through_and_oversized_outputs_are_skipped(
        tmp_path: Path) -> None:
    proc, _, _ = run_wrapped(tmp_path, "import sys; print('bye'); sys.exit(3)")
    assert proc.returncode == 3
    proc, _, _ = run_wrapped(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert proc.returncode == 137
    proc, _, _ = run_wrapped(
        tmp_path, "import os; open(os.path.join(os.environ['OUT'], 'big'), 'wb')"
                  ".write(os.urandom(200_000))", limit=1000)
    trailer = OutputTrailer(MARKER)
    assert trailer.feed(proc.stdout) + trailer.finish() == b""
    assert trailer.skipped and trailer.skipped > 1000 and trailer.archive() is None


def test_outputs_and_the_executed_notebook_come_back_from_the_pod(
        client: Launch, tmp_path: Path, cluster, controller: Controller, monkeypatch) -> None:
    """The runner's own command names the marker; the pod's log carries the block; the
    item's outputs are the files, unpacked under its run folder."""
    queue = make_queue(client)
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    ran = threading.Event()

    def pod_runs_the_wrapper(ctl: Controller, job: JobHandle) -> None:
        container = job.job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][1].endswith("/launch_run.py")
        assert "--marker" not in container["command"]  # the marker is keyed, not shown
        key = {e["name"]: e.get("value") for e in container["env"]}[KEY_VAR]
        pod = job.create_pod()
        job.run(pod)
        proc, _, _ = run_wrapped(tmp_path / "pod", (
            "import os; print('training'); "
            "open(os.path.join(os.environ['OUT'], 'metrics.json'), 'w').write('{\"acc\": 1}'); "
            "open(os.path.join(os.environ['EXEC'], 'train.ipynb'), 'w').write('{}')"),
            key=key)
        job.log(pod, proc.stdout.decode())
        ran.set()
        job.terminate(pod, proc.returncode)
        job.complete()

    (tmp_path / "pod").mkdir()
    controller.scenarios.append(pod_runs_the_wrapper)
    item = client.submit(ref, queue=queue)
    done = run_to_end(client, item, queues=[queue], timeout=60)
    assert ran.is_set() and done.state == "succeeded", done.info()
    outputs = done.info()["outputs"]
    assert [(o["kind"], o["name"]) for o in outputs] == [("notebook", "train.ipynb"),
                                                         ("file", "metrics.json")]
    assert Path(outputs[1]["path"]).read_text() == '{"acc": 1}'
    assert done.output_notebook and Path(done.output_notebook).name == "train.ipynb"
    log = client.logs(item.id)[0]
    assert "training" in log and "@@launch-jupyter-outputs" not in log
    assert len(jobs_of(cluster, item.id)) == 1
