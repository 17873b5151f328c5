"""Wake-ups: an agent sleeps until an item is submitted instead of polling the store.

Each waiting agent binds a Unix datagram socket in Linux's abstract namespace and records its
name in the agents table; ``notify`` sends one byte to every live agent of the queue. In the
same process this costs microseconds, across processes well under a millisecond. Where
abstract sockets are not available the agent falls back to polling every ``fallback`` s.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time
import weakref
from typing import Any

_local_wakers: weakref.WeakSet[Waker] = weakref.WeakSet()
_lock = threading.Lock()


class Waker:
    """A wake-up receiver: ``wait(timeout)`` returns early when ``wake()`` or a datagram comes."""

    def __init__(self, name: str) -> None:
        self.address: str | None = None
        self._sources: list[Any] = []
        self._sock: socket.socket | None = None
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        if sys.platform.startswith("linux"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            address = f"\0launch-jupyter/{name}"
            try:
                sock.bind(address)
                sock.setblocking(False)
                self._sock = sock
                self.address = address[1:]
            except OSError:
                sock.close()
        with _lock:
            _local_wakers.add(self)

    def wake(self) -> None:
        """Wake this waiter from any thread of this process."""
        try:
            os.write(self._w, b"x")
        except (BlockingIOError, OSError):
            pass

    def add_source(self, source: Any) -> None:
        """Also wake on ``source`` (``fileno()``, ``drain()``, ``ensure()``): PG LISTEN."""
        self._sources.append(source)

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s; True when woken. Drains pending wake-ups."""
        fds: list[Any] = [self._r] + ([self._sock] if self._sock is not None else [])
        for source in self._sources:
            source.ensure()
            if source.fileno() >= 0:
                fds.append(source.fileno())
        try:
            ready, _, _ = select.select(fds, [], [], max(0.0, timeout))
        except (OSError, ValueError):
            return False
        self._drain()
        for source in self._sources:
            source.drain()
        return bool(ready)

    def _drain(self) -> None:
        try:
            while os.read(self._r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass
        if self._sock is not None:
            try:
                while self._sock.recv(64):
                    pass
            except (BlockingIOError, OSError):
                pass

    def close(self) -> None:
        for source in self._sources:
            source.close()
        with _lock:
            _local_wakers.discard(self)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass


def notify(addresses: list[str]) -> None:
    """Wake the given agents (by address) and every waiter in this process."""
    with _lock:
        local = list(_local_wakers)
    for waker in local:
        waker.wake()
    if not addresses or not sys.platform.startswith("linux"):
        return
    local_addresses = {w.address for w in local}
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        for address in addresses:
            if address in local_addresses:
                continue
            try:
                sock.sendto(b"x", "\0" + address)
            except OSError:
                pass  # that agent is gone or its buffer is full: it is awake anyway
    finally:
        sock.close()


class PgListener:
    """``LISTEN launch_jupyter`` on its own autocommit connection; reconnects when dropped."""

    def __init__(self, url: str, channel: str = "launch_jupyter") -> None:
        import sqlalchemy as sa

        parsed = sa.engine.make_url(url)
        self.conninfo = parsed.set(drivername="postgresql").render_as_string(
            hide_password=False)
        self.channel = channel
        self.conn: Any = None
        self.next_try = 0.0
        self.ensure()

    def ensure(self) -> None:
        if self.conn is not None and not self.conn.closed:
            return
        if time.monotonic() < self.next_try:
            return
        self.next_try = time.monotonic() + 2.0
        try:
            import psycopg

            self.conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
            self.conn.execute(f"LISTEN {self.channel}")
        except Exception:  # the server is away: the agent falls back to its timeout
            self.conn = None

    def fileno(self) -> int:
        try:
            return self.conn.fileno() if self.conn is not None else -1
        except Exception:
            return -1

    def drain(self) -> None:
        if self.conn is None:
            return
        try:
            for _ in self.conn.notifies(timeout=0):
                pass
        except Exception:
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
