"""Capture a notebook, a script or a list of cells as a job: files, parameters, requirements.

The captured form is canonical, so its digest only changes when what runs changes: outputs,
execution counts, cell ids and run metadata are dropped, and ``%launch`` lines (the submit
command itself) are replaced by a fixed comment so that a job never launches itself.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import io
import json
import os
import platform
import re
import tokenize
import unicodedata
import warnings as _warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from launch_jupyter.errors import CaptureError, ParameterError, SecretError
from launch_jupyter.jobs import cells as cellscan
from launch_jupyter.jobs import deps
from launch_jupyter.jobs.gitinfo import GitInfo
from launch_jupyter.jobs.lock import lock_for
from launch_jupyter.jobs.names import default_job_name, validate_name
from launch_jupyter.jobs.parameters import (
    ENV_VAR,
    PARAMETERS_TAG,
    SKIP_TAG,
    parse_constraint_comment,
    schema_for,
    to_json_value,
)
from launch_jupyter.jobs.secrets import SECRET_WORDS, looks_like_secret  # noqa: F401

MODES = ("notebook", "script")
DEFAULT_KERNEL = "python3"
CELLS_SOURCE = "<cells>"
LAUNCH_LINE_COMMENT = "# launch-jupyter: %launch line left out of the job"
LAUNCH_CELL_COMMENT = "# launch-jupyter: %%launch cell left out of the job"
SKIPPED_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".git", ".hg", ".svn"})

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LAUNCH_LINE = re.compile(r"%(launch\b|(re)?load_ext\s+launch_jupyter\b)")
_MAGIC_ASSIGN = re.compile(r"[A-Za-z_][\w.]*\s*=\s*[%!]")
#: %run options whose value is the next word (IPython's "nidtN:b:pD:l:rs:T:em:G")
_RUN_VALUE_OPTIONS = frozenset({"-N", "-b", "-D", "-l", "-s", "-T"})
#: extensions IPython ships, which %load_ext finds as IPython.extensions.X
#: (IPython.core.extensions.BUILTINS_EXTS): they need IPython, not a package of their name
_IPYTHON_EXTENSIONS = frozenset({"autoreload", "storemagic"})
_LAUNCH_ASSIGN = re.compile(r"([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=\s*%launch\b")
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
#: mime types nbformat splits into lines besides text/* (``nbformat.v4.rwbase``)
_SPLIT_MIMES = frozenset({"application/javascript", "image/svg+xml"})
# Script mode: read LAUNCH_PARAMETERS without needing launch_jupyter inside the job.
_SCRIPT_OVERRIDES = (
    "# launch-jupyter: parameter overrides (JSON in $LAUNCH_PARAMETERS) replace the defaults\n"
    "import json as _launch_json, os as _launch_os\n"
    f'globals().update(_launch_json.loads(_launch_os.environ.get("{ENV_VAR}") or "{{}}"))\n'
    "del _launch_json, _launch_os"
)


@dataclass
class JobFile:
    """One file of a job: a relative posix path and its bytes."""

    path: str
    content: bytes

    @property
    def sha256(self) -> str:
        """Hex sha256 of the content."""
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class CapturedJob:
    """Everything a job version is made of, before it is stored."""

    name: str
    mode: str
    entrypoint: str
    kernel: str | None
    python: str
    parameters: dict
    schema: dict
    requirements: list[str]
    env: dict[str, str]
    files: list[JobFile]
    source_path: str
    warnings: list[str] = field(default_factory=list)
    #: imports neither installed nor covered by a pip line; the conditional ones apart
    unresolved: list[str] = field(default_factory=list)
    unresolved_conditional: list[str] = field(default_factory=list)
    #: the name came from the file's name (a clash with another file's job is warned about)
    default_name: bool = False
    #: the closure of installed distributions (jobs/lock.py); its hash is in the digest
    lock: dict | None = None
    #: remote, commit, branch, diff (jobs/gitinfo.py); never in the digest
    git: dict | None = None

    def file(self, path: str) -> JobFile:
        """The job file at ``path`` (KeyError if there is none)."""
        for job_file in self.files:
            if job_file.path == path:
                return job_file
        raise KeyError(path)

    def _determining(self) -> dict:
        return {
            "mode": self.mode,
            "entrypoint": self.entrypoint,
            "kernel": self.kernel,
            "python": ".".join(self.python.split(".")[:2]),
            "parameters": self.parameters,
            "schema": self.schema,
            "requirements": self.requirements,
            "env": self.env,
            "files": {f.path: f.sha256 for f in self.files},
            "lock": (self.lock or {}).get("hash"),
        }

    def refuse_unresolved(self) -> None:
        """Raise CaptureError when an import that always runs is unresolved (``--strict``)."""
        missing = [m for m in self.unresolved if m not in self.unresolved_conditional]
        if missing:
            raise CaptureError(
                f"strict capture refused: {self.source_path} imports {', '.join(missing)}, "
                f"which {'is' if len(missing) == 1 else 'are'} not installed here, and no %pip "
                f"install line covers {'it' if len(missing) == 1 else 'them'}: install "
                f"{'it' if len(missing) == 1 else 'them'} before capturing, add a %pip install "
                "line to the notebook, or import under try/except ImportError if the notebook "
                "copes without")

    def canonical(self) -> bytes:
        """Canonical JSON of what determines a run (not the name, source path or warnings)."""
        return json.dumps(self._determining(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def digest(self) -> str:
        """sha256 hex of :meth:`canonical`: same content, same version."""
        return hashlib.sha256(self.canonical()).hexdigest()

    def spec(self) -> dict:
        """JSON-able description: every field but file contents and warnings, plus the digest."""
        return {
            "name": self.name,
            "mode": self.mode,
            "entrypoint": self.entrypoint,
            "kernel": self.kernel,
            "python": self.python,
            "parameters": self.parameters,
            "schema": self.schema,
            "requirements": list(self.requirements),
            "env": dict(self.env),
            "files": {f.path: f.sha256 for f in self.files},
            "source_path": self.source_path,
            "unresolved": list(self.unresolved),
            "unresolved_conditional": list(self.unresolved_conditional),
            "lock": self.lock,
            "git": self.git,
            "digest": self.digest,
        }


# -- environment variables ------------------------------------------------------------------


def capture_env(entries: Sequence[str]) -> dict[str, str]:
    """Turn ``NAME`` / ``NAME=value`` entries into a dict, refusing names that look secret."""
    out: dict[str, str] = {}
    for entry in entries:
        name, sep, value = entry.partition("=")
        if not _ENV_NAME.fullmatch(name):
            raise CaptureError(
                f"invalid environment variable name {name!r}: use letters, digits and '_', "
                "not starting with a digit (write --env NAME or --env NAME=value)"
            )
        if looks_like_secret(name):
            raise SecretError(
                f"refusing to capture {name}: it looks like a secret. Give secrets to the "
                "agent's environment instead (local and docker queues), or a secretKeyRef for "
                "kubernetes queues."
            )
        if not sep:
            if name not in os.environ:
                raise CaptureError(
                    f"environment variable {name} is not set; set it or write --env {name}=value"
                )
            value = os.environ[name]
        out[name] = value
    return dict(sorted(out.items()))


# -- reading --------------------------------------------------------------------------------


def _read_notebook(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CaptureError(f"cannot capture {path}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"cannot capture {path}: it is a directory, not a notebook") from None
    except OSError as err:
        raise CaptureError(f"cannot capture {path}: {err.strerror or err}") from None
    return _notebook_from_bytes(raw, f"cannot capture {path}")


def _notebook_from_bytes(raw: bytes, what: str) -> dict:
    """The notebook in ``raw`` as nbformat reads it at version 4 (multi-line strings joined),
    as plain dicts; a CaptureError starting with ``what`` says what is broken. Version 4 is
    read with the json module alone: importing nbformat imports jsonschema, and its
    validation only logs (~100 ms of a command's start, issue #18); other versions are
    converted by nbformat."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CaptureError(
            f"{what}: it is not valid JSON ({err}); the file may be truncated "
            "or not a notebook. Save it again from Jupyter"
        ) from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise CaptureError(f"{what}: it is JSON but not a Jupyter notebook")
    if _ESCAPED_SURROGATE.search(raw):  # rare: check the decoded text only when it may matter
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as err:
            raise CaptureError(f"{what}: it holds an unpaired surrogate "
                               f"({err.object[err.start:err.end]!r}), which is not valid "
                               "Unicode; remove that character and save again") from None
    if type(data["nbformat"]) is int and data["nbformat"] == 4 and type(
            data.get("nbformat_minor", 0)) is int:
        nb = _joined_v4(data, what)
    else:
        nb = _converted(raw, what)
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(
        isinstance(c, dict) and isinstance(c.get("source", ""), str) and "cell_type" in c
        and _mapping_of_strings(c.get("metadata"), lists=("tags",))
        for c in cells
    ):
        raise CaptureError(f"{what}: not a valid notebook (malformed cells)")
    meta = nb.get("metadata")
    if not (_mapping_of_strings(meta) and _mapping_of_strings(meta.get("kernelspec"))
            and _mapping_of_strings(meta.get("language_info"))):
        raise CaptureError(f"{what}: not a valid notebook (its metadata, kernelspec or "
                           "language_info is malformed); save it again from Jupyter")
    return nb


def _joined_v4(nb: dict, what: str) -> dict:
    """A version 4 notebook's cells with their source and attachments' text joined, as
    nbformat's reader leaves them (outputs are never read: a job drops them). Refuses what
    that reader refuses: no list of cells, a notebook or cell without a metadata mapping."""
    cells = nb.get("cells")
    if not isinstance(cells, list) or not isinstance(nb.get("metadata"), dict):
        raise CaptureError(f"{what}: not a valid notebook (a version 4 notebook has a list of "
                           "cells and a metadata mapping); save it again from Jupyter")
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or not isinstance(cell.get("metadata"), dict):
            raise CaptureError(f"{what}: not a valid notebook (cell {number} is not a mapping "
                               "with a metadata mapping)")
        source = cell.get("source")
        if isinstance(source, list):
            if not all(isinstance(line, str) for line in source):
                raise CaptureError(f"{what}: not a valid notebook (the source of cell {number} "
                                   "is not text)")
            cell["source"] = "".join(source)
        attachments = cell.get("attachments", {})
        if not isinstance(attachments, dict) or not all(
                isinstance(bundle, dict) for bundle in attachments.values()):
            raise CaptureError(f"{what}: not a valid notebook (the attachments of cell "
                               f"{number} are malformed)")
        for bundle in attachments.values():
            for mime, value in list(bundle.items()):
                if not _json_mime(mime) and isinstance(value, list) and all(
                        isinstance(line, str) for line in value):
                    bundle[mime] = "".join(value)
    return nb


def _json_mime(mime: str) -> bool:
    """A JSON mime type, whose list values nbformat keeps as lists."""
    return mime == "application/json" or (mime.startswith("application/")
                                          and mime.endswith("+json"))


def _converted(raw: bytes, what: str) -> dict:
    """A notebook of another version than 4, converted to 4 by nbformat (it refuses those it
    does not know)."""
    import nbformat

    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")  # we rebuild a clean notebook anyway
            return nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as err:  # nbformat raises many kinds for broken structure
        raise CaptureError(f"{what}: not a valid notebook ({err})") from None


def _mapping_of_strings(value: Any, lists: Sequence[str] = ()) -> bool:
    """None, or a mapping whose name-like fields (``name``, ``language``...) are strings and
    whose ``lists`` fields are lists of strings: what capture reads from notebook metadata."""
    if value is None:
        return True
    if not isinstance(value, dict):
        return False
    for key in ("name", "display_name", "language"):
        if value.get(key) is not None and not isinstance(value[key], str):
            return False
    for key in lists:
        items = value.get(key)
        if items is not None and not (
            isinstance(items, list) and all(isinstance(i, str) for i in items)
        ):
            return False
    return True


def _walk_files(directory: Path) -> list[Path]:
    """Files under ``directory``, leaving out caches and VCS folders."""
    found = []
    for folder, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        found.extend(Path(folder) / n for n in sorted(names) if not n.endswith(".pyc"))
    return found


@dataclass(frozen=True)
class _Scope:
    """Where a job's files may come from: beside the source in ``folder``, and, through any
    symlink, only from inside ``root`` (the folder itself, or the server's root dir for REST)."""

    folder: Path
    root: Path
    allow_hidden: bool = False

    @classmethod
    def of(cls, folder: Path, root: str | os.PathLike[str] | None = None,
           allow_hidden: bool = False) -> _Scope:
        real = folder.resolve()
        inside = Path(root).resolve() if root is not None else real
        return cls(folder, inside if real.is_relative_to(inside) else real, allow_hidden)

    def hidden(self, rel: str | Path) -> bool:
        """A path with a part that is, or looks like (NFKC: '．env'), a dot-file."""
        return not self.allow_hidden and any(
            unicodedata.normalize("NFKC", part).startswith(".") for part in Path(rel).parts)

    def outside(self, path: Path) -> Path | None:
        """Where ``path`` really is when that is outside ``root`` (through links), else None."""
        real = path.resolve()
        return None if real.is_relative_to(self.root) else real

    def read(self, path: Path, what: str) -> bytes:
        """The bytes of ``path`` (under ``folder``), refused when a link takes it out of
        ``root`` or to a hidden file there. ``what`` names the file in messages."""
        real = self.outside(path)
        if real is not None:
            raise CaptureError(
                f"{what} links to {real}, outside {self.root}; a job only takes files from "
                "inside that folder: copy the file in (or install it as a package)")
        if self.hidden(path.resolve().relative_to(self.root)):
            raise CaptureError(f"{what} links to the hidden file {path.resolve()}; hidden files "
                               "never travel with a job: copy it to a name without a leading dot")
        return path.read_bytes()


def _check_include(patterns: Sequence[str], scope: _Scope,
                   warnings: list[str]) -> dict[str, bytes]:
    """Files matched by ``--include`` glob patterns relative to the source's folder.

    Patterns cannot leave the folder ('..', absolute, or a look-alike of them), matches obey
    the hidden-file rule, and links must stay inside the scope's root.
    """
    folder = scope.folder
    files: dict[str, bytes] = {}
    for pattern in patterns:
        posix = pattern.replace("\\", "/")
        parts = [unicodedata.normalize("NFKC", part) for part in posix.split("/")]
        normal = unicodedata.normalize("NFKC", posix)
        if (os.path.isabs(pattern) or normal.startswith(("/", "~"))
                or any(".." in part.split("/") for part in parts)):
            raise CaptureError(
                f"--include {pattern!r} points outside {folder}; patterns are relative to the "
                "notebook's folder and cannot use '..' or absolute paths"
            )
        matches = sorted(glob.glob(pattern, root_dir=folder, recursive=True))
        if not matches:
            raise CaptureError(f"--include {pattern!r} matches nothing in {folder}")
        for match in matches:
            if scope.hidden(match):
                raise CaptureError(
                    f"--include {pattern!r} matches {match!r}, a hidden file or folder; hidden "
                    "files (keys, .env, .ssh) never travel with a job: give the file a name "
                    "without a leading dot if it belongs in the job"
                )
            full = folder / match
            found = _walk_files(full) if full.is_dir() else [full]
            skipped = []
            for file_path in found:
                rel = file_path.relative_to(folder).as_posix()
                if scope.hidden(rel):
                    skipped.append(rel)
                    continue
                files[rel] = scope.read(file_path, f"--include {pattern!r} reaches {rel}, which")
            if skipped:
                warnings.append(f"--include {pattern!r}: hidden files left out of the job: "
                                f"{', '.join(skipped[:10])}{' ...' if len(skipped) > 10 else ''}")
    return files


# -- cells ----------------------------------------------------------------------------------


@dataclass
class _Cell:
    """A code cell as seen by the capture: its Python view and its IPython lines."""

    number: int  # 1-based position among all cells, as the user counts them
    source: str
    python: str | None = None  # what IPython runs for the cell (jobs/cells.py); None if none
    tree: ast.Module | None = None  # the parsed ``python``
    cell_magic: str | None = None
    magic_lines: list[tuple[int, str]] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    modules: dict[str, bool] = field(default_factory=dict)  # module -> imported unconditionally
    runs: list[tuple[str, bool]] = field(default_factory=list)  # %run FILE, unconditionally
    written: set[str] = field(default_factory=set)  # files its %%writefile writes
    written_sources: dict[str, str] = field(default_factory=dict)  # .py path -> body written
    shell_runs: list[tuple[str, bool]] = field(default_factory=list)  # !python FILE.py
    error: str | None = None

    def add_modules(self, modules: dict[str, bool], conditional: bool = False) -> None:
        """Merge imports; ``conditional`` when they run under a condition of this cell."""
        for module, unconditional in modules.items():
            self.modules[module] = self.modules.get(module, False) or (
                unconditional and not conditional)


def _is_launch_line(text: str) -> bool:
    stripped = text.lstrip()
    return bool(_LAUNCH_LINE.match(stripped) or _LAUNCH_ASSIGN.match(stripped))


def _blank(line: str, comment: str = "") -> str:
    """Replace an IPython line by a no-op that keeps indentation valid."""
    indent = line[: len(line) - len(line.lstrip())]
    assigned = _LAUNCH_ASSIGN.match(line.lstrip())
    if assigned:  # ``h = %launch submit ...``: h stays defined, as None
        return f"{indent}{assigned.group(1)} = None  {comment}".rstrip()
    if indent:
        return f"{indent}pass  {comment}".rstrip()
    return comment or "pass"


def _scan_cell(number: int, source: str, warnings: list[str]) -> _Cell:
    """Read a code cell as IPython runs it: imports, installs, %run files, written files."""
    cell = _Cell(number, source)
    lines = source.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("%%"):
        cell.cell_magic = first
    try:
        cell.python, cell.tree = cellscan.to_python(source)
    except SyntaxError as err:
        cell.error = f"{err.msg} (line {err.lineno})"
        return cell
    except RecursionError:
        cell.error = "nested too deeply"
        return cell
    if cell.python is not source:  # IPython syntax: the lines a script-mode job must handle
        for line in cellscan.bare_magic_lines(source):
            bare = lines[line - 1].strip()
            warnings.append(f"cell {number}, line {line}: {bare!r} runs as a magic only in a "
                            "cell of its own (IPython's automagic): in this cell it is a "
                            f"SyntaxError when the job runs; write %{bare}")
        cell.magic_lines = [
            (index, line) for index, line in enumerate(lines, start=1)
            if line.lstrip().startswith(("%", "!")) or _MAGIC_ASSIGN.match(line.lstrip())
        ]
    # Only a cell that says `import` or `get_ipython` has what the scan looks for: walking
    # every node of every cell was a tenth of a 200-cell capture. Non-ASCII text may spell
    # an identifier otherwise (Python reads it NFKC-normalised), so it is always walked.
    python = cell.python
    if "import" in python or "get_ipython" in python or not python.isascii():
        found = cellscan.scan(cell.tree)
    else:
        found = cellscan.Scan()
    cell.add_modules(found.modules)
    for magic in found.magics:
        _read_magic(cell, magic, warnings)
    return cell


def _read_magic(cell: _Cell, magic: cellscan.Magic, warnings: list[str]) -> None:
    """What one IPython call of ``cell`` installs, imports, runs or writes."""
    name, text = magic.name, magic.text
    if magic.kind == "system" or name in ("sx", "system"):
        _read_install(cell, text, warnings)
        _read_shell_python(cell, text, magic.conditional)
    elif magic.kind == "line":
        if name in ("pip", "conda", "mamba", "micromamba"):
            _read_install(cell, f"{name} {text}", warnings)
        elif name in ("load_ext", "reload_ext"):
            module = text.split()[0].split(".")[0] if text.split() else ""
            if module in _IPYTHON_EXTENSIONS:
                module = "IPython"
            if module and module != "launch_jupyter":
                cell.add_modules({module: True}, magic.conditional)
        elif name == "run":
            _read_run(cell, text, magic.conditional, warnings)
        elif name in cellscan.PYTHON_LINE_MAGICS:
            statement = re.sub(r"^(\s*-[A-Za-z]+(\s+\d+)?)*\s*", "", text)  # %timeit -n 3
            inner = _scan_cell(cell.number, statement, [])
            cell.add_modules(inner.modules, magic.conditional)
    elif name in cellscan.PYTHON_BODY_MAGICS and magic.body is not None:
        inner = _scan_cell(cell.number, magic.body, warnings)
        cell.add_modules(inner.modules, magic.conditional)
        cell.pip.extend(inner.pip)
        cell.runs.extend((path, unconditional and not magic.conditional)
                         for path, unconditional in inner.runs)
        cell.written |= inner.written
        _merge_sources(cell.written_sources, inner.written_sources)
        cell.shell_runs.extend((path, unconditional and not magic.conditional)
                               for path, unconditional in inner.shell_runs)
    elif name in cellscan.SHELL_BODY_MAGICS and magic.body is not None:
        for command in re.sub(r"\\\r?\n", " ", magic.body).splitlines():
            _read_install(cell, command, warnings)
            _read_shell_python(cell, command, magic.conditional)
    elif name in cellscan.WRITE_MAGICS:
        words = [w for w in cellscan.shell_words(text) if not w.startswith("-")]
        if words:
            path = os.path.normpath(words[-1]).replace(os.sep, "/")
            cell.written.add(path)
            if path.endswith(".py") and magic.body is not None:
                _merge_sources(cell.written_sources, {path: magic.body})


def _merge_sources(into: dict[str, str], sources: dict[str, str]) -> None:
    """Add written file bodies; a file written twice (``-a``, or again later) keeps both, so
    every import it ever holds is scanned."""
    for path, body in sources.items():
        into[path] = f"{into[path]}\n{body}" if path in into else body


def _read_install(cell: _Cell, command: str, warnings: list[str]) -> None:
    """Record the requirements of the pip lines of a shell line (``pip install a && pip
    install b``: both); warn about what cannot be recorded."""
    for part in cellscan.shell_commands(command):
        _read_one_install(cell, part, warnings)


def _read_one_install(cell: _Cell, command: str, warnings: list[str]) -> None:
    """Record the requirements of one pip command; warn about what cannot be recorded."""
    line = deps.install_line(command)
    if line is None:
        return
    shown_line = " ".join(command.split())
    if line.tool != "pip":
        warnings.append(
            f"cell {cell.number}: {line.tool} line {shown_line!r} is not recorded: a job records "
            "pip requirements only; install them with %pip install in the notebook"
        )
        return
    cell.pip.extend(line.specifiers)
    if line.ignored:
        warnings.append(f"cell {cell.number}: pip options {' '.join(line.ignored)} are not "
                        "recorded")
    if line.dynamic:
        warnings.append(
            f"cell {cell.number}: pip line {shown_line!r} uses {', '.join(line.dynamic)}, which "
            "IPython fills in only when the cell runs; not recorded as requirements: write the "
            "requirement out (e.g. %pip install name==1.0)"
        )


def _read_shell_python(cell: _Cell, command: str, conditional: bool) -> None:
    """Record the ``.py`` files a shell line runs with Python (``!python train.py``), so the
    imports of a file the notebook writes itself and runs so are scanned."""
    for part in cellscan.shell_commands(command):
        words = cellscan.shell_words(part)
        if not words or not _SHELL_PYTHON.match(words[0]):
            continue
        for word in words[1:]:
            if word in ("-m", "-c"):
                break
            if not word.startswith("-"):
                if word.endswith(".py"):
                    cell.shell_runs.append((word, not conditional))
                break


def _read_run(cell: _Cell, text: str, conditional: bool, warnings: list[str]) -> None:
    """``%run [-i -e ...] FILE args`` ships FILE; ``%run -m module`` imports a module."""
    words = cellscan.shell_words(text)
    index = 0
    while index < len(words) and words[index].startswith("-"):
        if words[index] == "-m" and index + 1 < len(words):
            cell.add_modules({words[index + 1].split(".")[0]: True}, conditional)
            return
        index += 2 if words[index] in _RUN_VALUE_OPTIONS else 1
    if index < len(words) and deps.expands(words[index]):
        warnings.append(f"cell {cell.number}: %run {text.strip()} names its file with "
                        f"{words[index]}, which IPython fills in only when the cell runs; the "
                        "file is not shipped: write its name out")
    elif index < len(words):
        cell.runs.append((words[index], not conditional))
    else:
        warnings.append(f"cell {cell.number}: %run {text!r} names no file")


#: the interpreter of a shell line: python, python3, python3.11, {sys.executable}
_SHELL_PYTHON = re.compile(r"(python(3(\.\d+)?)?|\{sys\.executable\})$")


def _neutralise_launch(source: str) -> str:
    """Replace ``%launch`` lines (and a ``%%launch`` cell) with fixed comments."""
    if "launch" not in source:
        return source
    try:
        ast.parse(source)
        return source
    except SyntaxError:
        pass
    if source.lstrip().startswith("%%launch"):
        return LAUNCH_CELL_COMMENT
    return "\n".join(
        _blank(line, LAUNCH_LINE_COMMENT) if _is_launch_line(line) else line
        for line in source.splitlines()
    )


def _script_cell(cell: _Cell) -> str:
    """The Python text of a code cell in a script-mode job (IPython lines handled)."""
    if cell.cell_magic is not None:
        if cell.cell_magic.startswith("%%launch"):
            return LAUNCH_CELL_COMMENT
        raise CaptureError(
            f"cell {cell.number} starts with the cell magic {cell.cell_magic!r}, which a script "
            "cannot run; capture in notebook mode (--mode notebook), or rewrite the cell in "
            "plain Python (subprocess.run for shell commands)"
        )
    if cell.python is None or cell.python is cell.source:  # not Python at all, or plain
        return cell.source
    lines = cell.source.splitlines()
    for index, line in cell.magic_lines:
        stripped = line.strip()
        if deps.pip_install_specifiers(stripped) is not None:
            lines[index - 1] = _blank(
                line, f"# launch-jupyter: recorded as requirement: {stripped}"
            )
        elif _is_launch_line(stripped):
            lines[index - 1] = _blank(line, LAUNCH_LINE_COMMENT)
        else:
            raise CaptureError(
                f"cell {cell.number}, line {index}: {stripped!r} is IPython syntax a script "
                "cannot run; capture in notebook mode (--mode notebook), or use "
                "subprocess.run([...]) for shell commands"
            )
    script = "\n".join(lines)
    if cell.python is not None:  # IPython could run it; a script must be able to as well
        try:
            ast.parse(script)
        except SyntaxError as err:
            raise CaptureError(
                f"cell {cell.number}, line {err.lineno}: {err.text and err.text.strip()!r} is "
                "IPython syntax a script cannot run (an automagic such as `pip install x`, or "
                "a `!command \\` continued on the next line); capture in notebook mode "
                "(--mode notebook), or write it in plain Python") from None
    return script


# -- parameters -----------------------------------------------------------------------------


def _comments(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                out[token.start[0]] = token.string
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def _constraints(
    comments: dict[int, str], spans: list[tuple[int, int, str]], where: str, lines: range
) -> dict[str, dict]:
    """Constraints from ``# launch:`` comments, each owned by the parameter on its line."""
    out: dict[str, dict] = {}
    for line, text in sorted(comments.items()):
        if line not in lines:
            continue
        constraint = parse_constraint_comment(text, where=f"({where}, line {line}) ")
        if constraint is None:
            continue
        owners = sorted({name for start, end, name in spans if start <= line <= end})
        if not owners:
            raise ParameterError(
                f"constraint comment {text.strip()!r} ({where}, line {line}) is not on a "
                "parameter's line; put it at the end of the assignment it constrains"
            )
        if len(owners) > 1:
            raise ParameterError(
                f"constraint comment {text.strip()!r} ({where}, line {line}) is on the line of "
                f"several parameters ({', '.join(owners)}); give each parameter its own line"
            )
        out.setdefault(owners[0], {}).update(constraint)
    return out


def _parse_by_line(source: str, where: str, warnings: list[str],
                   longest: int = 50) -> tuple[ast.Module, dict[int, str]]:
    """The statements of ``source`` that parse, each from the shortest run of lines (at most
    ``longest``) that parses; a line no run parses from is reported and skipped. Also the
    comments of the statements kept, by line."""
    lines = source.splitlines()
    body: list[ast.stmt] = []
    comments: dict[int, str] = {}
    start = 0
    while start < len(lines):
        for end in range(start + 1, min(len(lines), start + longest) + 1):
            chunk = "\n".join(lines[start:end])
            try:
                python, tree = cellscan.to_python(chunk)  # a %magic line is no broken line
            except (SyntaxError, RecursionError):
                continue
            ast.increment_lineno(tree, start)
            body.extend(tree.body)
            comments.update({line + start: text for line, text in _comments(python).items()})
            start = end
            break
        else:
            try:
                ast.parse(lines[start])
            except SyntaxError as err:
                reason = err.msg
            else:
                reason = "it starts a statement that does not end"
            warnings.append(
                f"{where}, line {start + 1} does not parse ({reason}): the other lines still "
                "give their parameters, and the run will fail on this line"
            )
            start += 1
    return ast.Module(body=body, type_ignores=[]), comments


def _notebook_parameters(cell: _Cell, warnings: list[str]) -> tuple[dict, dict]:
    """Defaults and schema from the cell tagged ``parameters``."""
    where = f"cell {cell.number} (tagged parameters)"
    if cell.python is None:
        # papermill's way: the lines that parse still give their parameters.
        tree, comments = _parse_by_line(cell.source, where, warnings)
    else:
        tree, comments = cell.tree, _comments(cell.python)
    defaults: dict[str, Any] = {}
    spans: list[tuple[int, int, str]] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        if not all(isinstance(t, ast.Name) for t in targets):
            warnings.append(
                f"{where}, line {stmt.lineno}: only simple assignments (name = value) become "
                "parameters; this one is skipped"
            )
            continue
        names = [t.id for t in targets]
        for name in names:
            spans.append((stmt.lineno, stmt.end_lineno or stmt.lineno, name))
        try:
            default = to_json_value(ast.literal_eval(value), f"parameter {names[0]!r}")
        except (ParameterError, ValueError, TypeError, SyntaxError, RecursionError) as err:
            reason = str(err) if isinstance(err, ParameterError) else "it is not a literal"
            warnings.append(
                f"{where}, line {stmt.lineno}: {', '.join(names)} is skipped as a parameter "
                f"({reason}); it still runs but cannot be overridden"
            )
            for name in names:
                defaults.pop(name, None)
            continue
        for name in names:
            defaults[name] = default
    text = cell.python if cell.python is not None else cell.source
    lines = range(1, len(text.splitlines()) + 1)
    constraints = _constraints(comments, spans, where, lines)
    for name in list(constraints):
        if name not in defaults:
            raise ParameterError(f"{where}: {name!r} has a constraint but is not a literal")
    return defaults, schema_for(defaults, constraints)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _parameters_call(tree: ast.Module) -> list[ast.Call]:
    """Calls of ``launch_jupyter.parameters`` in a script, in source order."""
    functions: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for alias in node.names:
                if node.module in ("launch_jupyter", "launch_jupyter.jobs") or (
                    node.module == "launch_jupyter.jobs.parameters"
                ):
                    if alias.name == "parameters":
                        functions.add(alias.asname or alias.name)
                    elif alias.name == "jobs" and node.module == "launch_jupyter":
                        modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "launch_jupyter" or alias.name.startswith("launch_jupyter."):
                    if alias.asname:
                        modules.add(alias.asname)
                    else:
                        modules.update({"launch_jupyter", alias.name})
    if "launch_jupyter" in modules:
        modules.add("launch_jupyter.jobs")
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Name) and func.id in functions) or (
            isinstance(func, ast.Attribute)
            and func.attr == "parameters"
            and _dotted(func.value) in modules
        ):
            calls.append(node)
    return sorted(calls, key=lambda c: (c.lineno, c.col_offset))


def _script_parameters(
    tree: ast.Module, source: str, filename: str, warnings: list[str]
) -> tuple[dict, dict]:
    """Defaults and schema from a script's ``launch_jupyter.parameters(...)`` call."""
    calls = _parameters_call(tree)
    if not calls:
        return {}, schema_for({})
    call = calls[0]
    if len(calls) > 1:
        warnings.append(
            f"{filename}: launch_jupyter.parameters() is called {len(calls)} times; only the "
            f"first (line {call.lineno}) gives the job's parameters"
        )
    where = f"{filename}, line {call.lineno}"
    if call.args:
        raise CaptureError(
            f"{where}: launch_jupyter.parameters() takes keyword arguments only, "
            "e.g. launch_jupyter.parameters(lr=0.01)"
        )
    defaults: dict[str, Any] = {}
    spans: list[tuple[int, int, str]] = []
    for kw in call.keywords:
        if kw.arg is None:
            raise CaptureError(
                f"{where}: launch_jupyter.parameters(**...) cannot be captured; write each "
                "parameter as a keyword with a literal default"
            )
        try:
            defaults[kw.arg] = to_json_value(ast.literal_eval(kw.value), f"parameter {kw.arg!r}")
        except (ParameterError, ValueError, TypeError, SyntaxError, RecursionError):
            raise CaptureError(
                f"{filename}, line {kw.value.lineno}: the default of parameter {kw.arg!r} must "
                f"be a literal (number, string, bool, None, list or dict), got "
                f"{ast.get_source_segment(source, kw.value)!r}"
            ) from None
        spans.append((kw.lineno, kw.end_lineno or kw.lineno, kw.arg))
    lines = range(call.lineno, (call.end_lineno or call.lineno) + 1)
    constraints = _constraints(_comments(source), spans, filename, lines)
    return defaults, schema_for(defaults, constraints)


# -- dependencies and files -----------------------------------------------------------------


def _local_modules(
    modules: dict[str, bool], scope: _Scope, warnings: list[str]
) -> tuple[dict[str, bytes], dict[str, bool]]:
    """Files of modules that live beside the source (recursively) and the modules left over,
    each with whether it is imported unconditionally (a local module's own conditional
    imports stay conditional).

    A module file that links outside the scope's root, or to a hidden file, is refused.
    """
    folder = scope.folder
    files: dict[str, bytes] = {}
    external: dict[str, bool] = {}
    pending = sorted(modules.items())
    seen: dict[str, bool] = {}
    while pending:
        module, unconditional = pending.pop()
        if module in seen and (seen[module] or not unconditional):
            continue  # nothing new: seen at least as unconditionally
        seen[module] = unconditional
        if (folder / f"{module}.py").is_file():
            paths = [folder / f"{module}.py"]
        elif (folder / module / "__init__.py").is_file():
            paths = sorted(
                p
                for p in (folder / module).rglob("*.py")
                if not SKIPPED_DIRS.intersection(p.relative_to(folder).parts)
            )
        else:
            external[module] = unconditional
            continue
        for path in paths:
            rel = path.relative_to(folder).as_posix()
            if scope.hidden(rel):
                warnings.append(f"local module file {rel} is hidden; left out of the job")
                continue
            content = scope.read(path, f"local module {rel}")
            files[rel] = content
            pending.extend(sorted(
                (name, unconditional and inner)
                for name, inner in _python_imports(content, rel, warnings).items()))
    return files, external


def _python_imports(content: bytes, rel: str, warnings: list[str]) -> dict[str, bool]:
    """Imports of a shipped Python file (module -> unconditional); a warning if it does not
    parse."""
    try:
        return cellscan.scan(ast.parse(content.decode("utf-8"))).modules
    except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError) as err:
        warnings.append(f"{rel} does not parse ({err}); its imports are not scanned")
        return {}


def _written_imports(modules: dict[str, bool], runs: Sequence[tuple[int, str, bool]],
                     sources: dict[str, str], warnings: list[str]) -> None:
    """Add to ``modules`` the imports of the ``.py`` files the notebook writes itself
    (``%%writefile``) and then imports, ``%run``s or runs with ``!python``: the job needs
    them as it needs a local module's (a written train.py importing torch must not drop torch
    silently). A written file the notebook never imports nor runs (a script for another
    machine) is not scanned."""
    used: dict[str, bool] = {}
    for _number, name, unconditional in runs:
        rel = os.path.normpath(name).replace(os.sep, "/")
        for path in (rel, f"{rel}.py"):
            if path in sources:
                used[path] = used.get(path, False) or unconditional
    found: dict[str, dict[str, bool]] = {}
    scanned: dict[str, bool] = {}
    while True:  # a written module may import another written module
        todo = {}
        for path in sources:
            parts = PurePosixPath(path).parts
            top = parts[0][:-3] if len(parts) == 1 else parts[0]
            if path not in used and top not in modules:
                continue
            unconditional = used.get(path, False) or modules.get(top, False)
            if path not in scanned or (unconditional and not scanned[path]):
                todo[path] = unconditional
        if not todo:
            return
        for path, unconditional in todo.items():
            scanned[path] = unconditional
            if path not in found:
                found[path] = _python_imports(sources[path].encode("utf-8"), path, warnings)
            for module, inner in found[path].items():
                modules[module] = modules.get(module, False) or (inner and unconditional)


def _run_files(runs: Sequence[tuple[int, str, bool]], written: set[str], scope: _Scope,
               warnings: list[str]) -> tuple[dict[str, bytes], dict[str, bool]]:
    """The files ``%run FILE`` runs (shipped with the job) and the modules they import."""
    files: dict[str, bytes] = {}
    modules: dict[str, bool] = {}
    for number, name, unconditional in runs:
        rel = Path(os.path.normpath(name))
        if rel.as_posix() in written or f"{rel.as_posix()}.py" in written:
            continue  # the notebook writes it itself (%%writefile)
        where = f"cell {number}: %run {name}"
        if rel.is_absolute() or rel.parts[:1] == ("..",) or scope.hidden(rel):
            warnings.append(f"{where} is outside the notebook's folder or hidden; it does not "
                            "travel with the job: copy it beside the notebook")
            continue
        path = scope.folder / rel
        if not path.is_file() and rel.suffix != ".py":  # %run FILE tries FILE.py, as IPython
            with_py = rel.with_name(rel.name + ".py")
            if (scope.folder / with_py).is_file():
                rel, path = with_py, scope.folder / with_py
        if not path.is_file():
            warnings.append(f"{where}: no such file beside the notebook; the job will fail "
                            "there unless something creates it first")
            continue
        content = scope.read(path, where)
        files[rel.as_posix()] = content
        if rel.suffix == ".ipynb":
            found = _notebook_imports(content, rel.as_posix(), warnings)
        else:
            found = _python_imports(content, rel.as_posix(), warnings)
        for module, inner in found.items():
            modules[module] = modules.get(module, False) or (inner and unconditional)
    return files, modules


def _notebook_imports(content: bytes, rel: str, warnings: list[str]) -> dict[str, bool]:
    """Imports of the code cells of a notebook that ``%run`` runs."""
    try:
        nb = _notebook_from_bytes(content, rel)
    except CaptureError as err:
        warnings.append(f"{rel} is not a readable notebook ({err}); its imports are not scanned")
        return {}
    found = _Cell(0, "")
    for index, cell in enumerate(nb["cells"], start=1):
        if cell.get("cell_type") == "code":
            found.add_modules(_scan_cell(index, cell.get("source", ""), []).modules)
    return found.modules


#: Import names whose distribution is named otherwise, for telling whether a ``%pip install``
#: line covers a module that is not installed here (installed ones are looked up).
_KNOWN_DISTRIBUTIONS = {
    "sklearn": "scikit-learn", "skimage": "scikit-image", "cv2": "opencv-python",
    "PIL": "pillow", "yaml": "pyyaml", "bs4": "beautifulsoup4", "dateutil": "python-dateutil",
    "attr": "attrs", "Crypto": "pycryptodome", "dotenv": "python-dotenv",
}


def _covered(module: str, named: set[str]) -> bool:
    """Whether a pip line installs ``module``: by its name, as a namespace package
    (``google`` by ``google-cloud-storage``), or by a well-known distribution."""
    name = deps.normalise(module)
    if name in named or any(other.startswith(f"{name}-") for other in named):
        return True
    dist = _KNOWN_DISTRIBUTIONS.get(module)
    return dist is not None and any(
        name == dist or name.startswith(f"{dist}-") for name in named)


def _url_name(spec: str) -> str | None:
    """The distribution a URL requirement installs, for telling which imports it covers: its
    ``#egg=`` name, else a VCS URL's repository (``git+https://host/openai/CLIP.git@v1`` ->
    clip); None for other URLs and paths."""
    egg = re.search(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if egg:
        return deps.normalise(egg.group(1))
    vcs = re.match(r"(?:git|hg|svn|bzr)\+[a-z]+://[^#?]*/([A-Za-z0-9][A-Za-z0-9._-]*?)"
                   r"(?:\.git)?(?:@[^/#?]*)?/?(?:[#?].*)?$", spec)
    return deps.normalise(vcs.group(1)) if vcs else None


def _requirements(modules: dict[str, bool], pip: Sequence[str], warnings: list[str]
                  ) -> tuple[list[str], list[str], list[str]]:
    """(requirements, unresolved, unconditional unresolved): pinned imports and pip lines;
    imports neither installed nor covered by a pip line, with a warning each."""
    pinned, missing = deps.resolve_requirements(modules)
    explicit = list(dict.fromkeys(pip))
    # A %pip install line is the user's own choice: it replaces the environment's pin.
    named = {deps.requirement_name(spec) or _url_name(spec) for spec in explicit} - {None}
    unresolved = [module for module in missing if not _covered(module, named)]
    for module in unresolved:
        if modules.get(module):
            warnings.append(
                f"module {module!r} is imported but not installed here, and no %pip install "
                "line covers it: the job does not require it (install it before capturing, "
                f"or add %pip install {module} to the notebook)"
            )
        else:
            warnings.append(
                f"module {module!r} is imported under a condition (if, or try/except "
                "ImportError) and is not installed here: the job does not require it"
            )
    kept = [req for req in pinned if deps.requirement_name(req) not in named]
    requirements = sorted(dict.fromkeys(kept + explicit), key=str.lower)
    return requirements, unresolved, [m for m in unresolved if modules.get(m)]


def _python_version() -> str:
    return platform.python_version()


def _python_minor() -> str:
    return ".".join(platform.python_version_tuple()[:2])


def _assemble(
    *,
    name: str,
    mode: str,
    entrypoint: JobFile,
    kernel: str | None,
    defaults: dict,
    schema: dict,
    modules: dict[str, bool],
    pip: Sequence[str],
    env: dict[str, str],
    scope: _Scope,
    include: Sequence[str],
    source_path: str,
    warnings: list[str],
    runs: Sequence[tuple[int, str, bool]] = (),
    written: set[str] = frozenset(),
    written_sources: dict[str, str] | None = None,
    shell_runs: Sequence[tuple[int, str, bool]] = (),
    default_name: bool = False,
    git: GitInfo | None = None,
) -> CapturedJob:
    ran, ran_modules = _run_files(runs, written, scope, warnings)
    for module, unconditional in ran_modules.items():
        modules[module] = modules.get(module, False) or unconditional
    _written_imports(modules, [*runs, *shell_runs], written_sources or {}, warnings)
    for path in written:  # modules the notebook writes itself (%%writefile) are not missing
        parts = PurePosixPath(path).parts
        if len(parts) == 1 and parts[0].endswith(".py"):
            modules.pop(parts[0][:-3], None)
        elif len(parts) > 1:
            modules.pop(parts[0], None)
    local, external = _local_modules(modules, scope, warnings)
    files = dict(local)
    files.update(ran)
    files.update(_check_include(include, scope, warnings))
    replaced = files.get(entrypoint.path)
    # The source itself (matched by an include, say) is expected: its canonical form wins.
    if replaced not in (None, entrypoint.content) and entrypoint.path != Path(source_path).name:
        warnings.append(f"{entrypoint.path} beside the source is replaced by the job's entrypoint")
    files[entrypoint.path] = entrypoint.content
    requirements, unresolved, unconditional = _requirements(external, pip, warnings)
    job = CapturedJob(
        name=name,
        mode=mode,
        entrypoint=entrypoint.path,
        kernel=kernel,
        python=_python_version(),
        parameters=defaults,
        schema=schema,
        requirements=requirements,
        env=env,
        files=sorted((JobFile(p, c) for p, c in files.items()), key=lambda f: f.path),
        source_path=source_path,
        warnings=warnings,
        unresolved=unresolved,
        unresolved_conditional=[m for m in unresolved if m not in unconditional],
        default_name=default_name,
    )
    job.lock = lock_for(job.requirements, job.python)
    job.git = (git or GitInfo(scope.folder)).result()
    return job


# -- notebooks ------------------------------------------------------------------------------


#: The version the canonical notebook is written in (nbformat.v4's current one)
NBFORMAT, NBFORMAT_MINOR = 4, 5


def _canonical_notebook(nb: dict, kernel: str) -> dict:
    """Same cells (type, source, tags), no outputs, ids by position, minimal metadata."""
    meta = nb.get("metadata", {}) or {}
    spec = meta.get("kernelspec", {}) or {}
    language = (meta.get("language_info", {}) or {}).get("name") or spec.get("language")
    # The display name is the kernel's name: JupyterLab rewrites it on save, and a job
    # version changes only when what runs changes.
    kernelspec = {"name": kernel, "display_name": kernel}
    if spec.get("language"):
        kernelspec["language"] = spec["language"]
    cells = []
    for index, cell in enumerate(nb["cells"]):
        tags = list((cell.get("metadata", {}) or {}).get("tags", []) or [])
        metadata = {"tags": tags} if tags else {}
        source = cell.get("source", "")
        new = {"id": f"cell-{index}", "cell_type": cell["cell_type"], "metadata": metadata}
        if cell["cell_type"] == "code":
            new.update(source=_neutralise_launch(source), execution_count=None, outputs=[])
        else:
            new["cell_type"] = "markdown" if cell["cell_type"] == "markdown" else "raw"
            new["source"] = source
            if cell.get("attachments"):  # images pasted into a markdown cell
                new["attachments"] = cell["attachments"]
        cells.append(new)
    return {"cells": cells, "nbformat": NBFORMAT, "nbformat_minor": NBFORMAT_MINOR,
            "metadata": {"kernelspec": kernelspec,
                         "language_info": {"name": language or "python"}}}


def _notebook_bytes(nb: dict) -> bytes:
    """``nb`` written byte for byte as ``nbformat.writes`` writes it (multi-line text split
    into lines, sorted keys, indent 1), without importing nbformat (see
    ``_notebook_from_bytes``); tests/jobs/test_capture.py compares the two."""
    cells = []
    for cell in nb["cells"]:
        written = dict(cell, source=cell["source"].splitlines(True))
        if "attachments" in cell:
            written["attachments"] = {
                name: {mime: value.splitlines(True) if isinstance(value, str) and (
                    mime.startswith("text/") or mime in _SPLIT_MIMES) else value
                    for mime, value in bundle.items()}
                for name, bundle in cell["attachments"].items()}
        cells.append(written)
    return json.dumps(dict(nb, cells=cells), indent=1, sort_keys=True, separators=(",", ": "),
                      ensure_ascii=False).encode("utf-8")


def _from_notebook(
    nb: dict,
    *,
    name: str,
    stem: str,
    filename: str,
    scope: _Scope,
    mode: str | None,
    kernel: str | None,
    include: Sequence[str],
    env: dict[str, str],
    source_path: str,
    default_name: bool = False,
    git: GitInfo | None = None,
) -> CapturedJob:
    mode = mode or "notebook"
    if mode not in MODES:
        raise CaptureError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
    warnings: list[str] = []
    code = [
        (index, cell)
        for index, cell in enumerate(nb["cells"])
        if cell.get("cell_type") == "code"
    ]
    if not any(cell.get("source", "").strip() for _, cell in code):
        raise CaptureError(f"cannot capture {source_path}: it has no code cell with any code")
    meta = nb.get("metadata", {}) or {}
    spec = meta.get("kernelspec", {}) or {}
    language = _language(meta)
    if language != "python":
        if mode == "script":
            raise CaptureError(f"cannot capture {source_path} in script mode: its kernel's "
                               f"language is {language}, and scripts are Python")
        warnings.append(f"the notebook's language is {language}: its imports are not scanned "
                        "and its parameters cell is not read, so the job pins no requirements "
                        "and has no parameters")
        code = []
    cells = [_scan_cell(index + 1, cell.get("source", ""), warnings) for index, cell in code]
    tags = [(cell.get("metadata", {}) or {}).get("tags", []) or [] for _, cell in code]
    params_cell = next(
        (scanned for scanned, cell_tags in zip(cells, tags, strict=True)
         if PARAMETERS_TAG in cell_tags),
        None,
    )
    modules: dict[str, bool] = {}
    pip: list[str] = []
    runs: list[tuple[int, str, bool]] = []
    written: set[str] = set()
    written_sources: dict[str, str] = {}
    shell_runs: list[tuple[int, str, bool]] = []
    for cell, cell_tags in zip(cells, tags, strict=True):
        # A cell the job skips (nbclient's skip-execution tag) only ever runs interactively.
        skipped = SKIP_TAG in cell_tags
        pip.extend(cell.pip)
        written |= cell.written
        _merge_sources(written_sources, cell.written_sources)
        runs.extend((cell.number, path, unconditional and not skipped)
                    for path, unconditional in cell.runs)
        shell_runs.extend((cell.number, path, unconditional and not skipped)
                          for path, unconditional in cell.shell_runs)
        if cell.python is None and cell is not params_cell:
            warnings.append(
                f"cell {cell.number} does not parse as Python {_python_minor()} "
                f"({cell.error}); its imports are not scanned"
            )
        for module, unconditional in cell.modules.items():
            modules[module] = modules.get(module, False) or (unconditional and not skipped)
    defaults, schema = (
        _notebook_parameters(params_cell, warnings) if params_cell else ({}, schema_for({}))
    )
    if mode == "notebook":
        kernel = kernel or spec.get("name") or DEFAULT_KERNEL
        _check_kernel(kernel, language, warnings)
        canonical = _canonical_notebook(nb, kernel)
        entry = JobFile(filename, _notebook_bytes(canonical))
    else:
        kernel = None
        parts = [f"# Generated by launch-jupyter from {filename}: its code cells, in order."]
        for cell, cell_tags in zip(cells, tags, strict=True):
            if SKIP_TAG in cell_tags:  # nbclient's convention holds in script mode too
                parts.append(f"# %% [cell {cell.number}: tagged {SKIP_TAG}, not run]")
                continue
            parts.append(f"# %% [cell {cell.number}]\n{_script_cell(cell)}".rstrip())
            if cell is params_cell and defaults:
                parts.append(f"# %% [injected parameters]\n{_SCRIPT_OVERRIDES}")
        entry = JobFile(f"{stem}.py", ("\n\n".join(parts) + "\n").encode("utf-8"))
    return _assemble(
        name=name,
        mode=mode,
        entrypoint=entry,
        kernel=kernel,
        defaults=defaults,
        schema=schema,
        modules=modules,
        pip=pip,
        env=env,
        scope=scope,
        include=include,
        source_path=source_path,
        warnings=warnings,
        runs=runs,
        written=written,
        written_sources=written_sources,
        shell_runs=shell_runs,
        default_name=default_name,
        git=git,
    )


def _language(meta: dict) -> str:
    """The notebook's language, lower case ("python" for python3 and the like)."""
    spec = meta.get("kernelspec", {}) or {}
    info = meta.get("language_info", {}) or {}
    language = (spec.get("language") or info.get("name") or "python").strip().lower()
    return "python" if language.startswith("python") else language


def _installed_kernels() -> set[str]:
    """Names of the kernelspecs installed here, found as jupyter_client's KernelSpecManager
    finds them (a folder holding a kernel.json in each kernels dir, names lower-cased; the
    native python3 kernel when ipykernel is installed). Not through it: importing
    jupyter_client (zmq) and its default dirs (all of IPython) costs a command ~400 ms."""
    import importlib.util

    from jupyter_core.paths import jupyter_path

    ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join(os.path.expanduser("~"), ".ipython")
    names = set()
    for folder in [*jupyter_path("kernels"), os.path.join(ipython_dir, "kernels")]:
        if os.path.isdir(folder):
            names.update(entry.lower() for entry in os.listdir(folder)
                         if os.path.isfile(os.path.join(folder, entry, "kernel.json")))
    if importlib.util.find_spec("ipykernel") is not None:
        names.add("python3")
    return names


def _check_kernel(kernel: str, language: str, warnings: list[str]) -> None:
    """Warn when the job's kernelspec is not installed here (where the capture runs)."""
    if kernel in _installed_kernels():
        return
    if language == "python":
        warnings.append(
            f"kernel {kernel!r} is not installed here: a runner that does not have it either "
            f"runs the notebook with its own Python kernel ({DEFAULT_KERNEL}) and says so in "
            "the log; give --kernel to choose another"
        )
    else:
        warnings.append(f"kernel {kernel!r} ({language}) is not installed here: the job runs "
                        "only where a runner has that kernel")


def _from_script(
    path: Path,
    *,
    name: str,
    mode: str | None,
    kernel: str | None,
    include: Sequence[str],
    env: dict[str, str],
    scope: _Scope,
    git: GitInfo | None = None,
) -> CapturedJob:
    if mode not in (None, "script"):
        raise CaptureError(f"cannot capture {path} in {mode} mode: .py files run as scripts")
    if kernel is not None:
        raise CaptureError(f"cannot capture {path} with kernel {kernel!r}: scripts use no kernel")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CaptureError(f"cannot capture {path}: no such file") from None
    except OSError as err:
        raise CaptureError(f"cannot capture {path}: {err.strerror or err}") from None
    try:
        source = raw.decode("utf-8")
        tree = ast.parse(source, filename=str(path))
    except UnicodeDecodeError:
        raise CaptureError(f"cannot capture {path}: it is not UTF-8 text") from None
    except SyntaxError as err:
        raise CaptureError(
            f"cannot capture {path}: line {err.lineno}: {err.msg}; fix the script so "
            f"Python {_python_minor()} can run it"
        ) from None
    warnings: list[str] = []
    defaults, schema = _script_parameters(tree, source, path.name, warnings)
    modules = cellscan.scan(tree).modules
    return _assemble(
        name=name,
        mode="script",
        entrypoint=JobFile(path.name, raw),
        kernel=None,
        defaults=defaults,
        schema=schema,
        modules=modules,
        pip=[],
        env=env,
        scope=scope,
        include=include,
        source_path=str(path),
        warnings=warnings,
        git=git,
    )


# -- public API -----------------------------------------------------------------------------


def capture(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    include: Sequence[str] = (),
    kernel: str | None = None,
    mode: str | None = None,
    env: Sequence[str] = (),
    root: str | os.PathLike[str] | None = None,
    allow_hidden: bool = False,
) -> CapturedJob:
    """Capture a ``.ipynb`` notebook or a ``.py`` script as a job.

    ``include`` adds files by glob (relative to the source's folder), ``env`` names environment
    variables to carry (``NAME`` or ``NAME=value``), ``mode`` is ``notebook`` or ``script``.
    Included files and local modules must resolve (through links) inside ``root`` (default:
    the source's folder; the server's root dir for REST) and are never hidden files unless
    ``allow_hidden``.
    """
    # One pattern or variable given as a string is one, not a sequence of characters.
    include = [include] if isinstance(include, str) else include
    env = [env] if isinstance(env, str) else env
    source = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    scope = _Scope.of(source.parent, root, allow_hidden)
    default_name = name is None
    name = validate_name(name) if name is not None else default_job_name(source)
    if mode is not None and mode not in MODES:
        raise CaptureError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
    variables = capture_env(env)
    suffix = source.suffix.lower()
    if suffix not in (".ipynb", ".py"):
        raise CaptureError(
            f"cannot capture {source}: launch-jupyter captures .ipynb notebooks and .py scripts"
        )
    git = GitInfo(scope.folder)  # its gits run while the source is read
    try:
        if suffix == ".ipynb":
            return _from_notebook(
                _read_notebook(source),
                name=name,
                stem=source.stem,
                filename=source.name,
                scope=scope,
                mode=mode,
                kernel=kernel,
                include=include,
                env=variables,
                source_path=str(source),
                default_name=default_name,
                git=git,
            )
        job = _from_script(
            source, name=name, mode=mode, kernel=kernel, include=include, env=variables,
            scope=scope, git=git,
        )
        job.default_name = default_name
        return job
    finally:
        git.close()  # an error stopped the capture before it waited for them


def capture_cells(
    cells: Sequence[str],
    *,
    name: str,
    folder: str | os.PathLike[str] | None = None,
    mode: str = "notebook",
    kernel: str = DEFAULT_KERNEL,
    parameters_cell: int | None = None,
) -> CapturedJob:
    """Capture code cell sources (cells run so far, or one ``%%launch`` cell) as a job.

    ``parameters_cell`` is the index of the cell holding the defaults; local modules are
    looked up in ``folder`` (default: the working directory).
    """
    name = validate_name(name)
    for number, source in enumerate(cells, start=1):
        try:
            source.encode("utf-8")
        except UnicodeEncodeError as err:
            raise CaptureError(f"cell {number} holds an unpaired surrogate "
                               f"({err.object[err.start:err.end]!r}), which is not valid "
                               "Unicode; remove that character") from None
    if parameters_cell is not None and not 0 <= parameters_cell < len(cells):
        raise CaptureError(
            f"parameters_cell {parameters_cell} is out of range: there are {len(cells)} cells"
        )
    nb = {
        "cells": [{"cell_type": "code", "source": source, "outputs": [],
                   "metadata": {"tags": [PARAMETERS_TAG]} if index == parameters_cell else {}}
                  for index, source in enumerate(cells)],
        "metadata": {
            "kernelspec": {"name": kernel, "display_name": kernel},
            "language_info": {"name": "python"},
        },
    }
    base = Path(os.path.abspath(folder if folder is not None else os.getcwd()))
    return _from_notebook(
        nb,
        name=name,
        stem=name,
        filename=f"{name}.ipynb",
        scope=_Scope.of(base),
        mode=mode,
        kernel=kernel,
        include=(),
        env={},
        source_path=CELLS_SOURCE,
    )
