"""GET /launch/api/meta: what the lab extension reads instead of hard-coding (states, symbols,
priorities, the configured default queue and lease ttl, the runners), behind credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config

import launch_jupyter.server
from launch_jupyter.views.states import STATE_STYLE

from .conftest import Api
from .test_openapi import check
from .test_security import raw_fetch


@pytest.fixture
def jp_server_config(home: Path) -> Config:
    """The server's own LaunchConfig section sets the default queue and the lease ttl."""
    return Config({
        "ServerApp": {"jpserver_extensions": {"launch_jupyter": True}},
        "LaunchConfig": {"default_queue": "gpu", "lease_ttl": 12.5},
    })


async def test_meta_answers_the_configured_default_queue_and_lease_ttl(api: Api) -> None:
    status, meta = await api("GET", "meta")
    assert status == 200, meta
    assert meta["default_queue"] == "gpu"
    assert meta["lease_ttl"] == 12.5
    assert meta["states"] == ["queued", "leased", "running", "succeeded", "failed", "cancelled"]
    assert meta["terminal"] == ["succeeded", "failed", "cancelled"]
    assert meta["symbols"] == {s: symbol for s, (_, symbol) in STATE_STYLE.items()}
    assert meta["colours"] == {s: colour for s, (colour, _) in STATE_STYLE.items()}
    assert meta["priorities"] == ["critical", "high", "medium", "low"]
    assert meta["default_priority"] == "medium"
    assert {"local", "docker", "kubernetes"} <= set(meta["runners"])
    assert all(isinstance(text, str) and text for text in meta["runners"].values())


async def test_meta_matches_its_documented_schema(api: Api) -> None:
    spec = yaml.safe_load(
        Path(launch_jupyter.server.__file__).with_name("openapi.yaml").read_text())
    check(spec, (await api("GET", "meta"))[1], "Meta")


async def test_meta_without_credentials_is_refused(jp_serverapp: Any, http_server_client: Any,
                                                   jp_base_url: str, manager: Any) -> None:
    url = f"{jp_base_url}launch/api/meta"
    response = await raw_fetch(http_server_client, url)
    assert response.code == 403
    assert "message" in json.loads(response.body)
    token = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    response = await raw_fetch(http_server_client, url, headers=token)
    assert response.code == 200
    assert json.loads(response.body)["default_queue"] == "gpu"
