"""Container images for jobs: the Dockerfile, the build context, the tag, build and push.

Per job version: ``FROM <base image>`` (queue config ``base_image``, default
``python:<captured major.minor>-slim``), a non-root user, the pinned requirements in their own
layer, then the support files and the code. The tag hashes the job digest, the base image and
the Dockerfile, so an unchanged job is never rebuilt. A ``Dockerfile`` among the job's files,
beside the entrypoint, replaces the generated one (the code is then copied in at run time, as
for a queue's prebuilt ``image``).

Nothing in the container imports launch_jupyter: the runner ships a stand-alone notebook
executor and a stand-in ``launch_jupyter`` module whose ``parameters()`` reads
``LAUNCH_PARAMETERS`` (both generated from the text below).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LaunchError

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

EXECUTOR_SOURCE = r'''"""Run a notebook with nbclient (shipped by launch-jupyter).

python3 launch_notebook.py --input NB --output EXECUTED --error-file ERR [--kernel K]
The parameters are already injected in NB. Stream output is echoed as it arrives; the
executed notebook is written even on failure; a failing cell is described in ERR.
"""
import argparse
import json
import os
import re
import signal
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def echo(msg):
    kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
    content = msg.get("content", {})
    if kind == "stream":
        out = sys.stderr if content.get("name") == "stderr" else sys.stdout
        out.write(content.get("text", ""))
        out.flush()
    elif kind == "error":
        sys.stderr.write(ANSI.sub("", "\n".join(content.get("traceback", []))) + "\n")
        sys.stderr.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--error-file", required=True)
    args = parser.parse_args()

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(args.input, as_version=4)
    injected = next((i for i, c in enumerate(nb.cells)
                     if "injected-parameters" in c.get("metadata", {}).get("tags", [])), None)

    class Client(NotebookClient):
        current_cell = -1

        async def async_execute_cell(self, cell, cell_index, *a, **kw):
            self.current_cell = cell_index
            return await super().async_execute_cell(cell, cell_index, *a, **kw)

        def output(self, outs, msg, display_id, cell_index):
            echo(msg)
            return super().output(outs, msg, display_id, cell_index)

    client = Client(nb, kernel_name=args.kernel, timeout=None, allow_errors=False,
                    extra_arguments=["--IPKernelApp.log_level=ERROR"],
                    resources={"metadata": {"path": os.getcwd()}})

    def write_output():
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        nbformat.write(nb, args.output)

    def on_term(signum, frame):
        try:
            os.killpg(client.km.provisioner.process.pid, signal.SIGKILL)
        except Exception:
            pass
        try:
            write_output()
        finally:
            os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)

    def original(index):
        return index - 1 if injected is not None and index > injected else index

    def fail(error):
        with open(args.error_file, "w") as fh:
            json.dump(error, fh)
        write_output()
        return 1

    try:
        client.execute()
    except CellExecutionError as err:
        index = original(client.current_cell)
        return fail({"message": "cell %d raised %s: %s" % (index, err.ename, err.evalue),
                     "stage": "execute", "cell": index, "ename": err.ename,
                     "evalue": err.evalue})
    except Exception as err:
        message = "%s: %s" % (type(err).__name__, err)
        print("launch-jupyter: notebook execution failed: " + message, file=sys.stderr)
        return fail({"message": message, "stage": "kernel",
                     "cell": original(client.current_cell) if client.current_cell >= 0
                     else None})
    write_output()
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

PARAMETERS_SOURCE = r'''"""Stand-in for launch_jupyter inside a container: only ``parameters()``."""
import json
import os


class Parameters(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError("no parameter %r" % name) from None

    def __setattr__(self, name, value):
        self[name] = value


def parameters(**defaults):
    """The defaults, overridden by the job's LAUNCH_PARAMETERS (JSON)."""
    params = Parameters(defaults)
    raw = os.environ.get("LAUNCH_PARAMETERS")
    if raw:
        given = json.loads(raw)
        if not isinstance(given, dict):
            raise ValueError("LAUNCH_PARAMETERS must be a JSON object")
        params.update(given)
    return params
'''


RUN_WRAPPER_SOURCE = r'''"""Run a job's command, then write its output folders to stdout
between two marker lines (shipped by launch-jupyter, for runners that cannot copy files out
of a finished container: the kubernetes runner reads them back from the pod's log).

python3 launch_run.py --marker M [--dir DIR]... [--limit BYTES] -- COMMAND...
The exit status is the command's (128 + N when signal N ended it).
"""
import argparse
import base64
import io
import os
import signal
import subprocess
import sys
import tarfile


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker", required=True)
    parser.add_argument("--dir", action="append", default=[])
    parser.add_argument("--limit", type=int, default=64 * 1024 * 1024)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    child = subprocess.Popen(command)

    def forward(signum, frame):
        try:
            child.send_signal(signum)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for folder in args.dir:
            if os.path.isdir(folder):
                tar.add(folder, arcname=os.path.basename(folder.rstrip("/")))
    data = buf.getvalue()
    out = sys.stdout
    out.flush()
    if len(data) > args.limit:
        out.write("\n%s SKIPPED %d\n" % (args.marker, len(data)))
    else:
        text = base64.b64encode(data).decode()
        out.write("\n%s BEGIN %d\n" % (args.marker, len(data)))
        for start in range(0, len(text), 76):
            out.write(text[start:start + 76] + "\n")
        out.write("%s END\n" % args.marker)
    out.flush()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
'''


def support_files() -> list[tuple[str, bytes]]:
    """What every container gets under ``/launch/lib`` (relative paths)."""
    return [("launch_notebook.py", EXECUTOR_SOURCE.encode()),
            ("launch_run.py", RUN_WRAPPER_SOURCE.encode()),
            ("launch_jupyter/__init__.py", PARAMETERS_SOURCE.encode())]


def extract_tar(data: bytes, dest: Path) -> None:
    """Extract a tar archive (compressed or not) under ``dest``; no path may escape it."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")


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
    requirements = list(spec.get("requirements") or [])
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
