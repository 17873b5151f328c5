"""Where a job's source came from in git: remote URL, commit, branch, uncommitted changes.

Recorded beside the job (``spec["git"]``), never in its digest: the digest covers what runs,
and the same code committed twice is the same job. ``git`` runs as a subprocess with
external diff drivers, textconv filters and fsmonitor hooks turned off, so capturing a
notebook from someone else's clone runs none of its configured programs. Hidden files (keys,
``.env``) are left out of the diff like they are left out of a job, and credentials in a
remote URL are dropped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: the diff of uncommitted changes is cut at this many bytes (``diff_truncated`` says so)
MAX_DIFF_BYTES = 64 * 1024
MAX_UNTRACKED = 100
TIMEOUT = 10.0
_SAFE = ("-c", "core.fsmonitor=false", "-c", "core.quotepath=false")
_NOT_HIDDEN = (":(exclude,glob)**/.*", ":(exclude,glob)**/.*/**")


def _start(folder: Path, *args: str) -> subprocess.Popen[bytes] | None:
    try:
        return subprocess.Popen(
            ["git", *_SAFE, *args], cwd=folder, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0",
                 "LC_ALL": "C"})
    except OSError:
        return None


def _result(proc: subprocess.Popen[bytes] | None) -> tuple[int, bytes]:
    """(exit code, stdout) of a started git; (-1, b"") when it could not run in time."""
    if proc is None:
        return -1, b""
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return -1, b""
    return proc.returncode, out


def _text(result: tuple[int, bytes]) -> str | None:
    code, out = result
    return out.decode("utf-8", errors="replace").strip() or None if code == 0 else None


def _in_work_tree(folder: Path) -> bool:
    """A cheap look for ``.git`` above ``folder``, so captures outside git start no process."""
    for parent in (folder, *folder.parents):
        if (parent / ".git").exists():
            return True
    return bool(os.environ.get("GIT_DIR"))


def safe_remote(url: str) -> str:
    """``url`` without a user name or password (``https://TOKEN@host/x`` -> ``https://host/x``)."""
    parts = urlsplit(url)
    if parts.scheme and parts.netloc and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return url


class GitInfo:
    """The git facts of ``folder``, being found: the gits start at once and run while the
    caller does other work (a capture reads its cells meanwhile); :meth:`result` waits for
    them, :meth:`close` stops those nobody waited for (the capture failed)."""

    def __init__(self, folder: str | os.PathLike[str], max_diff: int = MAX_DIFF_BYTES) -> None:
        self._where = Path(folder).resolve()
        self._max_diff = max_diff
        self._gits: list[subprocess.Popen[bytes] | None] = []
        if self._where.is_dir() and _in_work_tree(self._where):
            # Four gits at once (a capture waits for the slowest, not for their sum).
            self._gits = [
                _start(self._where, "rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref",
                       "HEAD"),
                _start(self._where, "config", "--get-regexp", r"^remote\..*\.url$"),
                _start(self._where, "status", "--porcelain", "-z", "--untracked-files=all",
                       "--", ".", *_NOT_HIDDEN),
                _start(self._where, "diff", "HEAD", "--no-color", "--no-ext-diff",
                       "--no-textconv", "--", ".", *_NOT_HIDDEN),
            ]

    def result(self) -> dict[str, Any] | None:
        """``{"remote", "commit", "branch", "dirty", "diff", "diff_truncated",
        "untracked"}``, or None outside a work tree (or without git)."""
        if not self._gits:
            return None
        heads, remotes, status, changes = self._gits
        self._gits = []
        code, out = _result(heads)
        lines = out.decode("utf-8", errors="replace").splitlines()
        listed, diff_result = _result(remotes), _result(changes)
        status_code, status_out = _result(status)
        if not lines or not lines[0].startswith("/"):
            return None  # not a work tree after all (a bare repository, git missing)
        if code == 0 and len(lines) >= 3:
            commit, branch = lines[1], (lines[2] if lines[2] != "HEAD" else None)
        else:  # no commit yet: the branch is still named
            commit, branch = None, _text(_result(_start(self._where, "symbolic-ref", "-q",
                                                        "--short", "HEAD")))
        urls = dict(line.split(" ", 1) for line in (_text(listed) or "").splitlines()
                    if " " in line)
        remote = urls.get("remote.origin.url") or next(iter(urls.values()), None)
        diff = diff_result[1] if commit is not None and diff_result[0] == 0 else b""
        untracked = [entry[3:] for entry in status_out.decode("utf-8", errors="replace")
                     .split("\0") if entry.startswith("?? ")] if status_code == 0 else []
        cut = diff[:self._max_diff]
        return {
            "remote": safe_remote(remote) if remote else None,
            "commit": commit,
            "branch": branch,
            "dirty": bool(diff or untracked),
            "diff": cut.decode("utf-8", errors="replace"),
            "diff_truncated": len(diff) > self._max_diff,
            "untracked": untracked[:MAX_UNTRACKED],
        }

    def close(self) -> None:
        """Stop and reap the gits :meth:`result` did not wait for."""
        for proc in self._gits:
            if proc is not None:
                proc.kill()
                proc.communicate()
        self._gits = []


def git_info(folder: str | os.PathLike[str], max_diff: int = MAX_DIFF_BYTES
             ) -> dict[str, Any] | None:
    """``{"remote", "commit", "branch", "dirty", "diff", "diff_truncated", "untracked"}`` of
    the git work tree holding ``folder``, or None outside one (or without git). The diff
    (against HEAD, staged or not) and the untracked files are those under ``folder``."""
    return GitInfo(folder, max_diff).result()
