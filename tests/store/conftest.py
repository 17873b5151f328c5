"""The store suite runs on both backends: one parametrised fixture, not two copies."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, home: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{home}/launch.db"
    return request.getfixturevalue("postgres_url")
