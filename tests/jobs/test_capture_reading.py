"""Capture reads notebooks with the json module and writes the job's notebook without
nbformat (issue #18, a fast `job create`): what it reads and writes must be what nbformat
reads and writes, and a broken notebook is still refused with a clear message."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from launch_jupyter.errors import CaptureError, ParameterError
from launch_jupyter.jobs import capture
from launch_jupyter.jobs.capture import _notebook_from_bytes

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
       "AAAABJRU5ErkJggg==")


def _notebook(**overrides: object) -> dict:
    """A version 4 notebook as editors save it: sources as lists of lines, ids, outputs,
    transient metadata, attachments of every kind nbformat splits or keeps."""
    nb = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                    "language": "python"},
                     "language_info": {"name": "python", "version": "3.11.7"},
                     "orig_nbformat": 4, "signature": "sha256:0"},
        "cells": [
            {"id": "a", "cell_type": "markdown", "metadata": {"trusted": True},
             "source": ["# Title ü\n", "![x](attachment:x.png)\n", "\n", "text"],
             "attachments": {"x.png": {"image/png": PNG, "text/plain": ["a\n", "b"],
                                       "image/svg+xml": "<svg>\n</svg>",
                                       "application/json": ["kept", "as a list"],
                                       "application/vnd.x+json": {"k": ["v"]}}}},
            {"id": "b", "cell_type": "code", "metadata": {"tags": ["parameters"]},
             "execution_count": 3, "source": ["lr = 0.01\n", "epochs = 2"],
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]},
            {"id": "c", "cell_type": "code", "metadata": {"collapsed": False},
             "execution_count": None, "source": "import json\n%time x = 1\nprint('日本')\n",
             "outputs": []},
            {"id": "d", "cell_type": "raw", "metadata": {}, "source": ["raw\r\n", "text"]},
        ],
    }
    nb.update(overrides)
    return nb


def _write(tmp_path: Path, nb: dict, name: str = "nb.ipynb") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    return path


def _as_nbformat_reads(raw: bytes) -> list[dict]:
    """What capture reads of each cell, from nbformat's own reader."""
    nb = nbformat.reads(raw.decode(), as_version=4)
    return [{"cell_type": c.cell_type, "source": c.source,
             "tags": c.metadata.get("tags"), "attachments": c.get("attachments")}
            for c in nb.cells]


@pytest.mark.parametrize("minor", [0, 4, 5])
def test_cells_read_as_nbformat_reads_them(tmp_path: Path, minor: int) -> None:
    nb = _notebook(nbformat_minor=minor)
    if minor < 5:
        for cell in nb["cells"]:
            del cell["id"]
    raw = _write(tmp_path, nb).read_bytes()
    ours = [{"cell_type": c["cell_type"], "source": c["source"],
             "tags": c["metadata"].get("tags"), "attachments": c.get("attachments")}
            for c in _notebook_from_bytes(raw, "nb")["cells"]]
    assert ours == _as_nbformat_reads(raw)


def test_the_jobs_notebook_is_what_nbformat_writes(tmp_path: Path) -> None:
    """Byte for byte: nbformat reading the job's notebook and writing it again changes
    nothing, and it is a valid notebook."""
    job = capture(_write(tmp_path, _notebook()))
    content = job.file("nb.ipynb").content
    again = nbformat.reads(content.decode(), as_version=4)
    nbformat.validate(again)
    assert nbformat.writes(again).encode() == content
    cells = again.cells
    assert [c.cell_type for c in cells] == ["markdown", "code", "code", "raw"]
    assert cells[0].attachments["x.png"]["text/plain"] == "a\nb"
    assert cells[0].attachments["x.png"]["application/json"] == ["kept", "as a list"]
    assert cells[1].source == "lr = 0.01\nepochs = 2" and cells[1].outputs == []
    assert job.parameters == {"lr": 0.01, "epochs": 2}


def test_the_digest_does_not_depend_on_how_the_editor_saved_lines(tmp_path: Path) -> None:
    """Sources as one string or as lines, outputs or not, other ids: the same job."""
    saved = _notebook()
    plain = copy.deepcopy(saved)
    for index, cell in enumerate(plain["cells"]):
        if isinstance(cell["source"], list):
            cell["source"] = "".join(cell["source"])
        cell["id"] = f"other-{index}"
        if cell["cell_type"] == "code":
            cell.update(outputs=[], execution_count=None)
    first = capture(_write(tmp_path, saved, "a/nb.ipynb"))
    assert capture(_write(tmp_path, plain, "b/nb.ipynb")).digest == first.digest


def test_a_version_3_notebook_is_converted(tmp_path: Path) -> None:
    nb = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"},
          "worksheets": [{"metadata": {}, "cells": [
              {"cell_type": "heading", "level": 1, "metadata": {}, "source": "Old"},
              {"cell_type": "code", "input": "import json\nx = 1", "language": "python",
               "metadata": {}, "outputs": [], "prompt_number": 1}]}]}
    job = capture(_write(tmp_path, nb))
    cells = nbformat.reads(job.file("nb.ipynb").content.decode(), as_version=4).cells
    assert [c.cell_type for c in cells] == ["markdown", "code"]
    assert cells[1].source == "import json\nx = 1"


@pytest.mark.parametrize(("change", "message"), [
    ({"nbformat": 5}, r"not a valid notebook \(.*5"),
    ({"cells": {"a": 1}}, "list of cells and a metadata mapping"),
    ({"metadata": []}, "list of cells and a metadata mapping"),
    ({"cells": [{"cell_type": "code", "source": "x = 1"}]},
     "cell 1 is not a mapping with a metadata mapping"),
    ({"cells": [{"cell_type": "code", "metadata": {}, "source": ["x = ", 1]}]},
     "the source of cell 1 is not text"),
    ({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "",
                 "attachments": {"x.png": "data"}}]}, "the attachments of cell 1"),
    ({"cells": [{"metadata": {}, "source": "x = 1"}]}, r"malformed cells"),
    ({"cells": [{"cell_type": "code", "metadata": {"tags": "parameters"}, "source": ""}]},
     r"malformed cells"),
    ({"metadata": {"kernelspec": {"name": 3}}}, "kernelspec or language_info is malformed"),
])
def test_a_broken_notebook_is_refused_saying_what_is_wrong(tmp_path: Path, change: dict,
                                                          message: str) -> None:
    path = _write(tmp_path, _notebook(**change))
    with pytest.raises(CaptureError, match=rf"cannot capture {path}: .*{message}"):
        capture(path)


def test_a_broken_notebook_that_runs_is_a_warning(tmp_path: Path) -> None:
    """%run of a notebook capture cannot read: its imports are not scanned, said once."""
    (tmp_path / "helper.ipynb").write_text('{"nbformat": 4, "cells": 3}')
    job = capture(_write(tmp_path, _notebook(cells=[
        {"cell_type": "code", "metadata": {}, "source": "%run helper.ipynb"}])))
    assert any("helper.ipynb is not a readable notebook" in w and "list of cells" in w
               for w in job.warnings)


def test_capturing_again_imports_neither_nbformat_nor_packaging_nor_jsonschema(
        tmp_path: Path) -> None:
    """The second capture of a notebook in a fresh process: the lock's closure and the fit
    of the defaults to their constraints come from their caches."""
    nb = _notebook()
    nb["cells"][1]["source"] = ["lr = 0.01  # launch: minimum=0, maximum=1\n", "epochs = 2"]
    path = _write(tmp_path, nb)
    program = ("import sys, json\nfrom launch_jupyter.jobs import capture\n"
               f"job = capture({str(path)!r})\n"
               "print(json.dumps([job.digest, sorted(m for m in ('nbformat', 'packaging', "
               "'jsonschema') if m in sys.modules)]))")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = [json.loads(subprocess.run([sys.executable, "-c", program], env=env, check=True,
                                      capture_output=True, text=True).stdout)
            for _ in range(2)]
    assert runs[0][0] == runs[1][0] == capture(path).digest
    assert runs[0][1] == ["jsonschema", "packaging"]  # the first one works them out
    assert runs[1][1] == []


def test_a_default_that_breaks_its_constraints_is_refused_after_one_that_fit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    nb = _notebook()
    nb["cells"][1]["source"] = "lr = 0.5  # launch: maximum=1"
    assert capture(_write(tmp_path, nb)).schema["properties"]["lr"]["maximum"] == 1
    nb["cells"][1]["source"] = "lr = 0.5  # launch: maximum=0.1"
    with pytest.raises(ParameterError, match="the default contradicts its constraints.*0.1"):
        capture(_write(tmp_path, nb))


def _children() -> list[str]:
    """Names of this process's children, ended but not reaped ones included (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, rest = stat.read_text().split(" (", 1)[1].rsplit(")", 1)
            if int(rest.split()[1]) == os.getpid():
                found.append(name)
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile
    return found


def test_the_gits_run_while_the_notebook_is_read_and_none_outlives_a_failed_capture(
        tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    good = _write(tmp_path, _notebook())
    assert capture(good).git["branch"] == "main"
    broken = _write(tmp_path, _notebook(cells=3), "broken.ipynb")
    with pytest.raises(CaptureError, match="list of cells"):
        capture(broken)
    assert "git" not in _children()
