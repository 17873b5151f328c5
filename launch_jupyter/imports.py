"""Imports that processes started often (the CLI, the supervisors' fork server) leave out.

jsonschema, which nbformat imports, loads its optional format-checker libraries when they
are installed: rfc3987_syntax builds a grammar for ~1 s, rfc3986_validator and isoduration
(arrow) take ~70 ms. launch-jupyter never checks string formats (``jobs/schema.py`` builds
its validators without a format checker), so those processes mark them absent first.
"""

from __future__ import annotations

import sys

#: jsonschema's optional format-checker libraries, which launch-jupyter never uses
FORMAT_CHECKERS = ("rfc3987_syntax", "rfc3986_validator", "rfc3339_validator", "isoduration",
                   "uri_template", "webcolors", "fqdn", "jsonpointer")


def skip_format_checkers() -> None:
    """Mark jsonschema's format checkers as absent; call before nbformat is imported."""
    for name in FORMAT_CHECKERS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
