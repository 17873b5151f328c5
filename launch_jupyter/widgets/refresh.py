"""The background refresh thread of a panel, following the kernel-thread rules of
docs/architecture.md.

The thread only changes widget state through trait setters, runs under the parent message of
the cell that created the panel (captured at creation, ``set_parent`` in the thread), never
blocks the kernel's main thread, and stops when the panel is closed (by ``close()`` or by the
front end closing its comm).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("launch_jupyter.widgets")


def kernel() -> Any:
    """The running ipykernel, or None (plain Python, terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "kernel", None) if shell is not None else None


def widgets_available() -> bool:
    """True inside a kernel, where a front end can show widgets."""
    return kernel() is not None


def is_closed(widget: Any) -> bool:
    """True once the widget was closed here or its comm was closed by the front end."""
    comm = getattr(widget, "comm", None)
    return comm is None or bool(getattr(comm, "_closed", False))


def set_options(owner: Any, dropdown: Any, options: list) -> None:
    """Give ``dropdown`` new ``options`` and keep its value (ipywidgets selects the first
    option when the options change); ``owner._setting`` is true meanwhile, so the owner's
    observers know the change is the panel's own, not the user's."""
    if list(dropdown.options) == options:
        return
    value, owner._setting = dropdown.value, True
    try:
        dropdown.options = options
        dropdown.value = value
    finally:
        owner._setting = False


class Refresher:
    """Calls ``tick()`` every ``interval`` s in a daemon thread until stopped or closed."""

    def __init__(self, widget: Any, tick: Callable[[], None], interval: float) -> None:
        self.widget = widget
        self.tick = tick
        self.interval = max(0.1, float(interval))
        self.errors = 0
        self._stop = threading.Event()
        k = kernel()
        # The cell that created the panel owns its updates (parent header on iopub).
        self._parent = k.get_parent("shell") if k is not None else None
        self._ident = getattr(k, "_shell_parent_ident", None)
        if self._ident is not None:
            try:
                self._ident = self._ident.get()
            except LookupError:
                self._ident = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"launch-panel-{type(widget).__name__}")

    def start(self) -> Refresher:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        k = kernel()
        if k is not None and self._parent:
            k.set_parent(self._ident, self._parent, "shell")
        while not self._stop.wait(self.interval):
            if is_closed(self.widget):
                break
            try:
                self.tick()
                self.errors = 0
            except Exception:  # a flaky store must not kill the panel: retry next tick
                self.errors += 1
                if self.errors in (1, 10, 100):
                    log.warning("panel refresh failed", exc_info=True)


__all__ = ["Refresher", "is_closed", "kernel", "widgets_available"]
