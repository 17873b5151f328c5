"""Fixtures for the magics tests: a real kernel on the test's store, stopped at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.magics.kernel import Kernel


@pytest.fixture
def start_kernel(home: Path, tmp_path: Path) -> Iterator[Callable[..., Kernel]]:
    """Start kernels (cwd ``tmp_path``, env from ``home``); all are shut down at the end."""
    started: list[Kernel] = []

    def start(env: dict[str, str] | None = None, cwd: Path | None = None) -> Kernel:
        kernel = Kernel(cwd or tmp_path, env)
        started.append(kernel)
        return kernel

    yield start
    for kernel in started:
        try:
            kernel.shutdown(now=True)
        except Exception:  # already gone: the test shut it down itself
            pass


@pytest.fixture
def kernel(start_kernel: Callable[..., Kernel]) -> Kernel:
    """A kernel with the extension loaded."""
    k = start_kernel()
    k.execute("%load_ext launch_jupyter")
    return k
