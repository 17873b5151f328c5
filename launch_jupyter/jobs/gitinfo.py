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


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(
            ["git", *_SAFE, *args], cwd=folder, capture_output=True, timeout=TIMEOUT,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0",
                 "LC_ALL": "C"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def _text(result: subprocess.CompletedProcess[bytes] | None) -> str | None:
    if result is None or result.returncode != 0:
        return None
    return result.stdout.decode("utf-8", errors="replace").strip() or None


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
    top = _text(_git(where, "rev-parse", "--show-toplevel"))
    if top is None:
        return None
    commit = _text(_git(where, "rev-parse", "--verify", "-q", "HEAD"))
    branch = _text(_git(where, "symbolic-ref", "-q", "--short", "HEAD"))
    remote = _text(_git(where, "config", "--get", "remote.origin.url"))
    if remote is None:
        remotes = _text(_git(where, "config", "--get-regexp", r"^remote\..*\.url$"))
        remote = remotes.splitlines()[0].split(" ", 1)[-1] if remotes else None
    diff = b""
    if commit is not None:
        result = _git(where, "diff", "HEAD", "--no-color", "--no-ext-diff", "--no-textconv",
                      "--", ".", *_NOT_HIDDEN)
        diff = result.stdout if result is not None and result.returncode == 0 else b""
    untracked = (_text(_git(where, "ls-files", "--others", "--exclude-standard", "--",
                            ".", *_NOT_HIDDEN)) or "").splitlines()
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
