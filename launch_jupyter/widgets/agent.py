"""Agent status panel: this kernel's agent (running items, start/stop) and the store's live
agents with their heartbeats."""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as w

from ..errors import LaunchError
from .refresh import Refresher
from .render import _CELL, _TABLE_CSS, esc, span


def agents_html(kernel_status: dict | None, agents: list[dict]) -> str:
    """This kernel's agent, then every live agent of the store."""
    if kernel_status is None:
        mine = "<i style='color:#6b7280'>no agent in this kernel</i>"
    else:
        active = ", ".join(kernel_status["active"]) or "none"
        err = (f" <span style='color:#dc2626'>error: {esc(kernel_status['error'])}</span>"
               if kernel_status.get("error") else "")
        unserved = "".join(
            f"<div style='color:#b45309'>not serving queue <b>{esc(name)}</b> (its items wait "
            f"for another agent): {esc(problem)}</div>"
            for name, problem in (kernel_status.get("unserved") or {}).items())
        mine = (f"this kernel: <b>{esc(kernel_status['id'])}</b> serving "
                f"{esc(', '.join(kernel_status['queues']))} (max {kernel_status['max_jobs']})"
                f"; running items: <code>{esc(active)}</code>{err}{unserved}")
    head = "".join(f"<th style='{_CELL};color:#6b7280'>{h}</th>"
                   for h in ("agent", "host", "pid", "queues", "running", "heartbeat"))
    rows = "".join(
        f"<tr data-agent='{esc(a['id'])}'>"
        + "".join(f"<td style='{_CELL}'>{esc(v)}</td>" for v in (
            a["id"], a["host"], a["pid"], ", ".join(a["queues"]), a["running"],
            f"{span(a['heartbeat_age'])} ago"))
        + "</tr>" for a in agents)
    table = (f"<table style='{_TABLE_CSS}'><thead><tr>{head}</tr></thead><tbody>{rows}"
             f"</tbody></table>" if agents else
             "<i style='color:#6b7280'>no live agents in the store</i>")
    return f"<div>{mine}</div>{table}"


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
        from ..magics import kernel_agent

        with self._lock:
            agent = kernel_agent()
            status = agent.status() if agent is not None else None
            html = agents_html(status, self.client.agents())
            if self.view.value != html:
                self.view.value = html
            self.start_button.disabled = agent is not None
            self.stop_button.disabled = agent is None

    def start(self) -> None:
        from ..magics import start_kernel_agent

        queues = [q.strip() for q in self.queues.value.split(",") if q.strip()]
        try:
            agent = start_kernel_agent(self.client, queues, self.max_jobs.value)
        except LaunchError as err:
            self.feedback.value = f"<span style='color:#dc2626'>{esc(err)}</span>"
            return
        self.feedback.value = f"<span style='color:#16a34a'>started {esc(agent.id)}</span>"
        self.refresh()

    def stop(self) -> None:
        from ..magics import stop_kernel_agent

        agent = stop_kernel_agent()
        self.feedback.value = ("no agent was running" if agent is None else
                               f"stopped {esc(agent.id)}; its runs keep going")
        self.refresh()

    def close(self) -> None:
        self.refresher.stop()
        super().close()


__all__ = ["AgentPanel", "agents_html"]
