"""Reading an item's log: whole UTF-8 characters only, incrementally, and following it.

Log chunks are bytes cut wherever the job's output was flushed, so a character can straddle
two chunks; every reader here holds such a partial character back until its other bytes
arrive (or the item is finished), so no front door ever shows U+FFFD for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..store import TERMINAL, Store
from .records import LogPage


def complete_utf8_prefix(data: bytes) -> int:
    """Length of ``data`` without a trailing, incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # continuation byte: look further back for the lead byte
            continue
        if byte < 0x80:
            return len(data)
        need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
        return len(data) if need <= back else len(data) - back
    return len(data)


def read_page(store: Store, item_id: str, offset: int = 0, limit: int | None = None
              ) -> LogPage:
    """Log text from byte ``offset`` (at most ``limit`` bytes), UTF-8 safe."""
    return _read(store, item_id, offset, limit)[0]


def _read(store: Store, item_id: str, offset: int, limit: int | None) -> tuple[LogPage, dict]:
    """A log page and the item as it was just before the page was read."""
    item = store.get_item(item_id)  # read first: a finished item's log no longer grows
    finished = item["state"] in TERMINAL
    data, next_offset = store.read_log(item_id, offset, limit=limit)
    if not finished or next_offset < item["log_bytes"]:
        keep = complete_utf8_prefix(data)
        next_offset -= len(data) - keep
        data = data[:keep]
    return {"text": data.decode("utf-8", errors="replace"), "next_offset": next_offset,
            "done": finished and next_offset >= item["log_bytes"]}, item


class LogReader:
    """An item's log read a piece at a time: ``read()`` returns what is new since the last
    call. ``done`` is true once the item is finished and everything was read."""

    def __init__(self, store: Store, item_id: str, offset: int = 0) -> None:
        self.store = store
        self.item_id = item_id
        self.offset = offset
        self.done = False
        self.item: dict | None = None  # the item as of the last read

    def read(self, limit: int | None = None) -> str:
        page, self.item = _read(self.store, self.item_id, self.offset, limit)
        self.offset, self.done = page["next_offset"], page["done"]
        return page["text"]


def follow(store: Store, item_id: str, write: Callable[[str], Any], *,
           interval: float = 0.2, tick: Callable[[], Any] | None = None,
           offset: int = 0, on_progress: Callable[[dict], Any] | None = None) -> dict:
    """Write the log as it grows until the item is finished; returns the final item.

    ``tick`` is called every round (a foreground run renews a docker run's lease with it);
    ``on_progress`` with the item each time its running notebook cell changes (before the
    text read with it, which is mostly that cell's output).
    """
    reader = LogReader(store, item_id, offset)
    seen: tuple | None = None
    pending: dict | None = None  # a new cell whose boundary lies further in the log
    while True:
        if tick is not None:
            tick()
        start = reader.offset
        text = reader.read()
        item = reader.item or {}
        progress = item.get("progress")
        if on_progress is not None and progress:
            key = (item["attempt"], progress["cell"], progress["cell_started_at"])
            if key != seen:
                seen, pending = key, item
        if pending is not None:
            at = pending["progress"].get("log_offset")
            at = start if at is None else max(start, at)
            if at <= reader.offset or reader.done:
                # The boundary falls in this page: the text before it, the mark, the rest.
                data = text.encode()
                cut = complete_utf8_prefix(data[:at - start])
                if cut:
                    write(data[:cut].decode())
                on_progress(pending)  # type: ignore[misc]
                text, pending = data[cut:].decode(), None
        if text:
            write(text)
        if reader.done:
            return store.get_item(item_id)
        time.sleep(interval)


__all__ = ["LogReader", "complete_utf8_prefix", "follow", "read_page"]
