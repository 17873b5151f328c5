"""Names of jobs, queues and aliases, and job refs (``NAME``, ``NAME:vN``, ``NAME:ALIAS``)."""

from __future__ import annotations

import os
import re
from pathlib import PurePath

from launch_jupyter.errors import InvalidNameError

NAME_RULE = (
    "letters, digits, '-', '_' and '.', starting with a letter or digit, at most 63 characters"
)
REF_FORMS = "job refs are NAME, NAME:vN or NAME:ALIAS"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_VERSION_RE = re.compile(r"v(\d+)")
_NOT_ALLOWED_RE = re.compile(r"[^A-Za-z0-9._-]")


def validate_name(value: str, what: str = "job") -> str:
    """Return ``value`` if it is a valid ``what`` name, else raise InvalidNameError."""
    # fullmatch with ASCII classes: '\n', unicode digits and letters never slip through.
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidNameError(f"invalid {what} name {value!r}: names use {NAME_RULE}")
    return value


def validate_alias(value: str) -> str:
    """Return ``value`` if it can be set as an alias (not ``vN``, not ``latest``)."""
    validate_name(value, what="alias")
    if _VERSION_RE.fullmatch(value):
        raise InvalidNameError(
            f"alias {value!r} looks like a version; pick another name such as 'best'"
        )
    if value == "latest":
        raise InvalidNameError("'latest' always follows the newest version and cannot be set")
    return value


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """Split a job ref into ``(name, version, alias)``; ``latest`` gives no version, no alias."""
    if not isinstance(ref, str) or not ref or ref.count(":") > 1:
        raise InvalidNameError(f"invalid job ref {ref!r}: {REF_FORMS}")
    name, sep, tag = ref.partition(":")
    if not name or (sep and not tag):
        raise InvalidNameError(f"invalid job ref {ref!r}: {REF_FORMS}")
    validate_name(name)
    if not sep or tag == "latest":
        return name, None, None
    match = _VERSION_RE.fullmatch(tag)
    if match:
        version = int(match.group(1))
        if version < 1:
            raise InvalidNameError(f"invalid job ref {ref!r}: versions count from v1")
        return name, version, None
    try:
        validate_name(tag, what="alias")
    except InvalidNameError as err:
        raise InvalidNameError(f"{err} ({REF_FORMS})") from None
    return name, None, tag


def default_job_name(path: str | os.PathLike[str]) -> str:
    """Derive a valid job name from a file's stem (``train.ipynb`` -> ``train``)."""
    stem = PurePath(os.fspath(path)).stem
    name = _NOT_ALLOWED_RE.sub("-", stem)
    if not name or not name[0].isascii() or not name[0].isalnum():
        name = "job-" + name
    return validate_name(name[:63])
