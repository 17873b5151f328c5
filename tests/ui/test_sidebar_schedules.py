"""The sidebar's Schedules section in a real JupyterLab, in real Chromium: it lists a schedule
made through the Python API with its cron, time zone and next firing, pauses and resumes it,
and an item the schedule made names it in its detail."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch_jupyter.agent import fire_schedule
from launch_jupyter.api import Launch
from tests.conftest import wait_for, write_script
from tests.ui.lab import open_browser, require_chromium, start_lab
from tests.ui.test_sidebar import SHOTS, SIDEBAR, item_row

pytestmark = pytest.mark.slow


def test_sidebar_lists_pauses_and_resumes_schedules(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    require_chromium()
    root = tmp_path / "root"
    root.mkdir()
    env = {"LAUNCH_JUPYTER_STORE": f"sqlite:///{tmp_path}/launch.db",
           "LAUNCH_JUPYTER_DATA_DIR": str(root / "launch-runs")}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("LAUNCH_ITEM_ID", raising=False)
        launch = Launch()
        try:
            (tmp_path / "jobs").mkdir()
            job = launch.create_job(write_script(tmp_path / "jobs", "report.py", "print(1)\n"))
            made = launch.create_schedule("nightly", job.ref, cron="30 2 * * *",
                                          timezone="Europe/Paris", queue="local")
            item_id = fire_schedule(launch.store, made, now=made["next_fire_ts"])
            launch.agent(["local"], until_idle=True).run()  # the scheduled item runs
            with start_lab(tmp_path, env) as lab, open_browser(tmp_path / "profile") as page:
                page.goto(lab.lab_url())
                tab = page.locator('.jp-SideBar.jp-mod-left li[data-id="launch-jupyter-sidebar"]')
                expect(tab).to_be_visible(timeout=60_000)
                tab.click()
                row = page.locator(f'{SIDEBAR} .jp-LaunchSidebar-schedule[data-schedule="nightly"]')
                expect(row).to_be_visible(timeout=30_000)
                expect(page.locator(f"{SIDEBAR} .jp-LaunchSidebar-schedules h3")).to_have_text(
                    "Schedules")
                expect(row).to_contain_text(job.ref)
                expect(row).to_contain_text("30 2 * * *")
                expect(row).to_contain_text("Europe/Paris")
                expect(row).to_contain_text("next ")
                expect(row).to_contain_text("1 item")
                page.locator(SIDEBAR).screenshot(path=str(SHOTS / "sidebar-schedules.png"))

                row.get_by_role("button", name="Pause").click()
                expect(row).to_have_attribute("data-state", "paused", timeout=30_000)
                expect(row).to_contain_text("paused")
                assert launch.get_schedule("nightly")["paused"] is True
                row.get_by_role("button", name="Resume").click()
                expect(row).to_have_attribute("data-state", "active", timeout=30_000)
                wait_for(lambda: not launch.get_schedule("nightly")["paused"], 10, 0.1,
                         "the resume to reach the store")

                item_row(page, item_id).click()
                facts = page.locator(f"{SIDEBAR} .jp-LaunchSidebar-facts")
                expect(facts).to_contain_text("schedule", timeout=30_000)
                expect(facts).to_contain_text("nightly")
        finally:
            launch.close()
