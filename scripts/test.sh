#!/usr/bin/env bash
# The whole test suite: install the package with its test extras, lint (ruff, import
# layers), run pytest.
# `.ci/run` calls exactly this (with CI=true). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[test]'
"$PYTHON" -m ruff check .
# The layers of docs/architecture.md (contracts in pyproject.toml).
lint-imports
# shellcheck source=scripts/services.sh
source scripts/services.sh
"$PYTHON" -m pytest "$@"
