"""The item panel's log box in real JupyterLab and Chromium: it follows the newest line as lines
arrive, and once the user scrolls up, new lines no longer pull the view back down."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from launch_jupyter.api import Launch
from tests.conftest import wait_for, write_notebook, write_script
from tests.ui.test_panel_screenshot import CHROMIUM, FLAGS, lab  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

TICKER = """\
import time
for i in range(1, 41):
    print(f"line {i}", flush=True)
i = 41
while True:  # one line every 0.4 s until the test cancels it
    time.sleep(0.4)
    print(f"line {i}", flush=True)
    i += 1
"""

# Where the box is: how far its view is from the log's top and from its newest line (px).
WHERE = """() => {
  const box = document.querySelector('.lj-log-box');
  const pre = box.querySelector('pre.lj-log');
  const b = box.getBoundingClientRect(), p = pre.getBoundingClientRect();
  const numbers = [...pre.textContent.matchAll(/line (\\d+)/g)].map(m => Number(m[1]));
  return {fromTop: b.top - p.top, fromNewest: p.bottom - b.bottom,
          overflow: box.scrollHeight - box.clientHeight, last: Math.max(...numbers)};
}"""


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels import this checkout's launch_jupyter (the editable install may point elsewhere)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))


def newest(page: Any) -> int:
    return int(page.evaluate(WHERE)["last"])


def test_log_box_follows_new_lines_until_the_user_scrolls_up(
        this_checkout: None, lab: tuple[str, Path], client: Launch,  # noqa: F811
        tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, root = lab
    job = client.create_job(write_script(tmp_path, "ticker.py", TICKER))
    item = client.submit(job)
    agent = client.agent(max_jobs=1).start()
    try:
        write_notebook(root, "panel.ipynb", [
            "from launch_jupyter.api import Launch\n"
            "from launch_jupyter.widgets.item import ItemDetail\n"
            f"ItemDetail(Launch(), {item.id!r}, interval=0.3)"])
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium"), executable_path=CHROMIUM, args=FLAGS,
                headless=True, viewport={"width": 1280, "height": 1000})
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("window.jupyterapp?.shell.currentWidget?.sessionContext"
                                   "?.session?.kernel?.status === 'idle'", timeout=90_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_selector(".lj-log-box pre.lj-log", timeout=60_000)
            page.wait_for_function("document.querySelector('.lj-log-box pre.lj-log')"
                                   ".textContent.includes('line 41')", timeout=60_000)

            # Unscrolled: each new line shows at the bottom of the box.
            for _ in range(2):
                seen = newest(page)
                wait_for(lambda s=seen: newest(page) > s, 20, 0.1, what="a new log line")
                where = page.evaluate(WHERE)
                assert where["overflow"] > 100, where  # the log is taller than its box
                assert abs(where["fromNewest"]) <= 1, where

            # Scrolled up (200 px below the log's top; a reversed column counts scrollTop from
            # its end, negative): new lines arrive, the view stays where the user put it.
            page.evaluate("(() => { const box = document.querySelector('.lj-log-box');"
                          " box.scrollTop = 200 - (box.scrollHeight - box.clientHeight); })()")
            before = page.evaluate(WHERE)
            assert abs(before["fromTop"] - 200) <= 2 and before["fromNewest"] > 100, before
            wait_for(lambda: newest(page) >= before["last"] + 3, 20, 0.1,
                     what="three more lines")
            after = page.evaluate(WHERE)
            # The new lines went below, out of view (each on its own line: the box grew).
            assert after["fromNewest"] > before["fromNewest"], (before, after)
            assert abs(after["fromTop"] - before["fromTop"]) <= 2, (before, after)  # same lines
            browser.close()
    finally:
        client.cancel(item.id)
        agent.stop()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)
