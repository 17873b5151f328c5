"""The store suite runs on both backends: one parametrised fixture, not two copies."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from launch_jupyter.store import JobRecord, Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, home: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{home}/launch.db"
    return request.getfixturevalue("postgres_url")


def stored_job(store: Store, name: str = "job") -> JobRecord:
    """A one-file script job written straight into ``store`` (no capture involved)."""
    content = b"print('hi')\n"
    sha = hashlib.sha256(content).hexdigest()
    spec = {"mode": "script", "entrypoint": "job.py", "parameters": {}, "schema": {}}
    record, _ = store.add_job(name, sha, spec, [("job.py", sha, content)])
    return record
