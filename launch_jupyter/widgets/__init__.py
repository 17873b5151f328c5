"""ipywidgets panels: the queue table, item detail with live log, submit form, agent status.

Imported lazily; the HTML and text they show come from ``launch_jupyter.views``.
"""

from __future__ import annotations

from typing import Any

_PANELS = {
    "QueuePanel": "queue",
    "ItemDetail": "item",
    "SubmitForm": "form",
    "AgentPanel": "agent",
    "ResultsPanel": "results",
}

__all__ = sorted(_PANELS)


def __getattr__(name: str) -> Any:
    if name in _PANELS:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_PANELS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
