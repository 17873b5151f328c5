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


def git_info(folder: str | os.PathLike[str], max_diff: int = MAX_DIFF_BYTES
             ) -> dict[str, Any] | None:
    """``{"remote", "commit", "branch", "dirty", "diff", "diff_truncated", "untracked"}`` of
    the git work tree holding ``folder``, or None outside one (or without git). The diff
    (against HEAD, staged or not) and the untracked files are those under ``folder``."""
    where = Path(folder).resolve()
    if not where.is_dir() or not _in_work_tree(where):
        return None
    # Four gits at once (a capture waits for the slowest, not for their sum).
    heads = _start(where, "rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD")
    remotes = _start(where, "config", "--get-regexp", r"^remote\..*\.url$")
    status = _start(where, "status", "--porcelain", "-z", "--untracked-files=all", "--",
                    ".", *_NOT_HIDDEN)
    changes = _start(where, "diff", "HEAD", "--no-color", "--no-ext-diff", "--no-textconv",
                     "--", ".", *_NOT_HIDDEN)
    code, out = _result(heads)
    lines = out.decode("utf-8", errors="replace").splitlines()
    listed, diff_result = _result(remotes), _result(changes)
    status_code, status_out = _result(status)
    if not lines or not lines[0].startswith("/"):
        return None  # not a work tree after all (a bare repository, git missing)
    if code == 0 and len(lines) >= 3:
        commit, branch = lines[1], (lines[2] if lines[2] != "HEAD" else None)
    else:  # no commit yet: the branch is still named
        commit, branch = None, _text(_result(_start(where, "symbolic-ref", "-q", "--short",
                                                    "HEAD")))
    urls = dict(line.split(" ", 1) for line in (_text(listed) or "").splitlines()
                if " " in line)
    remote = urls.get("remote.origin.url") or next(iter(urls.values()), None)
    diff = diff_result[1] if commit is not None and diff_result[0] == 0 else b""
    untracked = [entry[3:] for entry in status_out.decode("utf-8", errors="replace")
                 .split("\0") if entry.startswith("?? ")] if status_code == 0 else []
    cut = diff[:max_diff]
    return {
        "remote": safe_remote(remote) if remote else None,
        "commit": commit,
        "branch": branch,
        "dirty": bool(diff or untracked),
        "diff": cut.decode("utf-8", errors="replace"),
        "diff_truncated": len(diff) > max_diff,
        "untracked": untracked[:MAX_UNTRACKED],
    }
