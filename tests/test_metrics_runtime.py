"""``launch_jupyter.log`` inside a job process: what reaches the metrics file, what is skipped
with one warning, what survives the end of the process, and nothing outside a job.

Every check runs twice: on the package, and on the stand-in containers get under /launch/lib
(a copy that cannot import the package; these tests keep the two alike).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import launch_jupyter
from launch_jupyter import runtime
from launch_jupyter.runners import build

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["package", "standin"])
def python_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """PYTHONPATH under which ``import launch_jupyter`` is the package or the stand-in."""
    if request.param == "package":
        return str(ROOT)
    lib = tmp_path / "lib"
    for path, content in build.support_files():
        (lib / path).parent.mkdir(parents=True, exist_ok=True)
        (lib / path).write_bytes(content)
    return str(lib)


def run_job(code: str, python_path: str, tmp_path: Path, *, inside: bool = True
            ) -> tuple[subprocess.CompletedProcess, list[list]]:
    """``code`` as a job process; its exit, output and the points in its metrics file."""
    metrics = tmp_path / "metrics.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAUNCH_")}
    env["PYTHONPATH"] = python_path
    if inside:
        env.update(LAUNCH_ITEM_ID="01TEST", LAUNCH_METRICS_FILE=str(metrics))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    points = ([json.loads(line) for line in metrics.read_text().splitlines()]
              if metrics.exists() else [])
    return proc, points


def test_points_carry_counted_or_given_steps_and_accept_numpy_scalars(
        python_path: str, tmp_path: Path) -> None:
    proc, points = run_job("""
        import numpy as np
        import launch_jupyter as lj
        lj.log({"loss": 0.5, "acc": 1})
        lj.log(loss=np.float32(0.25))
        lj.log({"loss": np.array(0.125)}, step=np.int64(10))
        lj.log({"loss": 2}, acc=3)
        lj.log({"acc": 4}, 20)  # step by position, as wandb.log(data, step)
        print(lj.__file__)
    """, python_path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(python_path)
    assert proc.stderr == ""
    assert [p[:3] for p in points] == [["loss", 0, 0.5], ["acc", 0, 1.0], ["loss", 1, 0.25],
                                       ["loss", 10, 0.125], ["loss", 11, 2.0], ["acc", 11, 3.0],
                                       ["acc", 20, 4.0]]
    assert all(isinstance(p[3], int) and p[3] > 1.7e12 for p in points)  # epoch ms


def test_bad_values_are_skipped_with_one_warning_per_name(python_path: str,
                                                          tmp_path: Path) -> None:
    proc, points = run_job("""
        import numpy as np
        import launch_jupyter as lj
        for i in range(3):
            lj.log({"loss": float("nan"), "acc": "high", "big": float("inf"),
                    "vec": np.array([1.0, 2.0]), "none": None, "ok": i})
        lj.log({"ok": 1}, step=-1)
        lj.log({"ok": 1}, step=1.5)
        lj.log(["not", "a", "dict"])
        lj.log({"": 1, 7: 2})
        print("still running")
    """, python_path, tmp_path)
    assert proc.returncode == 0 and proc.stdout == "still running\n", proc.stderr
    warnings = proc.stderr.splitlines()
    for name in ("'loss' = nan", "'acc' = 'high'", "'big' = inf", "'vec' = array",
                 "'none' = None"):
        assert sum(name in w for w in warnings) == 1, (name, warnings)
    assert sum("step" in w for w in warnings) == 1
    assert sum("give a dict" in w for w in warnings) == 1
    assert sum("names are non-empty strings" in w for w in warnings) == 2
    assert all(w.startswith("launch_jupyter.log: ") for w in warnings)
    assert [p[:3] for p in points] == [["ok", 0, 0.0], ["ok", 1, 1.0], ["ok", 2, 2.0]]


@pytest.mark.parametrize("ending", ["", "raise ValueError('boom')", "import sys; sys.exit(3)"])
def test_the_last_points_survive_the_end_of_the_process(python_path: str, tmp_path: Path,
                                                        ending: str) -> None:
    proc, points = run_job(f"""
        import launch_jupyter as lj
        for i in range(1000):
            lj.log(loss=i)
        {ending}
    """, python_path, tmp_path)
    assert proc.returncode == {"": 0, "raise ValueError('boom')": 1}.get(ending, 3)
    assert [p[1] for p in points] == list(range(1000))


def test_outside_a_job_nothing_is_recorded_and_it_says_so_once(python_path: str,
                                                               tmp_path: Path) -> None:
    proc, points = run_job("""
        import launch_jupyter as lj
        lj.log(loss=1)
        lj.log({"loss": 2}, step=4)
    """, python_path, tmp_path, inside=False)
    assert proc.returncode == 0 and points == []
    [line] = proc.stderr.splitlines()
    assert "nothing recorded: not inside a launch-jupyter job (no LAUNCH_ITEM_ID)" in line
    assert not (tmp_path / "metrics.jsonl").exists()


def test_a_metrics_file_that_cannot_be_written_never_fails_the_job(python_path: str,
                                                                   tmp_path: Path) -> None:
    code = """
        import launch_jupyter as lj
        lj.log(loss=1)  # the file's folder does not exist
        print("fine")
    """
    metrics_dir = tmp_path / "missing"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAUNCH_")}
    env.update(PYTHONPATH=python_path, LAUNCH_ITEM_ID="01TEST",
               LAUNCH_METRICS_FILE=str(metrics_dir / "metrics.jsonl"))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "fine\n"
    assert "cannot write the metrics file" in proc.stderr


def test_the_package_exports_log_from_the_runtime() -> None:
    assert launch_jupyter.log is runtime.log
    assert "log" in launch_jupyter.__all__
