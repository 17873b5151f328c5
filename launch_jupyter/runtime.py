"""What a running job imports: ``launch_jupyter.parameters(...)``.

Deliberately tiny (json and os only): every script job pays for importing it.
"""

from __future__ import annotations

import json
import os
from typing import Any

ENV_VAR = "LAUNCH_PARAMETERS"


class Parameters(dict):
    """A dict of parameters that also allows attribute access (``params.lr``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; parameters: {', '.join(self)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self))


def parameters(**defaults: Any) -> Parameters:
    """Declare a script's parameters: the defaults, overridden by the job's ``LAUNCH_PARAMETERS``.

    Outside a job (no ``LAUNCH_PARAMETERS``) this returns the defaults unchanged.
    """
    params = Parameters(defaults)
    raw = os.environ.get(ENV_VAR)
    if raw:
        try:
            given = json.loads(raw)
        except ValueError as err:
            raise _error(f"{ENV_VAR} is not valid JSON ({err}): {raw[:200]!r}") from None
        if not isinstance(given, dict):
            raise _error(f"{ENV_VAR} must be a JSON object, got {raw[:200]!r}")
        params.update(given)
    return params


def _error(message: str) -> Exception:
    from .errors import ParameterError

    return ParameterError(message)
