"""Stand-in for launch_jupyter inside a container: only ``parameters()``."""
import json
import os


class Parameters(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}") from None

    def __setattr__(self, name, value):
        self[name] = value


def parameters(**defaults):
    """The defaults, overridden by the job's LAUNCH_PARAMETERS (JSON)."""
    params = Parameters(defaults)
    raw = os.environ.get("LAUNCH_PARAMETERS")
    if raw:
        given = json.loads(raw)
        if not isinstance(given, dict):
            raise ValueError("LAUNCH_PARAMETERS must be a JSON object")
        params.update(given)
    return params
