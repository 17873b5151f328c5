"""A cancel racing a claim is never lost, on SQLite and on PostgreSQL (security row 5)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from launch_jupyter.store import CANCELLED, LEASED, Store

from .conftest import stored_job

RACES = 300


def race_together(*calls: Callable[[], object]) -> list[BaseException]:
    """Run ``calls`` in threads released at the same instant; the exceptions they raised."""
    start = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            start.wait()
            call()
        except BaseException as err:  # noqa: BLE001 - reported by the caller
            errors.append(err)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_a_cancel_racing_a_claim_is_never_lost(store_url: str) -> None:
    store = Store(store_url)
    job = stored_job(store)
    store.create_queue("race")
    outcomes: Counter[str] = Counter()
    for race in range(RACES):
        item = store.submit(job=job, queue="race", overrides={}, parameters={})
        errors = race_together(lambda: store.claim("race", f"agent-{race}", 30),  # noqa: B023
                               lambda: store.request_cancel(item["id"], actor="user"))  # noqa: B023
        assert not errors, errors
        state, cancel_requested = store.item_state(item["id"])
        # Either cancelled at once, or leased with the flag its agent acts on: never a lost
        # cancel (leased without the flag, so the job would run).
        assert state == CANCELLED or (state == LEASED and cancel_requested), (
            f"race {race}: item {item['id']} is {state} with cancel_requested={cancel_requested}")
        outcomes[state] += 1
        # A leased item the agent would now stop: leave the queue empty for the next race.
        if state == LEASED:
            store.finish(item["id"], f"agent-{race}", CANCELLED)
    assert sum(outcomes.values()) == RACES
