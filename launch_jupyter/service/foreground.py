"""The foreground run (``jupyter launch run``, ``%launch run``): submit to a private agent,
start at once, follow the log to the end; Ctrl-C cancels and keeps following."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError, shown
from ..store import JobRecord

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
        if on_start is not None:
            on_start(item)
        if agent.launch(item.info()) is not None:
            # Runs that do not renew their own lease (docker) rely on us meanwhile.
            follow_to_end(client, item.id, write=write, tick=agent.renew_held_runs,
                          on_interrupt=on_interrupt, on_progress=on_progress)
    finally:
        agent.close()
    item.info()
    return item


def follow_to_end(client: Launch, item_id: str, *, write: Callable[[str], Any] | None = None,
                  tick: Callable[[], Any] | None = None,
                  on_interrupt: Callable[[], Any] | None = None,
                  on_progress: Callable[[Any], Any] | None = None) -> Any:
    """Follow the item's log until it is finished (the final item); Ctrl-C cancels it and
    keeps following, so the run's end is still shown."""
    while True:
        try:
            return client.follow(item_id, write or (lambda _text: None), tick=tick,
                                 on_progress=on_progress)
        except KeyboardInterrupt:
            if on_interrupt is not None:
                on_interrupt()
            client.cancel(item_id)


__all__ = ["follow_to_end", "run_foreground"]
