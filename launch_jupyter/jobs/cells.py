"""Read a code cell the way IPython runs it: its imports, installs, ``%run`` files and writes.

A cell that is not plain Python goes through IPython's own ``TransformerManager`` (the
transforms a kernel applies before running a cell), so ``!cmd \\`` continuations, ``obj?``,
``x = %magic`` and ``%%cell`` magics become the ``get_ipython()`` calls IPython makes, and the
result parses as Python. Automagics (a bare ``pip install x``) are turned into ``%pip`` lines
first, as IPython's automagic would. The calls are then read from the syntax tree, each with
whether it runs unconditionally (not under an ``if`` or a ``try`` that catches ImportError).
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

#: Cell magics whose body is Python that runs: their bodies are scanned like a cell.
PYTHON_BODY_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
#: Cell magics whose body is a shell script.
SHELL_BODY_MAGICS = frozenset({"bash", "sh", "system", "script"})
#: Cell magics that write their body to a file.
WRITE_MAGICS = frozenset({"writefile", "file"})
#: Line magics whose argument is a Python statement.
PYTHON_LINE_MAGICS = frozenset({"time", "timeit", "prun"})
_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
_AUTOMAGIC = re.compile(r"^(\s*)([A-Za-z_]\w*)(\s+(?![=+\-*/%&|^<>!.,:)\]}]).*)$")
_MAGIC_CALLS = {"run_line_magic": "line", "run_cell_magic": "cell", "system": "system",
                "getoutput": "system"}


@dataclass
class Magic:
    """One IPython call of a cell: a line magic, a cell magic or a shell command (``!``)."""

    kind: str  # "line", "cell" or "system"
    name: str  # the magic's name ("" for a shell command)
    text: str  # the magic's line (arguments) or the shell command
    body: str | None  # a cell magic's body
    line: int  # in the transformed source
    conditional: bool


@dataclass
class Scan:
    """What a parsed cell imports (module -> runs unconditionally) and its IPython calls."""

    modules: dict[str, bool] = field(default_factory=dict)
    magics: list[Magic] = field(default_factory=list)

    def add_module(self, module: str, conditional: bool) -> None:
        """Record an import; a module is unconditional once any of its imports is."""
        self.modules[module] = self.modules.get(module, False) or not conditional


@functools.cache
def _transformer():  # noqa: ANN202 (IPython is imported only when a cell needs it)
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


@functools.cache
def line_magic_names() -> frozenset[str]:
    """IPython's built-in line magics and shell aliases: what automagic may call bare."""
    from IPython.core import magics
    from IPython.core.alias import default_aliases

    names = {"mamba", "micromamba"}
    for attr in dir(magics):
        table = getattr(getattr(magics, attr), "magics", None)
        if attr.endswith("Magics") and isinstance(table, dict):
            names.update(table.get("line", {}))
    names.update(alias for alias, _ in default_aliases())
    return frozenset(names)


def to_python(source: str) -> tuple[str, ast.Module]:
    """The Python IPython runs for ``source`` and its syntax tree (SyntaxError if none).

    Plain Python is returned as it is; anything else goes through IPython's transforms.
    """
    try:
        return source, ast.parse(source)
    except SyntaxError:
        pass
    python = _transform(source)
    try:
        return python, ast.parse(python)
    except SyntaxError as first:
        automagic = _automagic(source)
        if automagic == source:
            raise first from None
    python = _transform(automagic)
    return python, ast.parse(python)


def _transform(source: str) -> str:
    """IPython's transforms of ``source``; SyntaxError when IPython cannot read it either."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # IPython warns about odd line endings
            return _transformer().transform_cell(source)
    except SyntaxError:
        raise
    except Exception as err:  # IPython's tokenizer fails in many ways on broken input
        raise SyntaxError(f"IPython cannot read it ({type(err).__name__}: {err})") from None


def _automagic(source: str) -> str:
    """``source`` with bare magic calls (``pip install x``) written as ``%pip install x``,
    for the lines that are not Python on their own (as IPython's automagic decides)."""
    out = []
    for line in source.splitlines():
        match = _bare_magic(line)
        if match:
            line = f"{match.group(1)}%{match.group(2)}{match.group(3)}"
        out.append(line)
    return "\n".join(out)


def _bare_magic(line: str) -> re.Match | None:
    """The parts of ``line`` if it is a bare magic call that is not Python on its own."""
    match = _AUTOMAGIC.match(line)
    if match and match.group(2) in line_magic_names() and not _parses(line.strip()):
        return match
    return None


def bare_magic_lines(source: str) -> list[int]:
    """The lines of ``source`` (from 1) that only automagic makes runnable (``pip install x``)
    where IPython will not apply it: it does so only to a cell its transforms leave one line
    long, so in a longer cell such a line is a SyntaxError when the cell runs."""
    try:
        transformed = _transform(source)
    except SyntaxError:
        return []
    if len(transformed.splitlines()) <= 1 or _parses(transformed):
        return []
    return [number for number, line in enumerate(source.splitlines(), start=1)
            if _bare_magic(line)]


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def scan(tree: ast.AST) -> Scan:
    """Imports and IPython calls of a parsed (transformed) cell."""
    visitor = _Visitor()
    visitor.visit(tree)
    return visitor.found


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type
    if kinds is None:
        return True
    names = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
    return any(
        (isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS)
        or (isinstance(n, ast.Attribute) and n.attr in _IMPORT_ERRORS)
        for n in names
    )


def _suppresses_import_error(node: ast.With | ast.AsyncWith) -> bool:
    """``with contextlib.suppress(ImportError):`` and the like."""
    for item in node.items:
        call = item.context_expr
        if isinstance(call, ast.Call):
            func = call.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name == "suppress" and any(
                isinstance(a, ast.Name | ast.Attribute)
                and (getattr(a, "id", None) or getattr(a, "attr", None)) in _IMPORT_ERRORS
                for a in call.args
            ):
                return True
    return False


class _Visitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found = Scan()
        self.depth = 0  # > 0: under an if, or a try that catches ImportError

    def _guarded(self, nodes: list[ast.AST]) -> None:
        self.depth += 1
        for node in nodes:
            self.visit(node)
        self.depth -= 1

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.add_module(alias.name.split(".")[0], self.depth > 0)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not node.level and node.module:
            self.found.add_module(node.module.split(".")[0], self.depth > 0)

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        self._guarded([*node.body, *node.orelse])

    def visit_Try(self, node: ast.Try) -> None:
        if any(_catches_import_error(h) for h in node.handlers):
            self._guarded([*node.body, *node.handlers, *node.orelse])
            for stmt in node.finalbody:
                self.visit(stmt)
        else:
            self.generic_visit(node)

    visit_TryStar = visit_Try

    def visit_With(self, node: ast.With) -> None:
        if _suppresses_import_error(node):
            self._guarded(node.body)
        else:
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        kind = _MAGIC_CALLS.get(func.attr) if isinstance(func, ast.Attribute) else None
        if (
            kind is not None
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None
                    for a in node.args]
            if args and all(a is not None for a in args):
                if kind == "system":
                    magic = Magic(kind, "", args[0], None, node.lineno, self.depth > 0)
                else:
                    body = args[2] if kind == "cell" and len(args) > 2 else None
                    text = args[1] if len(args) > 1 else ""
                    magic = Magic(kind, args[0].lstrip("%"), text, body, node.lineno,
                                  self.depth > 0)
                self.found.magics.append(magic)
        self.generic_visit(node)


def _unquoted(text: str) -> Iterator[int]:
    """The positions of ``text``'s characters a shell reads as syntax: not inside quotes and
    not escaped by a backslash (the quotes themselves are not yielded)."""
    quote = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = None
            elif char == "\\" and quote == '"':
                index += 1
        elif char in "'\"":
            quote = char
        elif char == "\\":
            index += 1
        else:
            yield index
        index += 1


def _comment_at(text: str, index: int) -> bool:
    return text[index] == "#" and (index == 0 or text[index - 1].isspace())


def shell_commands(command: str) -> list[str]:
    """The commands of a shell line: split at its unquoted ``&&``, ``||`` and ``;`` (``pip
    install a && pip install b`` installs both). A pipe's later commands only read the first
    one's output, so they stay with it."""
    parts = []
    start = 0
    for index in _unquoted(command):
        if index < start:  # the second character of an operator just split at
            continue
        if _comment_at(command, index):
            break  # a comment ends the line
        if command[index] == ";" or command[index:index + 2] in ("&&", "||"):
            parts.append(command[start:index])
            start = index + (1 if command[index] == ";" else 2)
    parts.append(command[start:])
    return [part for part in parts if part.strip()]


def shell_words(command: str) -> list[str]:
    """The words of a shell command up to its first operator (``>``, ``|``, ``&&``, ``;``,
    ``2>``, ``<``, ``&``) or comment, with ``\\`` line continuations joined, unquoted."""
    text = command.replace("\\\r\n", " ").replace("\\\n", " ")
    index = next((i for i in _unquoted(text)
                  if text[i] in "|&;<>\n" or _comment_at(text, i)), len(text))
    head = text[:index]
    if index < len(text) and text[index] in "<>":
        head = re.sub(r"(^|\s)\d$", r"\1", head)  # the fd of '2>' is no word
    try:
        return shlex.split(head)
    except ValueError:
        return head.split()
