"""Isolated environments for local runs: a virtualenv per job lock, built with ``uv``.

A queue with ``environment: isolated`` (or ``jupyter launch run --isolated``) runs each job
in a virtualenv holding exactly its lock (``jobs/lock.py``) plus ipykernel, never in the
agent's own environment. Environments live under ``<data dir>/envs/<lock hash>``, so every
job with the same lock shares one. The first run needing one builds it: the supervisor runs
``python -m launch_jupyter.runners.envs build ...`` as the item's ``building`` phase (its
output is the start of the item's log, and the supervisor renews the lease meanwhile), then
starts the job. Two agents needing the same environment build it once: the builder holds an
exclusive ``flock`` on ``<hash>.lock``; the other waits on it and finds it ready. A run holds
a shared lock on it while its job runs, so ``env prune`` never removes an environment in use.

The interpreter must match the lock's Python (major.minor): uv looks for an installed one
only (no downloads); without one the build fails naming the version to install.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import LaunchError

ENVIRONMENTS = ("current", "isolated")
READY = "launch-env.json"  # written last: an environment without it is not built
REQUIREMENTS = "launch-requirements.txt"
KERNEL_PACKAGE = "ipykernel"
ENVS_FOLDER = "envs"
_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def environment_of(queue_config: dict[str, Any] | None) -> str:
    """The queue's ``environment`` option (``current`` when unset); LaunchError if invalid."""
    value = (queue_config or {}).get("environment", "current")
    if value not in ENVIRONMENTS:
        raise LaunchError(f"queue config: environment must be one of {', '.join(ENVIRONMENTS)}, "
                          f"got {value!r} (isolated: a virtualenv built from the job's lock)")
    return value


def envs_root(data_dir: str | os.PathLike[str]) -> Path:
    """Where environments are kept: ``<data dir>/envs``."""
    return Path(data_dir) / ENVS_FOLDER


def env_name(lock: dict[str, Any]) -> str:
    """The folder name of a lock's environment (its hash, shortened)."""
    return str(lock["hash"])[:16]


def kernel_name(lock: dict[str, Any]) -> str:
    """The kernelspec a notebook job runs with in the lock's environment."""
    return f"launch-env-{env_name(lock)}"


def env_python(path: Path) -> Path:
    return path / "bin" / "python"


def ready(path: Path) -> dict[str, Any] | None:
    """The build record of a built environment (None while it is not built)."""
    try:
        return json.loads((path / READY).read_text())
    except (OSError, ValueError):
        return None


def _lock_file(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def hold(path: str | os.PathLike[str]) -> int:
    """A shared lock on ``path``'s environment, held until the returned fd is closed (the
    process exits): ``prune`` leaves it alone meanwhile."""
    fd = os.open(_lock_file(Path(path)), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def isolate(request: Any, command: list[str], env: dict[str, str], run_dir: Path
            ) -> tuple[list[str], dict[str, str], list[str] | None, str]:
    """Make a local run isolated: ``(command, env, build, env_path)``.

    ``command`` runs the job with the environment's Python (script mode) or kernel (notebook
    mode: the executor stays in the agent's Python); ``build`` is the command that builds the
    environment first, or None when it is built already (a cached start costs two stats).
    The envs folder lies beside the agent's runs folder, in its data dir.
    """
    from ..jobs.lock import job_lock

    lock = job_lock(request.job.spec)
    root = envs_root(Path(run_dir).parents[2])
    path = root / env_name(lock)
    if request.job.spec.get("mode") == "notebook":
        language = _language(request.files, request.job.spec["entrypoint"])
        if language != "python":
            raise LaunchError(f"an isolated environment is a Python virtualenv, and this "
                              f"notebook's language is {language}: run it on a queue with "
                              "environment: current")
        command = list(command)
        command[command.index("--kernel") + 1] = kernel_name(lock)
        jupyter_path = [str(path / "share" / "jupyter"), *filter(None, [env.get("JUPYTER_PATH")])]
        env = {**env, "JUPYTER_PATH": os.pathsep.join(jupyter_path)}
    else:
        command = [str(env_python(path)), *command[1:]]
    env = {**env, "VIRTUAL_ENV": str(path)}
    env.pop("PYTHONHOME", None)
    build = None
    if ready(path) is None:
        root.mkdir(parents=True, exist_ok=True)
        lock_path = run_dir / "lock.json"
        lock_path.write_text(json.dumps(lock))
        build = [sys.executable, "-m", "launch_jupyter.runners.envs", "build",
                 "--root", str(root), "--lock", str(lock_path),
                 "--error-file", str(run_dir / "error.json")]
    else:
        with contextlib.suppress(OSError):
            os.utime(path / READY)  # least recently used goes first in prune
    return command, env, build, str(path)


def _language(files: list[tuple[str, bytes]], entrypoint: str) -> str:
    """The language of the job's notebook, as its captured metadata names it."""
    for path, content in files:
        if path == entrypoint:
            try:
                meta = json.loads(content).get("metadata") or {}
            except (ValueError, AttributeError):
                return "python"
            return str((meta.get("language_info") or {}).get("name")
                       or (meta.get("kernelspec") or {}).get("language") or "python").lower()
    return "python"


# -- building ---------------------------------------------------------------------------


def find_uv() -> str:
    """The ``uv`` executable (the ``uv`` package from PyPI, or one on PATH)."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise LaunchError("isolated environments are built with uv, which is not installed here: "
                      "pip install uv (on the agent's machine)")


def _uv(args: list[str], out: Any) -> tuple[int, str]:
    """Run uv, its output going to ``out`` as it comes; ``(exit code, its last lines)``."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1",
           "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.Popen([find_uv(), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    tail: list[str] = []
    for raw in proc.stdout:
        line = raw.decode("utf-8", errors="replace")
        out.write(line)
        out.flush()
        tail = [*tail[-19:], line.rstrip()]
    return proc.wait(), "\n".join(tail)


def _kernelspec(path: Path, lock: dict[str, Any]) -> None:
    folder = path / "share" / "jupyter" / "kernels" / kernel_name(lock)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [str(env_python(path)), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"launch-jupyter env {env_name(lock)}",
        "language": "python",
        "metadata": {"debugger": False},
    }, indent=1))


def _standin(path: Path) -> None:
    """``import launch_jupyter`` in the environment gets the stand-in containers get too
    (``parameters()`` and ``log()``), never the agent's package."""
    from .build import support_files

    purelib = subprocess.run(
        [str(env_python(path)), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    for rel, content in support_files():
        if rel.startswith("launch_jupyter/"):
            target = Path(purelib) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


def _du(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def build(root: Path, lock: dict[str, Any], out: Any = sys.stdout) -> Path:
    """Build the environment of ``lock`` under ``root`` unless it is built (or being built
    by someone else: then wait for it). Its output goes to ``out``. Returns its folder."""
    from ..jobs.lock import python_minor, requirements_txt

    root.mkdir(parents=True, exist_ok=True)
    path = root / env_name(lock)
    minor = python_minor(lock.get("python"))
    with _exclusive(path, out) as locked:
        if not locked or ready(path) is not None:
            out.write(f"[launch-jupyter: environment {path.name} is ready (built by another "
                      "run)]\n")
            return path
        if path.exists():
            shutil.rmtree(path)  # a build that was stopped half-way
        started = time.monotonic()
        out.write(f"[launch-jupyter: building environment {path.name} (Python {minor}, "
                  f"{len(lock['packages'])} locked packages) with uv]\n")
        out.flush()
        # --seed: pip too, so a notebook's own %pip lines still work (and find them met)
        code, tail = _uv(["venv", "--python", minor, "--python-preference", "only-system",
                          "--no-project", "--seed", str(path)], out)
        if code != 0:
            shutil.rmtree(path, ignore_errors=True)
            said = next((line for line in reversed(tail.splitlines())
                         if line.lower().startswith("error")), tail.strip()[-300:])
            raise LaunchError(
                f"the job's lock needs Python {minor}, and uv found no usable Python {minor} "
                f"interpreter on this machine (downloads are off; uv said: {said.strip()}): "
                f"install Python {minor} on the agent's machine, or recapture the job with "
                f"Python {python_minor(None)}")
        (path / REQUIREMENTS).write_text(requirements_txt(lock))
        code, tail = _uv(["pip", "install", "--python", str(env_python(path)),
                          "-r", str(path / REQUIREMENTS), KERNEL_PACKAGE], out)
        if code != 0:
            last = tail.splitlines()[-3:]
            raise LaunchError("installing the job's lock into its environment failed: "
                              + " / ".join(line.strip() for line in last if line.strip()))
        _kernelspec(path, lock)
        _standin(path)
        record = {"hash": lock["hash"], "python": minor, "packages": lock["packages"],
                  "built": time.time(), "seconds": round(time.monotonic() - started, 2),
                  "size": _du(path)}
        (path / READY).write_text(json.dumps(record))
        out.write(f"[launch-jupyter: environment {path.name} built in {record['seconds']:g} s]\n")
    return path


@contextlib.contextmanager
def _exclusive(path: Path, out: Any) -> Iterator[bool]:
    """Hold ``path``'s build lock (True); while another run holds it (building), say so and
    wait until it is free, or until the environment is ready (False: not locked). Polling,
    because the run that built it takes a shared lock on it as soon as its job starts."""
    fd = os.open(_lock_file(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if ready(path) is not None:
                    yield False
                    return
                if not said:
                    out.write(f"[launch-jupyter: environment {path.name} is being built by "
                              "another run; waiting for it]\n")
                    out.flush()
                    said = True
                time.sleep(0.2)
        yield True
    finally:
        os.close(fd)


# -- list and prune -----------------------------------------------------------------------


def _in_use(path: Path) -> bool:
    fd = os.open(_lock_file(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def list_envs(root: Path) -> list[dict[str, Any]]:
    """Every environment under ``root``, most recently used first: ``name``, ``path``,
    ``python``, ``packages`` (count), ``size`` (bytes), ``last_used`` and ``built`` (epoch s),
    ``in_use`` (a run or a build holds it), ``ready``."""
    found = []
    if not root.is_dir():
        return found
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        record = ready(path)
        try:
            last_used = (path / READY).stat().st_mtime if record else path.stat().st_mtime
        except OSError:
            continue
        found.append({
            "name": path.name, "path": str(path),
            "python": (record or {}).get("python"),
            "packages": len((record or {}).get("packages") or []),
            "size": (record or {}).get("size") or _du(path),
            "built": (record or {}).get("built"), "last_used": last_used,
            "in_use": _in_use(path), "ready": record is not None,
        })
    return sorted(found, key=lambda e: e["last_used"], reverse=True)


def parse_size(text: str) -> int:
    """Bytes of ``500M``, ``2G``, ``1.5G`` or a plain number (LaunchError otherwise)."""
    value = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in _SIZE_UNITS and value[-1:] else ""
    number = value[: len(value) - len(unit)]
    try:
        size = float(number)
    except ValueError:
        size = -1
    if not number or size < 0 or size != size:
        raise LaunchError(f"size {text!r} is not a size: write bytes or a number with K, M, G "
                          "or T (e.g. --max-size 5G)")
    return int(size * _SIZE_UNITS[unit])


def prune(root: Path, max_size: int | None = None) -> list[dict[str, Any]]:
    """Remove environments, least recently used first, until the rest take at most
    ``max_size`` bytes (None: remove them all). Environments in use (a job runs in one, or
    it is being built) are kept. Returns the removed ones."""
    envs = list_envs(root)
    total = sum(e["size"] for e in envs)
    removed = []
    for env in reversed(envs):  # least recently used first
        if max_size is not None and total <= max_size:
            break
        path = Path(env["path"])
        fd = os.open(_lock_file(path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # in use: a run or a build holds it
        else:
            (path / READY).unlink(missing_ok=True)  # half-removed never counts as built
            shutil.rmtree(path, ignore_errors=True)
            total -= env["size"]
            removed.append(env)
        finally:
            os.close(fd)
    return removed


def main(argv: list[str] | None = None) -> int:
    """``python -m launch_jupyter.runners.envs build --root R --lock LOCK.json``: what the
    supervisor runs as an isolated item's ``building`` phase."""
    parser = argparse.ArgumentParser(prog="python -m launch_jupyter.runners.envs")
    parser.add_argument("action", choices=["build"])
    parser.add_argument("--root", required=True)
    parser.add_argument("--lock", required=True)
    parser.add_argument("--error-file")
    args = parser.parse_args(argv)
    lock = json.loads(Path(args.lock).read_text())
    try:
        build(Path(args.root), lock)
    except LaunchError as err:
        print(f"[launch-jupyter: {err}]", flush=True)
        if args.error_file:
            Path(args.error_file).write_text(json.dumps(
                {"message": f"building the isolated environment failed: {err}",
                 "stage": "build", "cell": None}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
