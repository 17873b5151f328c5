"""Fixtures for the REST API tests: a real Jupyter server (pytest-jupyter) on the test store.

The server runs in the test process, on the SQLite store of the ``home`` fixture, with the
launch extension enabled and a token set.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403 - the jp_* fixtures and async tests
from traitlets.config import Config


@pytest.fixture
def jp_server_config(home: Path) -> Config:
    """Enable the extension; depending on ``home`` sets LAUNCH_JUPYTER_STORE before start."""
    return Config({"ServerApp": {"jpserver_extensions": {"launch_jupyter": True}}})


@pytest.fixture
def manager(jp_serverapp: Any) -> Iterator[Any]:
    """The extension's LaunchManager; its store is closed when the test ends."""
    mgr = jp_serverapp.web_app.settings["launch_manager"]
    yield mgr
    mgr.close()


Api = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture
def api(jp_fetch: Any, manager: Any) -> Api:
    """``await api("POST", "queues", body={...})`` -> (status, decoded JSON), never raising."""

    async def call(method: str, *path: str, body: Any = None, raw: str | None = None,
                   params: dict | None = None) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"method": method, "raise_error": False}
        if method == "POST":
            kwargs["body"] = raw if raw is not None else json.dumps(body if body is not None
                                                                    else {})
        response = await jp_fetch("launch", "api", *path, params=params, **kwargs)
        text = response.body.decode() if response.body else ""
        return response.code, json.loads(text) if text else None

    return call
