"""LaunchManager: what the REST handlers call, over the same ``Launch`` client as the CLI.

Every method is blocking (store calls, notebook capture); the handlers run them in a thread.
Methods raise ``LaunchError`` subclasses, whose ``http_status`` becomes the HTTP answer.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from ..api import Launch
from ..config import LaunchConfig
from ..errors import LaunchError, NotFoundError
from ..store import TERMINAL, Store

#: Most log bytes one ``logs`` answer carries; the client asks again from ``next_offset``.
LOG_PAGE_BYTES = 1024 * 1024

#: Items one list answer carries when the request names no ``limit``, and the most it may ask.
DEFAULT_ITEMS_LIMIT = 100
MAX_ITEMS_LIMIT = 1000


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


class LaunchManager:
    """The server's view of one launch store, with paths resolved under the server's root.

    Parameters: ``root_dir`` (the Jupyter server's root dir), ``config`` (a LaunchConfig),
    ``allow_hidden`` (whether hidden files may be captured, as the contents manager says).
    """

    def __init__(self, root_dir: str | os.PathLike[str], config: LaunchConfig, *,
                 allow_hidden: bool = False) -> None:
        self.root_dir = Path(root_dir).resolve()
        self.allow_hidden = allow_hidden
        self.client = Launch(config=config)
        self._open_lock = threading.Lock()

    @property
    def launch(self) -> Launch:
        """The client, its store opened once even when two request threads ask at once."""
        with self._open_lock:
            self.client.store  # noqa: B018 - the property opens (and migrates) the store
        return self.client

    @property
    def store(self) -> Store:
        """The client's store (see ``launch``)."""
        return self.launch.store

    def close(self) -> None:
        """Release the store's connections."""
        with self._open_lock:
            self.client.close()

    # -- queues -------------------------------------------------------------------------

    def queues(self) -> list[dict]:
        return self.launch.queues()

    def queue(self, name: str) -> dict:
        return self.launch.queue(name)

    def create_queue(self, name: str, *, runner: str = "local", max_attempts: int = 3,
                     timeout: float | None = None, config: dict | None = None) -> dict:
        """Create a queue; ``config`` is checked as ``queue create --config FILE`` checks it."""
        from ..runners.templates import validate_queue_config

        config = validate_queue_config(config, where="queue config")
        return self.launch.create_queue(name, runner=runner, max_attempts=max_attempts,
                                        timeout=timeout, config=config)

    # -- jobs ---------------------------------------------------------------------------

    def jobs(self) -> list[dict]:
        """The newest version of every job."""
        return [job.to_json() for job in self.launch.jobs()]

    def job_versions(self, name: str) -> list[dict]:
        """Every version of job ``name``, oldest first (unknown name: NotFoundError)."""
        versions = self.store.list_jobs(name)
        if not versions:
            self.store.get_job(name)  # raises NotFoundError naming the known jobs
        return [job.to_json() for job in versions]

    def resolve_path(self, path: str) -> Path:
        """``path`` (relative to the root dir, '/' separated) as an existing file under it."""
        posix = path.replace("\\", "/")
        if not posix.strip() or "\0" in posix:
            raise LaunchError(f"path {path!r} is empty or invalid; give a notebook path "
                              "relative to the server's root dir, e.g. 'work/train.ipynb'")
        if os.path.isabs(path) or posix.startswith(("/", "~")):
            raise LaunchError(f"path {path!r} is absolute; give it relative to the server's "
                              "root dir, e.g. 'work/train.ipynb'")
        try:
            full = (self.root_dir / posix).resolve()
            found, is_file = full.exists(), full.is_file()
        except (OSError, ValueError) as err:  # a name too long, an unpaired surrogate...
            reason = getattr(err, "strerror", None) or "not valid Unicode"
            raise LaunchError(f"path {path[:200]!r} is invalid ({reason}); give a notebook path "
                              "relative to the server's root dir, e.g. 'work/train.ipynb'"
                              ) from None
        if not full.is_relative_to(self.root_dir):
            raise LaunchError(f"path {path!r} points outside the server's root dir; only "
                              "notebooks under the root dir can be captured")
        rel = full.relative_to(self.root_dir)
        if not self.allow_hidden and any(part.startswith(".") for part in rel.parts):
            raise LaunchError(f"path {path!r} is hidden; the server does not serve hidden "
                              "files (ContentsManager.allow_hidden is False)")
        if not found:
            raise NotFoundError(f"no file {path!r} under the server's root dir; check the "
                                "path in the file browser")
        if not is_file:
            raise LaunchError(f"path {path!r} is a directory; give a .ipynb notebook or a "
                              ".py script")
        return full

    def create_job(self, path: str, *, name: str | None = None, alias: str | None = None,
                   include: Sequence[str] = ()) -> dict:
        """Capture the notebook or script at ``path`` (under the root dir) as a job version."""
        source = self.resolve_path(path)
        return self.launch.create_job(source, name=name, alias=alias, include=include).to_json()

    # -- items --------------------------------------------------------------------------

    def items(self, *, state: Sequence[str] | None = None, queue: str | None = None,
              limit: int | None = None, offset: int = 0) -> dict:
        """``{items, total}``: items newest first, and how many match in all."""
        if queue is not None:
            self.store.get_queue(queue)  # unknown queue: 404, not an empty list
        if limit is None:
            limit = DEFAULT_ITEMS_LIMIT
        if not 0 <= limit <= MAX_ITEMS_LIMIT:
            raise LaunchError(f"limit must be between 0 and {MAX_ITEMS_LIMIT}, got {limit}")
        if offset < 0:
            raise LaunchError(f"offset must be 0 or more, got {offset}")
        items, total = self.store.list_items(queue=queue, state=state or None, limit=limit,
                                             offset=offset)
        return {"items": items, "total": total}

    def submit(self, job: str, *, queue: str | None = None, parameters: dict | None = None,
               priority: str | int | None = None,
               template_values: dict | None = None) -> dict:
        """Put job ``job`` (``name``, ``name:vN``, ``name:alias``) on a queue; the new item."""
        item = self.launch.submit(job, queue=queue, parameters=parameters or {},
                                  priority=priority, template_values=template_values or {})
        return item.info(refresh=False)

    def item(self, item_id: str) -> dict:
        """The item as ``jupyter launch show --json`` prints it."""
        return self.launch.item(item_id).info()

    def cancel(self, item_id: str) -> dict:
        return self.launch.cancel(item_id)

    def requeue(self, item_id: str) -> dict:
        return self.launch.requeue(item_id).info(refresh=False)

    def logs(self, item_id: str, offset: int = 0) -> dict:
        """``{text, next_offset, done}``: log text from byte ``offset`` of the UTF-8 log.

        ``done`` is true once the item is finished and nothing is left to read.
        """
        if offset < 0:
            raise LaunchError(f"offset must be 0 or more, got {offset}")
        store = self.store
        item = store.get_item(item_id)  # read first: a finished item's log no longer grows
        finished = item["state"] in TERMINAL
        data, next_offset = store.read_log(item_id, offset, limit=LOG_PAGE_BYTES)
        if not finished or next_offset < item["log_bytes"]:
            # A character split across chunks waits for its other bytes in the next answer.
            keep = complete_utf8_prefix(data)
            next_offset -= len(data) - keep
            data = data[:keep]
        return {"text": data.decode("utf-8", errors="replace"), "next_offset": next_offset,
                "done": finished and next_offset >= item["log_bytes"]}

    def notebook(self, item_id: str) -> dict:
        """``{path}`` of the item's executed notebook, relative to the server's root dir."""
        item = self.store.get_item(item_id)
        paths = [o["path"] for o in item.get("outputs", []) if o.get("kind") == "notebook"]
        if not paths:
            raise NotFoundError(f"item {item_id} has no executed notebook ({item['state']}); "
                                "only notebook-mode items that have started keep one")
        full = Path(paths[0]).resolve()
        if full.is_relative_to(self.root_dir):
            return {"path": full.relative_to(self.root_dir).as_posix()}
        # Runs usually live outside the root dir (the Jupyter data dir): open a copy from
        # <root>/launch-runs/<item>/ so Lab can show it; refreshed while the item may change.
        if not full.is_file():
            raise NotFoundError(f"the executed notebook of item {item_id} ({full}) is gone")
        copy = self.root_dir / "launch-runs" / item_id / full.name
        try:
            if not copy.exists() or copy.stat().st_mtime < full.stat().st_mtime:
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(full, copy)
        except OSError as err:
            raise NotFoundError(
                f"the executed notebook of item {item_id} is at {full}, outside the server's "
                f"root dir, and copying it under the root failed ({err.strerror}); set "
                "LaunchConfig.data_dir to a folder under the root dir"
            ) from None
        return {"path": copy.relative_to(self.root_dir).as_posix()}

    # -- agents -------------------------------------------------------------------------

    def agents(self) -> list[dict]:
        """Running agents with their heartbeats."""
        return self.launch.agents()
