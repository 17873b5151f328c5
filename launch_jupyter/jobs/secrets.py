"""Which environment variable names look like secrets (refused in a job's captured env and
as a literal value in a kubernetes queue's template env)."""

from __future__ import annotations

SECRET_WORDS = (
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "CREDS",
    "AUTH",
    "PRIVATE",
)


def looks_like_secret(name: str) -> bool:
    """True if an environment variable's name suggests it holds a secret."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)
