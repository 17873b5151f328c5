"""A job's lock: every installed distribution its requirements need, pinned.

Capture pins the distributions a notebook imports (``deps.resolve_requirements``); that is
not enough to rebuild an environment, because their own requirements (numpy and scipy under
scikit-learn) are left to whatever a resolver picks that day. The lock walks the
``Requires-Dist`` metadata of the installed distributions (markers evaluated for this Python
and platform, extras followed) and pins the whole closure. The direct requirements stay listed
apart, so a reader sees what the notebook asked for and what came with it.

The walk reads a map of every installed distribution's name, version and requirements,
built once per environment and cached in-process and on disk beside the module map of
``deps`` (same fingerprint: it changes when anything is installed). No resolver runs here
and nothing is downloaded: a requirement that is not installed, or whose
installed version does not satisfy what a ``%pip install`` line asked for, is kept as written
and listed under ``unlocked`` (the environment builder's resolver picks it, and its own
requirements).

The closure itself is cached too, per environment and set of requirements, so capturing the
same notebook again neither imports ``packaging`` nor walks the map (issue #18).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import platform
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from launch_jupyter.jobs.deps import (
    cache_dir,
    environment_fingerprint,
    normalise,
    save_cache,
)
from launch_jupyter.jobs.envcache import EnvCache

if TYPE_CHECKING:
    from packaging.requirements import Requirement

LOCK_FORMAT = 1
#: never locked: the runner provides launch-jupyter (and its stand-in) itself
NOT_LOCKED = frozenset({"launch-jupyter"})
REQUIRES_CACHE_VERSION = 1
_memory: dict[str, dict[str, list]] = {}
#: requirements (JSON) -> [packages, unlocked]; bump the version when ``closure`` would
#: answer otherwise for the same environment
_closures = EnvCache("closures", version=1, keep=64)


def _build_requires() -> dict[str, list]:
    found: dict[str, list] = {}
    for dist in metadata.distributions():
        meta = dist.metadata  # each .metadata (.version, .requires) parses the file again
        name = meta["Name"]
        # First one on sys.path wins, as for importlib.metadata.distribution().
        if name and normalise(name) not in found:
            # Requires-Dist as dist.requires reads it, or an egg-info's requires.txt
            requires = meta.get_all("Requires-Dist") or dist.requires or []
            found[normalise(name)] = [name, meta["Version"], list(requires)]
    return found


def installed_requires() -> dict[str, list]:
    """``{normalised name: [Name, version, [Requires-Dist lines]]}`` of this environment,
    cached in-process and on disk by the environment's fingerprint."""
    fingerprint = environment_fingerprint()
    cached = _memory.get(fingerprint)
    if cached is not None:
        return cached
    path = cache_dir() / f"requires-{fingerprint}.json"
    data = None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if loaded.get("cache_version") == REQUIRES_CACHE_VERSION:
            data = loaded["dists"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass
    if data is None:
        data = _build_requires()
        save_cache(path, {"cache_version": REQUIRES_CACHE_VERSION, "dists": data})
    _memory.clear()
    _memory[fingerprint] = data
    return data


def _satisfies(requirement: Requirement, version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    if not requirement.specifier:
        return True
    try:
        return requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def _marker_holds(requirement: Requirement, extras: Sequence[str]) -> bool:
    """Whether ``requirement`` applies here when its distribution was asked with ``extras``."""
    from packaging.markers import UndefinedEnvironmentName

    if requirement.marker is None:
        return True
    for extra in (*extras, ""):
        try:
            if requirement.marker.evaluate({"extra": extra}):
                return True
        except UndefinedEnvironmentName:
            return False
    return False


def closure(requirements: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(packages, unlocked)``: pinned ``Name==version`` of every installed distribution the
    ``requirements`` need (themselves included), and the requirements that could not be
    pinned from this environment (kept as written in ``packages``). Cached in-process and on
    disk by the environment's fingerprint, like the map it walks."""
    key = json.dumps(list(requirements))
    found = _closures.get(key)
    if isinstance(found, list) and len(found) == 2:
        return list(found[0]), list(found[1])
    packages, unlocked = _walk(requirements)
    _closures.put(key, [packages, unlocked])
    return packages, unlocked


def _walk(requirements: Sequence[str]) -> tuple[list[str], list[str]]:
    """``closure`` computed: the walk of the installed distributions' requirements."""
    from packaging.requirements import InvalidRequirement, Requirement

    installed = installed_requires()
    pinned: dict[str, str] = {}
    unlocked: dict[str, str] = {}
    extras_seen: dict[str, set[str]] = {}
    pending: list[tuple[Requirement | None, str, bool]] = []
    for text in requirements:
        try:
            pending.append((Requirement(text), text, True))
        except InvalidRequirement:
            unlocked[text] = text  # a URL, a path: the builder's resolver reads it as is
    while pending:
        requirement, text, direct = pending.pop()
        assert requirement is not None
        key = normalise(requirement.name)
        if key in NOT_LOCKED:
            continue
        extras = set(requirement.extras)
        if key in pinned and extras <= extras_seen.get(key, set()):
            continue
        dist = installed.get(key)
        if dist is None or not _satisfies(requirement, dist[1]):
            # Not installed, or a %pip line asked for another version: leave it to the builder.
            if key not in pinned:
                unlocked[key] = text if direct else str(_without_marker(requirement))
            continue
        unlocked.pop(key, None)
        pinned[key] = f"{dist[0]}=={dist[1]}"
        extras_seen.setdefault(key, set()).update(extras)
        for line in dist[2]:
            try:
                needed = Requirement(line)
            except InvalidRequirement:
                continue
            if _marker_holds(needed, sorted(extras_seen[key])):
                pending.append((needed, line, False))
    packages = list(pinned.values()) + [u for k, u in unlocked.items() if k not in pinned]
    return sorted(packages, key=str.lower), sorted(unlocked.values(), key=str.lower)


def _without_marker(requirement: Requirement) -> Requirement:
    from packaging.requirements import Requirement

    copy = Requirement(str(requirement))
    copy.marker = None
    return copy


def python_minor(version: str | None) -> str:
    """``3.11`` of ``3.11.4`` (what an environment's interpreter must match)."""
    return ".".join((version or platform.python_version()).split(".")[:2])


def lock_for(requirements: Sequence[str], python: str | None = None) -> dict[str, Any]:
    """The lock of a job whose direct requirements are ``requirements``:
    ``{"format", "python", "direct", "packages", "unlocked", "hash"}``."""
    packages, unlocked = closure(requirements)
    lock: dict[str, Any] = {
        "format": LOCK_FORMAT,
        "python": python or platform.python_version(),
        "direct": list(requirements),
        "packages": packages,
        "unlocked": unlocked,
    }
    lock["hash"] = lock_hash(lock)
    return lock


def lock_hash(lock: Mapping[str, Any]) -> str:
    """sha256 of what an environment built from ``lock`` holds: its Python (major.minor) and
    its packages. Environments are cached under it (``runners/envs.py``)."""
    key = {"python": python_minor(lock.get("python")), "packages": list(lock["packages"])}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def job_lock(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A stored job's lock; a job captured before locks existed gets one made of its pinned
    requirements alone (nothing more is known about the environment it came from)."""
    lock = spec.get("lock")
    if isinstance(lock, Mapping) and isinstance(lock.get("packages"), list):
        return dict(lock)
    requirements = list(spec.get("requirements") or [])
    made: dict[str, Any] = {"format": LOCK_FORMAT, "python": spec.get("python"),
                            "direct": requirements, "packages": sorted(requirements,
                                                                       key=str.lower),
                            "unlocked": []}
    made["hash"] = lock_hash(made)
    return made


def requirements_txt(lock: Mapping[str, Any]) -> str:
    """The lock as a pip/uv requirements file (a comment names the Python it was made on)."""
    lines = [f"# launch-jupyter lock {str(lock.get('hash', ''))[:12]}: Python "
             f"{lock.get('python')}; direct: {', '.join(lock.get('direct') or []) or 'none'}"]
    lines += list(lock["packages"])
    return "\n".join(lines) + "\n"
