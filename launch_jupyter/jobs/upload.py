"""A captured job as it travels over REST: packed by the remote client, checked and unpacked
by the server, which stores it as is (the server never captures a client's files).

The body is ``{"spec": CapturedJob.spec(), "files": [{"path", "sha256", "content"}]}`` with
each file's content in base64. The server rebuilds the ``CapturedJob``, so the digest it
stores is the one it computed; an upload whose digest or file hashes disagree is refused.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from launch_jupyter.errors import CaptureError
from launch_jupyter.jobs.capture import MODES, CapturedJob, JobFile
from launch_jupyter.jobs.names import validate_name

#: Most bytes of file content one upload may carry (all files together), before base64.
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
#: Most files one upload may carry.
MAX_UPLOAD_FILES = 10_000

#: CapturedJob fields that are not taken from an uploaded spec: the files come decoded,
#: the rest are notes of the capture itself.
_NOT_FROM_SPEC = frozenset({"files", "warnings", "default_name"})

_STRING_LIST = {"type": "array", "items": {"type": "string"}}
_OBJECT_OR_NULL = {"type": ["object", "null"]}
#: The upload body, checked with jsonschema before anything is decoded.
UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec", "files"],
    "additionalProperties": False,
    "properties": {
        "alias": {"type": ["string", "null"]},
        "spec": {
            "type": "object",
            "required": ["name", "mode", "entrypoint", "python", "files", "digest"],
            "properties": {
                "name": {"type": "string"},
                "mode": {"enum": list(MODES)},
                "entrypoint": {"type": "string"},
                "kernel": {"type": ["string", "null"]},
                "python": {"type": "string"},
                "parameters": {"type": "object"},
                "schema": {"type": "object"},
                "requirements": _STRING_LIST,
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "files": {"type": "object", "additionalProperties": {"type": "string"}},
                "source_path": {"type": "string"},
                "unresolved": _STRING_LIST,
                "unresolved_conditional": _STRING_LIST,
                "lock": _OBJECT_OR_NULL,
                "git": _OBJECT_OR_NULL,
                "digest": {"type": "string"},
            },
        },
        "files": {
            "type": "array",
            "maxItems": MAX_UPLOAD_FILES,
            "items": {
                "type": "object",
                "required": ["path", "sha256", "content"],
                "additionalProperties": False,
                "properties": {"path": {"type": "string", "minLength": 1},
                               "sha256": {"type": "string"},
                               "content": {"type": "string"}},
            },
        },
    },
}


def pack(captured: CapturedJob, *, alias: str | None = None) -> dict[str, Any]:
    """The upload body of ``captured`` (what ``unpack`` takes back)."""
    return {"spec": captured.spec(), "alias": alias,
            "files": [{"path": f.path, "sha256": f.sha256,
                       "content": base64.b64encode(f.content).decode("ascii")}
                      for f in captured.files]}


def unpack(body: Mapping[str, Any], *, name: str | None = None,
           max_bytes: int = MAX_UPLOAD_BYTES) -> CapturedJob:
    """The ``CapturedJob`` an upload body describes, after checking its shape, its size, each
    file's sha256 and the digest (CaptureError naming what is wrong).

    ``name``: the job name the route names; the spec must agree with it.
    """
    import jsonschema

    try:
        jsonschema.validate(body, UPLOAD_SCHEMA)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "the body"
        raise CaptureError(f"invalid job upload at {where}: {err.message[:300]}; send what "
                           "launch_jupyter.jobs.upload.pack() makes") from None
    spec = body["spec"]
    if name is not None and spec["name"] != name:
        raise CaptureError(f"the upload names job {spec['name']!r} but was sent to job "
                           f"{name!r}; upload it to jobs/{spec['name']}/versions")
    validate_name(spec["name"], "job")
    files: list[JobFile] = []
    total = 0
    for entry in body["files"]:
        try:
            content = base64.b64decode(entry["content"], validate=True)
        except (binascii.Error, ValueError):
            raise CaptureError(f"file {entry['path']!r} of the upload is not valid base64"
                               ) from None
        total += len(content)
        if total > max_bytes:
            raise CaptureError(f"the upload's files exceed {max_bytes // (1024 * 1024)} MiB; "
                               "ship large data another way (a shared volume, object storage) "
                               "and read it from the job")
        parts = entry["path"].split("/")
        if entry["path"].startswith("/") or "\\" in entry["path"] or any(
                part in ("", ".", "..") for part in parts):
            raise CaptureError(f"file path {entry['path']!r} of the upload is not a relative "
                               "posix path inside the job (no '..', no leading '/')")
        job_file = JobFile(entry["path"], content)
        if job_file.sha256 != entry["sha256"]:
            raise CaptureError(f"file {entry['path']!r} does not match its sha256 (damaged in "
                               "transit?); upload the job again")
        files.append(job_file)
    listed = {f.path: f.sha256 for f in files}
    if len(listed) != len(files) or listed != spec["files"]:
        raise CaptureError("the upload's files differ from the files its spec lists; upload "
                           "what one capture made")
    if spec["entrypoint"] not in listed:
        raise CaptureError(f"the upload's entrypoint {spec['entrypoint']!r} is not one of its "
                           "files")
    # Every field the spec carries, so a field capture adds later travels too.
    given = {f.name: spec[f.name] for f in fields(CapturedJob)
             if f.name in spec and f.name not in _NOT_FROM_SPEC}
    try:
        captured = CapturedJob(files=files, **given)
        digest = captured.digest
    except (TypeError, ValueError, AttributeError) as err:
        raise CaptureError(f"invalid job upload: its spec does not describe a job ({err}); "
                           "send what launch_jupyter.jobs.upload.pack() makes") from None
    if digest != spec["digest"]:
        raise CaptureError(f"the upload's digest {spec['digest'][:16]}… is not the digest of "
                           f"its content ({digest[:16]}…); upload what one capture "
                           "made, unchanged")
    return captured


__all__ = ["MAX_UPLOAD_BYTES", "UPLOAD_SCHEMA", "pack", "unpack"]
