"""Warm kernels for notebook runs, kept by the supervisors' fork server (``forkserver.py``).

Starting a kernel is most of a short notebook run (about 0.7 s of 1 s). For every
(kernelspec, environment) a notebook run used in the last hour, the fork server keeps
``size`` *warm units*: a forked supervisor-to-be (``_warm_supervisor``) whose notebook
executor (``PooledJob``) has started a kernel in an empty folder and waits. The next run of
that key takes a unit: its supervisor reads the spec, its executor the run's arguments,
folder and environment, and before the first cell moves the kernel there (``_RELOCATE``:
working directory, environment, IPython's directory history), so a run cannot tell its
kernel was started early. Processes are those of a cold run: the kernel is the executor's
child, the executor the supervisor's. A unit serves exactly one run; the server forks the
next in the background. A kernel that died while waiting is replaced (``MAX_RESTARTS``) and
checked again at hand-out: a dead one is never used, the run starts its own. When the fork
server ends (agent stop or death), every waiting unit sees its pipe close and shuts its
kernel down: no kernel outlives the agent unless a run holds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from launch_jupyter.runners.supervisor import NOTEBOOK_MODULE, ForkedJob, fork_job, run_notebook

SEEN_FOR = 3600.0  # seconds a key stays pooled after its last run
CHECK_EVERY = 1.0  # seconds between a waiting executor's checks of its kernel
MAX_RESTARTS = 3  # kernels a waiting executor starts again after one died
SETTLE_TIMEOUT = 30.0  # seconds for the kernel to answer the move before the first cell
#: variables that differ per run (``base.job_environment``); left out of the key
PER_RUN_PREFIX, CONFIG_PREFIX = "LAUNCH_", "LAUNCH_JUPYTER_"

Key = tuple[str, str]  # (kernel name, digest of the environment without per-run variables)

#: run in the kernel, silently, before the first cell: the run's folder and environment.
#: Executed in a namespace of its own, so the user's namespace and history stay untouched.
_RELOCATE = '''
import os
os.chdir(args["cwd"])
base, env, now = args["base"], args["env"], dict(os.environ)
# The run's variables in its order, then what the kernel's launcher and the kernel added
# (JPY_PARENT_PID...), as a kernel started in the run's environment has them.
run = {k: (now[k] if base.get(k) == v else v) for k, v in env.items()
       if base.get(k) != v or k in now}
run.update((k, v) for k, v in now.items() if k not in base and k not in run)
os.environ.clear()
os.environ.update(run)
try:
    from IPython import get_ipython
except ImportError:
    get_ipython = None
shell = get_ipython() if get_ipython is not None else None
if shell is not None:
    if str(shell.starting_dir) == args["folder"]:
        shell.starting_dir = args["cwd"]
    dirs = shell.history_manager.dir_hist
    dirs[:] = [type(d)(args["cwd"]) if str(d) == args["folder"] else d for d in dirs]
'''


def base_environment(env: Mapping[str, str]) -> dict[str, str]:
    """A run's environment without the variables that change per run (``LAUNCH_ITEM_ID``
    ...): what its pooled kernel is started with. ``LAUNCH_JUPYTER_*`` settings stay."""
    return {k: v for k, v in env.items()
            if not k.startswith(PER_RUN_PREFIX) or k.startswith(CONFIG_PREFIX)}


def pool_key(spec: Mapping[str, Any]) -> Key | None:
    """The pool a supervisor spec's run can take a kernel from; None: not a forked notebook."""
    command = list(spec.get("command") or [])
    if command[1:3] != ["-m", NOTEBOOK_MODULE] or not spec.get("fork_executor", True):
        return None
    kernel = command[command.index("--kernel") + 1] if "--kernel" in command else "python3"
    canonical = json.dumps(sorted(base_environment(spec.get("env") or {}).items()))
    return kernel, hashlib.sha256(canonical.encode()).hexdigest()


class WarmKernel:
    """A kernel started by nbclient's own code, as ``runners/notebook.py`` would start it."""

    def __init__(self, client: Any, folder: str) -> None:
        self.client = client
        self.folder = folder

    @classmethod
    def start(cls, kernel_name: str, folder: str) -> WarmKernel | None:
        """Start a Python kernel in ``folder`` and wait until it answers; None if it cannot
        (no such kernelspec, not Python, failed to start: the run will start its own)."""
        try:
            import nbformat
            from nbclient import NotebookClient

            from launch_jupyter.runners.notebook import kernel_arguments, kernel_manager_class

            client = NotebookClient(nbformat.v4.new_notebook(), kernel_name=kernel_name,
                                    extra_arguments=kernel_arguments(),
                                    kernel_manager_class=kernel_manager_class(),
                                    resources={"metadata": {"path": folder}})
            km = client.create_kernel_manager()
            if km.kernel_spec.language.lower() != "python":
                return None  # _RELOCATE is Python
            client.start_new_kernel()
            client.start_new_kernel_client()
        except Exception:
            return None
        return cls(client, folder)

    def alive(self) -> bool:
        from nbclient.util import ensure_async, run_sync

        async def check() -> bool:
            return bool(await ensure_async(self.client.km.is_alive()))

        try:
            return run_sync(check)()
        except Exception:
            return False

    def discard(self) -> None:
        """Shut the kernel down (it is never handed out) and free its connection file."""
        from nbclient.util import ensure_async, run_sync

        async def shutdown() -> None:
            km, kc = self.client.km, self.client.kc
            try:
                if await ensure_async(km.is_alive()):
                    await ensure_async(km.shutdown_kernel(now=True))
            finally:
                await ensure_async(km.cleanup_resources())
                if kc is not None:
                    kc.stop_channels()

        try:
            run_sync(shutdown)()
        except Exception:
            pass

    def move(self, cwd: str, base: Mapping[str, str], env: Mapping[str, str]) -> bool:
        """Put the kernel in the run's folder and environment (``_RELOCATE``); False if it
        did not answer that it did."""
        from nbclient.util import run_sync

        args = {"cwd": cwd, "folder": self.folder, "base": dict(base), "env": dict(env)}
        code = f"exec({_RELOCATE!r}, {{'args': {args!r}}})"
        kc = self.client.kc

        async def execute() -> bool:
            msg_id = kc.execute(code, silent=True, store_history=False, allow_stdin=False)
            deadline = time.monotonic() + SETTLE_TIMEOUT
            while True:
                reply = await kc.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
                if reply["parent_header"].get("msg_id") == msg_id:
                    return reply["content"].get("status") == "ok"

        try:
            return run_sync(execute)()
        except Exception:
            return False

    def handles(self) -> tuple[Any, Any]:
        """(kernel manager, kernel client), what ``notebook.main`` runs on."""
        return self.client.km, self.client.kc


def _read_until_newline(fd: int, first: bytes = b"") -> bytes:
    """Bytes from ``fd`` up to and including a newline, or all of them until EOF."""
    data = first
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _wait_for_run(control: int, kernel_name: str, folder: str,
                  warm: WarmKernel | None) -> tuple[dict | None, WarmKernel | None]:
    """Wait for the run on ``control`` (None at EOF: no run will come), replacing a kernel
    that died meanwhile."""
    restarts = 0
    while True:
        ready, _, _ = select.select([control], [], [], CHECK_EVERY)
        if ready:
            data = _read_until_newline(control)
            return (json.loads(data) if data.strip() else None), warm
        if warm is not None and not warm.alive():
            warm.discard()
            warm = None
            if restarts < MAX_RESTARTS:
                restarts += 1
                warm = WarmKernel.start(kernel_name, folder)


def _pooled_executor(control: int, kernel_name: str, env: Mapping[str, str],
                     folder: str) -> int:
    """The body of a pooled executor: start a kernel, wait for the run, run it on that kernel
    (moved to the run's folder and environment) or, when it died, on a kernel of its own."""
    os.chdir(folder)
    os.environ.clear()
    os.environ.update(env)
    warm = WarmKernel.start(kernel_name, folder)
    request, warm = _wait_for_run(control, kernel_name, folder, warm)
    os.close(control)
    if request is None:
        if warm is not None:
            warm.discard()
        return 0
    if warm is not None and not (warm.alive() and warm.move(request["cwd"], env,
                                                               request["env"])):
        warm.discard()  # never hand out a dead (or unresponsive) kernel
        warm = None
    return run_notebook(request["args"], request["cwd"], request["env"],
                        kernel=warm.handles() if warm is not None else None)


class PooledJob(ForkedJob):
    """A notebook executor forked before its run came, waiting with a warm kernel."""

    def __init__(self, kernel_name: str, env: Mapping[str, str], folder: str, parent: int,
                 close: tuple[int, ...] = ()) -> None:
        read_fd, self.control = os.pipe()
        self.pid, self.stdout = fork_job(
            parent, lambda: _pooled_executor(read_fd, kernel_name, env, folder),
            close=(self.control, *close))
        os.close(read_fd)
        self.returncode = None

    def hand_out(self, args: list[str], cwd: str, env: Mapping[str, str]) -> None:
        """Give the executor its run (OSError: it is gone)."""
        data = (json.dumps({"args": args, "cwd": cwd, "env": dict(env)}) + "\n").encode()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.control, view):]
        finally:
            os.close(self.control)
            self.control = -1

    def close(self) -> None:
        """No run for it: the executor shuts its kernel down and exits (killed after 10 s)."""
        if self.control >= 0:
            os.close(self.control)
            self.control = -1
        try:
            self.wait(10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.wait()
        self.stdout.close()


def _warm_supervisor(control: int, kernel_name: str, env: Mapping[str, str], folder: str,
                     supervise: Callable[[str, PooledJob], NoReturn]) -> NoReturn:
    """A forked child of the fork server: fork the pooled executor, wait for a spec path on
    ``control``, then become that run's supervisor (or, at EOF, drain and exit)."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    job = PooledJob(kernel_name, env, folder, os.getpid(), close=(control,))
    spec_path = _read_until_newline(control).decode().strip()
    os.close(control)
    if not spec_path:
        job.close()
        os._exit(0)
    supervise(spec_path, job)


@dataclass
class _Unit:
    pid: int  # the warm supervisor
    control: int  # the write end of its pipe: the spec path goes there


@dataclass
class _Seen:
    at: float
    kernel_name: str
    env: dict[str, str] = field(repr=False)


class KernelPool:
    """The fork server's side: warm units per key, filled, handed out, drained.

    ``supervise(spec_path, job)`` turns a warm unit into its run's supervisor (never returns).
    The fork server has no threads; everything here runs between two of its requests.
    """

    def __init__(self, size: int, supervise: Callable[[str, PooledJob], NoReturn]) -> None:
        self.size = max(0, size)
        self.supervise = supervise
        self.units: dict[Key, list[_Unit]] = {}
        self.seen: dict[Key, _Seen] = {}
        # An empty folder for kernels to start in: nothing there shadows a module.
        self.folder = tempfile.mkdtemp(prefix="launch-kernel-pool-") if self.size else ""

    def take(self, spec_path: str) -> int | None:
        """The pid of a warm unit that now supervises the run of ``spec_path``; None when
        there is none (pool off, not a notebook, key not seen before, or all gone)."""
        if not self.size:
            return None
        try:
            with open(spec_path) as fh:
                spec = json.load(fh)
        except (OSError, ValueError):
            return None
        key = pool_key(spec)
        if key is None:
            return None
        self.seen[key] = _Seen(time.monotonic(), key[0], base_environment(spec["env"]))
        units = self.units.get(key, [])
        while units:
            unit = units.pop(0)
            try:
                os.write(unit.control, f"{spec_path}\n".encode())
                return unit.pid
            except OSError:  # the unit died: try the next one
                continue
            finally:
                os.close(unit.control)
        return None

    def fill(self) -> None:
        """Start missing units of keys seen in the last hour; drain the others."""
        now = time.monotonic()
        for key, seen in list(self.seen.items()):
            units = self.units.setdefault(key, [])
            if now - seen.at > SEEN_FOR:
                del self.seen[key]
                self._drop(self.units.pop(key))
                continue
            for unit in [u for u in units if not _alive(u.pid)]:
                units.remove(unit)
                os.close(unit.control)
            while len(units) < self.size:
                unit = self._start(seen)
                if unit is None:
                    break
                units.append(unit)

    def close_in_child(self) -> None:
        """In a forked child: let go of every unit's pipe, or a unit would never see EOF."""
        for units in self.units.values():
            for unit in units:
                os.close(unit.control)
        self.units = {}

    def drain(self, timeout: float = 10.0) -> None:
        """Tell every waiting unit no run will come and wait until they are gone."""
        self._drop([u for units in self.units.values() for u in units], timeout)
        self.units.clear()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _drop(self, units: list[_Unit], timeout: float = 10.0) -> None:
        for unit in units:
            os.close(unit.control)
        deadline = time.monotonic() + timeout
        while any(_alive(u.pid) for u in units) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _start(self, seen: _Seen) -> _Unit | None:
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:
            try:
                os.close(write_fd)
                self.close_in_child()
                _warm_supervisor(read_fd, seen.kernel_name, seen.env, self.folder,
                                 self.supervise)
            finally:
                os._exit(1)
        os.close(read_fd)
        return _Unit(pid, write_fd)


def _alive(pid: int) -> bool:
    """Whether a child of the fork server still runs (it reaps them as they end)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
