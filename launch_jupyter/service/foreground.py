"""The foreground run (``jupyter launch run``, ``%launch run``): submit to a private agent,
start at once, follow the log to the end; Ctrl-C cancels and keeps following."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

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
                   on_progress: Callable[[Any], Any] | None = None) -> Item:
    """Run ``job`` here and now; returns the finished item (see ``Launch.run``)."""
    from ..agent import Agent

    agent = Agent(client.store, client.config, [], register=False)
    try:
        item = client.submit(job, queue=queue, parameters=parameters, overrides=overrides,
                             timeout=timeout, template_pairs=template_pairs,
                             lease_owner=agent.id)
        if on_start is not None:
            on_start(item)
        if agent.launch(item.info()) is not None:
            final = None
            while final is None:
                try:
                    # Runs that do not renew their own lease (docker) rely on us meanwhile.
                    final = client.follow(item.id, write or (lambda _text: None),
                                          tick=agent.renew_held_runs, on_progress=on_progress)
                except KeyboardInterrupt:
                    if on_interrupt is not None:
                        on_interrupt()
                    client.cancel(item.id)
    finally:
        agent.close()
    item.info()
    return item


__all__ = ["run_foreground"]
