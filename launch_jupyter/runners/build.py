"""Container images for jobs: the Dockerfile, the build context, the tag, build and push.

Per job version: ``FROM <base image>`` (queue config ``base_image``, default
``python:<captured major.minor>-slim``), a non-root user, the job's lock in its own
layer, then the support files and the code. The tag hashes the job digest, the base image and
the Dockerfile, so an unchanged job is never rebuilt. A ``Dockerfile`` among the job's files,
beside the entrypoint, replaces the generated one (the code is then copied in at run time, as
for a queue's prebuilt ``image``).

Nothing in the container imports launch_jupyter: the runner ships a stand-alone notebook
executor, a wrapper that writes the outputs to the log, and a stand-in ``launch_jupyter``
module whose ``parameters()`` reads ``LAUNCH_PARAMETERS`` (the ``shipped`` package).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LaunchError
from ..jobs.lock import job_lock

#: where things live inside the container
ROOT = "/launch"
JOB_DIR = f"{ROOT}/job"
LIB_DIR = f"{ROOT}/lib"
RUN_DIR = f"{ROOT}/run"
OUTPUT_DIR = f"{ROOT}/output"
EXECUTED_DIR = f"{ROOT}/executed"
ERROR_FILE = f"{ROOT}/error.json"
EXECUTOR = f"{LIB_DIR}/launch_notebook.py"
#: the non-root user of generated images (numeric, so ``USER`` works on any base)
USER_ID = 10001

BUILD_FORMAT = 1  # bump when the generated Dockerfile or support files change shape

#: container path under /launch/lib -> the shipped program in launch_jupyter.runners.shipped
SHIPPED = {"launch_notebook.py": "notebook_executor.py",
           "launch_run.py": "run_wrapper.py",
           "launch_jupyter/__init__.py": "parameters_standin.py"}


@functools.cache
def support_files() -> tuple[tuple[str, bytes], ...]:
    """What every container gets under ``/launch/lib`` (relative paths), read once."""
    shipped = importlib.resources.files("launch_jupyter.runners.shipped")
    return tuple((path, shipped.joinpath(name).read_bytes()) for path, name in SHIPPED.items())


#: what one outputs archive may hold (members, bytes once unpacked)
MAX_ARCHIVE_MEMBERS = 10_000
MAX_ARCHIVE_BYTES = 2 * 1024**3


class UnsafeArchiveError(LaunchError, tarfile.TarError):
    """An outputs archive holds something other than plain files and folders under its root
    (a link, a device, an absolute or ``..`` name), or more than the limits allow."""


def _member_name(member: tarfile.TarInfo) -> str:
    """The member's clean relative name ('' for the root itself); refuses what could escape."""
    name = member.name
    if "\0" in name or name.startswith("/"):
        raise UnsafeArchiveError(f"the outputs archive holds {name!r}: an absolute or "
                                 "NUL-bearing name; nothing was unpacked")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"the outputs archive holds {name!r}, which climbs out with "
                                 "'..'; nothing was unpacked")
    return "/".join(parts)


def _inside(root: Path, name: str) -> Path:
    """``root / name``, refused when something already there (a link) leads elsewhere."""
    path = root / name
    if path.is_symlink() or path.parent.resolve() != path.parent:
        raise UnsafeArchiveError(f"{path} is or passes a link already in the run folder; "
                                 "nothing was unpacked")
    return path


def extract_tar(data: bytes, dest: Path, *, max_members: int = MAX_ARCHIVE_MEMBERS,
                max_bytes: int = MAX_ARCHIVE_BYTES) -> None:
    """Unpack a tar archive (compressed or not) under ``dest``: regular files and folders
    only, with clean relative names, at most ``max_members`` and ``max_bytes``.

    Every member is checked before anything is written, and what was written is removed
    again if writing fails: an archive is unpacked whole or not at all. Never relies on
    ``tarfile``'s extraction filters (Python 3.10 to 3.13 alike). Raises UnsafeArchiveError.
    """
    files: dict[str, tarfile.TarInfo] = {}
    dirs: set[str] = set()
    total = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for count, member in enumerate(tar, 1):
            if count > max_members:
                raise UnsafeArchiveError(f"the outputs archive holds more than {max_members} "
                                         "files and folders; nothing was unpacked")
            name = _member_name(member)
            if member.isdir():
                if name in files:
                    raise UnsafeArchiveError(f"the outputs archive holds {name!r} as a file "
                                             "and a folder; nothing was unpacked")
                if name:
                    dirs.add(name)
                continue
            if not member.isreg():
                raise UnsafeArchiveError(
                    f"the outputs archive holds {member.name!r}, which is not a regular file "
                    f"or folder (a link or a device); nothing was unpacked")
            if not name or name in files or name in dirs:
                raise UnsafeArchiveError(f"the outputs archive holds {member.name!r} twice or "
                                         "as the root; nothing was unpacked")
            total += member.size
            if total > max_bytes:
                raise UnsafeArchiveError(f"the outputs archive unpacks to more than "
                                         f"{max_bytes} bytes; nothing was unpacked")
            files[name] = member
        parents = {"/".join(n.split("/")[:i]) for n in files for i in range(1, n.count("/") + 1)}
        clash = sorted(parents & set(files))
        if clash:
            raise UnsafeArchiveError(f"the outputs archive holds {clash[0]!r} as a file and a "
                                     "folder; nothing was unpacked")
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        made: list[Path] = []
        try:
            for name in sorted(dirs | parents):  # a folder before what it holds
                path = _inside(root, name)
                if not path.is_dir():
                    path.mkdir()  # FileExistsError for anything already there, a link too
                    made.append(path)
            for name, member in files.items():
                path = _inside(root, name)
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                with open(path, "xb") as out:
                    made.append(path)
                    shutil.copyfileobj(source, out)
                os.chmod(path, 0o644)
        except BaseException:
            for path in reversed(made):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise


def collect_outputs(run_dir: Path) -> list[dict]:
    """The outputs of a run whose ``output/`` and ``executed/`` folders are in ``run_dir``:
    the executed notebook first, then the files of LAUNCH_OUTPUT_DIR."""
    found: list[dict] = []
    out_dir = run_dir / "output"
    for base, _dirs, files in os.walk(out_dir):
        for name in sorted(files):
            path = os.path.join(base, name)
            found.append({"name": os.path.relpath(path, out_dir), "path": path,
                          "size": os.path.getsize(path), "kind": "file"})
    executed = run_dir / "executed"
    if executed.is_dir():
        for path in sorted(executed.iterdir()):
            if path.is_file():
                found.insert(0, {"name": path.name, "path": str(path),
                                 "size": path.stat().st_size, "kind": "notebook"})
    return found


def default_base_image(python: str | None) -> str:
    """``python:<major.minor>-slim`` for the job's captured Python version."""
    parts = (python or "3").split(".")
    version = ".".join(parts[:2]) if len(parts) >= 2 else "3"
    return f"python:{version}-slim"


def user_dockerfile(files: Iterable[tuple[str, bytes]], entrypoint: str) -> bytes | None:
    """The job's own ``Dockerfile`` beside its entrypoint, if it carries one."""
    folder = entrypoint.rpartition("/")[0]
    wanted = f"{folder}/Dockerfile" if folder else "Dockerfile"
    for path, content in files:
        if path == wanted:
            return content
    return None


def generated_dockerfile(base_image: str, requirements: list[str]) -> str:
    """The Dockerfile of a job: base, non-root user, requirements layer, support, code."""
    lines = [
        "# generated by launch-jupyter",
        f"FROM {base_image}",
        # useradd when the base has it (Debian, python:*-slim); else write the entries.
        f"RUN set -e; if command -v useradd >/dev/null 2>&1; then "
        f"useradd --uid {USER_ID} --user-group --create-home --shell /bin/sh launch; else "
        f"echo 'launch:x:{USER_ID}:{USER_ID}::/home/launch:/bin/sh' >> /etc/passwd; "
        f"echo 'launch:x:{USER_ID}:' >> /etc/group; mkdir -p /home/launch; "
        f"chown {USER_ID}:{USER_ID} /home/launch; fi",
    ]
    if requirements:
        lines += [
            # Own layer: a code change does not reinstall requirements. PEP 668 bases
            # (Debian's python3) refuse a system-wide install without this variable.
            "COPY requirements.txt /tmp/launch-requirements.txt",
            "RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir "
            "--disable-pip-version-check -r /tmp/launch-requirements.txt",
        ]
    lines += [
        f"COPY --chown={USER_ID}:{USER_ID} lib/ {LIB_DIR}/",
        f"COPY --chown={USER_ID}:{USER_ID} job/ {JOB_DIR}/",
        f"RUN mkdir -p {OUTPUT_DIR} {EXECUTED_DIR} {RUN_DIR} "
        f"&& chown {USER_ID}:{USER_ID} {ROOT} {OUTPUT_DIR} {EXECUTED_DIR} {RUN_DIR}",
        f"ENV PYTHONPATH={LIB_DIR} PYTHONUNBUFFERED=1 HOME=/home/launch",
        f"WORKDIR {JOB_DIR}",
        f"USER {USER_ID}:{USER_ID}",
        "",
    ]
    return "\n".join(lines)


def repository_name(job_name: str) -> str:
    """A Docker repository name for a job: lowercase alphanumerics separated by single
    ``.``, ``_`` or ``-`` (Docker refuses runs such as ``a..b`` or ``a.-b``)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", job_name.lower())
    name = re.sub(r"[._-]{2,}", "-", name).strip(".-_") or "job"
    return f"launch-jupyter/{name}"


@dataclass
class ImagePlan:
    """What to build for one job version, and under which tag."""

    tag: str
    dockerfile: str
    context: list[tuple[str, bytes]]
    base_image: str | None
    #: True when the job brought its own Dockerfile (the code is copied in at run time)
    user_dockerfile: bool = False
    #: True when the image already holds the job's code and support files
    has_code: bool = True
    prebuilt: bool = False
    registry: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def plan_image(job: Any, files: list[tuple[str, bytes]], queue_config: dict) -> ImagePlan:
    """Decide the image of ``job`` (a JobRecord) on a queue with ``queue_config``."""
    config = queue_config or {}
    if config.get("image"):
        return ImagePlan(tag=str(config["image"]), dockerfile="", context=[], base_image=None,
                         has_code=False, prebuilt=True)
    spec = job.spec
    registry = (config.get("registry") or "").rstrip("/") or None
    base = str(config.get("base_image") or default_base_image(spec.get("python")))
    # The job's lock (jobs/lock.py): what its imports need, pinned, not only the direct ones.
    requirements = list(job_lock(spec)["packages"])
    own = user_dockerfile(files, spec["entrypoint"])
    context: list[tuple[str, bytes]] = [(f"job/{p}", c) for p, c in files]
    context += [(f"lib/{p}", c) for p, c in support_files()]
    if own is not None:
        dockerfile = own.decode(errors="replace")
        base = None
    else:
        dockerfile = generated_dockerfile(base, requirements)
        if requirements:
            context.append(("requirements.txt", ("\n".join(requirements) + "\n").encode()))
    context.append(("Dockerfile", dockerfile.encode()))
    digest = hashlib.sha256(json.dumps(
        [BUILD_FORMAT, job.digest, base, dockerfile,
         hashlib.sha256(b"".join(c for _p, c in support_files())).hexdigest()],
    ).encode()).hexdigest()[:20]
    repo = repository_name(job.name)
    tag = f"{registry}/{repo}:{digest}" if registry else f"{repo}:{digest}"
    return ImagePlan(tag=tag, dockerfile=dockerfile, context=context, base_image=base,
                     user_dockerfile=own is not None, has_code=own is None,
                     registry=registry,
                     labels={"launch-jupyter.job": job.ref, "launch-jupyter.digest": job.digest})


def tar_bytes(entries: Iterable[tuple[str, bytes]], *, mode: int = 0o644,
              dirs: Iterable[tuple[str, int]] = ()) -> bytes:
    """An in-memory tar of ``entries`` (path, content) plus directory entries (path, mode)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, dir_mode in dirs:
            info = tarfile.TarInfo(path)
            info.type = tarfile.DIRTYPE
            info.mode = dir_mode
            tar.addfile(info)
        for path, content in entries:
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = mode
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@dataclass
class ImageResult:
    tag: str
    id: str
    #: "cached" (present locally), "pulled" (from the registry) or "built"
    source: str


def ensure_image(docker: Any, plan: ImagePlan, progress: Callable[[str], None]) -> ImageResult:
    """Make ``plan.tag`` available to ``docker`` (a DockerClient): local, pulled, or built.

    ``progress`` receives log lines (build output included). Raises LaunchError.
    """
    from docker.errors import APIError, ImageNotFound

    try:
        image = docker.images.get(plan.tag)
        progress(f"[launch-jupyter: image {plan.tag} is up to date; not rebuilt]")
        return ImageResult(plan.tag, image.id, "cached")
    except ImageNotFound:
        pass
    except APIError as err:
        raise LaunchError(f"docker could not look up image {plan.tag}: {err.explanation}") from None
    if plan.prebuilt or plan.registry:
        try:
            progress(f"[launch-jupyter: pulling {plan.tag}]")
            image = docker.images.pull(plan.tag)
            return ImageResult(plan.tag, image.id, "pulled")
        except (APIError, ImageNotFound) as err:
            if plan.prebuilt:
                raise LaunchError(
                    f"the queue's image {plan.tag!r} is not on this Docker engine and cannot "
                    f"be pulled ({_explain(err)}); pull or build it there, or fix `image:` "
                    "in the queue config") from None
            progress(f"[launch-jupyter: {plan.tag} is not in the registry; building it]")
    image_id = build_image(docker, plan, progress)
    if plan.registry:
        push_image(docker, plan.tag, progress)
    return ImageResult(plan.tag, image_id, "built")


def _explain(err: Exception) -> str:
    return str(getattr(err, "explanation", None) or err)


#: classic-builder lines that say nothing to a job's author
_NOISE = ("Running in ", "Removing intermediate container")


def build_image(docker: Any, plan: ImagePlan, progress: Callable[[str], None]) -> str:
    """Build ``plan`` and return the image id; build output goes to ``progress``."""
    from docker.errors import APIError

    what = "the job's own Dockerfile" if plan.user_dockerfile else f"FROM {plan.base_image}"
    progress(f"[launch-jupyter: building image {plan.tag} ({what})]")
    context = io.BytesIO(tar_bytes(plan.context))
    image_id = None
    error = None
    try:
        for chunk in docker.api.build(fileobj=context, custom_context=True, tag=plan.tag,
                                      rm=True, forcerm=True, decode=True, labels=plan.labels,
                                      pull=False):
            if "stream" in chunk:
                text = chunk["stream"].rstrip("\n")
                if text.strip() and not text.removeprefix(" ---> ").startswith(_NOISE):
                    progress(text)
            elif "error" in chunk:
                error = chunk["error"].strip()
            elif "aux" in chunk and isinstance(chunk["aux"], dict):
                image_id = chunk["aux"].get("ID", image_id)
    except APIError as err:
        error = _explain(err)
    if error:
        progress(f"[launch-jupyter: build failed: {error}]")
        hint = ""
        if "pull access denied" in error or "not found" in error or "no such host" in error:
            hint = ("; set `base_image:` in the queue config to an image this engine has "
                    "(`docker images`)")
        raise LaunchError(f"building the image {plan.tag} failed: {error}{hint}")
    image = docker.images.get(plan.tag)
    progress(f"[launch-jupyter: built {plan.tag} ({image.short_id})]")
    return image_id or image.id


def push_image(docker: Any, tag: str, progress: Callable[[str], None]) -> None:
    """Push ``tag`` to its registry, streaming the status lines."""
    repo, _, version = tag.rpartition(":")
    progress(f"[launch-jupyter: pushing {tag}]")
    for chunk in docker.api.push(repo, tag=version, stream=True, decode=True):
        if "error" in chunk:
            raise LaunchError(f"pushing {tag} failed: {chunk['error']}; is the registry "
                              "reachable, and allowed (insecure-registries) by dockerd?")
        status = chunk.get("status")
        if status and chunk.get("id") is None:
            progress(status)
    progress(f"[launch-jupyter: pushed {tag}]")
