"""The Python API through a server: ``Launch(URL)`` / ``Launch.connect`` give the same methods
and handles as a local store; the upload route stores only what checks out; errors, retries
and TLS behave as a network client should."""

from __future__ import annotations

import base64
import http.server
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from launch_jupyter.api import Launch
from launch_jupyter.errors import (
    AuthError,
    CaptureError,
    ConflictError,
    NotFoundError,
    ParameterError,
    StoreError,
)
from launch_jupyter.jobs import capture
from launch_jupyter.jobs.upload import pack, unpack
from launch_jupyter.service.remote import RemoteLaunch, ServerUnreachableError
from tests.conftest import write_script
from tests.ui.lab import free_port

from .conftest import JupyterServer


@pytest.fixture
def remote(server: JupyterServer) -> Iterator[RemoteLaunch]:
    client = Launch(server.url, token=server.token)
    assert isinstance(client, RemoteLaunch)
    yield client
    client.close()


@pytest.mark.slow
def test_handles_and_results_work_through_the_server(remote: RemoteLaunch, tmp_path: Path,
                                                     server_agent: Any) -> None:
    remote.create_queue("remote")
    script = write_script(tmp_path, "fit.py", """
        import launch_jupyter
        p = launch_jupyter.parameters(lr=0.1)
        for step in range(3):
            launch_jupyter.log(loss=p["lr"] * (3 - step), step=step)
        print("fitted", p["lr"])
    """)
    item = remote.submit(script, queue="remote", parameters={"lr": 0.5})
    assert item.wait(90, progress=False).state == "succeeded", item.info()
    assert "fitted 0.5" in item.logs()
    assert [p["value"] for p in remote.metrics(item.id)] == [1.5, 1.0, 0.5]
    rows = remote.result_rows(queue="remote")
    assert rows[0]["id"] == item.id and rows[0]["metrics"]["loss"] == 0.5
    assert remote.best_result(rows, sort="loss") == item.id
    with pytest.raises(ConflictError, match="already succeeded"):
        item.cancel()
    first = item.requeue(idempotency_key="click-1")
    assert item.requeue(idempotency_key="click-1").id == first.id  # one item, not two
    assert remote.item(first.id).info()["requeued_from"] == item.id
    page = remote.page(queue="remote")
    assert page["total"] == 2 and {i["id"] for i in page["items"]} == {item.id, first.id}
    assert remote.job("fit").ref == remote.job("fit:latest").ref == "fit:v1"
    local = Launch(os.environ["LAUNCH_JUPYTER_STORE"])  # the server's store, read directly
    assert remote.job_info("fit") == local.job_info("fit")  # job show --json: the same
    local.close()
    with pytest.raises(NotFoundError, match="v9"):
        remote.job("fit:v9")
    with pytest.raises(NotFoundError):
        remote.item_info("01NOSUCHITEM0000000000000")
    after = remote.submit("fit", queue="remote", after=item.id, overrides=["lr=0.4"])
    assert after.wait(90, progress=False).state == "succeeded"
    assert "fitted 0.4" in after.logs()
    with pytest.raises(NotFoundError, match="queue"):
        remote.submit(script, queue="nosuchqueue")
    assert [j.ref for j in remote.jobs("fit")] == ["fit:v1"]  # the refused file: no version
    sweep = remote.sweep("fit", queue="remote", grid=["lr=0.2,0.3"])
    assert len(sweep) == 2 and sweep.wait(120, progress=False).done
    assert remote.sweep_info(sweep.id)["trials"] == 2
    trials = sweep.result_rows()
    assert sorted(r["parameters"]["lr"] for r in trials) == [0.2, 0.3]
    assert remote.best_result(remote.result_rows(sweep=sweep.id, sort="loss"), sweep=sweep.id,
                              sort="loss") is not None
    from launch_jupyter.widgets import QueuePanel, ResultsPanel

    panel = QueuePanel(remote, "remote", interval=30)
    try:
        assert item.id in {row["id"] for row in panel.rows}
        assert panel.detail.item_id == panel.rows[0]["id"] and "data-state" in panel.table.value
    finally:
        panel.close()
    results = ResultsPanel(remote, sweep_id=sweep.id, interval=30)
    try:
        assert {row["id"] for row in results.rows} == {i.id for i in sweep}
    finally:
        results.close()
    connected = Launch.connect(remote.url, token=remote.token)
    assert connected.queue("remote")["name"] == "remote"


def test_the_upload_route_stores_only_what_checks_out(remote: RemoteLaunch,
                                                      tmp_path: Path) -> None:
    script = write_script(tmp_path, "job.py", "print('hi')\n")
    body = pack(capture(script))
    url = f"{remote.api}jobs/job/versions"

    def post(changed: dict) -> requests.Response:
        return remote.session.post(url, json=changed, timeout=30)

    tampered = {**body, "spec": {**body["spec"], "digest": "0" * 64}}
    answer = post(tampered)
    assert answer.status_code == 400 and "digest" in answer.json()["message"]
    other = base64.b64encode(b"print('evil')\n").decode()
    swapped = {**body, "files": [{**body["files"][0], "content": other}]}
    answer = post(swapped)
    assert answer.status_code == 400 and "sha256" in answer.json()["message"]
    escaping = {**body, "files": [{**body["files"][0], "path": "../job.py"}]}
    assert post(escaping).status_code == 400
    assert post({"spec": "x", "files": []}).status_code == 400
    assert remote.jobs() == []  # nothing stored
    answer = post(body)
    assert answer.status_code == 201 and answer.json()["ref"] == "job:v1"


def test_unpack_refuses_too_much_content(tmp_path: Path) -> None:
    script = write_script(tmp_path, "big.py", "x = 1\n" * 100)
    with pytest.raises(CaptureError, match="exceed"):
        unpack(pack(capture(script)), max_bytes=10)
    again = unpack(pack(capture(script)))
    assert again.digest == capture(script).digest


def test_a_wrong_token_raises_auth_error_naming_the_server(server: JupyterServer) -> None:
    with pytest.raises(AuthError, match=server.url):
        Launch.connect(server.url, token="wrong").queues()


def test_a_user_refused_queue_administration_hears_which_permission(
        home: Path, store_url: str, tmp_path: Path) -> None:
    """A token that may submit but not administer queues (the server's Authorizer refuses
    ``launch-queues``) is told that, not to check its token."""
    (tmp_path / "noadmin_authorizer.py").write_text(
        "from jupyter_server.auth.authorizer import Authorizer\n"
        "class NoQueueAdmin(Authorizer):\n"
        "    def is_authorized(self, handler, user, action, resource):\n"
        "        return resource != 'launch-queues'\n")
    running = JupyterServer(home / "noadmin", store_url)
    (home / "noadmin" / "config").mkdir()
    (home / "noadmin" / "config" / "jupyter_server_config.py").write_text(
        "c.ServerApp.authorizer_class = 'noadmin_authorizer.NoQueueAdmin'\n")
    running.env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(tmp_path), running.env.get("PYTHONPATH")) if p)
    running.start()
    try:
        remote = Launch.connect(running.url, token=running.token)
        with pytest.raises(AuthError) as refused:
            remote.create_queue("gpu")
        assert "not authorized to write on resource: launch-queues" in str(refused.value)
        assert "check --token" not in str(refused.value)
        assert [q["name"] for q in remote.queues()] == ["local"]  # reading is allowed
        with pytest.raises(AuthError, match="check --token"):
            Launch.connect(running.url, token="wrong").queues()
    finally:
        running.stop()


class _Counting(http.server.BaseHTTPRequestHandler):
    """Answers 503 to everything and counts the requests per method."""

    seen: dict[str, int] = {}

    def _answer(self) -> None:
        self.seen[self.command] = self.seen.get(self.command, 0) + 1
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"message": "store unavailable"}')

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky_server() -> Iterator[str]:
    _Counting.seen = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_only_idempotent_requests_are_retried(flaky_server: str) -> None:
    client = RemoteLaunch(flaky_server, token="t", retries=2)
    with pytest.raises(StoreError, match="store unavailable"):
        client.queues()
    with pytest.raises(StoreError, match="store unavailable"):
        client.cancel("01ITEM")
    assert _Counting.seen == {"GET": 3, "POST": 1}


def test_an_unreachable_server_is_one_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(ServerUnreachableError, match=f"cannot reach server {url}"):
        RemoteLaunch(url, retries=0).queues()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_by_default(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{httpd.server_address[1]}/"
        with pytest.raises(StoreError, match="TLS verification failed"):
            RemoteLaunch(url, token="t", retries=0).queues()
        with pytest.raises(StoreError, match="store unavailable"):  # past TLS when told so
            RemoteLaunch(url, token="t", retries=0, verify=False).queues()
    finally:
        httpd.shutdown()
        httpd.server_close()


class _ToLogin(http.server.BaseHTTPRequestHandler):
    """What a hub answers a request without credentials: a redirect to its login page."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(302)
        self.send_header("Location", "/hub/login?next=%2Fuser%2Fada%2Flaunch%2Fapi%2Fqueues")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_redirect_to_a_login_page_is_an_auth_error() -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ToLogin)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/user/ada/"
        with pytest.raises(AuthError, match="login page"):
            RemoteLaunch(url, retries=0).queues()
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_job_export_through_a_server_says_where_to_run_it() -> None:
    client = RemoteLaunch("http://127.0.0.1:9/", token="t")  # refused before any request
    with pytest.raises(ParameterError, match="job export reads the job's files from the "
                       "store, which http://127.0.0.1:9/ keeps on its side: run `jupyter "
                       "launch job export train ./out` where the store is"):
        client.export_job("train", "./out")


def test_the_url_jupyter_prints_at_start_works_as_the_server_url(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUNCH_JUPYTER_TOKEN", "from-env")
    pasted = RemoteLaunch("http://127.0.0.1:8888/lab?token=abc")
    assert (pasted.url, pasted.token) == ("http://127.0.0.1:8888/", "abc")
    hub = RemoteLaunch("https://hub.example.org/user/ada/lab/")
    assert (hub.api, hub.token) == ("https://hub.example.org/user/ada/launch/api/", "from-env")
    # the browser's address of a notebook open in JupyterLab, and the API's own URL
    browser = RemoteLaunch("https://hub.example.org/user/ada/lab/tree/work/x.ipynb?token=t")
    assert (browser.url, browser.token) == ("https://hub.example.org/user/ada/", "t")
    assert RemoteLaunch("http://127.0.0.1:8888/launch/api/").api == \
        "http://127.0.0.1:8888/launch/api/"
    assert RemoteLaunch("https://hub.example.org/user/lab/lab/tree/x.ipynb").url == \
        "https://hub.example.org/user/lab/"  # a user named lab keeps their base URL
    flag = RemoteLaunch("http://127.0.0.1:8888/?token=abc", token="flag")
    assert flag.token == "flag" and flag.session.headers["Authorization"] == "token flag"


def test_template_pairs_are_typed_here_for_submit_and_schedules(remote: RemoteLaunch,
                                                                 tmp_path: Path) -> None:
    """``--set VAR=VALUE`` through a server: typed by the queue's variables on the client
    (the server takes typed values), for a submit and for a schedule alike."""
    remote.create_queue("sized", config={"variables": {"gpus": {"type": "integer",
                                                               "minimum": 0,
                                                               "default": 0}}})
    script = write_script(tmp_path, "sized.py", "print('sized')\n")
    item = remote.submit(script, queue="sized", template_pairs=["gpus=2"])
    assert item.info()["template_values"] == {"gpus": 2}
    made = remote.create_schedule("sized-nightly", script, cron="0 3 * * *", queue="sized",
                                  template_pairs=["gpus=1"])
    assert made["template_values"] == {"gpus": 1}
    with pytest.raises(ParameterError, match="gpus"):
        remote.submit(script, queue="sized", template_pairs=["gpus=many"])


def test_submitting_a_missing_file_through_a_server_says_no_such_file(
        remote: RemoteLaunch, tmp_path: Path) -> None:
    """A mistyped path is not sent to the server as a job name ('invalid job name')."""
    for path in (str(tmp_path / "missing.ipynb"), "missing.py"):
        with pytest.raises(NotFoundError, match=f"no such file '{path}'"):
            remote.submit(path)
    assert remote.page()["total"] == 0
