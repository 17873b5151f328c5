"""What a running job imports: ``launch_jupyter.parameters(...)`` and ``launch_jupyter.log(...)``.

Deliberately tiny (standard library only, nothing started on import): every script job pays
for importing it.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from typing import Any

ENV_VAR = "LAUNCH_PARAMETERS"


class Parameters(dict):
    """A dict of parameters that also allows attribute access (``params.lr``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; parameters: {', '.join(self)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self))


def parameters(**defaults: Any) -> Parameters:
    """Declare a script's parameters: the defaults, overridden by the job's ``LAUNCH_PARAMETERS``.

    Outside a job (no ``LAUNCH_PARAMETERS``) this returns the defaults unchanged.
    """
    params = Parameters(defaults)
    raw = os.environ.get(ENV_VAR)
    if raw:
        try:
            given = json.loads(raw)
        except ValueError as err:
            raise _error(f"{ENV_VAR} is not valid JSON ({err}): {raw[:200]!r}") from None
        if not isinstance(given, dict):
            raise _error(f"{ENV_VAR} must be a JSON object, got {raw[:200]!r}")
        params.update(given)
    return params


def _error(message: str) -> Exception:
    from .errors import ParameterError

    return ParameterError(message)


# -- metrics: log() ----------------------------------------------------------------------------
# The runner names a file (LAUNCH_METRICS_FILE); points are buffered and appended to it as JSON
# lines ``[name, step, value, epoch milliseconds]`` by a daemon thread every FLUSH_EVERY s, at
# exit, and after each notebook cell. The runner tails the file (runners/metrics.py).
# runners/shipped/parameters_standin.py carries a copy for containers (it cannot import this).

METRICS_ENV = "LAUNCH_METRICS_FILE"
FLUSH_EVERY = 0.2  # seconds between appends to the metrics file
MAX_NAME = 255  # characters of a metric name (the store's column)
MAX_STEP = 2**63 - 1
MAX_FLOAT = 1.7976931348623157e308
MAX_PENDING = 50_000  # log() calls held before the caller writes them itself


class MetricLog:
    """The points of one job process, on their way to the runner's metrics file."""

    def __init__(self) -> None:
        inside = bool(os.environ.get("LAUNCH_ITEM_ID"))
        self.path = os.environ.get(METRICS_ENV) if inside else None
        self.why_not = ("" if self.path else
                        "this job's runner does not collect metrics (no LAUNCH_METRICS_FILE)"
                        if inside else "not inside a launch-jupyter job (no LAUNCH_ITEM_ID); "
                        "submit the notebook or script to a queue to record metrics")
        self.lock = threading.Lock()  # pending and step
        self.write_lock = threading.Lock()  # one writer at a time, in order
        self.pending: list[tuple[int, float, list[tuple[str, float]]]] = []
        self.step = 0
        self.warned: set[str] = set()
        self.names: dict[str, str] = {}  # name -> its JSON text
        self.fd: int | None = None
        self.thread: threading.Thread | None = None
        self.closed = False

    def warn(self, key: str, message: str) -> None:
        """``message`` on stderr, once per ``key``."""
        if key not in self.warned:
            self.warned.add(key)
            try:
                sys.stderr.write(f"launch_jupyter.log: {message}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def log(self, data: Any, step: Any, metrics: dict[str, Any]) -> None:
        if self.path is None:
            self.warn("outside", f"nothing recorded: {self.why_not}")
            return
        try:
            pairs = (({**data, **metrics} if metrics else data) if data else metrics).items()
        except (AttributeError, TypeError):
            self.warn("data", f"skipped {_short(data)}: give a dict of metric names to numbers "
                              "or keyword arguments, e.g. log({'loss': 0.4}) or log(loss=0.4)")
            pairs = metrics.items()
        now = time.time()
        points = []
        for name, value in pairs:
            kind = type(value)
            number = value if kind is float else _number(value)
            if number is None or number - number != 0.0:  # not a number, NaN or inf
                self.warn(f"value {name}", f"skipped {name!r} = {_short(value)}: metric values "
                          "are finite ints or floats; further bad values of it are skipped too")
                continue
            if type(name) is not str or not 0 < len(name) <= MAX_NAME:
                self.warn(f"name {name!r}"[:300], f"skipped the metric named {_short(name)}: "
                          f"names are non-empty strings of at most {MAX_NAME} characters")
                continue
            points.append((name, number))
        with self.lock:
            if step is None:
                at = self.step
            else:
                at = step if type(step) is int and 0 <= step <= MAX_STEP else _step(step)
                if at is None:
                    self.warn("step", f"skipped a call with step={_short(step)}: step is a "
                                      "non-negative int (or left out to count calls)")
                    return
            self.step = max(self.step, at + 1)
            self.pending.append((at, now, points))
            backlog = len(self.pending) >= MAX_PENDING
        if self.thread is None:
            self.start()
        elif backlog:  # logging faster than the thread writes: write here (a local file)
            self.flush()

    def start(self) -> None:
        with self.write_lock:
            if self.thread is not None:
                return
            self.thread = threading.Thread(target=self.run, name="launch-metrics", daemon=True)
            self.thread.start()
        atexit.register(self.close)
        shell = sys.modules.get("IPython")
        ipython = getattr(shell, "get_ipython", lambda: None)() if shell else None
        if ipython is not None:  # a kernel may be killed once its last cell ran: flush per cell
            ipython.events.register("post_run_cell", self.flush_quietly)

    def run(self) -> None:
        while not self.closed:
            time.sleep(FLUSH_EVERY)
            self.flush()

    def flush_quietly(self, *args: Any) -> None:
        self.flush()

    def flush(self) -> None:
        """Append the pending points to the metrics file."""
        with self.write_lock:
            with self.lock:
                batch, self.pending = self.pending, []
            if not batch or self.path is None:
                return
            names = self.names
            lines = []
            for at, now, points in batch:
                for name, value in points:
                    text = names.get(name)
                    if text is None:
                        text = names[name] = json.dumps(name)
                    lines.append("[%s,%d,%r,%d]\n" % (text, at, value, now * 1000))  # noqa: UP031
            data = "".join(lines).encode()
            try:
                if self.fd is None:
                    self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                while data:
                    data = data[os.write(self.fd, data):]
            except OSError as err:
                self.warn("write", f"cannot write the metrics file {self.path}: {err}; "
                                   "metrics of this run are lost from here on")
                self.path = None

    def close(self) -> None:
        self.closed = True
        self.flush()

    def forked(self) -> None:
        """In a forked child: the parent writes what it had; start afresh."""
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.pending = []
        self.thread = None


def _number(value: Any) -> float | None:
    """A finite-or-not float of an int/float-like ``value`` (numpy scalars, 0-d arrays)."""
    if type(value) is int:
        return float(value) if -MAX_FLOAT <= value <= MAX_FLOAT else None
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        try:
            value = value.item()
        except Exception:  # noqa: BLE001 - whatever it is, it is not a number
            return None
    import numbers

    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except (OverflowError, TypeError, ValueError):
            return None
    return None


def _step(step: Any) -> int | None:
    if isinstance(step, bool):
        return None
    try:
        at = step.__index__()
    except (AttributeError, TypeError):
        return None
    return at if 0 <= at <= MAX_STEP else None


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


_METRICS: MetricLog | None = None


def _metric_log() -> MetricLog:
    global _METRICS
    if _METRICS is None:
        _METRICS = MetricLog()
        os.register_at_fork(after_in_child=_METRICS.forked)
    return _METRICS


def log(data: Any = None, step: int | None = None, **metrics: Any) -> None:
    """Record metric points of this run: ``log({"loss": 0.4}, step=3)``, ``log({"loss": 0.4},
    3)`` (as W&B's ``wandb.log`` takes it, so a call written for it does not fail the job)
    or ``log(acc=0.9)``.

    ``step`` is a non-negative int; left out, it counts the calls from 0. Values are finite
    ints or floats (numpy scalars too); others are skipped with one warning. Never raises and
    never blocks: points are written in batches. Outside a job nothing is recorded.
    """
    try:
        (_METRICS or _metric_log()).log(data, step, metrics)
    except Exception as err:  # noqa: BLE001 - logging must never break the job
        try:
            _metric_log().warn("error", f"could not record metrics: {err!r}")
        except Exception:  # noqa: BLE001
            pass
