"""The supervisor of one local run: ``python -m launch_jupyter.runners.supervisor SPEC.json``.

It starts the job first (importing as little as possible before that, for dispatch latency),
then opens the store and, until the job ends: streams its output as log chunks, renews the
lease every ttl/3, watches for cancel requests and the timeout, and fences itself (kills the
job) when it cannot renew for most of a ttl. The job gets PR_SET_PDEATHSIG, so it dies with
its supervisor: a lapsed lease always means no job is running.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from launch_jupyter.errors import StoreFullError
from launch_jupyter.runners.base import MAX_HELD_POINTS, capped, outcome
from launch_jupyter.runners.metrics import FileTail
from launch_jupyter.runners.progress import PROGRESS_FILE, CellClock
from launch_jupyter.runners.progress import FileTail as ProgressTail

PR_SET_PDEATHSIG = 1
TICK = 0.2  # seconds between log flushes / cancel checks
CHECK_EVERY = 0.5  # seconds between cancel-flag reads
MAX_BUFFER = 4 * 1024 * 1024  # bytes of output held between two flushes to the store
TAIL_BYTES = 4096  # last bytes of the job's output kept to explain a failing exit
POINTS_PER_CALL = 20_000  # metric points stored in one transaction
#: what a failed write prints (strerror) -> what it means, for a job dying of one
WRITE_ERRORS = {os.strerror(errno.ENOSPC): "the disk is full",
                os.strerror(errno.EFBIG): "a file went over the file size limit"}


def _child_setup(parent: int) -> None:  # runs in the child between fork and exec
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(137)


@functools.cache
def _death_wrapper() -> list[str]:
    """The argv prefix (then the supervisor's pid, then the job's argv) that starts a job
    the way ``_child_setup`` does, without a ``preexec_fn``: with one, subprocess must fork
    the whole supervisor and run Python in the child (~5 ms of CPU and 600 page faults per
    run); without, it uses vfork. setpriv sets PR_SET_PDEATHSIG, which survives exec; sh
    checks the supervisor is still the parent (it may have died before that) and execs the
    job in place. Empty when setpriv (util-linux) or sh is missing: use ``_child_setup``."""
    if not sys.platform.startswith("linux"):
        return []
    setpriv, sh = shutil.which("setpriv"), shutil.which("sh")
    if not setpriv or not sh:
        return []
    return [setpriv, "--pdeathsig", "KILL", "--", sh, "-c",
            'test "$PPID" = "$0" && exec "$@"; exit 137']


def _say(text: str) -> None:
    """A line for supervisor.log; a full disk must not stop the supervisor over it."""
    try:
        print(text, file=sys.stderr)
    except OSError:
        pass


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


NOTEBOOK_MODULE = "launch_jupyter.runners.notebook"


def fork_job(parent: int, body: Callable[[], int], close: tuple[int, ...] = ()
             ) -> tuple[int, BinaryIO]:
    """Fork a job process: its own process group, dead with the supervisor ``parent``,
    stdin on /dev/null, stdout and stderr on a pipe; it runs ``body()`` and exits with its
    code. Returns (pid, the pipe's read end). ``close``: descriptors the job must not keep."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the job: never returns
        code = 1
        try:
            for fd in (read_fd, *close):
                os.close(fd)
            _child_setup(parent)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(write_fd, 1)
            os.dup2(write_fd, 2)
            sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
            sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
            for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            code = body()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    os.close(write_fd)
    return pid, os.fdopen(read_fd, "rb", buffering=0)


def run_notebook(args: list[str], cwd: str, env: dict[str, str],
                 kernel: Any = None) -> int:
    """The notebook executor's body in a forked job: the run's folder and environment, then
    ``runners/notebook.py`` (on a warm ``kernel`` from the pool when one is given)."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    from launch_jupyter.runners import notebook

    return notebook.main(args, kernel=kernel)


class ForkedJob:
    """A job process forked from the supervisor (the Popen subset the supervisor uses)."""

    def __init__(self, args: list[str], cwd: str, env: dict[str, str], parent: int) -> None:
        self.pid, self.stdout = fork_job(parent, lambda: run_notebook(args, cwd, env))
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("forked job", timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode


class Supervisor:
    def __init__(self, spec: dict, pooled: Any = None) -> None:
        self.spec = spec
        #: a notebook executor forked before the run came, with a warm kernel
        #: (``kernelpool.PooledJob``), or None
        self.pooled = pooled
        self.item_id: str = spec["item_id"]
        self.token: str = spec["token"]
        self.attempt: int = spec["attempt"]
        self.ttl: float = float(spec["ttl"])
        self.grace: float = float(spec["grace"])
        self.timeout: float | None = spec.get("timeout")
        self.max_log_bytes: int = int(spec["max_log_bytes"])
        self.run_dir: str = spec["run_dir"]
        self.proc: subprocess.Popen | ForkedJob | None = None
        self.buffer = bytearray()
        self.buffer_lock = threading.Condition()
        self.logged = 0
        self.truncated = False
        self.tail = b""  # the job's last output bytes (see TAIL_BYTES)
        #: the job's metrics file (launch_jupyter.log appends to it) and points not yet stored
        self.metrics = FileTail(spec["env"].get("LAUNCH_METRICS_FILE"))
        self.metric_points: list[tuple[str, int, float, float]] = []
        #: why the log could not be stored (the store's disk is full): the run is stopped
        self.store_full: str | None = None
        self.reader_done = threading.Event()
        self.wake = threading.Event()  # set when output ends (the job exited) or a signal came
        self.stop_reason: str | None = None  # cancel|timeout|lost|signal|full
        self.store: Any = None
        self.kill_at: float | None = None
        # Wall-clock end of the lease as far as we know it (the agent granted it just before
        # starting us); moved forward by every successful renewal.
        self.lease_until: float = float(spec.get("lease_until") or time.time() + self.ttl)
        self.fenced = False
        # Cell progress of a notebook run (runners/progress.py): tailed every tick.
        self.progress = ProgressTail(None)
        self.clock = CellClock()
        self.executed: str | None = None  # the executed notebook's path, written per cell
        #: an isolated run (runners/envs.py): the command building its environment, run
        #: first as the phase ``building``; the environment's shared lock while the job runs
        self.build: list[str] | None = spec.get("build")
        self.env_hold: int | None = None

    # -- start --------------------------------------------------------------------------
    def spawn(self) -> None:
        parent = os.getpid()
        command = self.spec["command"]
        if self.build is not None:
            command = self.build
        elif self.spec.get("env_path"):
            from launch_jupyter.runners.envs import hold

            self.env_hold = hold(self.spec["env_path"])
        if command[1:3] == ["-m", NOTEBOOK_MODULE]:
            self.executed = command[command.index("--output") + 1]
            if self.spec.get("progress", True):  # off only to measure what it costs
                self.progress.path = os.path.join(self.run_dir, PROGRESS_FILE)
                command = [*command, "--progress-file", self.progress.path]
        if command[1:3] == ["-m", NOTEBOOK_MODULE] and self.spec.get("fork_executor", True):
            # Notebook mode: fork instead of starting a new Python; nbclient is already
            # imported here (the fork server warmed it), which saves ~0.4 s per run.
            self.proc = self._executor(command[3:], parent)
        else:
            if self.pooled is not None:  # not for this command (an environment build, say)
                self.pooled.close()
                self.pooled = None
            wrapper = _death_wrapper()
            if wrapper:  # vfork + exec: no copy of this process's pages, no Python in between
                self.proc = subprocess.Popen(
                    [*wrapper, str(parent), *command], cwd=self.spec["cwd"],
                    env=self.spec["env"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, process_group=0, close_fds=True,
                )
            else:
                self.proc = subprocess.Popen(
                    command, cwd=self.spec["cwd"], env=self.spec["env"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    preexec_fn=lambda: _child_setup(parent), close_fds=True,
                )
        self.started = time.monotonic()
        threading.Thread(target=self._read_output, daemon=True).start()

    def _executor(self, args: list[str], parent: int) -> ForkedJob:
        """The pooled executor when there is one that takes the run, else a fresh fork."""
        if self.pooled is not None:
            try:
                self.pooled.hand_out(args, self.spec["cwd"], self.spec["env"])
                return self.pooled
            except OSError:  # it died while waiting: start the run the usual way
                self.pooled.close()
                self.pooled = None
        return ForkedJob(args, self.spec["cwd"], self.spec["env"], parent)

    def _read_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            self.tail = (self.tail + data)[-TAIL_BYTES:]
            with self.buffer_lock:
                if self.truncated:
                    continue  # past the cap: drain and drop, memory stays bounded
                self.buffer += data
                # Backpressure: a job printing faster than the store takes it waits here
                # (its pipe fills) instead of growing this buffer without bound.
                while len(self.buffer) > MAX_BUFFER and not self.truncated:
                    self.buffer_lock.wait(0.5)
        self.reader_done.set()
        self.wake.set()

    # -- the store ----------------------------------------------------------------------
    def open_store(self) -> None:
        from launch_jupyter.store import Store

        self.store = Store(self.spec["store"], migrate=False, check=False)

    def log(self, text: str) -> None:
        with self.buffer_lock:
            self.buffer[:0] = text.encode()

    def flush(self) -> bool:
        """Move buffered output to the store; False if the store refused (lease lost)."""
        with self.buffer_lock:
            data = bytes(self.buffer)
            self.buffer.clear()
            self.buffer_lock.notify_all()
        if not data or self.truncated:
            return True  # past the cap, output is drained and dropped: memory stays bounded
        chunk, truncating = capped(data, self.logged, self.max_log_bytes)
        try:
            size = self.store.append_log(self.item_id, self.token, self.attempt, chunk)
        except StoreFullError as err:
            # No room for the log: drop output from here on and stop the job (see run()).
            self.truncated = True
            if self.store_full is None:
                self.store_full = str(err)
                self.stop_reason = self.stop_reason or "full"
            return True
        except Exception:  # the store is away: keep the data and try again next tick
            with self.buffer_lock:
                self.buffer[:0] = data
            raise
        if size is None:
            return False
        self.logged += len(chunk)
        self.truncated = truncating
        return True

    def flush_metrics(self, drain: bool = False) -> bool:
        """Move new points of the job's metrics file to the store (all of them when
        ``drain``); False if the store refused (lease lost). Raises while the store is away."""
        if len(self.metric_points) < MAX_HELD_POINTS:
            self.metric_points += self.metrics.drain() if drain else self.metrics.read()
        while self.metric_points:
            batch = self.metric_points[:POINTS_PER_CALL]
            if not self.store.add_metrics(self.item_id, self.token, self.attempt, batch):
                return False
            del self.metric_points[:len(batch)]
        return True

    def cancelled_by(self) -> str:
        """`` by USER`` for the cancel request's log line (nothing when the store is away)."""
        try:
            events = self.store.events(self.item_id)
        except Exception:
            return ""
        actors = [e.get("actor") for e in events if e.get("kind") == "cancel_requested"]
        return f" by {actors[-1]}" if actors and actors[-1] else ""

    # -- the loop -----------------------------------------------------------------------
    def stop_job(self, hard: bool = False) -> None:
        """SIGTERM the job's group now and SIGKILL it after the grace period (or now)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            return
        if hard:
            _kill_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return
        if self.kill_at is None:
            _kill_group(self.proc.pid, signal.SIGTERM)
            self.kill_at = time.monotonic() + self.grace
        elif time.monotonic() >= self.kill_at:
            _kill_group(self.proc.pid, signal.SIGKILL)

    def run(self) -> int:
        self.spawn()
        assert self.proc is not None
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            self.open_store()
        except Exception as err:
            # Without the store nothing can be recorded: stop the job; the lease will lapse.
            self.stop_job(hard=True)
            _say(f"supervisor: cannot open the store: {err}")
            return 3
        self._preamble()
        if self.build is not None:
            self._phase("building")
        threading.Thread(target=self._watchdog, daemon=True).start()
        # First renewal once a third of the lease is gone (at once when the agent's grant is
        # old already): a short run then needs no renewal, one store write fewer.
        next_renew = time.monotonic() + max(
            0.0, self.lease_until - time.time() - self.ttl * 2 / 3)
        next_check = time.monotonic() + CHECK_EVERY
        while True:
            exited = self.proc.poll() is not None
            if exited:
                self.reader_done.wait(5)
            now = time.monotonic()
            try:
                self.read_progress()  # before the flush: where the new cell's output begins
                if not self.flush() or not self.flush_metrics():
                    self.stop_reason = "lost"
                self.record_progress()
                if now >= next_renew or self.stop_reason == "lost":
                    asked = time.time()
                    held, cancel = self.store.renew(self.item_id, self.token, self.ttl)
                    if not held:
                        self.stop_reason = "lost"
                    elif cancel and self.stop_reason is None:
                        self.stop_reason = "cancel"
                    if held:
                        self.lease_until = asked + self.ttl
                    next_renew = now + self.ttl / 3
                    next_check = now + CHECK_EVERY
                elif now >= next_check and not exited:
                    state, cancel = self.store.item_state(self.item_id)
                    if cancel and self.stop_reason is None:
                        self.stop_reason = "cancel"
                    next_check = now + CHECK_EVERY
            except Exception as err:  # store away: fence when we cannot renew in time
                _say(f"supervisor: store error: {err}")
            if self.fenced:
                return 4
            if self.stop_reason == "lost":
                self.stop_job(hard=True)
                return 5
            if self.timeout and now - self.started > self.timeout and self.stop_reason is None:
                self.stop_reason = "timeout"
            if self.stop_reason in ("cancel", "timeout", "signal", "full") and not exited:
                why = {"cancel": "cancel requested",
                       "timeout": f"timed out after {self.timeout or 0:g} s",
                       "signal": "the supervisor was stopped by a signal",
                       "full": "no space left for its log"}[self.stop_reason]
                if self.kill_at is None:
                    if self.stop_reason == "cancel":
                        why += self.cancelled_by()
                    self.log_line(f"[launch-jupyter: {why}; stopping the job]")
                self.stop_job()
            if exited and self.build is not None and self._built():
                continue
            if exited:
                break
            if self.reader_done.is_set():
                try:  # output closed: the exit is usually a moment away
                    self.proc.wait(TICK)
                except subprocess.TimeoutExpired:
                    pass
            elif self.wake.wait(TICK):  # returns at once when output ends or a signal comes
                self.wake.clear()
        if self.stop_reason == "signal":
            self.flush_retrying()
            return 6  # leave the item to lease recovery
        return self.finish()

    def _phase(self, phase: str) -> None:
        try:
            self.store.update_run_info(self.item_id, self.token, phase=phase)
        except Exception as err:  # only what the item shows: never stop the run over it
            _say(f"supervisor: could not record phase {phase}: {err}")

    def _built(self) -> bool:
        """The environment build ended: start the job if it succeeded (True); else the item
        fails with the build's error (error.json) or ends as cancelled (False)."""
        assert self.proc is not None
        if self.proc.returncode != 0 or self.stop_reason is not None:
            return False
        self.build = None
        self.reader_done.clear()
        self.spawn()
        self._phase("running")
        threading.Thread(target=self._watchdog, daemon=True).start()
        return True

    def _watchdog(self) -> None:
        """Fencing: kill the job when the lease could not be renewed for most of a ttl.

        A thread of its own, because a store call may block (a locked SQLite file, a
        PostgreSQL server that is away) longer than the lease lives.
        """
        margin = min(self.ttl / 4, 5.0)
        assert self.proc is not None
        while self.proc.poll() is None:
            if time.time() > self.lease_until - margin:
                self.fenced = True
                self.stop_reason = "lost"
                _kill_group(self.proc.pid, signal.SIGKILL)
                _say("supervisor: lease could not be renewed in time; job killed")
                return
            time.sleep(min(0.25, self.ttl / 8))

    def read_progress(self) -> None:
        """Take new cell starts and ends; a new running cell notes the log's size (what
        was output before it started), where ``logs -f`` marks the boundary."""
        self.clock.feed(self.progress.read())
        if self.clock.changed and self.clock.current is not None:
            with self.buffer_lock:
                self.clock.current["log_offset"] = self.logged + len(self.buffer)

    def record_progress(self) -> None:
        """Store the running cell when it changed since the last tick: one UPDATE at most."""
        current = self.clock.take_change()
        if current is not None:
            try:
                self.store.set_progress(self.item_id, self.token, self.attempt, current,
                                        executed_notebook=self.executed)
            except Exception:
                self.clock.changed = True  # try again next tick
                raise

    def log_line(self, text: str) -> None:
        with self.buffer_lock:
            self.buffer += ("\n" + text + "\n").encode()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stop_reason is None:
            self.stop_reason = "signal"
        self.wake.set()

    def _preamble(self) -> None:
        problems = self.spec.get("requirement_warnings")
        if problems is None:  # the agent did not check for us
            try:
                from launch_jupyter.jobs.deps import check_requirements

                problems = check_requirements(self.spec.get("requirements") or [])
            except Exception as err:  # never let the check stop the run
                problems = [f"could not check requirements: {err}"]
        if problems:
            text = "".join(f"[launch-jupyter: warning: {p}]\n" for p in problems)
            self.log(text)

    def flush_retrying(self) -> None:
        deadline = time.monotonic() + self.ttl / 2
        while time.monotonic() < deadline:
            try:
                self.flush()
                self.flush_metrics(drain=True)
                return
            except Exception:
                time.sleep(0.5)

    def outputs(self) -> list[dict]:
        found = []
        out_dir = os.path.join(self.run_dir, "output")
        for base, _dirs, files in os.walk(out_dir):
            for name in sorted(files):
                path = os.path.join(base, name)
                found.append({"name": os.path.relpath(path, out_dir), "path": path,
                              "size": os.path.getsize(path), "kind": "file"})
        executed = os.path.join(self.run_dir, "executed")
        if os.path.isdir(executed):
            for name in sorted(n for n in os.listdir(executed) if not n.startswith(".")):
                path = os.path.join(executed, name)
                found.insert(0, {"name": name, "path": path, "size": os.path.getsize(path),
                                 "kind": "notebook"})
        return found

    def finish(self) -> int:
        assert self.proc is not None
        code = self.proc.returncode
        if self.stop_reason == "full":
            stopped = "; the job was stopped" if self.kill_at is not None else ""
            state, error = "failed", {
                "message": f"its log could not be stored: {self.store_full}{stopped}",
                "stage": "run", "cell": None}
        else:
            state, error = outcome(self.stop_reason, code, self.timeout,
                                   lambda: self._job_error(code))
        try:
            outputs = self.outputs()
        except OSError as err:
            outputs = []
            self.log_line(f"[launch-jupyter: could not list outputs: {err}]")
        self.clock.feed(self.progress.read())
        cells = self.clock.durations()
        deadline = time.monotonic() + max(self.ttl * 0.75, 1.0)
        while True:
            try:
                self.flush()
                self.flush_metrics(drain=True)  # every point is in before the final state
                self.store.finish(self.item_id, self.token, state, exit_code=code, error=error,
                                  outputs=outputs, cells=cells, executed_notebook=self.executed)
                self._wake_agent()
                return 0
            except Exception as err:
                if time.monotonic() > deadline:
                    _say(f"supervisor: could not record the outcome: {err}")
                    return 7
                time.sleep(0.5)

    def _wake_agent(self) -> None:
        """Tell the agent that started us that a slot is free (it may be gone: fine)."""
        address = self.spec.get("agent_wake")
        if address:
            from launch_jupyter.store.wakeup import notify

            notify([address])

    def _job_error(self, code: int) -> dict:
        path = os.path.join(self.run_dir, "error.json")
        if os.path.exists(path):
            try:
                with open(path) as fh:
                    error = json.load(fh)
                if isinstance(error, dict) and "message" in error:
                    error.setdefault("stage", "execute")
                    error.setdefault("cell", None)
                    return error
            except (OSError, ValueError):
                pass
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = (": it went over the file size limit (RLIMIT_FSIZE)"
                   if name == "SIGXFSZ" else "")
            return {"message": f"the job was killed by {name}{why}", "stage": "run",
                    "cell": None}
        message = f"the job exited with code {code}"
        tail = self.tail.decode("utf-8", errors="replace")
        for text, meaning in WRITE_ERRORS.items():
            if text in tail:  # why jobs die on a full disk: say it up front, not in the log
                message += f" after a write failed with '{text}': {meaning}"
                break
        return {"message": message, "stage": "run", "cell": None}


def warm_up() -> None:
    """Import what a supervisor needs, so a fork server pays for it once."""
    import nbclient  # noqa: F401  (notebook jobs fork from here: see ForkedJob)
    import nbformat  # noqa: F401

    import launch_jupyter.jobs.deps  # noqa: F401
    import launch_jupyter.jobs.parameters  # noqa: F401
    import launch_jupyter.store  # noqa: F401
    import launch_jupyter.store.wakeup  # noqa: F401
    from launch_jupyter.store.sql import create_engine

    _death_wrapper()  # looked up once here, not per run

    # SQLAlchemy loads a dialect and its driver when an engine is first made for it; make one
    # of each here (PostgreSQL's never connects), or every supervisor pays ~20 ms of CPU.
    engine = create_engine("sqlite:///:memory:")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()
    try:
        create_engine("postgresql://warm-up/none").dispose()
    except Exception:  # no PostgreSQL driver installed: SQLite stores only
        pass


def main(argv: list[str] | None = None, pooled: Any = None) -> int:
    """Supervise the run of the spec file ``argv[0]``; ``pooled``: see ``Supervisor``."""
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as fh:
        spec = json.load(fh)
    try:  # it holds the agent's environment, secrets included: leave no copy on disk
        os.unlink(argv[0])
    except OSError:
        pass
    return Supervisor(spec, pooled).run()


if __name__ == "__main__":
    sys.exit(main())
