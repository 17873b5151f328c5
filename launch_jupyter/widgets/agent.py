"""Agent status panel: this kernel's agent (running items, start/stop) and the store's live
agents with their heartbeats."""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as w

from ..errors import LaunchError
from ..service.kernel import kernel_agent, start_kernel_agent, stop_kernel_agent
from ..views.html import agents_html, esc
from .refresh import Refresher


class AgentPanel(w.VBox):
    """Start/stop this kernel's agent and watch every agent's heartbeat."""

    def __init__(self, client: Any, *, interval: float = 2.0, **kwargs: Any) -> None:
        self.client = client
        self._lock = threading.RLock()
        self.view = w.HTML()
        self.queues = w.Text(placeholder="all queues", description="queues")
        self.max_jobs = w.BoundedIntText(value=1, min=1, max=64, description="max jobs")
        self.start_button = w.Button(description="Start agent", icon="play")
        self.stop_button = w.Button(description="Stop agent", icon="stop")
        self.feedback = w.HTML()
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        controls = w.HBox([self.queues, self.max_jobs, self.start_button, self.stop_button])
        super().__init__([self.view, controls, self.feedback], **kwargs)
        self.refresh()
        self.refresher = Refresher(self, self.refresh, interval).start()

    def refresh(self) -> None:
        with self._lock:
            agent = kernel_agent()
            status = agent.status() if agent is not None else None
            html = agents_html(status, self.client.agents())
            if self.view.value != html:
                self.view.value = html
            self.start_button.disabled = agent is not None
            self.stop_button.disabled = agent is None

    def start(self) -> None:
        queues = [q.strip() for q in self.queues.value.split(",") if q.strip()]
        try:
            agent = start_kernel_agent(self.client, queues, self.max_jobs.value)
        except LaunchError as err:
            self.feedback.value = f"<span style='color:#dc2626'>{esc(err)}</span>"
            return
        self.feedback.value = f"<span style='color:#16a34a'>started {esc(agent.id)}</span>"
        self.refresh()

    def stop(self) -> None:
        agent = stop_kernel_agent()
        self.feedback.value = ("no agent was running" if agent is None else
                               f"stopped {esc(agent.id)}; its runs keep going")
        self.refresh()

    def close(self) -> None:
        self.refresher.stop()
        super().close()


__all__ = ["AgentPanel", "agents_html"]
