"""Run a job's command in a container (shipped by launch-jupyter): pass its metric points to
the log while it runs, then write its output folders to stdout between two marker lines (for
runners that cannot copy files out of a finished container: the kubernetes runner reads them
back from the pod's log).

python3 launch_run.py [--metrics-marker W] [--marker M [--dir DIR]... [--limit BYTES]]
                      -- COMMAND...
With --metrics-marker, the job's LAUNCH_METRICS_FILE (where launch_jupyter.log appends JSON
lines) is tailed every TICK s and its points written to stdout as lines
``\\n<W> [[name, step, value, time], ...]\\n``, each in one write of under 4 KiB (atomic in a
pipe, so never torn by the job's own output); the runner takes them out of the log again.
The exit status is the command's (128 + N when signal N ended it).

Without --marker the outputs marker is keyed by LAUNCH_OUTPUT_KEY (the same formula as
launch_jupyter.runners.kubernetes.outputs.output_marker). The wrapper takes the key out of
the environment and makes itself non-dumpable (so a job running as the same user cannot
read it from /proc) before the job starts, and stops whatever the job left running before it
writes the block: the job cannot print a block the runner would take.
"""
import argparse
import base64
import hashlib
import hmac
import io
import os
import signal
import subprocess
import sys
import tarfile
import tempfile

TICK = 0.2
WRITE_MAX = 4000  # bytes of one marker line: under PIPE_BUF (4096), so one atomic write
KEY_VAR = "LAUNCH_OUTPUT_KEY"


def keyed_marker(key):
    digest = hmac.new(key.encode(), b"launch-jupyter-outputs", hashlib.sha256).hexdigest()
    return f"@@launch-jupyter-outputs-{digest[:32]}@@"


def hide_from_the_job():
    """PR_SET_DUMPABLE 0: /proc/<this pid>/environ and mem are closed to the job's user."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass  # a Python without ctypes: the key stays out of the job's environment only


def metrics_file(env):
    """A writable metrics file for the job: LAUNCH_METRICS_FILE, or one in the temp dir."""
    wanted = env.get("LAUNCH_METRICS_FILE")
    if not wanted:
        return None
    try:
        os.close(os.open(wanted, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        return wanted
    except OSError:
        pass
    try:  # the image's /launch is not writable for its user: fall back to the temp dir
        fd, path = tempfile.mkstemp(prefix="launch-metrics-", suffix=".jsonl")
        os.close(fd)
        return path
    except OSError:
        return None


class Tail:
    """Complete lines appended to a file since the last read."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self, limit=1024 * 1024):
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(limit)
        except OSError:
            return [], False
        self.offset += len(data)
        data = self.partial + data
        end = data.rfind(b"\n") + 1
        self.partial = data[end:]
        return [line for line in data[:end].split(b"\n") if line], len(data) >= limit


def write(data):
    try:
        os.write(1, data)
    except OSError:  # nobody reads the log any more: the points have nowhere to go
        pass


def emit(marker, lines):
    """Write ``lines`` (JSON arrays) as marker lines, each in one write under WRITE_MAX."""
    head = b"\n" + marker.encode() + b" ["
    room = WRITE_MAX - len(head) - 2
    batch, size = [], 0
    for line in lines:
        if len(line) > room:
            continue  # not a point launch_jupyter.log writes
        if batch and size + len(line) + 1 > room:
            write(head + b",".join(batch) + b"]\n")
            batch, size = [], 0
        batch.append(line)
        size += len(line) + 1
    if batch:
        write(head + b",".join(batch) + b"]\n")


def write_outputs(args):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for folder in args.dir:
            if os.path.isdir(folder):
                tar.add(folder, arcname=os.path.basename(folder.rstrip("/")))
    data = buf.getvalue()
    out = sys.stdout
    out.flush()
    if len(data) > args.limit:
        out.write(f"\n{args.marker} SKIPPED {len(data)}\n")
    else:
        text = base64.b64encode(data).decode()
        out.write(f"\n{args.marker} BEGIN {len(data)}\n")
        for start in range(0, len(text), 76):
            out.write(text[start:start + 76] + "\n")
        out.write(f"{args.marker} END\n")
    out.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker")
    parser.add_argument("--metrics-marker")
    parser.add_argument("--dir", action="append", default=[])
    parser.add_argument("--limit", type=int, default=64 * 1024 * 1024)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    key = os.environ.pop(KEY_VAR, None)
    if key and not args.marker:
        args.marker = keyed_marker(key)
    env = dict(os.environ)
    path = metrics_file(env) if args.metrics_marker else None
    if path:
        env["LAUNCH_METRICS_FILE"] = path
    else:
        env.pop("LAUNCH_METRICS_FILE", None)
    hide_from_the_job()
    child = subprocess.Popen(command, env=env, start_new_session=True)

    def forward(signum, frame):
        try:
            child.send_signal(signum)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    tail = Tail(path) if path else None
    while True:
        try:
            code = child.wait(TICK)
            break
        except subprocess.TimeoutExpired:
            pass
        if tail is not None:
            emit(args.metrics_marker, tail.read()[0])
    try:  # what the job left running must not write into (or after) the blocks
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        pass
    if tail is not None:
        more = True
        while more:
            lines, more = tail.read()
            emit(args.metrics_marker, lines)
    if args.marker:
        write_outputs(args)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
