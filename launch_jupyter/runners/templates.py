"""Queue config templates, shared by every runner.

A queue's config (``jupyter launch queue create NAME --config FILE.yaml``)::

    template:            # runner-specific settings with {{variable}} placeholders
      gpus: "{{gpus}}"
      memory: "{{memory}}"
      labels: {team: ml, item: "${item_id}"}
    variables:           # what a submitter may set (--set gpus=2), with a JSON-Schema subset
      gpus: {type: integer, minimum: 0, maximum: 4, default: 0}
      memory: {type: string, enum: [4g, 16g], default: 4g}
    admin:               # what only the queue's creator decides
      allow_privileged: false

``{{variable}}`` takes the item's template value (validated at submit, so a bad value never
reaches an agent); ``${macro}`` is filled when the agent starts the item: ``${item_id}``,
``${job}``, ``${queue}``, ``${image}``, or an environment variable of the agent that its
policy lists (``LaunchConfig.template_env``; docs/security.md), never one of the server.
A value that is exactly one placeholder keeps its type (``"{{gpus}}"`` -> 2).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import LaunchError, ParameterError, shown
from ..jobs.schema import Violation, check

CONFIG_KEYS = {"template", "variables", "admin", "image", "registry", "base_image",
               "description", "gpus_per_item", "environment"}
VARIABLE_KEYS = {"type", "enum", "minimum", "maximum", "default", "description"}
TYPES = {"integer", "number", "boolean", "string"}
_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_MACRO = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PLACEHOLDER = re.compile(f"{_VAR.pattern}|{_MACRO.pattern}")


def load_queue_config(path: str | os.PathLike) -> dict:
    """Read and validate a queue config file (YAML or JSON)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise LaunchError(f"cannot read queue config {str(p)!r}: {err.strerror}") from None
    try:
        import yaml

        data = yaml.safe_load(text)
    except ImportError:  # PyYAML missing: JSON still works
        try:
            data = json.loads(text)
        except ValueError as err:
            raise LaunchError(f"queue config {str(p)!r} is not JSON ({err}); "
                              "install PyYAML for YAML files") from None
    except Exception as err:
        raise LaunchError(f"queue config {str(p)!r} is not valid YAML: {err}") from None
    return validate_queue_config(data, where=str(p))


def validate_queue_config(data: Any, where: str = "queue config") -> dict:
    """Check the shape of a queue config; returns it normalised."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise LaunchError(f"{where} must be a mapping with keys among: "
                          f"{', '.join(sorted(CONFIG_KEYS))}")
    unknown = set(data) - CONFIG_KEYS
    if unknown:
        raise LaunchError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                          f"use: {', '.join(sorted(CONFIG_KEYS))}")
    try:  # what is stored is strict JSON: no NaN, no sets or bytes, no endless nesting
        data = json.loads(json.dumps(dict(data), allow_nan=False))
    except (TypeError, ValueError, RecursionError) as err:
        raise LaunchError(f"{where} must be plain JSON (strings, finite numbers, booleans, "
                          f"null, lists and mappings): {err}") from None
    variables = data.get("variables") or {}
    if not isinstance(variables, Mapping):
        raise LaunchError(f"{where}: 'variables' must map names to their schema")
    for name, schema in variables.items():
        if not isinstance(schema, Mapping) or schema.get("type") not in TYPES:
            raise LaunchError(f"{where}: variable {name!r} needs a type among "
                              f"{', '.join(sorted(TYPES))}")
        extra = set(schema) - VARIABLE_KEYS
        if extra:
            raise LaunchError(f"{where}: variable {name!r} has unknown key(s) "
                              f"{', '.join(sorted(extra))}; use {', '.join(sorted(VARIABLE_KEYS))}")
        _check_variable(name, schema, where)
    used = set(_VAR.findall(json.dumps(data.get("template") or {})))
    undeclared = used - set(variables)
    if undeclared:
        raise LaunchError(f"{where}: the template uses undeclared variable(s) "
                          f"{', '.join(sorted(undeclared))}; declare them under 'variables'")
    for key in ("template", "admin"):
        if key in data and not isinstance(data[key], Mapping):
            raise LaunchError(f"{where}: {key!r} must be a mapping")
    return data


def _check_variable(name: str, schema: Mapping, where: str) -> None:
    """The constraints of one declared variable fit its type (so checking a value cannot fail)."""
    kind = schema["type"]
    for key in ("minimum", "maximum"):
        if key in schema:
            bound = schema[key]
            if kind not in ("integer", "number"):
                raise LaunchError(f"{where}: variable {name!r}: {key} applies to integer and "
                                  f"number variables, not {kind}")
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                raise LaunchError(f"{where}: variable {name!r}: {key} must be a number, "
                                  f"got {bound!r}")
    if "enum" in schema:
        if not isinstance(schema["enum"], list) or not schema["enum"]:
            raise LaunchError(f"{where}: variable {name!r}: enum must be a non-empty list of "
                              f"{kind} values")
        for option in schema["enum"]:
            _check(name, option, {"type": kind})
    if not isinstance(schema.get("description", ""), str):
        raise LaunchError(f"{where}: variable {name!r}: description must be a string")
    if "default" in schema:
        _check(name, schema["default"], schema)


def _parse(name: str, raw: str, schema: Mapping) -> Any:
    kind = schema["type"]
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
        if kind == "boolean":
            low = raw.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError
    except ValueError:
        raise ParameterError(f"template value {name}={raw!r} is not a valid {kind}") from None
    return raw


def _check(name: str, value: Any, schema: Mapping) -> Any:
    """One template value checked against its variable's schema; returned normalised."""
    kind = schema["type"]

    def normalise(value: Any) -> Any:
        if kind == "integer" and not -(2**63) <= value < 2**63:
            raise ParameterError(f"template value {name!r} must fit in 64 bits, got an integer "
                                 f"of {value.bit_length()} bits")
        if kind == "number":
            try:
                value = float(value)
            except OverflowError:
                value = math.inf
            if not math.isfinite(value):
                raise ParameterError(f"template value {name!r} must be a finite number")
        if kind == "string":
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as err:
                raise ParameterError(f"template value {name!r} is not valid Unicode "
                                     f"({err.reason}); remove the stray surrogate") from None
        return value

    return check(value, schema, lambda fault: _fault_message(name, fault), normalise)


def _fault_message(name: str, fault: Violation) -> str:
    """Today's wording for each way a template value can break its variable's schema."""
    if fault.keyword == "type":
        return f"template value {name!r} must be a {fault.expected}, got {shown(fault.value)}"
    if fault.keyword == "enum":
        return (f"template value {name}={fault.value!r} is not one of "
                f"{', '.join(map(str, fault.expected))}")
    if fault.keyword == "minimum":
        return f"template value {name!r} must be >= {fault.expected}, got {fault.value!r}"
    if fault.keyword == "maximum":
        return f"template value {name!r} must be <= {fault.expected}, got {fault.value!r}"
    return (f"template value {name!r} breaks its variable's {fault.keyword} "
            f"{fault.expected!r}, got {fault.value!r}")


def validate_template_values(config: Mapping, values: Mapping[str, Any] | None = None,
                             pairs: Iterable[str] = ()) -> dict:
    """Typed, bounded template values with defaults filled (``pairs`` are ``k=v`` strings)."""
    variables = (config or {}).get("variables") or {}
    given: dict[str, Any] = dict(values or {})
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ParameterError(f"malformed template value {pair!r}; write --set key=value")
        if key not in variables:
            raise ParameterError(_unknown(key, variables))
        given[key] = _parse(key, raw, variables[key])
    out = {}
    for key, value in given.items():
        if key not in variables:
            raise ParameterError(_unknown(key, variables))
        out[key] = _check(key, value, variables[key])
    for key, schema in variables.items():
        if key not in out and "default" in schema:
            out[key] = schema["default"]
    return out


def _unknown(key: str, variables: Mapping) -> str:
    if not variables:
        return (f"unknown template value {key!r}: this queue declares no template variables")
    return (f"unknown template value {key!r}; this queue's variables: "
            f"{', '.join(sorted(variables))}")


def render(value: Any, values: Mapping[str, Any], macros: Mapping[str, str],
           env: Callable[[str], str] | None = None) -> Any:
    """Fill ``{{variable}}`` and ``${macro}`` placeholders throughout ``value``.

    ``${NAME}`` that is no macro asks ``env`` (the agent policy's TemplateEnv, which refuses
    names the policy does not list); without ``env`` (checking a queue on a server, which
    must never read its own environment) it stays as written.
    """
    if isinstance(value, Mapping):
        return {k: render(v, values, macros, env) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, values, macros, env) for v in value]
    if not isinstance(value, str):
        return value
    whole = _VAR.fullmatch(value.strip())
    if whole:
        return values.get(whole.group(1))

    def fill(m: re.Match) -> str:
        variable, name = m.group(1), m.group(2)
        if variable is not None:
            return str(values.get(variable, ""))
        if name in macros:
            return str(macros[name])
        return m.group(0) if env is None else env(name)

    # One pass over the template's own text: a filled-in value is never scanned again, so a
    # submitted "${SECRET}" stays that text instead of reading the agent's environment.
    return _PLACEHOLDER.sub(fill, value)
