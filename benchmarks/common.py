"""Helpers shared by the benchmarks: fresh stores, timing, statistics and result records."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


@dataclass
class Figure:
    """One line of the results table: a measured value next to its same-run baseline."""

    name: str
    value: float
    unit: str
    baseline_name: str | None = None
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    #: higher is better (throughput) instead of lower (latency)
    higher_is_better: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between order statistics."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def summary(values: Sequence[float]) -> dict[str, float]:
    """min / p50 / p99 / max / mean of samples, in their own unit."""
    return {"n": len(values), "min": min(values), "p50": median(values),
            "p99": percentile(values, 99), "max": max(values),
            "mean": statistics.fmean(values)}


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


def parse_iso(text: str) -> float:
    """Epoch seconds of the store's ISO timestamps (``2026-01-01T00:00:00.123Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def tool(name: str) -> str:
    """The console script ``name`` beside this interpreter (a pyenv shim adds ~50 ms)."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed: pip install -e '.[bench]'")
    return found


@dataclass
class TempStore:
    """A fresh store (SQLite file, or a fresh PostgreSQL database) and a runs folder."""

    root: Path
    database_url: str | None = None

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.root / 'launch.db'}"

    def env(self) -> dict[str, str]:
        """The environment for subprocesses that must use this store."""
        env = dict(os.environ)
        env["LAUNCH_JUPYTER_STORE"] = self.url
        env["LAUNCH_JUPYTER_DATA_DIR"] = str(self.root)
        return env


@contextlib.contextmanager
def temp_store(prefix: str) -> Iterator[TempStore]:
    with tempfile.TemporaryDirectory(prefix=f"lj-bench-{prefix}-") as tmp:
        yield TempStore(Path(tmp))


def postgres_base_url() -> str | None:
    """The PostgreSQL server to benchmark against, if any (same variable as the tests)."""
    return (os.environ.get("LAUNCH_JUPYTER_BENCH_POSTGRES")
            or os.environ.get("LAUNCH_JUPYTER_TEST_POSTGRES"))


@contextlib.contextmanager
def pg_temp_store(prefix: str) -> Iterator[TempStore]:
    """A fresh PostgreSQL database (dropped afterwards) with a temporary runs folder."""
    import secrets

    import sqlalchemy as sa

    base = postgres_base_url()
    if not base:
        raise RuntimeError("set LAUNCH_JUPYTER_BENCH_POSTGRES=postgresql://... to benchmark it")
    admin_url = sa.engine.make_url(base).set(drivername="postgresql+psycopg")
    name = f"lj_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory(prefix=f"lj-bench-{prefix}-") as tmp:
            url = admin_url.set(database=name, drivername="postgresql")
            yield TempStore(Path(tmp), url.render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def time_command(argv: Sequence[str], *, env: dict[str, str] | None = None,
                 cwd: str | None = None) -> float:
    """Wall seconds of running ``argv`` to completion (output discarded; must exit 0)."""
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def wait_for(predicate: Any, timeout: float, what: str, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
