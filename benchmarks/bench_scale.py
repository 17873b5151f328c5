"""(s) a store that scales: 100,000 items and 10 million log chunks, on SQLite and PostgreSQL.

``python benchmarks/bench_scale.py [--quick] [--scale N]`` (or ``run.py --only scale``). The
store is filled by bulk ``INSERT ... SELECT`` from a generated series (SQLite: a recursive CTE;
PostgreSQL: ``generate_series``): N items (default 100,000; 75 % on queue ``local``, 25 % on
``gpu``; mostly succeeded, some failed and cancelled), each with 100 log chunks of 64 bytes, 4
events, one attempt and one metric summary. Then, in this process, medians of repeated calls:

- ``items`` first page: ``Launch.page(limit=20)`` and its text table, as the command does
  after start-up; also with ``--queue gpu --state failed`` (index paths);
- claim: a fresh item submitted (not timed), then ``Store.claim`` timed;
- the queue panel's refresh (``QueuePanel.refresh``: a page of 20 with counts and the selected
  item's detail) and the lab sidebar's refresh on the server (queues, agents, a page of 100
  items with counts, the selected item; JSON-encoded, as its poll asks for them);
- ``jupyter launch items`` as a fresh process (start-up included).

Each figure's baseline is the same measurement on a small store (one page of items, same
shape), its samples alternating with the large store's in the same run: the ratio is what
the size costs.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import (
    Figure,
    TempStore,
    log,
    median,
    ms,
    pg_temp_store,
    postgres_base_url,
    temp_store,
    tool,
)

ITEMS = 100_000
QUICK_ITEMS = 5_000
CHUNKS = 100  # log chunks per item: 10 million at the full scale
CHUNK = b"step 0001 loss 0.25000 accuracy 0.91000 lr 0.00100 ....... done\n"
SMALL = 20  # items in the baseline store: one page
BATCH = 5_000  # items per INSERT ... SELECT (and per transaction)
assert len(CHUNK) == 64

#: (expression of the series value ``n`` per dialect) for the generated rows
_ID = {"sqlite": "printf('00%024d', n)", "postgresql": "'00' || lpad(n::text, 24, '0')"}
_BLOB = {"sqlite": "X'" + CHUNK.hex() + "'", "postgresql": "'\\x" + CHUNK.hex() + "'::bytea"}


def _series(dialect: str, low: int, high: int, name: str = "s") -> tuple[str, str]:
    """(WITH clause, FROM item) of the integers low..high as column ``n`` of ``name``."""
    if dialect == "sqlite":
        return (f"WITH RECURSIVE {name}(n) AS (SELECT {low} UNION ALL SELECT n + 1 FROM "
                f"{name} WHERE n < {high}) ", name)
    return "", f"generate_series({low}, {high}) AS {name}(n)"


def populate(store: Any, job: Any, first: int, last: int, t0: float) -> None:
    """Items ``first..last`` (with logs, events, attempts, metric summaries) in bulk."""
    dialect = store.engine.dialect.name
    item_id = _ID[dialect]
    state = ("CASE WHEN n % 50 = 0 THEN 'failed' WHEN n % 97 = 0 THEN 'cancelled' "
             "ELSE 'succeeded' END")
    false = "0" if dialect == "sqlite" else "false"
    with_items, items_from = _series(dialect, first, last)
    statements = [
        f"""{with_items}INSERT INTO launch_items (id, queue, job_id, job, state, priority,
            overrides, parameters, template_values, attempt, max_attempts, cancel_requested,
            exit_code, outputs, run_info, submitted_by, created_at, started_at, finished_at,
            updated_at, log_bytes)
            SELECT {item_id}, CASE WHEN n % 4 = 0 THEN 'gpu' ELSE 'local' END, {job.id},
            '{job.ref}', {state}, 1, '{{}}', '{{}}', '{{}}', 1, 3, {false},
            CASE WHEN n % 50 = 0 THEN 1 ELSE 0 END, '[]', '{{}}', 'bench', {t0} + n,
            {t0} + n + 1, {t0} + n + 2, {t0} + n + 2, {CHUNKS * len(CHUNK)}
            FROM {items_from}""",
        f"""{with_items}INSERT INTO launch_attempts (item_id, attempt, agent_id, host,
            started_at, finished_at, exit_code)
            SELECT {item_id}, 1, 'bench', 'bench', {t0} + n + 1, {t0} + n + 2, 0
            FROM {items_from}""",
        f"""{with_items}INSERT INTO launch_metric_summary (item_id, attempt, name, last, step,
            min, max, count) SELECT {item_id}, 1, 'loss', 0.25, 99, 0.25, 2.5, 100
            FROM {items_from}""",
    ]
    for kind, before, after in (("submitted", "NULL", "'queued'"),
                                ("claimed", "'queued'", "'leased'"),
                                ("started", "'leased'", "'running'"),
                                ("finished", "'running'", state)):
        statements.append(
            f"""{with_items}INSERT INTO launch_events (item_id, ts, kind, from_state, to_state,
                actor) SELECT {item_id}, {t0} + n, '{kind}', {before}, {after}, 'bench'
                FROM {items_from}""")
    with_chunks, chunks_from = _series(dialect, 0, CHUNKS - 1, "c")
    if dialect == "sqlite":
        chunk_sql = (f"WITH RECURSIVE s(n) AS (SELECT {first} UNION ALL SELECT n + 1 FROM s "
                     f"WHERE n < {last}), c(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM c "
                     f"WHERE k < {CHUNKS - 1}) ")
        chunk_from = "s JOIN c"
    else:
        chunk_sql = ""
        chunk_from = (f"generate_series({first}, {last}) AS s(n) CROSS JOIN "
                      f"generate_series(0, {CHUNKS - 1}) AS c(k)")
    statements.append(
        f"""{chunk_sql}INSERT INTO launch_log_chunks (item_id, "offset", attempt, ts, data)
            SELECT {item_id}, k * {len(CHUNK)}, 1, {t0} + n, {_BLOB[dialect]}
            FROM {chunk_from} ORDER BY n, k""")
    import sqlalchemy as sa

    with store.write() as conn:
        for sql in statements:
            conn.execute(sa.text(sql))  # text(): the driver's own placeholders are escaped


def fill(store: Any, items: int, on_progress: Callable[[int], None]) -> dict[str, Any]:
    """A job, the ``gpu`` queue and ``items`` items in batches; how long each part took."""
    from launch_jupyter.store import Store

    assert isinstance(store, Store)
    job = _job(store)
    store.create_queue("gpu")
    t0 = time.time() - 30 * 86400 - items  # a month ago: real submits come after
    start = time.perf_counter()
    for first in range(1, items + 1, BATCH):
        populate(store, job, first, min(items, first + BATCH - 1), t0)
        on_progress(min(items, first + BATCH - 1))
    filled = time.perf_counter() - start
    start = time.perf_counter()
    # What a store that grew over months has and a bulk load has not yet: planner statistics,
    # PostgreSQL's visibility map (autovacuum), SQLite's write-ahead log checkpointed.
    if store.is_sqlite:
        with store.write() as conn:
            conn.exec_driver_sql("ANALYZE")
        raw = store.engine.raw_connection()  # the driver commits each statement itself
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    else:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return {"fill_seconds": round(filled, 1), "vacuum_analyze_seconds":
            round(time.perf_counter() - start, 1)}


def _job(store: Any) -> Any:
    import hashlib

    content = b"print('hi')\n"
    sha = hashlib.sha256(content).hexdigest()
    spec = {"mode": "script", "entrypoint": "job.py", "parameters": {}, "schema": {}}
    return store.add_job("scale", sha, spec, [("job.py", sha, content)])[0]


class Probe:
    """Every timed path on one store, one sample at a time, so that the large store's and
    the small store's samples can alternate (the machine's load then weighs on both alike).
    """

    def __init__(self, ts: TempStore) -> None:
        from launch_jupyter.api import Launch
        from launch_jupyter.config import LaunchConfig
        from launch_jupyter.server.manager import LaunchManager
        from launch_jupyter.widgets.queue import QueuePanel

        self.ts = ts
        self.client = Launch(ts.url, data_dir=str(ts.root))
        self.job = _job(self.client.store)
        self.panel = QueuePanel(self.client, None, page_size=20, interval=3600)
        self.manager = LaunchManager(ts.root, LaunchConfig.load(store=ts.url,
                                                                data_dir=str(ts.root)))
        self.selected = self.client.page(limit=1)["items"][0]["id"]
        self.env = ts.env()
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its caches
        self.command = [tool("jupyter-launch"), "items", "--limit", "20"]
        subprocess.run(self.command, env=self.env, check=True, capture_output=True)
        for key in ("page", "page_filtered", "claim", "panel", "sidebar"):  # warm-up
            self.sample(key)

    def sample(self, key: str) -> float:
        """Seconds of one run of the path ``key`` (see FIGURES)."""
        from launch_jupyter.views.text import items_table

        client, store = self.client, self.client.store
        if key == "claim":
            store.submit(job=self.job, queue="local", overrides={}, parameters={})
        start = time.perf_counter()
        if key == "page":
            page = client.page(limit=20)
            items_table(page["items"], total=page["total"])
        elif key == "page_filtered":
            client.page(queue="gpu", state="failed", limit=20)
        elif key == "claim":
            claimed = store.claim("local", "bench-agent", 600)
        elif key == "panel":
            self.panel.refresh()
        elif key == "sidebar":
            json.dumps([self.manager.queues(), self.manager.agents(),
                        self.manager.items(limit=100), self.manager.item(self.selected)])
        elif key == "command":
            subprocess.run(self.command, env=self.env, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        if key == "claim":
            assert claimed is not None
            assert store.finish(claimed["id"], "bench-agent", "succeeded", exit_code=0)
        return seconds

    def close(self) -> None:
        self.panel.close()
        self.manager.close()
        self.client.close()


def _progress(what: str, count: int) -> Callable[[int], None]:
    """A fill progress callback that logs every 30 s and at the end."""
    started = time.perf_counter()
    last = [started]

    def progress(done: int) -> None:
        if time.perf_counter() - last[0] > 30 or done == count:
            last[0] = time.perf_counter()
            log(f"  {what}: {done:,} items filled ({last[0] - started:.0f} s)")

    return progress


@contextlib.contextmanager
def _store_at(backend: str, prefix: str) -> Iterator[TempStore]:
    with (temp_store(prefix) if backend == "sqlite" else pg_temp_store(prefix)) as ts:
        yield ts


#: (key of ``measure``, figure name, target, seconds the target allows or None)
FIGURES = (
    ("page", "`items` first page (Launch.page(limit=20) + table), p50", "<= 50 ms", 0.050),
    ("page_filtered", "`items --queue gpu --state failed` first page, p50", "<= 50 ms", 0.050),
    ("claim", "claim p50", "<= 1.2x the small store", None),
    ("panel", "queue panel refresh (QueuePanel.refresh), p50", "<= 100 ms", 0.100),
    ("sidebar", "lab sidebar refresh on the server (queues, agents, 100 items, the item; "
                "JSON), p50", "<= 100 ms", 0.100),
    ("command", "`jupyter-launch items --limit 20`, fresh process, p50", "-", None),
)


def run(quick: bool = False, scale: int | None = None) -> list[Figure]:
    """Both backends (PostgreSQL when LAUNCH_JUPYTER_BENCH_POSTGRES or ..._TEST_POSTGRES is
    set): the figures of FIGURES on a store of ``scale`` items against a small store."""
    from launch_jupyter.store import Store

    items = scale or (QUICK_ITEMS if quick else ITEMS)
    repeat = 9 if quick else 25
    backends = ["sqlite"] + (["postgresql"] if postgres_base_url() else [])
    figures: list[Figure] = []
    for backend in backends:
        samples: dict[str, dict[str, list[float]]] = {"small": {}, "large": {}}
        details: dict[str, Any] = {"items": items, "log_chunks": items * CHUNKS,
                                   "chunk_bytes": len(CHUNK)}
        with _store_at(backend, "scale-small") as small, _store_at(backend, "scale") as large:
            for ts, count in ((small, SMALL), (large, items)):
                store = Store(ts.url)
                filled = fill(store, count, _progress(f"{backend} {count:,}", count))
                store.close()
            details.update(filled)
            if backend == "sqlite":
                details["sqlite_bytes"] = sum(p.stat().st_size
                                              for p in large.root.glob("launch.db*"))
            probes = {"small": Probe(small), "large": Probe(large)}
            try:
                for key, *_ in FIGURES:
                    for n in range(repeat if key != "command" else max(3, repeat // 3)):
                        for size in (("small", "large") if n % 2 else ("large", "small")):
                            samples[size].setdefault(key, []).append(
                                probes[size].sample(key))
            finally:
                for probe in probes.values():
                    probe.close()
        details["samples_s"] = samples
        for key, name, target, limit in FIGURES:
            value, base = median(samples["large"][key]), median(samples["small"][key])
            met = (value <= limit if limit is not None
                   else value <= 1.2 * base if key == "claim" else None)
            log(f"  {backend} {name}: {ms(value)} ms (small store {ms(base)} ms)")
            figures.append(Figure(
                name=f"scale, {backend}, {items:,} items + {items * CHUNKS:,} log chunks: "
                     f"{name}",
                value=ms(value), unit="ms", baseline_name=f"same, {SMALL}-item store",
                baseline=ms(base), target=target, met=met,
                details=details if key == "page" else {}))
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    size = None
    if "--scale" in sys.argv:
        size = int(sys.argv[sys.argv.index("--scale") + 1])
    for figure in run(quick="--quick" in sys.argv, scale=size):
        print(json.dumps(figure.as_json())[:400])
