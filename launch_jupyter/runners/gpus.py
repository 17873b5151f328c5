"""GPUs on one machine: which ones an agent may hand out, and to which running item.

A local queue asks for ``gpus_per_item: N`` in its config; an agent started with ``--gpus
0,1,2,3`` (default: ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``, else none) gives each
such item N GPUs nobody else holds, as the job's ``CUDA_VISIBLE_DEVICES``, and claims from
the queue only while it has N free (docs/usage.md, "GPUs").
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import LaunchError

#: the queue config key (top level or under ``template``) of a local queue
GPUS_PER_ITEM = "gpus_per_item"
#: a GPU as CUDA_VISIBLE_DEVICES names it: an index, or a GPU-/MIG- UUID
_GPU = re.compile(r"[0-9]+|(GPU|MIG)-[A-Za-z0-9:/-]+")
_SMI_LINE = re.compile(r"^GPU (\d+):", re.MULTILINE)


def gpus_per_item(config: Mapping[str, Any] | None) -> int:
    """How many GPUs each item of a queue with ``config`` needs (0 when it says nothing).

    Raises LaunchError naming the value when it is not a whole number 0 or more."""
    config = config or {}
    template = config.get("template") or {}
    value = config.get(GPUS_PER_ITEM, template.get(GPUS_PER_ITEM)
                       if isinstance(template, Mapping) else None)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LaunchError(f"queue config {GPUS_PER_ITEM} must be a whole number 0 or more "
                          f"(a queue setting, not a template variable), got {value!r}")
    return value


def parse_gpus(value: str | Sequence[int | str] | None, what: str = "--gpus") -> list[str]:
    """GPU ids from ``"0,1,2"``, ``[0, 1]`` or ``"none"``/``""`` (none); LaunchError naming
    a bad or repeated one."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        tokens = [] if text.lower() in ("", "none", "-1") else [t.strip() for t in text.split(",")]
    elif isinstance(value, Sequence):
        tokens = [str(t) if isinstance(t, (int, str)) and not isinstance(t, bool) else repr(t)
                  for t in value]
    else:
        raise LaunchError(f"{what} must be GPU indices such as 0,1,2 (or none), got {value!r}")
    for token in tokens:
        if not _GPU.fullmatch(token):
            raise LaunchError(f"{what}: {token!r} is no GPU index; give indices such as 0,1,2 "
                              "(or GPU UUIDs as nvidia-smi -L shows them), or none")
    if len(set(tokens)) != len(tokens):
        raise LaunchError(f"{what}: a GPU is named twice in {','.join(tokens)}")
    return tokens


def detect_gpus() -> list[str]:
    """This machine's GPUs as an agent sees them by default: ``CUDA_VISIBLE_DEVICES`` when
    set, else the indices ``nvidia-smi -L`` lists, else none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        # As CUDA reads it: the entries before the first it cannot read (Slurm sets
        # NoDevFiles where a job has no GPUs), so an agent does not refuse to start on it.
        tokens = [token.strip() for token in visible.split(",")]
        readable = tokens[:next((i for i, t in enumerate(tokens) if not _GPU.fullmatch(t)),
                                len(tokens))]
        return parse_gpus(",".join(readable), "CUDA_VISIBLE_DEVICES")
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10,
                                check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return _SMI_LINE.findall(listed.stdout) if listed.returncode == 0 else []


def as_recorded(gpus: Sequence[str]) -> list[int | str]:
    """GPU ids as an item's ``run.gpus`` records them: indices as numbers."""
    return [int(g) if g.isdigit() else g for g in gpus]


class GpuPool:
    """The GPUs an agent hands out, and which item holds which. Thread-safe."""

    def __init__(self, gpus: Sequence[str]) -> None:
        self.all: list[str] = list(gpus)
        self._held: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def free(self) -> list[str]:
        """The GPUs no item holds, in the agent's order."""
        with self._lock:
            busy = {g for held in self._held.values() for g in held}
            return [g for g in self.all if g not in busy]

    def fits(self, need: int) -> bool:
        """Whether ``need`` GPUs are free now (0 always fits)."""
        return need <= 0 or len(self.free()) >= need

    def take(self, item_id: str, need: int) -> list[str] | None:
        """Give ``item_id`` the first ``need`` free GPUs; None when fewer are free."""
        with self._lock:
            busy = {g for held in self._held.values() for g in held}
            free = [g for g in self.all if g not in busy]
            if len(free) < need:
                return None
            self._held[item_id] = free[:need]
            return list(self._held[item_id])

    def hold(self, item_id: str, gpus: Sequence[str]) -> None:
        """Mark ``gpus`` (those of this pool) as held by ``item_id``: a run an earlier agent
        on this machine started, found running when this one starts."""
        mine = [g for g in gpus if g in self.all]
        if mine:
            with self._lock:
                self._held[item_id] = mine

    def release(self, item_id: str) -> None:
        """The item ended (or never started): its GPUs are free again."""
        with self._lock:
            self._held.pop(item_id, None)

    def holders(self) -> list[str]:
        """Items holding GPUs now."""
        with self._lock:
            return list(self._held)
