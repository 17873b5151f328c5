"""Errors raised by launch-jupyter.

Every message names the bad value and says what to do about it; front doors (CLI, magics,
REST) print the message without a traceback.
"""

from __future__ import annotations

from typing import Any


class LaunchError(Exception):
    """Base class: a problem the user can fix. ``str(err)`` is the whole message."""

    #: HTTP status the REST API answers with for this kind of error.
    http_status = 400


class InvalidNameError(LaunchError):
    """A job, queue or alias name breaks the naming rule."""


class NotFoundError(LaunchError):
    """An unknown job, version, alias, queue or item."""

    http_status = 404


class ConflictError(LaunchError):
    """The request contradicts the current state (cancel a finished item, delete a busy queue)."""

    http_status = 409


class AuthError(LaunchError):
    """A server refused the client's credentials (a wrong or missing token)."""

    http_status = 403


class ParameterError(LaunchError):
    """A parameter override is unknown, malformed, of the wrong type or out of bounds."""


class CaptureError(LaunchError):
    """A notebook or script cannot be turned into a job (missing, truncated, no code...)."""


class SecretError(LaunchError):
    """An environment variable that looks like a secret was named for capture."""


class StoreError(LaunchError):
    """The store cannot be opened or used (bad URL, schema newer than this code...)."""

    http_status = 503


class StoreFullError(StoreError):
    """The store's disk is full (SQLite ``SQLITE_FULL``, PostgreSQL ``disk_full``): writes
    fail until space is freed; reads still work."""

    http_status = 507


def shown(value: Any, width: int = 80) -> str:
    """``repr(value)`` for an error message, cut to ``width`` characters; a value too big to
    print at all (a 4300+ digit int, a list nested 1000 deep) is just named."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= width else text[: width - 1] + "…"


def did_you_mean(name: str, known: Any) -> str:
    """`` did you mean 'x'?`` when one of ``known`` names is close to ``name``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" did you mean {close[0]!r}?" if close else ""
