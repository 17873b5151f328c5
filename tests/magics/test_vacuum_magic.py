"""``%launch store vacuum`` in a real kernel: the same retention and report as the CLI's."""

from __future__ import annotations

from launch_jupyter.api import Launch
from tests.magics.kernel import Kernel
from tests.store.conftest import stored_job
from tests.store.test_retention import run


def test_store_vacuum_magic_reports_and_deletes(kernel: Kernel, client: Launch) -> None:
    job = stored_job(client.store)
    old = run(client, job, log=b"m" * 100, days_ago=4)
    kept = run(client, job)
    assert {i["id"] for i in client.items()} == {old, kept}

    dry = kernel.execute("%launch store vacuum --keep-days 2 --dry-run").stdout
    assert "would free (--keep-days 2): 1 finished item(s) (local 1), 100B of logs" in dry
    out = kernel.execute("%launch store vacuum --keep-days 2").stdout
    assert out.startswith("freed (--keep-days 2): 1 finished item(s)"), out
    assert {i["id"] for i in client.items()} == {kept}
    bad = kernel.execute("%launch store vacuum")
    assert "needs a rule" in bad.stderr
