"""Constraint comments cannot stall capture or submit (issue #13, row 8).

A pattern runs on RE2 (linear time), so a catastrophic one returns at once; a pattern RE2
cannot run is refused at capture; an unterminated ``enum=[`` is refused in linear time. The
bounds are subprocess timeouts: the old code took 2**40 steps or minutes of CPU for these.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from launch_jupyter.errors import LaunchError, ParameterError
from launch_jupyter.jobs import capture, parse_overrides, validate_parameters

CATASTROPHIC = "(a+)+$"


def run_python(code: str, *args: str, timeout: float = 10) -> str:
    """Run ``code`` in a fresh interpreter; its stdout, or a failure if it overran ``timeout``."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_catastrophic_pattern_refuses_a_value_at_once(make_notebook: Callable[..., Path]) -> None:
    notebook = make_notebook([("parameters", f'tag = "aa"  # launch: pattern="{CATASTROPHIC}"'),
                              "print(tag)"])
    out = run_python("""
        import sys
        from launch_jupyter.errors import ParameterError
        from launch_jupyter.jobs import capture, parse_overrides
        schema = capture(sys.argv[1]).schema
        print(parse_overrides(["tag=aaaa"], schema))
        try:
            parse_overrides(["tag=" + "a" * 40 + "b"], schema)
        except ParameterError as err:
            print(err)
        """, str(notebook))
    assert out.splitlines() == [
        "{'tag': 'aaaa'}",
        f"parameter 'tag' must match the pattern '{CATASTROPHIC}', got '{'a' * 40}b'",
    ]


@pytest.mark.parametrize(("pattern", "why"), [(r"^(a)\\1$", "invalid escape sequence: \\1"),
                                              ("^(?=a)a$", "invalid perl operator: (?=")])
def test_pattern_re2_cannot_run_is_refused_at_capture(make_notebook: Callable[..., Path],
                                                      pattern: str, why: str) -> None:
    notebook = make_notebook([("parameters", f'tag = "a"  # launch: pattern="{pattern}"')])
    with pytest.raises(ParameterError) as err:
        capture(notebook)
    message = str(err.value)
    assert "parameter 'tag': pattern" in message and why in message
    assert "cannot run on RE2" in message and "no backreferences, no lookaround" in message


def test_invalid_pattern_is_refused_at_capture(make_notebook: Callable[..., Path]) -> None:
    notebook = make_notebook([("parameters", 'tag = "a"  # launch: pattern="[a-"')])
    with pytest.raises(ParameterError, match=r"parameter 'tag': pattern '\[a-' is invalid"):
        capture(notebook)


def test_stored_pattern_re2_cannot_run_is_a_clean_refusal_at_submit() -> None:
    """A job captured before patterns ran on RE2 may hold one: submitting is refused, not a 500."""
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"tag": {"type": "string", "pattern": "(?<=a)b", "default": "ab"}}}
    with pytest.raises(LaunchError, match=r"pattern '\(\?<=a\)b' cannot run on RE2"):
        validate_parameters({"tag": "ab"}, schema)


@pytest.mark.parametrize("size", [10_000, 100_000])
@pytest.mark.parametrize("item", ["'adam', ", "1,", "["])
def test_unterminated_enum_is_refused_quickly(make_notebook: Callable[..., Path], size: int,
                                              item: str) -> None:
    comment = "# launch: enum=[" + item * (size // len(item))
    notebook = make_notebook([("parameters", f'opt = "adam"  {comment}'), "print(opt)"])
    out = run_python("""
        import sys
        from launch_jupyter.errors import LaunchError
        from launch_jupyter.jobs import capture
        try:
            capture(sys.argv[1])
        except LaunchError as err:
            print(err)
        """, str(notebook))
    assert out.startswith("malformed constraint comment (cell 1 (tagged parameters), line 1) ")
    assert "the value of 'enum' opens" in out and "bracket(s) it never closes" in out
    assert len(out) < 1000  # the message shows the start of the comment, not all of it


def test_unterminated_string_in_a_constraint_is_named() -> None:
    from launch_jupyter.jobs.parameters import parse_constraint_comment

    with pytest.raises(ParameterError, match="the value of 'enum' has a string that is never "
                       "closed"):
        parse_constraint_comment("# launch: enum=['adam, 'sgd']")
    assert parse_constraint_comment("# launch: enum=('a,b', 'c'), maximum=1") == {
        "enum": ["a,b", "c"], "maximum": 1}


def test_pattern_constraint_still_checks_overrides(make_notebook: Callable[..., Path]) -> None:
    notebook = make_notebook([("parameters", 'tag = "run"  # launch: pattern="^[a-z]*$"')])
    schema = capture(notebook).schema
    assert parse_overrides(["tag=abc"], schema) == {"tag": "abc"}
    with pytest.raises(ParameterError, match="must match the pattern"):
        parse_overrides(["tag=ABC"], schema)
