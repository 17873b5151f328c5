"""The outputs block of a pod's log: ``launch_run.py`` writes LAUNCH_OUTPUT_DIR and the
executed notebook there (files cannot be copied out of a finished pod); the runner takes
them out of the log stream again.

The block's marker is keyed (HMAC) by a random secret per attempt, given to the wrapper in
``LAUNCH_OUTPUT_KEY``: the wrapper removes it from the environment and makes itself
non-dumpable before the job starts, so the job can neither read the key nor print a block
the runner would take (security issue #13, row 2). The Job keeps the key, so an adopting
agent finds it there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from ..metrics import held_back

#: the container variable holding the attempt's outputs key (launch_run.py takes it out)
KEY_VAR = "LAUNCH_OUTPUT_KEY"


def new_output_key() -> str:
    """A fresh outputs key for one attempt."""
    return secrets.token_hex(32)


def output_marker(key: str) -> str:
    """The line that frames an attempt's outputs in its pod's log, keyed by the attempt's
    outputs key (launch_run.py computes the same)."""
    digest = hmac.new(key.encode(), b"launch-jupyter-outputs", hashlib.sha256).hexdigest()
    return f"@@launch-jupyter-outputs-{digest[:32]}@@"


def job_output_key(job: Any) -> str | None:
    """The outputs key in a Job (the client's model or a manifest); None if it has none."""
    if job is None:
        return None
    if not isinstance(job, Mapping):
        from kubernetes.client import ApiClient

        job = ApiClient().sanitize_for_serialization(job)
    pod = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in pod.get("containers") or []:
        for var in container.get("env") or []:
            if var.get("name") == KEY_VAR and var.get("value"):
                return str(var["value"])
    return None


class OutputTrailer:
    """Splits a pod's log into the job's output and the outputs block that
    ``launch_run.py`` writes at the end (a base64 tar.gz between two marker lines), whatever
    the chunk boundaries of the log stream."""

    def __init__(self, marker: str) -> None:
        self.start = f"\n{marker} ".encode()
        self.end = f"{marker} END\n".encode()
        self.pending = b""
        self.state = "log"  # log -> header -> payload -> done
        self.payload = bytearray()
        self.complete = False
        self.skipped: int | None = None

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` that is the job's output (some bytes may wait for more)."""
        buf = self.pending + data
        self.pending = b""
        out = bytearray()
        while buf:
            if self.state == "done":
                out += buf
                break
            if self.state == "log":
                at = buf.find(self.start)
                if at < 0:
                    keep = held_back(buf, self.start)
                    out += buf[:len(buf) - keep]
                    self.pending = buf[len(buf) - keep:]
                    break
                out += buf[:at]
                buf = buf[at + len(self.start):]
                self.state = "header"
            elif self.state == "header":
                newline = buf.find(b"\n")
                if newline < 0:
                    self.pending = buf
                    break
                kind, _, size = buf[:newline].decode(errors="replace").partition(" ")
                buf = buf[newline + 1:]
                if kind == "BEGIN":
                    self.state = "payload"
                else:
                    self.skipped = int(size) if size.isdigit() else 0
                    self.state = "done"
            else:  # payload
                at = buf.find(self.end)
                if at < 0:
                    keep = held_back(buf, self.end)
                    self.payload += buf[:len(buf) - keep]
                    self.pending = buf[len(buf) - keep:]
                    break
                self.payload += buf[:at]
                buf = buf[at + len(self.end):]
                self.complete = True
                self.state = "done"
        return bytes(out)

    def finish(self) -> bytes:
        """The stream ended: what was held back is output after all."""
        tail, self.pending = (self.pending if self.state == "log" else b""), b""
        return tail

    def archive(self) -> bytes | None:
        """The outputs archive (tar.gz), once the whole block has been read."""
        if not self.complete:
            return None
        return base64.b64decode(bytes(self.payload))
