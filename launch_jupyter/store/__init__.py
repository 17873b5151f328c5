"""The SQL store (SQLite embedded default, PostgreSQL for teams) and its wake-ups."""

from __future__ import annotations

from .sql import (
    ACTIVE,
    CANCELLED,
    FAILED,
    LEASED,
    QUEUED,
    RUNNING,
    STATES,
    SUCCEEDED,
    SWEEP_FINISHED,
    SWEEP_RUNNING,
    SWEEP_STOPPED,
    TERMINAL,
    JobRecord,
    Store,
    iso,
    whoami,
)

__all__ = [
    "ACTIVE", "CANCELLED", "FAILED", "LEASED", "QUEUED", "RUNNING", "STATES", "SUCCEEDED",
    "SWEEP_FINISHED", "SWEEP_RUNNING", "SWEEP_STOPPED", "TERMINAL", "JobRecord", "Store", "iso",
    "whoami",
]
