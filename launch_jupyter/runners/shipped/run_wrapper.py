"""Run a job's command, then write its output folders to stdout
between two marker lines (shipped by launch-jupyter, for runners that cannot copy files out
of a finished container: the kubernetes runner reads them back from the pod's log).

python3 launch_run.py --marker M [--dir DIR]... [--limit BYTES] -- COMMAND...
The exit status is the command's (128 + N when signal N ended it).
"""
import argparse
import base64
import io
import os
import signal
import subprocess
import sys
import tarfile


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker", required=True)
    parser.add_argument("--dir", action="append", default=[])
    parser.add_argument("--limit", type=int, default=64 * 1024 * 1024)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    child = subprocess.Popen(command)

    def forward(signum, frame):
        try:
            child.send_signal(signum)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
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
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
