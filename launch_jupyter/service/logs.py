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
    item = store.get_item(item_id)  # read first: a finished item's log no longer grows
    finished = item["state"] in TERMINAL
    data, next_offset = store.read_log(item_id, offset, limit=limit)
    if not finished or next_offset < item["log_bytes"]:
        keep = complete_utf8_prefix(data)
        next_offset -= len(data) - keep
        data = data[:keep]
    return {"text": data.decode("utf-8", errors="replace"), "next_offset": next_offset,
            "done": finished and next_offset >= item["log_bytes"]}


class LogReader:
    """An item's log read a piece at a time: ``read()`` returns what is new since the last
    call. ``done`` is true once the item is finished and everything was read."""

    def __init__(self, store: Store, item_id: str, offset: int = 0) -> None:
        self.store = store
        self.item_id = item_id
        self.offset = offset
        self.done = False

    def read(self, limit: int | None = None) -> str:
        page = read_page(self.store, self.item_id, self.offset, limit)
        self.offset, self.done = page["next_offset"], page["done"]
        return page["text"]


def follow(store: Store, item_id: str, write: Callable[[str], Any], *,
           interval: float = 0.2, tick: Callable[[], Any] | None = None,
           offset: int = 0) -> dict:
    """Write the log as it grows until the item is finished; returns the final item.

    ``tick`` is called every round (a foreground run renews a docker run's lease with it).
    """
    reader = LogReader(store, item_id, offset)
    while True:
        if tick is not None:
            tick()
        text = reader.read()
        if text:
            write(text)
        if reader.done:
            return store.get_item(item_id)
        time.sleep(interval)


__all__ = ["LogReader", "complete_utf8_prefix", "follow", "read_page"]
