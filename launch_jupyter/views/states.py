"""How a state looks (colour and symbol), and the values the lab extension reads from
``GET /launch/api/meta`` instead of hard-coding them."""

from __future__ import annotations

from typing import Any

from ..store import STATES, TERMINAL

#: state -> (colour, symbol); the symbol keeps the state readable without colour.
STATE_STYLE: dict[str, tuple[str, str]] = {
    "queued": ("#6b7280", "\u25cb"),      # ○
    "leased": ("#2563eb", "\u25d4"),      # ◔
    "running": ("#2563eb", "\u25b6"),     # ▶
    "succeeded": ("#16a34a", "\u2714"),   # ✔
    "failed": ("#dc2626", "\u2716"),      # ✖
    "cancelled": ("#a16207", "\u2298"),   # ⊘
    # not a state of its own: a cancelled sweep trial whose error.stage is "pruned"
    "pruned": ("#a16207", "\u2702"),      # ✂
}

#: Priorities, highest first (the names ``submit --priority`` takes).
PRIORITIES = ("critical", "high", "medium", "low")
DEFAULT_PRIORITY = "medium"


def is_terminal(state: str) -> bool:
    """True for succeeded, failed and cancelled: the item never changes again."""
    return state in TERMINAL


def colour(state: str) -> str:
    """The colour of ``state`` (grey for an unknown one)."""
    return STATE_STYLE.get(state, ("#6b7280", "?"))[0]


def symbol(state: str) -> str:
    """The symbol of ``state`` (``?`` for an unknown one)."""
    return STATE_STYLE.get(state, ("#6b7280", "?"))[1]


def label(item: dict) -> str:
    """The state a view shows: ``pruned`` for a sweep trial hyperband stopped, else the
    item's state."""
    if item.get("state") == "cancelled" and (item.get("error") or {}).get("stage") == "pruned":
        return "pruned"
    return item.get("state", "")


def meta(config: Any, runners: dict[str, str] | None = None) -> dict[str, Any]:
    """What a front end needs to know to render and submit like the Python side does."""
    return {
        "states": list(STATES),
        "terminal": [s for s in STATES if s in TERMINAL],
        # every label a view shows: the states, and "pruned" (a cancelled sweep trial whose
        # error.stage is "pruned")
        "symbols": {s: symbol(s) for s in STATE_STYLE},
        "colours": {s: colour(s) for s in STATE_STYLE},
        "priorities": list(PRIORITIES),
        "default_priority": DEFAULT_PRIORITY,
        "default_queue": config.default_queue,
        "lease_ttl": config.lease_ttl,
        "runners": dict(runners or {}),
    }


__all__ = ["DEFAULT_PRIORITY", "PRIORITIES", "STATES", "STATE_STYLE", "colour", "is_terminal",
           "label", "meta", "symbol"]
