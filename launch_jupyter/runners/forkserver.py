"""A warm parent for supervisors: ``python -m launch_jupyter.runners.forkserver``.

Starting a fresh Python that imports SQLAlchemy costs about 0.3 s of CPU per run; forking
this process, which has those imports done and no threads, costs a few milliseconds. Each
forked supervisor calls setsid(), so it outlives this server and the agent. The server dies
with the agent that started it (PR_SET_PDEATHSIG); its supervisors do not.

Protocol on stdin/stdout, one line each way: the agent writes a supervisor spec path, the
server answers the supervisor's pid (or ``error <message>``). A notebook run may get a warm
supervisor with a kernel already started (``kernelpool.py``; ``LAUNCH_FORKSERVER_KERNEL_POOL``
kernels per key, 0 = off); the pool drains when the server ends.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import sys
from typing import Any, NoReturn

POOL_SIZE_ENV = "LAUNCH_FORKSERVER_KERNEL_POOL"  # warm kernels per key (kernelpool.py)
IDLE_CHECK = 30.0  # seconds between pool checks while no request comes


def _serve() -> int:
    # Die with the agent that started us, and check it is still there: set before the slow
    # imports below, so an agent killed meanwhile cannot leave this server behind.
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    parent = os.environ.pop("LAUNCH_FORKSERVER_PARENT", "")
    if parent and os.getppid() != int(parent):
        return 0
    pool_size = int(os.environ.pop(POOL_SIZE_ENV, "0") or 0)
    from launch_jupyter.imports import skip_format_checkers

    skip_format_checkers()  # ~1 s of CPU at each agent start, for imports no run needs
    from launch_jupyter.runners import supervisor  # warm the imports the children need
    from launch_jupyter.runners.kernelpool import KernelPool

    supervisor.warm_up()
    # Keep the warm objects out of the children's garbage collections: a collection touching
    # them would copy every page the fork shares (copy-on-write) and cost tens of ms per run.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    pool = KernelPool(pool_size, _supervise)
    stdin, stdout = sys.stdin.buffer.fileno(), sys.stdout.buffer
    stdout.write(b"ready\n")
    stdout.flush()
    pending = b""
    try:
        while True:
            if b"\n" not in pending:
                ready, _, _ = select.select([stdin], [], [], IDLE_CHECK)
                if not ready:
                    pool.fill()  # drain keys not seen for an hour
                    continue
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return 0  # the agent closed us
                pending += chunk
                continue
            line, pending = pending.split(b"\n", 1)
            spec_path = line.decode().strip()
            if not spec_path:
                continue
            pid = pool.take(spec_path)
            if pid is None:
                try:
                    pid = os.fork()
                except OSError as err:
                    stdout.write(f"error {err}\n".encode())
                    stdout.flush()
                    continue
                if pid == 0:
                    try:
                        os.setsid()
                        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                        pool.close_in_child()
                    except BaseException:  # never return into the server loop
                        os._exit(1)
                    _supervise(spec_path)
            stdout.write(f"{pid}\n".encode())
            stdout.flush()
            pool.fill()  # after the answer: the run does not wait for the next warm unit
    finally:
        pool.drain()


def _reap(signum: int, frame: Any) -> None:
    """Reap ended supervisors. Reaped (rather than ignored), their CPU time counts in this
    server's and so in the agent's children's resource usage, where a benchmark finds it."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _supervise(spec_path: str, pooled: Any = None) -> NoReturn:
    """In a forked child in a session of its own: supervise the run of ``spec_path``, its
    output in the run's supervisor.log; ``pooled``: a warm executor (kernelpool.py)."""
    code = 1
    try:
        log = os.open(os.path.join(os.path.dirname(spec_path), "supervisor.log"),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.stdin = open(os.devnull)  # noqa: SIM115
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        from launch_jupyter.runners import supervisor

        code = supervisor.main([spec_path], pooled=pooled)
    except BaseException as err:  # a crash must never return into the server loop
        try:
            print(f"supervisor crashed: {err!r}", file=sys.stderr)
        finally:
            os._exit(1)
    os._exit(code)


if __name__ == "__main__":
    sys.exit(_serve())
