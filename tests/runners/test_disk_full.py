"""Disk full while a job writes: the item fails saying so, and the store stays whole.

Two ways to run out of space, both real: a small ext4 filesystem on a loop device (needs root
and a loop device; skipped elsewhere unless CI=true) holding the store and/or the runs, and a
file size limit (RLIMIT_FSIZE) on the agent and everything it starts, which always runs.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch_jupyter.api import Launch

from ..conftest import _processes_mentioning, require_service, run_to_end, write_script
from ..integrity import assert_store_consistent

DISK_MB = 8

#: Writes more than the small disk holds, both to stdout and to LAUNCH_OUTPUT_DIR.
FILLER = """
    import os, sys
    out = os.path.join(os.environ["LAUNCH_OUTPUT_DIR"], "filler.bin")
    block, line = b"x" * (256 * 1024), "y" * 1023 + "\\n"
    with open(out, "wb") as fh:
        for i in range({blocks}):
            sys.stdout.write(line * {lines})
            sys.stdout.flush()
            fh.write(block)
            fh.flush()
    print("wrote everything: the disk was not full")
"""


def _kill_processes_using(path: Path) -> None:
    for _ in range(3):
        pids = _processes_mentioning(str(path))
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


@pytest.fixture
def small_disk(home: Path, tmp_path: Path) -> Iterator[Path]:
    """A DISK_MB ext4 filesystem mounted on a loop device; unmounted and deleted at the end."""
    if os.geteuid() != 0:
        require_service("a loop filesystem", "mounting one needs root")
    if shutil.which("mkfs.ext4") is None or shutil.which("mount") is None:
        require_service("a loop filesystem", "mkfs.ext4 or mount is not installed")
    image, mount = tmp_path / "disk.img", tmp_path / "disk"
    mount.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(DISK_MB * 1024 * 1024)
    # -m 0: no blocks reserved for root (the tests run as root and would use them).
    made = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-b", "4096", str(image)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        require_service("a loop filesystem", f"mkfs.ext4 failed: {made.stderr.strip()}")
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        image.unlink()
        require_service("a loop filesystem", f"mount -o loop failed: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        _kill_processes_using(mount)
        for _ in range(20):
            if subprocess.run(["umount", str(mount)], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        image.unlink(missing_ok=True)


def _free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def _says_disk_full(error: dict | None) -> bool:
    message = (error or {}).get("message", "").lower()
    return "no space left" in message or "disk is full" in message


def test_store_on_a_full_disk_fails_the_item_saying_so_and_stays_whole(
    small_disk: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{small_disk}/launch.db"  # the runs go beside it: same small disk
    client = Launch(url, lease_ttl=10, cancel_grace=2)
    try:
        path = write_script(tmp_path, "filler.py", FILLER.format(blocks=4 * DISK_MB, lines=256))
        item = client.submit(client.create_job(path).ref)
        run_to_end(client, item)
        data = item.info()
        assert data["state"] == "failed", (data, item.logs()[-2000:])
        assert _says_disk_full(data["error"]), data["error"]
        assert "wrote everything" not in item.logs()
        assert _free_bytes(small_disk) < 1024 * 1024  # it really was full
        assert len(data["attempts"]) == 1  # the supervisor recorded it: no lapse, no rerun
        # Free the space the job took: the store is whole and takes writes again.
        shutil.rmtree(Path(data["run"]["run_dir"]) / "output")
        items = assert_store_consistent(small_disk / "launch.db")
        assert items[item.id]["state"] == "failed"
        small = write_script(tmp_path, "small.py", "print('after the disk was freed')\n")
        after = client.submit(client.create_job(small).ref)
        run_to_end(client, after, timeout=60)
        assert after.state == "succeeded", after.info()["error"]
        assert "after the disk was freed" in after.logs()
        assert_store_consistent(small_disk / "launch.db")
    finally:
        client.close()


def test_runs_on_a_full_disk_fail_the_item_with_no_space_left(
    small_disk: Path, home: Path, tmp_path: Path
) -> None:
    # The store is on the normal disk, the runs (LAUNCH_OUTPUT_DIR) on the small one.
    client = Launch(f"sqlite:///{home}/launch.db", data_dir=str(small_disk))
    try:
        path = write_script(tmp_path, "filler.py", FILLER.format(blocks=4 * DISK_MB, lines=1))
        item = client.submit(client.create_job(path).ref)
        run_to_end(client, item)
        data = item.info()
        assert data["state"] == "failed", (data, item.logs()[-2000:])
        assert _says_disk_full(data["error"]), data["error"]
        assert "No space left on device" in item.logs()  # the job's own traceback
        assert len(data["attempts"]) == 1
        items = assert_store_consistent(home / "launch.db")
        assert items[item.id]["error"] == data["error"]
    finally:
        client.close()


LIMIT = 8 * 1024 * 1024

SIGNAL_FILLER = """
    import os, signal
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # what a C program gets: death by signal
    with open(os.path.join(os.environ["LAUNCH_OUTPUT_DIR"], "filler.bin"), "wb") as fh:
        for i in range(64):
            fh.write(b"x" * 1024 * 1024)
            fh.flush()
    print("wrote everything: no size limit")
"""


def _limit_file_size() -> None:  # runs in the agent process before exec; inherited by all
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


@pytest.mark.parametrize("kind", ["error", "signal"])
def test_file_size_limit_fails_the_item_saying_so_and_caps_the_log(
    client: Launch, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # The log cap keeps the store's own files under the limit; the job's output file is not.
    monkeypatch.setenv("LAUNCH_JUPYTER_MAX_LOG_BYTES", str(1024 * 1024))
    if kind == "error":  # Python ignores SIGXFSZ: its writes fail with EFBIG
        path = write_script(tmp_path, "filler.py", FILLER.format(blocks=64, lines=128))
    else:
        path = write_script(tmp_path, "filler.py", SIGNAL_FILLER)
    item = client.submit(client.create_job(path).ref)
    agent = subprocess.Popen(
        [sys.executable, "-m", "launch_jupyter.cli", "agent", "--until-idle"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_limit_file_size, start_new_session=True)
    try:
        output, _ = agent.communicate(timeout=120)
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()
    assert agent.returncode == 0, output
    data = item.info()
    assert data["state"] == "failed", (data, item.logs()[-2000:])
    message = data["error"]["message"]
    if kind == "error":
        assert "File too large" in message, message
        logs = item.logs()
        assert "[launch-jupyter: log truncated at 1048576 bytes" in logs
    else:
        assert "SIGXFSZ" in message and "file size limit" in message, message
    output_file = Path(data["run"]["run_dir"]) / "output" / "filler.bin"
    assert output_file.stat().st_size == LIMIT
    assert len(data["attempts"]) == 1
    assert_store_consistent(home / "launch.db")
