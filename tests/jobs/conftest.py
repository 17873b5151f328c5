"""Fixtures for the jobs tests: real notebook and script files in a tmp folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


@pytest.fixture
def make_notebook(tmp_path: Path) -> Callable[..., Path]:
    """Write a notebook from cell specs: a str is a code cell, ("md", s) markdown,
    ("parameters", s) a code cell tagged parameters."""

    def make(cells: list, name: str = "train.ipynb", kernel: str = "python3") -> Path:
        nb = new_notebook(
            metadata={
                "kernelspec": {"name": kernel, "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python", "version": "3.11.7"},
            }
        )
        for spec in cells:
            if isinstance(spec, str):
                nb.cells.append(new_code_cell(spec))
            elif spec[0] == "md":
                nb.cells.append(new_markdown_cell(spec[1]))
            else:
                nb.cells.append(new_code_cell(spec[1], metadata={"tags": [spec[0]]}))
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return path

    return make
