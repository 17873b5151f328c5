"""A real IPython kernel driven over ZMQ with jupyter_client, for the magics and widget tests.

Every message the kernel publishes on iopub is kept, so tests can assert on what a front end
would see (streams, displays, errors, widget comm updates) rather than on internals.
"""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager


@dataclass
class Result:
    """What one execute request produced."""

    reply: dict
    messages: list[dict] = field(default_factory=list)

    def _streams(self, name: str) -> str:
        return "".join(m["content"]["text"] for m in self.messages
                       if m["msg_type"] == "stream" and m["content"]["name"] == name)

    @property
    def stdout(self) -> str:
        return self._streams("stdout")

    @property
    def stderr(self) -> str:
        return self._streams("stderr")

    @property
    def error(self) -> dict | None:
        return next((m["content"] for m in self.messages if m["msg_type"] == "error"), None)

    def data(self, mime: str = "text/plain") -> list[str]:
        """The ``mime`` data of every display, update and execute result, in order."""
        return [m["content"]["data"][mime] for m in self.messages
                if m["msg_type"] in ("display_data", "execute_result", "update_display_data")
                and mime in m["content"].get("data", {})]

    @property
    def page(self) -> str:
        """Text the kernel pages (``%launch?``)."""
        return "".join(p.get("data", {}).get("text/plain", "")
                       for p in self.reply["content"].get("payload", [])
                       if p.get("source") == "page")


class Kernel:
    """A started kernel with a blocking client; ``shutdown()`` stops it."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=full_env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.pending: list[dict] = []  # iopub messages that arrived outside any execute()

    def execute(self, code: str, timeout: float = 120, allow_error: bool = False,
                user_expressions: dict | None = None) -> Result:
        msg_id = self.kc.execute(code, user_expressions=user_expressions or {},
                                 allow_stdin=False)
        result = Result(reply={})
        deadline = time.monotonic() + timeout
        idle = False
        while not idle:
            msg = self._iopub(deadline, code)
            if msg["parent_header"].get("msg_id") != msg_id:
                self.pending.append(msg)
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
            else:
                result.messages.append(msg)
        while True:
            reply = self.kc.get_shell_msg(timeout=max(1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                result.reply = reply
                break
        if result.error and not allow_error:
            raise AssertionError(f"cell failed: {code!r}\n" + "\n".join(
                result.error["traceback"]))
        return result

    def _iopub(self, deadline: float, what: str) -> dict:
        try:
            return self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"kernel did not finish {what!r} in time") from None

    def value(self, expression: str) -> Any:
        """Evaluate ``expression`` in the kernel (as text, via user_expressions)."""
        result = self.execute("", user_expressions={"v": expression})
        out = result.reply["content"]["user_expressions"]["v"]
        if out["status"] != "ok":
            raise AssertionError(f"{expression!r} failed: {out.get('evalue')}")
        return out["data"]["text/plain"]

    def iopub_messages(self, seconds: float) -> list[dict]:
        """iopub messages published while the kernel is otherwise idle, for ``seconds``."""
        deadline = time.monotonic() + seconds
        out, self.pending = self.pending, []
        while time.monotonic() < deadline:
            try:
                out.append(self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
        return out

    def send_comm_msg(self, comm_id: str, data: dict) -> None:
        """What a front end sends when a user clicks a widget."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.kc.shell_channel.send(msg)

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        return getattr(process, "pid", None)

    def shutdown(self, now: bool = False) -> float:
        """Shut the kernel down the way Jupyter does; returns the seconds it took."""
        start = time.monotonic()
        self.kc.stop_channels()
        if self.km.is_alive():
            self.km.shutdown_kernel(now=now)
        return time.monotonic() - start


def comm_updates(messages: list[dict], comm_id: str, key: str = "value") -> list[Any]:
    """The successive values of widget trait ``key`` sent for the model ``comm_id``."""
    out = []
    for msg in messages:
        if msg["msg_type"] != "comm_msg" or msg["content"]["comm_id"] != comm_id:
            continue
        data = msg["content"]["data"]
        if data.get("method") == "update" and key in data.get("state", {}):
            out.append(data["state"][key])
    return out
