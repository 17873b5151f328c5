"""Dependencies: imports found by ``ast``, mapped to pinned distributions of this environment.

The module -> distribution map (``importlib.metadata.packages_distributions``) is slow to build,
so it is cached in-process and on disk, keyed by a fingerprint of the environment that changes
whenever something is installed. No ``pip freeze`` and no subprocess.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as metadata
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Modules that are never requirements: our own package (the runner provides it).
NEVER_REQUIRED = frozenset({"launch_jupyter", "__future__", "__main__"})
CACHE_VERSION = 1
KEEP_CACHES = 16

_PIN_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;,]+)\s*$")
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# pip options whose value is the next argument (it is not a requirement).
_PIP_VALUE_OPTIONS = frozenset(
    {
        "-r",
        "--requirement",
        "-c",
        "--constraint",
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "-t",
        "--target",
        "--prefix",
        "--root",
        "--trusted-host",
        "--platform",
        "--python-version",
        "--implementation",
        "--abi",
        "--progress-bar",
        "--src",
        "-e",
        "--editable",
    }
)
_HARMLESS_OPTIONS = frozenset({"-q", "-qq", "-qqq", "--quiet", "-U", "--upgrade", "--no-cache-dir",
                               "-y", "--yes", "--disable-pip-version-check"})
_PYTHON_WORD = re.compile(r"^(\{sys\.executable\}|\$\{?PYTHON\}?|(\S*/)?python[\d.]*)$")
_PIP_WORD = re.compile(r"^(\S*/)?pip[\d.]*$")
_EXPANDED = re.compile(r"\{[^}]*\}|\$")
_memory: dict[str, dict] = {}


def imported_modules(source: str) -> set[str]:
    """Top-level names of every module ``source`` imports (``import a.b`` gives ``a``).

    Relative imports are left out; raises SyntaxError if ``source`` is not Python.
    """
    return modules_in(ast.parse(source))


def modules_in(tree: ast.AST) -> set[str]:
    """Top-level names of the modules an already parsed tree imports."""
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def is_stdlib(module: str) -> bool:
    """True for modules of the standard library (and ``__future__``)."""
    return module in sys.stdlib_module_names or module in ("__future__", "__main__")


@dataclass
class InstallLine:
    """What one install command asks for: ``tool`` is pip, conda, mamba, micromamba or uv."""

    tool: str
    specifiers: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # pip options that are not recorded
    dynamic: list[str] = field(default_factory=list)  # {var} / $VAR words IPython expands


def install_line(command: str) -> InstallLine | None:
    """The install a shell command (``!...``) or magic line (``pip install x`` for ``%pip``)
    does, or None. The command ends at its first shell operator (``> | && ; 2>``), ``\\``
    continuations are joined, and ``python -m pip`` / ``{sys.executable} -m pip`` count as pip.
    """
    from launch_jupyter.jobs.cells import shell_words

    words = shell_words(command)
    if len(words) >= 3 and _PYTHON_WORD.match(words[0]) and words[1:3] == ["-m", "pip"]:
        words = ["pip", *words[3:]]
    if len(words) >= 2 and words[0] == "uv" and words[1] in ("pip", "add"):
        return InstallLine("uv", [w for w in words[2:] if not w.startswith("-")])
    if len(words) < 2 or words[1] != "install":
        return None
    tool = "pip" if _PIP_WORD.match(words[0]) else words[0]
    if tool not in ("pip", "conda", "mamba", "micromamba"):
        return None
    line = InstallLine(tool)
    args = iter(words[2:])
    for word in args:
        if word in _PIP_VALUE_OPTIONS:
            line.ignored.append(f"{word} {next(args, '')}".strip())
        elif word.startswith("-"):
            if word not in _HARMLESS_OPTIONS:
                line.ignored.append(word)
        elif expands(word):
            line.dynamic.append(word)
        elif requirement_name(word) != "pip":  # `pip install -U pip` upgrades the installer
            line.specifiers.append(word)
    return line


def expands(word: str) -> bool:
    """Whether IPython fills ``word`` in when the line runs (``{var}``, ``$VAR``)."""
    return bool(_EXPANDED.search(word))


def pip_install_specifiers(line: str) -> tuple[list[str], list[str]] | None:
    """Requirement specifiers of a ``%pip install ...`` / ``!pip install ...`` line.

    Returns ``(specifiers, ignored_options)``, or None if the line is not a pip install.
    """
    text = line.strip()
    if text[:1] not in ("%", "!"):
        return None
    parsed = install_line(text[1:])
    if parsed is None or parsed.tool != "pip":
        return None
    return parsed.specifiers, parsed.ignored


def requirement_name(specifier: str) -> str | None:
    """The normalised distribution name a requirement specifier is about (None for URLs/paths)."""
    if "/" in specifier or "\\" in specifier or ":" in specifier.split("@")[0]:
        return None
    match = _NAME_RE.match(specifier)
    return normalise(match.group(1)) if match else None


def normalise(dist: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", dist).lower()


# -- environment map ------------------------------------------------------------------------


def environment_fingerprint() -> str:
    """sha256 over ``sys.prefix``, ``sys.version`` and the mtimes of ``sys.path`` directories."""
    digest = hashlib.sha256()
    digest.update(sys.prefix.encode())
    digest.update(b"\0" + sys.version.encode())
    cwd = os.getcwd()
    for entry in sys.path:
        # The working directory changes with every saved file; installs never go there.
        if entry in ("", ".") or os.path.abspath(entry) == cwd:
            continue
        try:
            stat = os.stat(entry)
        except OSError:
            continue
        if os.path.isdir(entry):
            digest.update(f"\0{entry}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where the module -> distribution map is cached: ``$XDG_CACHE_HOME/launch-jupyter``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "launch-jupyter"


def _build_map() -> dict:
    modules: dict[str, list[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        modules[module] = list(dict.fromkeys(dists))
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        meta = dist.metadata  # each .metadata (and .version) reads and parses the file again
        name = meta["Name"]
        # First one on sys.path wins, as for importlib.metadata.version().
        if name and normalise(name) not in versions:
            versions[normalise(name)] = meta["Version"]
    return {"cache_version": CACHE_VERSION, "modules": modules, "versions": versions}


def save_cache(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to the cache file ``path`` atomically and keep only the
    ``KEEP_CACHES`` newest files of its kind (the name before the first '-'; several
    environments may share the folder). A read-only home only costs speed."""
    kind = path.name.split("-")[0]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{kind}-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(tmp, path)
        for stale in sorted(path.parent.glob(f"{kind}-*.json"),
                            key=lambda p: p.stat().st_mtime, reverse=True)[KEEP_CACHES:]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass


def environment_map() -> dict:
    """``{"modules": {module: [dist, ...]}, "versions": {normalised dist: version}}`` (cached)."""
    fingerprint = environment_fingerprint()
    cached = _memory.get(fingerprint)
    if cached is not None:
        return cached
    path = cache_dir() / f"dists-{fingerprint}.json"
    data = None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict) and loaded.get("cache_version") == CACHE_VERSION:
            data = loaded
    except (OSError, ValueError):
        pass
    if data is None:
        data = _build_map()
        save_cache(path, data)
    _memory.clear()
    _memory[fingerprint] = data
    return data


def resolve_requirements(modules: Iterable[str]) -> tuple[list[str], list[str]]:
    """Pin the distributions providing ``modules``: ``(["numpy==2.4.6", ...], [unresolved])``.

    Standard-library modules and launch_jupyter are skipped; modules no installed
    distribution provides are returned as unresolved.
    """
    env = environment_map()
    requirements: dict[str, str] = {}
    unresolved: list[str] = []
    for module in sorted(set(modules)):
        if module in NEVER_REQUIRED or is_stdlib(module):
            continue
        dists = env["modules"].get(module)
        if not dists:
            unresolved.append(module)
            continue
        for dist in dists:
            key = normalise(dist)
            if key == "launch-jupyter":
                continue
            version = env["versions"].get(key)
            requirements[key] = f"{dist}=={version}" if version else dist
    return sorted(requirements.values(), key=str.lower), unresolved


def environment_stamp() -> tuple[tuple[str, int], ...]:
    """What changes when a distribution is installed or removed in this environment: the
    modification times of the folders on ``sys.path`` (pip adds and deletes ``*.dist-info``
    folders there). A cache of ``check_requirements`` keyed on it needs no expiry."""
    stamp = []
    for entry in sys.path:
        try:
            stamp.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return tuple(stamp)


def check_requirements(requirements: Sequence[str]) -> list[str]:
    """Messages for pinned ``dist==version`` requirements this environment does not satisfy."""
    problems = []
    for requirement in requirements:
        match = _PIN_RE.match(requirement)
        if not match:
            continue
        dist, _extras, wanted = match.groups()
        try:
            installed = metadata.version(dist)
        except metadata.PackageNotFoundError:
            problems.append(f"{dist}=={wanted} is pinned but not installed")
            continue
        if installed != wanted:
            problems.append(f"{dist}=={wanted} is pinned but {installed} is installed")
    return problems
