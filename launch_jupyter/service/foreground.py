"""The foreground run (``jupyter launch run``, ``%launch run``): submit to a private agent,
start at once, follow the log to the end; Ctrl-C cancels and keeps following."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError, shown
from ..store import LEASED, JobRecord

if TYPE_CHECKING:
    from .client import Launch
    from .handles import Item


def run_foreground(client: Launch, job: JobRecord, *, queue: str | None = None,
                   parameters: Mapping[str, Any] | None = None,
                   overrides: Iterable[str] = (), timeout: float | None = None,
                   template_pairs: Iterable[str] = (),
                   on_start: Callable[[Item], Any] | None = None,
                   write: Callable[[str], Any] | None = None,
                   on_interrupt: Callable[[], Any] | None = None,
                   on_progress: Callable[[Any], Any] | None = None,
                   isolated: bool = False) -> Item:
    """Run ``job`` here and now; returns the finished item (see ``Launch.run``)."""
    from ..agent import Agent

    if not isinstance(isolated, bool):
        raise ParameterError(f"isolated must be true or false, got {shown(isolated)}")
    if isolated:
        runner = client.queue(queue or client.config.default_queue)["runner"]
        if runner != "local":
            raise ParameterError(f"--isolated runs on local queues; queue "
                                 f"{queue or client.config.default_queue!r} uses the {runner} "
                                 "runner (its image is the job's environment already)")
    agent = Agent(client.store, client.config, [], register=False)
    agent.kernel_pool_size = 0  # one run, then the agent ends: a warm kernel would be waste
    agent.environment = "isolated" if isolated else None
    try:
        item = client.submit(job, queue=queue, parameters=parameters, overrides=overrides,
                             timeout=timeout, template_pairs=template_pairs,
                             lease_owner=agent.id)
        launched = None
        with cancel_on_interrupt(client, item.id, on_interrupt):
            if on_start is not None:
                on_start(item)
            launched = agent.launch(item.info()) is not None
        if launched is None:
            # Ctrl-C came before or during the start. An item not started yet is ours to
            # close: the start sees the cancel and records it; a started one is followed.
            info = item.info()
            launched = info["state"] != LEASED or agent.launch(info) is not None
        if launched:
            # Runs that do not renew their own lease (docker) rely on us meanwhile.
            follow_to_end(client, item.id, write=write, tick=agent.renew_held_runs,
                          on_interrupt=on_interrupt, on_progress=on_progress)
    finally:
        agent.close()
    item.info()
    return item


@contextlib.contextmanager
def cancel_on_interrupt(client: Launch, item_id: str,
                        on_interrupt: Callable[[], Any] | None = None) -> Iterator[None]:
    """Ctrl-C between a foreground run's submit and its follow cancels the item (and the
    run goes on to show its end) instead of leaving it queued behind a traceback."""
    try:
        yield
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt()
        client.cancel(item_id)


def follow_to_end(client: Launch, item_id: str, *, write: Callable[[str], Any] | None = None,
                  tick: Callable[[], Any] | None = None,
                  on_interrupt: Callable[[], Any] | None = None,
                  on_progress: Callable[[Any], Any] | None = None) -> Any:
    """Follow the item's log until it is finished (the final item); Ctrl-C cancels it and
    keeps following from the last byte written, so the run's end is still shown and the log
    before the Ctrl-C is not printed twice."""
    written = 0

    def counted(text: str) -> None:
        nonlocal written
        written += len(text.encode())  # first: a Ctrl-C inside write must not replay it
        if write is not None:
            write(text)

    while True:
        try:
            return client.follow(item_id, counted, tick=tick, on_progress=on_progress,
                                 offset=written)
        except KeyboardInterrupt:
            if on_interrupt is not None:
                on_interrupt()
            client.cancel(item_id)


__all__ = ["cancel_on_interrupt", "follow_to_end", "run_foreground"]
