"""Row 2: a job cannot write files outside its run folder on the agent's host.

Outputs archives (docker's container copies, the Kubernetes log block) are unpacked by the
project's own member check, built here from real ``tarfile`` archives: plain files and
folders only, clean relative names, limits on count and size; an archive is unpacked whole
or not at all. And a Kubernetes job cannot forge the outputs block: its marker is keyed by a
per-attempt secret the job never sees.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.runners.build import UnsafeArchiveError, extract_tar
from launch_jupyter.runners.kubernetes import KEY_VAR

from ..conftest import run_to_end, write_script
from ..kubernetes.cluster import ClusterServer, Controller, JobHandle
from ..kubernetes.conftest import make_queue
from ..kubernetes.test_outputs import run_wrapped, wrapper
from .conftest import jobs_of


def archive(*members: tarfile.TarInfo | tuple[str, bytes], mode: str = "w") -> bytes:
    """A tar archive of ``members``: (name, content) files, or TarInfo headers as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def header(name: str, kind: bytes, **fields: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


#: each attack puts a harmless file first: nothing of it may stay (no partial unpacking)
ATTACKS: dict[str, Callable[[Path], list]] = {
    "dotdot": lambda out: [("../" * 8 + str(out / "dotdot.txt").lstrip("/"), b"x")],
    "nested-dotdot": lambda out: [("output/a/../../../escape.txt", b"x")],
    "absolute": lambda out: [(str(out / "absolute.txt"), b"x")],
    "symlink": lambda out: [header("output/link", tarfile.SYMTYPE, linkname=str(out)),
                            ("output/link/through.txt", b"x")],
    "hardlink": lambda out: [header("output/hard", tarfile.LNKTYPE,
                                    linkname=str(out / "target"))],
    "char-device": lambda out: [header("output/null", tarfile.CHRTYPE, devmajor=1,
                                       devminor=3)],
    "block-device": lambda out: [header("output/sda", tarfile.BLKTYPE, devmajor=8)],
    "fifo": lambda out: [header("output/fifo", tarfile.FIFOTYPE)],
    "duplicate": lambda out: [("output/ok.txt", b"again")],
    "file-then-folder": lambda out: [("output/x", b"file"), ("output/x/y", b"under it")],
}


@pytest.mark.parametrize("compression", ["w", "w:gz"])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_hostile_archive_is_refused_whole_and_writes_nothing(
        tmp_path: Path, attack: str, compression: str) -> None:
    outside, dest = tmp_path / "outside", tmp_path / "run" / "deep" / "er"
    outside.mkdir()
    (outside / "target").write_text("the agent's file")
    data = archive(("output/ok.txt", b"fine"), *ATTACKS[attack](outside), mode=compression)
    with pytest.raises(UnsafeArchiveError, match="nothing was unpacked"):
        extract_tar(data, dest)
    assert files_under(dest) == []
    assert files_under(outside) == ["target"]
    assert (outside / "target").read_text() == "the agent's file"


def test_limits_on_member_count_and_unpacked_size(tmp_path: Path) -> None:
    many = archive(*[(f"output/{i}.txt", b"x") for i in range(51)])
    with pytest.raises(UnsafeArchiveError, match="more than 50 files"):
        extract_tar(many, tmp_path / "a", max_members=50)
    big = archive(("output/small", b"s"), ("output/big", b"\0" * 300_000), mode="w:gz")
    assert len(big) < 2000  # a compression bomb in miniature
    with pytest.raises(UnsafeArchiveError, match="more than 100000 bytes"):
        extract_tar(big, tmp_path / "b", max_bytes=100_000)
    assert files_under(tmp_path / "a") == [] and files_under(tmp_path / "b") == []
    extract_tar(many, tmp_path / "c")  # within the default limits
    assert len(files_under(tmp_path / "c" / "output")) == 51


def test_a_link_already_in_the_run_folder_is_not_followed(tmp_path: Path) -> None:
    outside, dest = tmp_path / "outside", tmp_path / "run"
    outside.mkdir()
    dest.mkdir()
    (dest / "output").symlink_to(outside)
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_tar(archive(("output/x.txt", b"x")), dest)
    assert files_under(outside) == []


def test_a_truncated_archive_leaves_nothing_behind(tmp_path: Path) -> None:
    data = archive(("output/a.txt", b"a" * 5000), ("output/b/c.txt", b"c" * 50_000))
    with pytest.raises(tarfile.TarError):
        extract_tar(data[:9000], tmp_path / "run")  # the second file's data is cut off
    assert files_under(tmp_path / "run") == []


def test_plain_files_and_folders_come_back_with_safe_modes(tmp_path: Path) -> None:
    setuid = tarfile.TarInfo("output/tool")
    setuid.size, setuid.mode = 2, 0o4755
    data = archive(header("./", tarfile.DIRTYPE), header("output", tarfile.DIRTYPE),
                   ("output/./sub//m.json", b"{}"), header("executed/", tarfile.DIRTYPE))
    buf = io.BytesIO(data[:-1024])  # append the setuid file to the same archive
    with tarfile.open(fileobj=buf, mode="a") as tar:
        tar.addfile(setuid, io.BytesIO(b"#!"))
    extract_tar(buf.getvalue(), tmp_path / "run")
    assert files_under(tmp_path / "run") == ["executed", "output", "output/sub",
                                             "output/sub/m.json", "output/tool"]
    assert (tmp_path / "run" / "output" / "tool").stat().st_mode & 0o7777 == 0o644


# -- the Kubernetes outputs block -----------------------------------------------------------

def old_marker(item_id: str, attempt: int) -> str:
    """The marker before keys: everything in it was in the job's environment."""
    digest = hashlib.sha256(f"{item_id}/{attempt}".encode()).hexdigest()[:16]
    return f"@@launch-jupyter-outputs-{digest}@@"


def forging_job(marker: str, escape: Path) -> str:
    """Code that prints an outputs block of its own, then writes one honest output."""
    forged = base64.b64encode(archive(
        ("../" * 12 + str(escape).lstrip("/"), b"pwned"), ("output/forged.txt", b"forged"),
        mode="w:gz")).decode()
    return ("import os, sys\n"
            f"sys.stdout.write('\\n{marker} BEGIN 1\\n{forged}\\n{marker} END\\n')\n"
            "sys.stdout.flush()\n"
            "open(os.path.join(os.environ['OUT'], 'metrics.json'), 'w').write('1')\n")


def test_a_job_cannot_forge_the_kubernetes_outputs_block(
        client: Launch, tmp_path: Path, cluster: ClusterServer, controller: Controller) -> None:
    queue = make_queue(client)
    ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
    escape = tmp_path / "escaped.txt"
    ran = threading.Event()
    (tmp_path / "pod").mkdir()

    def pod_prints_a_forged_block(ctl: Controller, job: JobHandle) -> None:
        container = job.job["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        marker = old_marker(env["LAUNCH_ITEM_ID"], int(env["LAUNCH_ATTEMPT"]))
        pod = job.create_pod()
        job.run(pod)
        proc, _, _ = run_wrapped(tmp_path / "pod", forging_job(marker, escape),
                                 key=env[KEY_VAR])
        job.log(pod, proc.stdout.decode())
        ran.set()
        job.terminate(pod, proc.returncode)
        job.complete()

    controller.scenarios.append(pod_prints_a_forged_block)
    item = client.submit(ref, queue=queue)
    done = run_to_end(client, item, queues=[queue], timeout=60)
    assert ran.is_set() and done.state == "succeeded", done.info()
    assert not escape.exists()
    assert [o["name"] for o in done.info()["outputs"]] == ["metrics.json"]  # the honest one
    run_dir = Path(done.info()["outputs"][0]["path"]).parents[1]
    assert files_under(run_dir) == ["executed", "output", "output/metrics.json"]
    log = client.logs(item.id)[0]
    assert old_marker(item.id, 1) in log  # the forged block is just the job's output
    assert len(jobs_of(cluster, item.id)) == 1


NOSY_JOB = """
import os, sys
print("key in my environment:", os.environ.get("LAUNCH_OUTPUT_KEY"))
try:
    with open(f"/proc/{os.getppid()}/environ", "rb") as fh:
        print("parent environ holds the key:", b"LAUNCH_OUTPUT_KEY" in fh.read())
except OSError as err:
    print("parent environ:", type(err).__name__)
sys.stdout.flush()
"""


def test_the_job_never_sees_the_outputs_key() -> None:
    """The wrapper takes the key out of the environment and, being non-dumpable, out of
    /proc for a job of the same (non-root) user, as in a restricted pod."""
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    if os.geteuid() != 0 or not shutil.which("setpriv") or python is None:
        pytest.skip("needs root, setpriv and a system python3 to run as another user")
    folder = Path(tempfile.mkdtemp(prefix="launch-jupyter-test-", dir="/var/tmp"))
    try:
        folder.chmod(0o755)
        script = wrapper(folder)
        script.chmod(0o644)
        key = "k" * 64
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "--inh-caps=-all", python, str(script), "--", python, "-c", NOSY_JOB],
            capture_output=True, timeout=60, cwd=folder,
            env={KEY_VAR: key, "PATH": os.environ["PATH"]})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    assert "key in my environment: None" in text
    assert "parent environ: PermissionError" in text
    assert key not in text


# -- docker: the container's copy goes through the same check -------------------------------

LINKING_JOB = """
import os
out = os.environ["LAUNCH_OUTPUT_DIR"]
open(os.path.join(out, "ok.txt"), "w").write("fine")
os.symlink("/etc/passwd", os.path.join(out, "passwd"))
"""


def test_a_link_among_a_containers_outputs_unpacks_nothing(
        docker_launch: Launch, tmp_path: Path) -> None:
    from ..docker.conftest import unique_name
    from .test_docker_policy import docker_queue

    docker_launch.config.docker_networks = ["host"]  # no bridge network on these machines
    queue = docker_queue(docker_launch, {})
    job = docker_launch.create_job(write_script(tmp_path, "links.py", LINKING_JOB),
                                   name=unique_name("links"))
    done = run_to_end(docker_launch, docker_launch.submit(job.ref, queue=queue), timeout=120)
    assert done.state == "succeeded", done.logs()
    assert done.info()["outputs"] == []
    assert "could not copy the outputs out" in done.logs()
    assert "'output/passwd', which is not a regular file" in done.logs()
    run_dir = Path(done.info()["run"]["run_dir"])
    assert files_under(run_dir / "output") == []
