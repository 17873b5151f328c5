"""A secret in the agent's environment reaches the job, and nowhere else.

The agent's own environment is the secret mechanism of local queues (docs/security.md): a job reads
``MY_API_TOKEN`` from it. What a job prints is its own business; what launch-jupyter itself
writes must never hold the value: not the item record, its events, errors or logs as the REST
API, ``show --json`` or the store file carry them, nor the agent's and supervisors' messages,
nor anything left in the run folders.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from pathlib import Path

from launch_jupyter.api import Launch

from ..conftest import CLI, write_notebook, write_script
from ..integrity import assert_store_consistent
from .conftest import Api

USES_TOKEN = """
    import hashlib, os
    token = os.environ["MY_API_TOKEN"]
    print("token length", len(token), "sha256", hashlib.sha256(token.encode()).hexdigest())
    with open(os.path.join(os.environ["LAUNCH_OUTPUT_DIR"], "used.txt"), "w") as fh:
        fh.write(hashlib.sha256(token.encode()).hexdigest())
"""

REFUSED = """
    import os, sys
    token = os.environ["MY_API_TOKEN"]
    sys.exit(f"the service refused a token of length {len(token)}")
"""


def _files_holding(root: Path, value: bytes) -> list[str]:
    found = []
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = Path(base, name)
            if value in path.read_bytes():
                found.append(str(path))
    return found


async def test_the_agents_secret_reaches_the_job_but_no_record_log_or_answer(
    api: Api, client: Launch, cli: CLI, home: Path, tmp_path: Path
) -> None:
    secret = f"s3cr3t-{secrets.token_hex(12)}"
    value = secret.encode()
    used = client.submit(client.create_job(write_script(tmp_path, "uses.py", USES_TOKEN)))
    refused = client.submit(client.create_job(write_script(tmp_path, "refused.py", REFUSED)))
    notebook = write_notebook(tmp_path, "nb.ipynb", [
        "import os\ntoken = os.environ['MY_API_TOKEN']\nprint('token length', len(token))",
        "assert token == 'not the token'",
    ])
    failing_cell = client.submit(client.create_job(notebook))
    agent = cli.popen("agent", "--until-idle", "--max-jobs", "2",
                      env={**os.environ, "MY_API_TOKEN": secret})
    out, err = await asyncio.to_thread(agent.communicate, timeout=240)
    assert agent.returncode == 0, err

    # The job did get it.
    assert used.state == "succeeded", used.info()
    digest = __import__("hashlib").sha256(value).hexdigest()
    assert f"token length {len(secret)} sha256 {digest}" in used.logs()
    assert refused.state == "failed" and failing_cell.state == "failed"
    assert "length" in refused.logs() and failing_cell.error["cell"] == 2

    # Nothing launch-jupyter shows or keeps holds it.
    assert secret not in out + err  # the agent's own messages
    for item in (used, refused, failing_cell):
        for path in (("items", item.id), ("items", item.id, "logs")):
            status, body = await api("GET", *path)
            assert status == 200 and secret not in json.dumps(body), path
        shown = cli("show", item.id, "--json", check=True).stdout
        assert item.id in shown and secret not in shown
        assert secret not in json.dumps(client.store.events(item.id))
        assert secret not in cli("logs", item.id, check=True).stdout
    status, listing = await api("GET", "items")
    assert status == 200 and len(listing["items"]) == 3
    assert secret not in json.dumps(listing)
    assert secret not in cli("items", "--json", check=True).stdout
    assert _files_holding(home, value) == []  # the store file and WAL, every run folder
    assert_store_consistent(home / "launch.db")
