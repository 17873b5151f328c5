"""`store vacuum` from a laptop that knows only a server: `Launch.connect(URL).vacuum(...)` is
the server's retention (POST store/vacuum), with the same rules and errors as a local one."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.errors import NotFoundError, ParameterError

from ..store.conftest import stored_job
from ..store.test_retention import run
from .conftest import JupyterServer

pytestmark = pytest.mark.slow


def test_vacuum_through_a_server(server: JupyterServer, store_url: str, home: Path) -> None:
    local = Launch(store_url, data_dir=str(home))
    try:
        job = stored_job(local.store)
        old = run(local, job, log=b"z" * 50, days_ago=10)
        kept = run(local, job, days_ago=1)
    finally:
        local.close()
    remote = Launch.connect(server.url, token=server.token)
    try:
        with pytest.raises(ParameterError, match="needs a rule"):
            remote.vacuum()
        dry = remote.vacuum(keep_days=3, dry_run=True)
        assert dry["dry_run"] and dry["items"] == 1 and dry["log_bytes"] == 50
        report = remote.vacuum(keep_days=3)
        assert report["items"] == 1 and report["queues"] == {"local": 1}
        with pytest.raises(NotFoundError):
            remote.item_info(old)
        assert remote.item_info(kept)["state"] == "succeeded"
    finally:
        remote.close()
