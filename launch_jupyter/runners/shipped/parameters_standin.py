"""Stand-in for launch_jupyter inside a container: ``parameters()`` and ``log()``.

It cannot import launch_jupyter, so ``log`` is a copy of ``launch_jupyter.runtime.MetricLog``
(keep the two alike: tests/test_metrics_runtime.py runs the same checks on both).
"""
import atexit
import json
import os
import sys
import threading
import time


class Parameters(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}") from None

    def __setattr__(self, name, value):
        self[name] = value


def parameters(**defaults):
    """The defaults, overridden by the job's LAUNCH_PARAMETERS (JSON)."""
    params = Parameters(defaults)
    raw = os.environ.get("LAUNCH_PARAMETERS")
    if raw:
        given = json.loads(raw)
        if not isinstance(given, dict):
            raise ValueError("LAUNCH_PARAMETERS must be a JSON object")
        params.update(given)
    return params


FLUSH_EVERY = 0.2
MAX_NAME = 255
MAX_STEP = 2**63 - 1
MAX_FLOAT = 1.7976931348623157e308
MAX_PENDING = 50_000


class MetricLog:
    """Points buffered, appended to LAUNCH_METRICS_FILE as JSON lines [name, step, value, ms]
    every FLUSH_EVERY s, at exit and after each notebook cell; the run wrapper tails it."""

    def __init__(self):
        inside = bool(os.environ.get("LAUNCH_ITEM_ID"))
        self.path = os.environ.get("LAUNCH_METRICS_FILE") if inside else None
        self.why_not = ("" if self.path else
                        "this job's runner does not collect metrics (no LAUNCH_METRICS_FILE)"
                        if inside else "not inside a launch-jupyter job (no LAUNCH_ITEM_ID)")
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.pending = []
        self.step = 0
        self.warned = set()
        self.names = {}
        self.fd = None
        self.thread = None
        self.closed = False

    def warn(self, key, message):
        if key not in self.warned:
            self.warned.add(key)
            try:
                sys.stderr.write(f"launch_jupyter.log: {message}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def log(self, data, step, metrics):
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
            if number is None or number - number != 0.0:
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
        elif backlog:
            self.flush()

    def start(self):
        with self.write_lock:
            if self.thread is not None:
                return
            self.thread = threading.Thread(target=self.run, name="launch-metrics", daemon=True)
            self.thread.start()
        atexit.register(self.close)
        shell = sys.modules.get("IPython")
        ipython = getattr(shell, "get_ipython", lambda: None)() if shell else None
        if ipython is not None:
            ipython.events.register("post_run_cell", self.flush_quietly)

    def run(self):
        while not self.closed:
            time.sleep(FLUSH_EVERY)
            self.flush()

    def flush_quietly(self, *args):
        self.flush()

    def flush(self):
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

    def close(self):
        self.closed = True
        self.flush()

    def forked(self):
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.pending = []
        self.thread = None


def _number(value):
    if type(value) is int:
        return float(value) if -MAX_FLOAT <= value <= MAX_FLOAT else None
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        try:
            value = value.item()
        except Exception:
            return None
    import numbers

    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except (OverflowError, TypeError, ValueError):
            return None
    return None


def _step(step):
    if isinstance(step, bool):
        return None
    try:
        at = step.__index__()
    except (AttributeError, TypeError):
        return None
    return at if 0 <= at <= MAX_STEP else None


def _short(value):
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


_METRICS = None


def _metric_log():
    global _METRICS
    if _METRICS is None:
        _METRICS = MetricLog()
        os.register_at_fork(after_in_child=_METRICS.forked)
    return _METRICS


def log(data=None, step=None, **metrics):
    """Record metric points: log({"loss": 0.4}, step=3), log({"loss": 0.4}, 3) as W&B's
    log takes it, or log(acc=0.9); never raises."""
    try:
        (_METRICS or _metric_log()).log(data, step, metrics)
    except Exception as err:
        try:
            _metric_log().warn("error", f"could not record metrics: {err!r}")
        except Exception:
            pass
