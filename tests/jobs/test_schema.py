"""The one JSON-Schema check under parameters and template values (jobs/schema.py)."""

from __future__ import annotations

import pytest

from launch_jupyter.errors import ParameterError
from launch_jupyter.jobs import parse_overrides, schema_for, validate_parameters
from launch_jupyter.jobs.schema import Violation, check, first_violation
from launch_jupyter.runners.templates import validate_template_values


def test_faults_are_reported_type_first_then_enum_bounds_pattern() -> None:
    schema = {"pattern": "^a", "maximum": 1, "enum": [5], "type": "integer"}
    assert first_violation(7, schema) == Violation("enum", [5], 7)
    assert first_violation("x", schema) == Violation("type", "integer", "x")
    assert first_violation(5, {"maximum": 1, "minimum": 6}) == Violation("minimum", 6, 5)
    assert first_violation(5, schema | {"enum": [5, 7]}) == Violation("maximum", 1, 5)


def test_python_types_are_kept_apart_as_before() -> None:
    """An integer is an int (never 2.0 or True), True is not 1 in an enum, a tuple is an array."""
    schema = schema_for({"n": 3, "flag": True, "sizes": [1]}, {"n": {"enum": [1, 3]}})
    with pytest.raises(ParameterError, match=r"parameter 'n' must be an integer, got 3\.0"):
        validate_parameters({"n": 3.0}, schema)
    with pytest.raises(ParameterError, match="parameter 'n' must be an integer, got True"):
        validate_parameters({"n": True}, schema)
    assert validate_parameters({"sizes": (1, 2)}, schema) == {"sizes": [1, 2]}
    untyped = schema_for({"x": None}, {"x": {"enum": [None, 1, "a"]}})
    with pytest.raises(ParameterError, match="must be one of None, 1, 'a', got True"):
        validate_parameters({"x": True}, untyped)


def test_the_type_is_named_before_a_value_too_deep_to_print() -> None:
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    schema = schema_for({"name": "x"})
    with pytest.raises(ParameterError, match="parameter 'name' must be a string, got"):
        validate_parameters({"name": deep}, schema)
    with pytest.raises(ParameterError, match="template value 'tag' must be a string"):
        validate_template_values({"variables": {"tag": {"type": "string"}}}, {"tag": deep})


def test_one_schema_in_any_key_order_checks_the_same() -> None:
    one = {"type": "number", "minimum": 0, "maximum": 1}
    other = {"maximum": 1, "minimum": 0, "type": "number"}

    def describe(fault: Violation) -> str:
        return f"{fault.keyword} {fault.expected}"

    assert check(0.5, one, describe) == check(0.5, other, describe) == 0.5
    for schema in (one, other):
        with pytest.raises(ParameterError, match="^maximum 1$"):
            check(2, schema, describe)


def test_pattern_constraint_is_checked_on_overrides() -> None:
    schema = schema_for({"tag": "run"}, {"tag": {"pattern": "^[a-z]*$"}})
    assert parse_overrides(["tag=abc"], schema) == {"tag": "abc"}
    with pytest.raises(ParameterError, match=r"parameter 'tag' must match the pattern "
                       r"'\^\[a-z\]\*\$', got 'ABC'"):
        parse_overrides(["tag=ABC"], schema)
