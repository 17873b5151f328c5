from __future__ import annotations

import ast
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from launch_jupyter.errors import ParameterError
from launch_jupyter.jobs import (
    PRIORITIES,
    effective_parameters,
    inject_parameters,
    parameters,
    parse_overrides,
    parse_priority,
    render_literal,
    schema_for,
    validate_parameters,
)
from launch_jupyter.jobs.parameters import parse_constraint_comment

DEFAULTS = {
    "lr": 0.01,
    "epochs": 3,
    "optimizer": "adam",
    "shuffle": True,
    "layers": [64, 32],
    "extra": {"a": 1},
    "anything": None,
}


@pytest.fixture
def schema():
    return schema_for(
        DEFAULTS,
        {"lr": {"minimum": 0, "maximum": 1.0}, "optimizer": {"enum": ["adam", "sgd"]}},
    )


# -- priorities -----------------------------------------------------------------------------


def test_priority_names_and_default():
    assert parse_priority(None) == PRIORITIES["medium"] == 1
    assert parse_priority("HIGH") == 2
    assert parse_priority("critical") == 3
    assert parse_priority(0) == 0


def test_unknown_priority_lists_the_choices():
    with pytest.raises(ParameterError, match="unknown priority 'urgent'; use one of: critical, "
                       "high, medium, low"):
        parse_priority("urgent")


# -- schema ---------------------------------------------------------------------------------


def test_schema_types_follow_the_defaults(schema):
    props = schema["properties"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert props["lr"] == {"type": "number", "minimum": 0, "maximum": 1.0, "default": 0.01}
    assert props["epochs"] == {"type": "integer", "default": 3}
    assert props["optimizer"] == {"type": "string", "enum": ["adam", "sgd"], "default": "adam"}
    assert props["shuffle"]["type"] == "boolean"
    assert props["layers"]["type"] == "array"
    assert props["extra"]["type"] == "object"
    assert props["anything"] == {"default": None}
    json.dumps(schema)  # JSON-able


def test_unknown_constraint_is_refused():
    with pytest.raises(ParameterError, match="parameter 'lr': unknown constraint 'max'"):
        schema_for({"lr": 0.1}, {"lr": {"max": 1}})


@pytest.mark.parametrize(
    "constraint",
    [{"maximum": 0.005}, {"minimum": 0.5}, {"exclusiveMaximum": 0.01}, {"enum": [0.1, 0.2]}],
)
def test_constraint_contradicting_the_default_is_refused(constraint):
    with pytest.raises(ParameterError, match="default contradicts.*'lr'"):
        schema_for({"lr": 0.01}, {"lr": constraint})


def test_constraint_comment_parses_json_values():
    assert parse_constraint_comment('# launch: enum=["a", "b"], minimum=0') == {
        "enum": ["a", "b"],
        "minimum": 0,
    }
    assert parse_constraint_comment("# just a comment") is None
    with pytest.raises(ParameterError, match="malformed constraint comment"):
        parse_constraint_comment("# launch: enum=[adam]")
    with pytest.raises(ParameterError, match="malformed constraint comment"):
        parse_constraint_comment("# launch: minimum=0 maximum=1")


# -- overrides ------------------------------------------------------------------------------


def test_overrides_are_parsed_by_type(schema):
    values = parse_overrides(
        [
            "lr=1",
            "epochs=10",
            "optimizer=sgd",
            "shuffle=No",
            "layers=[1, 2]",
            'extra={"b": [true]}',
        ],
        schema,
    )
    assert values == {
        "lr": 1.0,
        "epochs": 10,
        "optimizer": "sgd",
        "shuffle": False,
        "layers": [1, 2],
        "extra": {"b": [True]},
    }
    assert isinstance(values["lr"], float)


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("1", True), ("YES", True),
                                                ("False", False), ("0", False)])
def test_boolean_spellings(schema, text, expected):
    assert parse_overrides([f"shuffle={text}"], schema) == {"shuffle": expected}


def test_string_values_are_taken_literally():
    schema = schema_for({"name": "x"})
    assert parse_overrides(['name="quoted"'], schema) == {"name": '"quoted"'}
    assert parse_overrides(["name=123"], schema) == {"name": "123"}
    assert parse_overrides(["name=a=b"], schema) == {"name": "a=b"}
    assert parse_overrides(["name="], schema) == {"name": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", 3), ("0.5", 0.5), ("null", None), ('{"k": [1]}', {"k": [1]}), ("plain", "plain"),
     ('"s"', "s"), ("NaN", "NaN")],
)
def test_none_default_accepts_any_json_value(schema, text, expected):
    assert parse_overrides([f"anything={text}"], schema) == {"anything": expected}


@pytest.mark.parametrize("pair", ["lr", "=3", "  =1"])
def test_malformed_pair_says_how_to_write_it(schema, pair):
    with pytest.raises(ParameterError, match=r"malformed parameter .*write -p key=value, e\.g\. "
                       r"-p lr=0\.01"):
        parse_overrides([pair], schema)


def test_unknown_parameter_lists_the_known_ones(schema):
    with pytest.raises(ParameterError) as err:
        parse_overrides(["learning_rate=0.1"], schema)
    message = str(err.value)
    assert "unknown parameter 'learning_rate'" in message
    assert "anything, epochs, extra, layers, lr, optimizer, shuffle" in message


def test_unknown_parameter_without_parameters_cell_explains_the_tag():
    with pytest.raises(ParameterError, match="no parameters.*tag a notebook cell `parameters`"):
        parse_overrides(["lr=0.1"], schema_for({}))


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("epochs=3.0", "parameter 'epochs' must be an integer, got '3.0'"),
        ("epochs=ten", "parameter 'epochs' must be an integer"),
        ("lr=fast", "parameter 'lr' must be a number, got 'fast'"),
        ("lr=nan", "parameter 'lr' must be a finite number"),
        ("lr=inf", "parameter 'lr' must be a finite number"),
        ("shuffle=maybe", "parameter 'shuffle' must be a boolean"),
        ("layers={}", "parameter 'layers' must be a JSON array"),
        ("layers=[1,", "parameter 'layers' must be a JSON array"),
        ("extra=[1]", "parameter 'extra' must be a JSON object"),
    ],
)
def test_wrong_type_names_parameter_and_value(schema, pair, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_overrides([pair], schema)


def test_out_of_bounds_names_the_bound(schema):
    with pytest.raises(ParameterError, match=r"parameter 'lr' must be <= 1\.0, got 5\.0"):
        parse_overrides(["lr=5"], schema)
    with pytest.raises(ParameterError, match=r"parameter 'lr' must be >= 0, got -0\.1"):
        parse_overrides(["lr=-0.1"], schema)


def test_enum_lists_the_choices(schema):
    with pytest.raises(ParameterError, match="parameter 'optimizer' must be one of 'adam', "
                       "'sgd', got 'rmsprop'"):
        parse_overrides(["optimizer=rmsprop"], schema)


def test_exclusive_bounds():
    schema = schema_for({"p": 0.5}, {"p": {"exclusiveMinimum": 0, "exclusiveMaximum": 1}})
    assert parse_overrides(["p=0.9"], schema) == {"p": 0.9}
    with pytest.raises(ParameterError, match="must be < 1"):
        parse_overrides(["p=1"], schema)


def test_validate_parameters_checks_python_values(schema):
    assert validate_parameters({"lr": 1, "epochs": 2}, schema) == {"lr": 1.0, "epochs": 2}
    with pytest.raises(ParameterError, match="'epochs' must be an integer, got True"):
        validate_parameters({"epochs": True}, schema)
    with pytest.raises(ParameterError, match="'lr' must be a number, got False"):
        validate_parameters({"lr": False}, schema)
    with pytest.raises(ParameterError, match="'shuffle' must be a boolean"):
        validate_parameters({"shuffle": 1}, schema)
    with pytest.raises(ParameterError, match="unknown parameter 'nope'"):
        validate_parameters({"nope": 1}, schema)
    with pytest.raises(ParameterError, match="JSON values"):
        validate_parameters({"anything": {1, 2}}, schema)


def test_effective_parameters_update_the_defaults():
    assert effective_parameters({"a": 1, "b": 2}, {"b": 3}) == {"a": 1, "b": 3}


# -- literals and injection -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "x'); import os; ('",
        '"""; import os; """',
        "\\'; __import__('os').system('id') #",
        "line\nbreak\r\x00\u2028",
        "{0.__class__}",
        ["nested", {"k": "'); x('"}, None, True, 1.5, -3],
        {"a'b": {"c": [1, 2.0, False]}},
        1e-300,
        -0.0,
        10**30,
    ],
)
def test_render_literal_round_trips(value):
    source = render_literal(value)
    assert ast.literal_eval(source) == value
    assert type(ast.literal_eval(source)) is type(value)


def test_render_literal_refuses_non_json_values():
    for bad in ({1, 2}, b"x", object(), float("nan"), {1: "x"}):
        with pytest.raises(ParameterError):
            render_literal(bad)


def test_render_literal_ignores_subclass_repr():
    class Sneaky(str):
        def __repr__(self) -> str:
            return "__import__('os')"

    assert ast.literal_eval(render_literal(Sneaky("ok"))) == "ok"


def _notebook():
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# title"),
        new_code_cell("import os"),
        new_code_cell("lr = 0.01", metadata={"tags": ["parameters"]}),
        new_code_cell("print(lr)"),
    ]
    return nb


def test_inject_parameters_places_cell_after_parameters_cell():
    nb = _notebook()
    out = inject_parameters(nb, {"lr": 0.1, "name": "x'); import os; ('"})
    assert len(nb.cells) == 4  # the input is untouched
    cell = out.cells[3]
    assert cell.metadata.tags == ["injected-parameters"]
    assert cell.source.splitlines() == [
        "# Parameters injected by launch-jupyter",
        "lr = 0.1",
        "name = \"x'); import os; ('\"",
    ]
    namespace: dict = {}
    exec(cell.source, namespace)  # noqa: S102 - proving the cell only assigns
    assert namespace["name"] == "x'); import os; ('"
    nbformat.validate(out)


def test_inject_parameters_replaces_an_earlier_injection_and_defaults_to_top():
    nb = _notebook()
    nb.cells[2].metadata = {}
    once = inject_parameters(nb, {"lr": 0.1})
    twice = inject_parameters(once, {"lr": 0.2})
    injected = [c for c in twice.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and twice.cells[0] is not None
    assert twice.cells[0].source.endswith("lr = 0.2")


def test_inject_nothing_is_a_copy():
    nb = _notebook()
    out = inject_parameters(nb, {})
    assert out == nb and out is not nb


def test_inject_refuses_non_identifier_names():
    with pytest.raises(ParameterError, match="not a Python identifier"):
        inject_parameters(_notebook(), {"os.system('x') or a": 1})


# -- runtime helper -------------------------------------------------------------------------


def test_parameters_outside_a_job_are_the_defaults(monkeypatch):
    monkeypatch.delenv("LAUNCH_PARAMETERS", raising=False)
    params = parameters(lr=0.01, epochs=3)
    assert params == {"lr": 0.01, "epochs": 3}
    assert params.lr == 0.01


def test_parameters_inside_a_job_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LAUNCH_PARAMETERS", json.dumps({"lr": 0.5, "extra": [1]}))
    params = parameters(lr=0.01, epochs=3)
    assert params == {"lr": 0.5, "epochs": 3, "extra": [1]}
    assert params.epochs == 3 and params.extra == [1]
    with pytest.raises(AttributeError, match="no parameter 'missing'"):
        _ = params.missing


def test_parameters_with_broken_environment(monkeypatch):
    monkeypatch.setenv("LAUNCH_PARAMETERS", "{not json")
    with pytest.raises(ParameterError, match="LAUNCH_PARAMETERS is not valid JSON"):
        parameters(lr=0.01)


def test_constraint_comment_accepts_python_literals() -> None:
    from launch_jupyter.jobs.parameters import parse_constraint_comment

    parsed = parse_constraint_comment("# launch: enum=['adam', 'sgd'], maximum=1")
    assert parsed == {"enum": ["adam", "sgd"], "maximum": 1}
