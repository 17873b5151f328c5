"""Small caches on disk of what capture works out once per environment (issue #18).

A command is a fresh process: what an earlier capture computed (a lock's closure, the fit of
a parameter's default to its constraints) is kept in a JSON file per environment fingerprint
(``deps.environment_fingerprint``: it changes when anything is installed), beside the module
map of ``deps``. Files are written atomically and the 16 newest of a kind are kept (several
environments may share the folder); a read-only home only costs speed.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from launch_jupyter.jobs.deps import cache_dir, environment_fingerprint, save_cache


class EnvCache:
    """``key -> JSON value`` for this environment, in ``<cache dir>/<kind>-<fingerprint>.json``;
    ``version`` is bumped when the values would be computed otherwise. Thread-safe."""

    def __init__(self, kind: str, version: int, keep: int = 256) -> None:
        self.kind, self.version, self.keep = kind, version, keep
        self._fingerprint: str | None = None
        self._entries: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _path(self, fingerprint: str) -> Path:
        return cache_dir() / f"{self.kind}-{fingerprint}.json"

    def _load(self) -> str:
        """The current fingerprint, its entries read from disk when it changed."""
        fingerprint = environment_fingerprint()
        if fingerprint != self._fingerprint:
            entries: dict[str, Any] = {}
            try:
                loaded = json.loads(self._path(fingerprint).read_text(encoding="utf-8"))
                if loaded.get("cache_version") == self.version:
                    entries = dict(loaded["entries"])
            except (OSError, ValueError, AttributeError, KeyError, TypeError):
                pass
            self._fingerprint, self._entries = fingerprint, entries
        return fingerprint

    def get(self, key: str) -> Any:
        """The value kept for ``key`` in this environment, or None."""
        with self._lock:
            self._load()
            return self._entries.get(key)

    def put(self, key: str, value: Any) -> None:
        """Keep ``value`` for ``key`` (the oldest entries go beyond ``keep``)."""
        with self._lock:
            fingerprint = self._load()
            self._entries.pop(key, None)
            self._entries[key] = value
            while len(self._entries) > self.keep:
                del self._entries[next(iter(self._entries))]
            save_cache(self._path(fingerprint), {"cache_version": self.version,
                                           "entries": self._entries})
