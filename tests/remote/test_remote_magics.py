"""The magics through a server: `%launch connect URL --token T`, or LAUNCH_JUPYTER_SERVER and
LAUNCH_JUPYTER_TOKEN in the kernel's environment; handles work the same."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_script
from tests.magics.kernel import Kernel

from .conftest import JupyterServer

pytestmark = pytest.mark.slow


def test_magics_connect_and_work_through_the_server(
        server: JupyterServer, server_agent: Any, start_kernel: Callable[..., Kernel],
        tmp_path: Path) -> None:
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    write_script(laptop, "job.py", "print('hello from the server side', flush=True)\n")
    # The kernel's own store is another file: whatever shows up came through the server.
    kernel = start_kernel(env={"LAUNCH_JUPYTER_STORE": f"sqlite:///{laptop}/own.db"},
                          cwd=laptop)
    kernel.execute("%load_ext launch_jupyter")
    refused = kernel.execute(f"%launch connect {server.url} --token wrong")
    assert "token is wrong" in refused.stderr and server.url in refused.stderr
    connected = kernel.execute(f"%launch connect {server.url} --token {server.token}")
    assert f"connected to {server.url}" in connected.stdout, connected.stderr
    kernel.execute("%launch queue create remote")
    done = kernel.execute("item = %launch submit job.py -q remote --wait\n"
                          "print(item.state, item.logs())")
    assert "succeeded hello from the server side" in done.stdout, (done.stdout, done.stderr)
    listed = kernel.execute("%launch items --json")
    assert [i["queue"] for i in json.loads(listed.stdout)] == ["remote"]

    # The same server from the environment alone, in a fresh kernel.
    from_env = start_kernel(env={"LAUNCH_JUPYTER_STORE": f"sqlite:///{laptop}/own.db",
                                 "LAUNCH_JUPYTER_SERVER": server.url,
                                 "LAUNCH_JUPYTER_TOKEN": server.token}, cwd=laptop)
    from_env.execute("%load_ext launch_jupyter")
    queues = from_env.execute("%launch queue list --json")
    assert "remote" in {q["name"] for q in json.loads(queues.stdout)}, queues.stderr
