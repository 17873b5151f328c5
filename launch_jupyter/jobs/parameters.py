"""Job parameters: defaults, their JSON Schema, overrides, and injection into a notebook.

Defaults come from the notebook cell tagged ``parameters`` (papermill's convention) or, in a
``.py`` job, from the keyword arguments of a ``launch_jupyter.parameters(...)`` call. Each
default's type gives its JSON Schema type (``0.1`` -> number, ``3`` -> integer, ``"adam"`` ->
string, ``True`` -> boolean, lists -> array, dicts -> object, ``None`` -> any JSON value).

Tightening the schema: put a constraint comment at the end of the assignment's line (in the
notebook) or of the keyword's line (in a script)::

    lr = 0.01  # launch: minimum=0, maximum=1
    epochs: int = 10  # launch: minimum=1, description="passes over the data"

    params = launch_jupyter.parameters(
        optimizer="adam",  # launch: enum=["adam", "sgd"]
        dropout=0.1,  # launch: minimum=0, exclusiveMaximum=1
    )

The format is ``# launch: key=JSONVALUE, key=JSONVALUE``, where each value is JSON (strings in
double quotes, arrays may contain commas). Keys: ``enum``, ``minimum``, ``maximum``,
``exclusiveMinimum``, ``exclusiveMaximum``, ``description`` and ``pattern``. A constraint
that the default itself breaks is an error, so the schema always accepts the defaults. A
``pattern`` is RE2 syntax (no backreferences or lookaround) and runs in linear time.

Overrides (``-p lr=0.01``) are parsed by the parameter's type, validated against the schema,
rendered as typed Python literals and injected as a cell tagged ``injected-parameters`` after
the ``parameters`` cell; they never become source text any other way. Inside a running job,
the effective parameters are also in the ``LAUNCH_PARAMETERS`` environment variable (JSON).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import keyword
import math
import os
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from launch_jupyter.errors import ParameterError, did_you_mean, shown
from launch_jupyter.jobs.envcache import EnvCache
from launch_jupyter.jobs.schema import Violation, check, compile_pattern

# The runtime side (parameters(), Parameters) lives in launch_jupyter.runtime: jobs import it.
from launch_jupyter.runtime import ENV_VAR, Parameters  # noqa: F401

if TYPE_CHECKING:  # nbformat imports jsonschema: capture, which imports this, never needs it
    import nbformat

PRIORITIES = {"low": 0, "medium": 1, "high": 2, "critical": 3}
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
#: nbclient's convention: a cell tagged so is not executed in a job (it runs interactively)
SKIP_TAG = "skip-execution"
INJECTED_HEADER = "# Parameters injected by launch-jupyter"
CONSTRAINT_KEYS = (
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "description",
    "pattern",
)
NO_PARAMETERS_HINT = (
    "this job has no parameters: tag a notebook cell `parameters` (cell toolbar > Property "
    "Inspector > Add Tag) and assign the defaults there, e.g. lr = 0.01, or in a script call "
    "launch_jupyter.parameters(lr=0.01); then capture the job again"
)

_TYPE_NAMES = {
    "boolean": "a boolean (true or false)",
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "a JSON array",
    "object": "a JSON object",
}
_EXAMPLES = {
    "boolean": "true",
    "integer": "3",
    "number": "0.01",
    "string": "adam",
    "array": "[1, 2]",
    "object": '{"a": 1}',
}
#: How a value of each type is named when a value of another type was given.
_VALUE_TYPE_NAMES = {
    "boolean": "a boolean (true or false)",
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "a JSON array (list)",
    "object": "a JSON object (dict)",
}
_BOUND_OPERATORS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
                    "exclusiveMaximum": "<"}
#: Deepest nesting of lists and dicts in one parameter value.
MAX_DEPTH = 64
#: Longest integer a parameter may be (Python refuses to print ints of 4300+ digits).
MAX_INT_DIGITS = 4000
_MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_CONSTRAINT_MARK = re.compile(r"#\s*launch:(.*)$")
_CONSTRAINT_KEY = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*")
_CONSTRAINT_HINT = 'write # launch: key=JSONVALUE, ... e.g. # launch: minimum=0, enum=["a", "b"]'
_SPACE = re.compile(r"\s*")
_JSON = json.JSONDecoder()
_BRACKETS = {"[": "]", "(": ")", "{": "}"}
#: What a Python literal's extent depends on: brackets, quotes and top-level commas.
_LITERAL_MARK = re.compile(r"[\[\](){},'\"]")
_QUOTE_OR_ESCAPE = {"'": re.compile(r"['\\]"), '"': re.compile(r'["\\]')}


# -- priorities -----------------------------------------------------------------------------


def parse_priority(value: str | int | None) -> int:
    """Turn a priority name (``low`` .. ``critical``) or number into its number; None is medium."""
    if value is None:
        return PRIORITIES["medium"]
    if isinstance(value, int) and not isinstance(value, bool):
        if value in PRIORITIES.values():
            return value
    elif isinstance(value, str):
        key = value.strip().lower()
        if key in PRIORITIES:
            return PRIORITIES[key]
        if key.isdigit() and int(key) in PRIORITIES.values():
            return int(key)
    names = ", ".join(sorted(PRIORITIES, key=PRIORITIES.__getitem__, reverse=True))
    raise ParameterError(f"unknown priority {value!r}; use one of: {names}")


# -- values ---------------------------------------------------------------------------------


def _json_type(value: Any) -> str | None:
    """JSON Schema type name of a JSON-like Python value (None for ``None``: any value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise ParameterError(f"unsupported value {value!r} ({type(value).__name__})")


def to_json_value(value: Any, where: str = "value", _depth: int = 0) -> Any:
    """Return ``value`` as plain JSON-like Python (tuples become lists) or raise ParameterError."""
    if _depth > MAX_DEPTH:
        raise ParameterError(f"{where} nests lists or dicts more than {MAX_DEPTH} levels deep; "
                             "flatten it")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:  # Python and JSON encoders cannot print it
            raise ParameterError(f"{where} is an integer of more than {MAX_INT_DIGITS} digits; "
                                 "pass it as a string")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ParameterError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:  # a lone surrogate: no JSON text or file can hold it
            raise ParameterError(f"{where} is not valid Unicode ({err.reason} at position "
                                 f"{err.start}); remove the stray surrogate") from None
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_json_value(item, where, _depth + 1) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ParameterError(f"{where} has a non-string key {shown(key, 200)}; JSON keys "
                                     "are strings")
            out[to_json_value(key, where, _depth + 1)] = to_json_value(item, where, _depth + 1)
        return out
    raise ParameterError(
        f"{where} is a {type(value).__name__} ({shown(value, 200)}); parameters are JSON values: "
        "None, bool, int, float, str, list or dict"
    )


def render_literal(value: Any) -> str:
    """Python literal source for a JSON-like value; ``ast.literal_eval`` gives the value back."""
    # Base-class reprs: a subclass cannot smuggle code in through its own __repr__.
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ParameterError(f"cannot render {value!r}: parameters must be finite numbers")
        return float.__repr__(value)
    if isinstance(value, str):
        return str.__repr__(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise ParameterError(f"cannot render {value!r}: dict keys must be strings")
            items.append(f"{render_literal(key)}: {render_literal(item)}")
        return "{" + ", ".join(items) + "}"
    raise ParameterError(
        f"cannot render {value!r} ({type(value).__name__}) as a parameter; use None, bool, int, "
        "float, str, list or dict"
    )


# -- schema ---------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_constraint(name: str, key: str, value: Any, ptype: str | None) -> Any:
    """Validate one constraint's own value; return it normalised."""
    if key == "enum":
        if not isinstance(value, list) or not value:
            raise ParameterError(f"parameter {name!r}: enum must be a non-empty JSON array")
        return to_json_value(value, f"parameter {name!r} enum")
    if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if ptype not in (None, "integer", "number"):
            raise ParameterError(
                f"parameter {name!r}: {key} applies to numbers, but the default is a {ptype}"
            )
        if not _is_number(value) or not math.isfinite(value):
            raise ParameterError(f"parameter {name!r}: {key} must be a number, got {value!r}")
        return value
    if key == "description":
        if not isinstance(value, str):
            raise ParameterError(f"parameter {name!r}: description must be a string")
        return value
    if key == "pattern":
        if ptype not in (None, "string"):
            raise ParameterError(
                f"parameter {name!r}: pattern applies to strings, but the default is a {ptype}"
            )
        if not isinstance(value, str):
            raise ParameterError(f"parameter {name!r}: pattern must be a string")
        try:
            compile_pattern(value)  # refused now, at capture, if RE2 cannot run it
        except ParameterError as err:
            raise ParameterError(f"parameter {name!r}: {err}") from None
        return value
    known = ", ".join(CONSTRAINT_KEYS)
    raise ParameterError(f"parameter {name!r}: unknown constraint {key!r}; use one of: {known}")


def schema_for(defaults: dict, constraints: dict[str, dict] | None = None) -> dict:
    """JSON Schema for ``defaults``, typed by each default and tightened by ``constraints``."""
    constraints = constraints or {}
    for name in constraints:
        if name not in defaults:
            raise ParameterError(f"constraint for {name!r}, which is not a parameter")
    properties: dict[str, dict] = {}
    for name, default in defaults.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ParameterError(f"parameter name {name!r} is not a Python identifier")
        default = to_json_value(default, f"parameter {name!r} default")
        ptype = _json_type(default)
        prop: dict[str, Any] = {"type": ptype} if ptype else {}
        for key, value in (constraints.get(name) or {}).items():
            prop[key] = _check_constraint(name, key, value, ptype)
        prop["default"] = default
        # A default always fits the type taken from it: only constraints can refuse it.
        if constraints.get(name):
            _default_fits(name, default, prop)
        properties[name] = prop
    return {"type": "object", "properties": properties, "additionalProperties": False}


#: properties whose default was found to fit its constraints, per environment (jsonschema's
#: and RE2's versions) and version of the check (these modules' files)
_FITS = EnvCache("fits", version=1, keep=1024)
_CHECK_FILES = (__file__, os.path.join(os.path.dirname(__file__), "schema.py"))


def _default_fits(name: str, default: Any, prop: dict) -> None:
    """Raise ParameterError when ``default`` breaks its constraints in ``prop``. A fit is
    remembered, so capturing the notebook again imports no jsonschema (~30 ms of
    `job create`, issue #18)."""
    stamp = [os.stat(path).st_mtime_ns for path in _CHECK_FILES]
    key = hashlib.sha256(json.dumps([stamp, prop], sort_keys=True).encode()).hexdigest()
    if _FITS.get(key):
        return
    try:
        _validate_value(name, default, prop)
    except ParameterError as err:
        raise ParameterError(f"the default contradicts its constraints: {err}") from None
    _FITS.put(key, True)


# -- constraint comments --------------------------------------------------------------------


def parse_constraint_comment(comment: str, where: str = "") -> dict | None:
    """Parse ``# launch: key=JSON, ...``; None if the comment is not a constraint comment.

    One pass over the comment: its length, not its shape, bounds the time taken (issue #13).
    """
    match = _CONSTRAINT_MARK.match(comment.strip())
    if not match:
        return None
    text = match.group(1)

    def malformed(why: str = "") -> ParameterError:
        return ParameterError(f"malformed constraint comment {where}"
                              f"{shown(comment.strip(), 200)}{why}; {_CONSTRAINT_HINT}")

    out: dict[str, Any] = {}
    pos = 0
    while True:
        key_match = _CONSTRAINT_KEY.match(text, pos)
        if not key_match:
            raise malformed()
        key = key_match.group(1)
        out[key], pos = _constraint_value(text, key_match.end(), key, malformed)
        pos = _SPACE.match(text, pos).end()
        if pos == len(text):
            return out
        if text[pos] != ",":
            raise malformed()
        pos += 1


def _constraint_value(text: str, start: int, key: str,
                      malformed: Callable[[str], ParameterError]) -> tuple[Any, int]:
    """The value of ``key`` starting at ``start``, as JSON or else as a Python literal (notebook
    authors write Python: ``['adam', 'sgd']``, ``True``); returns it and where it ends."""
    try:
        return _JSON.raw_decode(text, start)
    except (json.JSONDecodeError, RecursionError):
        pass
    end, problem = _literal_end(text, start)
    if problem:
        raise malformed(f": the value of {key!r} {problem}")
    try:
        return to_json_value(ast.literal_eval(text[start:end].strip())), end
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, ParameterError):
        raise malformed(f": the value of {key!r} is not JSON (strings need double "
                        "quotes)") from None


def _literal_end(text: str, start: int) -> tuple[int, str | None]:
    """Where a Python literal starting at ``start`` ends: at a comma outside brackets and
    strings, or at the end; with what is wrong if a bracket or string is never closed."""
    closers: list[str] = []
    pos = start
    while True:
        found = _LITERAL_MARK.search(text, pos)
        if found is None:
            break
        mark, pos = found.group(), found.end()
        if mark in _BRACKETS:
            closers.append(_BRACKETS[mark])
        elif mark in ")]}":
            if not closers or closers.pop() != mark:
                return len(text), None  # a stray closer: literal_eval names the fault
        elif mark == ",":
            if not closers:
                return found.start(), None
        else:
            quote = mark * 3 if text.startswith(mark * 3, found.start()) else mark
            pos = _string_end(text, found.start() + len(quote), quote)
            if pos < 0:
                return len(text), f"has a string that is never closed; end it with {quote!r}"
    if closers:
        needed = "".join(reversed(closers))
        return len(text), (f"opens {len(needed)} bracket(s) it never closes; close them with "
                           f"{shown(needed, 40)}")
    return len(text), None


def _string_end(text: str, pos: int, quote: str) -> int:
    """Index just past the ``quote`` that closes a string whose body starts at ``pos``; -1 if
    none does."""
    stop = _QUOTE_OR_ESCAPE[quote[0]]
    while True:
        found = stop.search(text, pos)
        if found is None:
            return -1
        if found.group() == "\\":
            pos = found.end() + 1  # an escaped character never ends the string
        elif text.startswith(quote, found.start()):
            return found.start() + len(quote)
        else:
            pos = found.end()


# -- validation -----------------------------------------------------------------------------


def _known_list(schema: dict) -> str:
    names = sorted(schema.get("properties", {}))
    return ", ".join(names)


def _unknown(name: str, schema: dict) -> ParameterError:
    if not schema.get("properties"):
        return ParameterError(f"unknown parameter {name!r}: {NO_PARAMETERS_HINT}")
    hint = did_you_mean(name, schema["properties"])
    known = f"{'Known' if hint else 'known'} parameters: {_known_list(schema)}"
    return ParameterError(f"unknown parameter {name!r};{hint} {known}")


def _got(value: Any) -> str:
    return f"{shown(value, 200)} ({type(value).__name__})"


def _validate_value(name: str, value: Any, prop: dict) -> Any:
    """Check one typed value against its property; return it normalised."""
    label = f"parameter {name!r}"
    ptype = prop.get("type")

    def normalise(value: Any) -> Any:
        if ptype == "integer":
            value = int(value)
        elif ptype == "number":
            try:
                value = float(value)
            except OverflowError:
                raise ParameterError(f"{label} is too large for a number (at most about "
                                     "1.8e308)") from None
        return to_json_value(value, label)

    return check(value, prop, lambda fault: _fault_message(label, fault), normalise)


def _fault_message(label: str, fault: Violation) -> str:
    """Today's wording for each way a parameter value can break its property."""
    if fault.keyword == "type":
        kind = _VALUE_TYPE_NAMES.get(fault.expected, f"of type {fault.expected}")
        return f"{label} must be {kind}, got {_got(fault.value)}"
    if fault.keyword == "enum":
        options = ", ".join(repr(option) for option in fault.expected)
        return f"{label} must be one of {options}, got {fault.value!r}"
    if fault.keyword in _BOUND_OPERATORS:
        return (f"{label} must be {_BOUND_OPERATORS[fault.keyword]} {fault.expected!r}, "
                f"got {fault.value!r}")
    if fault.keyword == "pattern":
        return f"{label} must match the pattern {fault.expected!r}, got {fault.value!r}"
    return f"{label} breaks its schema's {fault.keyword} {fault.expected!r}, got {fault.value!r}"


def validate_parameters(values: dict, schema: dict) -> dict:
    """Check typed values against ``schema``; return a new dict of normalised values."""
    properties = schema.get("properties", {})
    out = {}
    for name, value in values.items():
        if name not in properties:
            raise _unknown(name, schema)
        out[name] = _validate_value(name, value, properties[name])
    return out


def _parse_value(name: str, text: str, prop: dict) -> Any:
    """Turn the text of ``-p name=text`` into a value of the property's type."""
    ptype = prop.get("type")
    if ptype == "string":
        return text
    wrong = (
        f"parameter {name!r} must be {_TYPE_NAMES.get(ptype, 'a JSON value')}, got {text!r}; "
        f"write e.g. -p {name}={_EXAMPLES.get(ptype, '1')}"
    )
    if ptype == "integer":
        try:
            return int(text)
        except ValueError:
            raise ParameterError(wrong) from None
    if ptype == "number":
        try:
            number = float(text)
        except ValueError:
            raise ParameterError(wrong) from None
        if not math.isfinite(number):
            raise ParameterError(f"parameter {name!r} must be a finite number, got {text!r}")
        return number
    if ptype == "boolean":
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ParameterError(f"{wrong} (true/false, yes/no or 1/0)")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        if ptype is None:
            return text  # untyped: a bare word is meant as a string
        raise ParameterError(wrong) from None
    if ptype == "array" and not isinstance(value, list):
        raise ParameterError(wrong)
    if ptype == "object" and not isinstance(value, dict):
        raise ParameterError(wrong)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def parse_overrides(pairs: Iterable[str], schema: dict) -> dict:
    """Parse ``key=value`` strings (``-p``) by each parameter's type, then validate them."""
    properties = schema.get("properties", {})
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(
                f"malformed parameter {pair!r}; write -p key=value, e.g. -p lr=0.01"
            )
        if key not in properties:
            raise _unknown(key, schema)
        values[key] = _parse_value(key, text, properties[key])
    return validate_parameters(values, schema)


def effective_parameters(defaults: dict, overrides: dict) -> dict:
    """The parameters a run sees: ``defaults`` updated by ``overrides``."""
    merged = dict(defaults)
    merged.update(overrides)
    return merged


# -- injection ------------------------------------------------------------------------------


def _tags(cell: Any) -> list:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def injected_source(parameters: dict) -> str:
    """Source of the injected cell: one ``name = literal`` line per parameter, sorted."""
    lines = [INJECTED_HEADER]
    for name in sorted(parameters):
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ParameterError(f"parameter name {name!r} is not a Python identifier")
        lines.append(f"{name} = {render_literal(parameters[name])}")
    return "\n".join(lines)


def inject_parameters(
    nb: nbformat.NotebookNode, parameters: dict
) -> nbformat.NotebookNode:
    """Copy of ``nb`` with an ``injected-parameters`` cell right after the ``parameters`` cell."""
    import nbformat

    nb = copy.deepcopy(nb)
    if not parameters:
        return nb
    source = injected_source(parameters)
    nb.cells = [cell for cell in nb.cells if INJECTED_TAG not in _tags(cell)]
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) >= (4, 5):
        cell["id"] = INJECTED_TAG  # deterministic: the same run renders the same notebook
    else:
        cell.pop("id", None)
    position = 0
    for index, existing in enumerate(nb.cells):
        if existing.get("cell_type") == "code" and PARAMETERS_TAG in _tags(existing):
            position = index + 1
            break
    nb.cells.insert(position, cell)
    return nb


# -- runtime helper -------------------------------------------------------------------------


