"""One JSON-Schema check, on the ``jsonschema`` library, for parameters and template values.

Each caller words its own messages (``describe``); this module decides what is checked and in
which order. A validator is built once per schema, cached by the schema's canonical JSON.
``pattern`` runs on RE2, a linear-time engine: no pattern can stall the server, because
Python's ``re`` backtracks while holding the GIL (issue #13, row 8). ``jsonschema`` and ``re2``
are imported on first use, not when ``launch_jupyter.jobs`` is.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from launch_jupyter.errors import ParameterError, shown

#: The order in which a value's faults are reported: its type first, then enum, bounds, pattern.
ORDER = ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern")
RE2_HINT = ("constraint patterns run on RE2 (linear time), which has no backreferences, no "
            "lookaround and at most 1000 repetitions; rewrite the pattern without them")


@dataclass(frozen=True)
class Violation:
    """One way a value breaks its schema: the keyword, the schema's value for it, the value."""

    keyword: str
    expected: Any
    value: Any


def check(value: Any, schema: Mapping, describe: Callable[[Violation], str],
          normalise: Callable[[Any], Any] | None = None) -> Any:
    """Return ``value``, normalised, if it fits ``schema``; else raise ParameterError(describe()).

    The type is checked on the value as given, so a wrong type is named before ``normalise``
    (which may refuse what JSON cannot hold) runs; the other keywords see the normalised value.
    """
    if "type" in schema:
        # is_type, not iter_errors: jsonschema's message would repr a value that may be too
        # deep or too large to print, and the value has not been normalised yet.
        expected = schema["type"]
        validator = _validator(_canonical({"type": expected}))
        kinds = expected if isinstance(expected, list) else [expected]
        if not any(validator.is_type(value, kind) for kind in kinds):
            raise ParameterError(describe(Violation("type", expected, value)))
    if normalise is not None:
        value = normalise(value)
    _raise_first(value, schema, describe)
    return value


def first_violation(value: Any, schema: Mapping) -> Violation | None:
    """The first fault of ``value`` against ``schema`` in :data:`ORDER`, or None if it fits."""
    errors = list(_validator(_canonical(schema)).iter_errors(value))
    if not errors:
        return None
    error = min(errors, key=lambda e: ORDER.index(e.validator) if e.validator in ORDER
                else len(ORDER))
    return Violation(str(error.validator), error.validator_value, error.instance)


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled by RE2, or a ParameterError naming it and saying why it cannot run."""
    import re2

    options = re2.Options()
    options.log_errors = False  # the reason goes into our message, not onto stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as err:
        reason = err.args[0] if err.args else "unknown error"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        raise ParameterError(f"pattern {pattern!r} is invalid: {reason}") from None
    raise ParameterError(f"pattern {pattern!r} cannot run on RE2 ({reason}); {RE2_HINT}")


def _raise_first(value: Any, schema: Mapping, describe: Callable[[Violation], str]) -> None:
    violation = first_violation(value, schema)
    if violation is not None:
        raise ParameterError(describe(violation))


def _canonical(schema: Mapping) -> str:
    try:
        return json.dumps(schema, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as err:
        raise ParameterError(f"schema {shown(schema, 200)} is not JSON ({err}); capture the job or "
                             "create the queue again") from None


@functools.lru_cache(maxsize=512)
def _validator(canonical: str) -> Any:
    return _validator_class()(json.loads(canonical))


@functools.lru_cache(maxsize=1)
def _validator_class() -> Any:
    """Draft 2020-12 with Python's types (an integer is an int, never a bool or 2.0; a tuple is
    an array) and ``pattern`` on RE2."""
    import jsonschema  # no format checker: see launch_jupyter.imports

    base = jsonschema.Draft202012Validator

    def is_integer(_checker: Any, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def is_number(_checker: Any, value: Any) -> bool:
        # numbers.Number would take complex and Decimal: JSON numbers are reals
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def is_array(_checker: Any, value: Any) -> bool:
        return isinstance(value, (list, tuple))

    def pattern(validator: Any, expected: str, value: Any, _schema: Any) -> Any:
        if validator.is_type(value, "string") and not compile_pattern(expected).search(value):
            yield jsonschema.ValidationError(f"{value!r} does not match {expected!r}")

    types = base.TYPE_CHECKER.redefine_many({"integer": is_integer, "number": is_number,
                                             "array": is_array})
    return jsonschema.validators.extend(base, validators={"pattern": pattern},
                                        type_checker=types)
