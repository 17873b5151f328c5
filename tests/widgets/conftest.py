"""Real kernels for the widget tests: the same fixtures as the magics tests."""

from __future__ import annotations

from tests.magics.conftest import kernel, start_kernel  # noqa: F401
