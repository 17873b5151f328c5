"""The store URL's password never shows: not in a 503 answer, the server log or CLI stderr
(security row 9)."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from traitlets.config import Config

from launch_jupyter.store import Store
from launch_jupyter.store.sql import safe_url

from ..conftest import CLI, require_service
from .conftest import Api

PASSWORD = f"pw-{secrets.token_hex(8)}"


def _bad_url(case: str) -> str:
    """A PostgreSQL URL holding ``PASSWORD`` that cannot open: wrong password or wrong host."""
    base = os.environ.get("LAUNCH_JUPYTER_TEST_POSTGRES")
    if case == "wrong-password":
        if not base:
            require_service("PostgreSQL", "LAUNCH_JUPYTER_TEST_POSTGRES is not set")
        url = sa.engine.make_url(base).set(password=PASSWORD)
    else:
        url = sa.engine.make_url(f"postgresql://launch:{PASSWORD}@no-such-host.invalid:5432/x")
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["wrong-password", "wrong-host"])
def bad_url(request: pytest.FixtureRequest) -> str:
    return _bad_url(request.param)


@pytest.fixture
def server_log() -> Iterator[list[str]]:
    """Every record any logger writes while the test runs (the server's own included)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in
               ("ServerApp", "tornado.access", "tornado.application", "tornado.general"))]
    for logger in loggers:
        logger.addHandler(handler)
    yield lines
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def jp_server_config(home: Path, bad_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The server's store is the unreachable one (from the environment, as deployments set it:
    traitlets logs a server config section verbatim at DEBUG level, password and all)."""
    monkeypatch.setenv("LAUNCH_JUPYTER_STORE", bad_url)
    return Config({"ServerApp": {"jpserver_extensions": {"launch_jupyter": True}}})


async def test_rest_answers_503_without_the_password(
    server_log: list[str], jp_serverapp: Any, api: Api, bad_url: str
) -> None:
    assert PASSWORD in bad_url
    for method, path, body in [("GET", ("queues",), None), ("GET", ("items",), None),
                               ("POST", ("queues",), {"name": "gpu"})]:
        status, answer = await api(method, *path, body=body)
        assert status == 503, (path, answer)
        assert "no-such-host.invalid" in answer["message"] or "127.0.0.1" in answer["message"]
        assert PASSWORD not in str(answer)
    assert server_log, "the server logged nothing: the capture is broken"
    assert any("503" in line or "unreachable" in line for line in server_log), server_log
    assert not [line for line in server_log if PASSWORD in line]


def test_cli_stderr_never_shows_the_password(cli: CLI, bad_url: str) -> None:
    env = {**os.environ, "LAUNCH_JUPYTER_STORE": bad_url}
    for args in (["queue", "list"], ["items"], ["store", "check"]):
        proc = cli(*args, env=env)
        assert proc.returncode != 0, args
        assert "error:" in proc.stderr and "***" in proc.stderr, proc.stderr
        assert PASSWORD not in proc.stdout + proc.stderr, args


@pytest.mark.parametrize("url", [
    f"postgresql://u:{PASSWORD}@h:notaport/d",  # parses, but its port is no number
    f"mysql://u:{PASSWORD}@h/d",  # an unsupported backend
    f"postgresql://u:{PASSWORD}@",  # nothing after the authority
], ids=["bad-port", "unsupported", "truncated"])
def test_store_errors_of_malformed_urls_hide_the_password(url: str) -> None:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - any error: its text is the test
        Store(url)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in safe_url(url)


def test_the_password_is_hidden_in_every_store_message() -> None:
    """No message of store/sql.py formats the raw URL (a static check of the source)."""
    source = Path(sys.modules[Store.__module__].__file__).read_text()
    assert "{self.url}" not in source and "{url}" not in source and "{url!r}" not in source


def test_a_password_given_as_a_query_argument_is_hidden(cli: CLI) -> None:
    """libpq also takes ``?password=``, which SQLAlchemy renders as is."""
    url = f"postgresql://launch@no-such-host.invalid:5432/x?sslmode=disable&Password={PASSWORD}"
    proc = cli("items", env={**os.environ, "LAUNCH_JUPYTER_STORE": url})
    assert proc.returncode != 0 and "Password=***" in proc.stderr, proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    assert safe_url(url + "&x=1") == safe_url(url) + "&x=1"
    assert PASSWORD not in safe_url(f"postgres://u@[::1/d?password={PASSWORD}")
