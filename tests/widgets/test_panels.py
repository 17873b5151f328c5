"""The panels in a real kernel: live widget state while the kernel is idle, the cancel button,
and (in-process) the submit form, the text fallbacks and the refresh thread's lifetime."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from tests.conftest import run_to_end, wait_for, write_script
from tests.magics.kernel import Kernel, comm_updates

SLEEPER = """\
import time
import launch_jupyter
params = launch_jupyter.parameters(seconds=2.0)
print("working", flush=True)
time.sleep(params.seconds)
print("done", flush=True)
"""


def _row_state(html: str, item_id: str) -> str | None:
    match = re.search(rf"data-item='{item_id}' data-state='(\w+)'", html)
    return match.group(1) if match else None


def _open_panel(kernel: Kernel, line: str) -> dict[str, str]:
    out = kernel.execute(f"panel = %launch {line}\npanel")
    assert any("model_id" in str(m["content"].get("data", {})) for m in out.messages
               if m["msg_type"] == "execute_result"), "the panel was not displayed as a widget"
    ids = {}
    for name in ("table", "detail.cancel_button", "detail.feedback", "detail.card"):
        ids[name] = kernel.value(f"panel.{name}.model_id").strip("'")
    return ids


def test_panel_state_follows_an_item_while_the_kernel_is_idle(
        kernel: Kernel, client: Launch, tmp_path: Path) -> None:
    write_script(tmp_path, "sleeper.py", SLEEPER)
    client.create_job(tmp_path / "sleeper.py")
    ids = _open_panel(kernel, "panel local --interval 0.2")
    kernel.iopub_messages(0.5)  # what the panel said before the item existed

    item = client.submit("sleeper")
    seen: list[str] = []

    def watch(until: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (not seen or seen[-1] != until):
            for html in comm_updates(kernel.iopub_messages(0.3), ids["table"]):
                state = _row_state(html, item.id)
                if state and (not seen or seen[-1] != state):
                    seen.append(state)

    watch("queued", 15)
    assert seen[-1:] == ["queued"], seen
    agent = client.agent().start()  # in this process: the kernel only watches
    try:
        watch("succeeded", 60)
    finally:
        agent.stop()
    assert seen[0] == "queued" and seen[-1] == "succeeded", seen
    assert "running" in seen, seen
    assert seen.index("queued") < seen.index("running") < seen.index("succeeded")
    # Nothing was executing in the kernel: the updates came from the panel's thread.
    assert kernel.execute("1 + 1").data() == ["2"]


def test_panel_cancel_button_click_stops_a_running_item(
        kernel: Kernel, client: Launch, tmp_path: Path) -> None:
    write_script(tmp_path, "sleeper.py", SLEEPER)
    client.create_job(tmp_path / "sleeper.py")
    agent = client.agent().start()
    try:
        item = client.submit("sleeper", parameters={"seconds": 120.0})
        wait_for(lambda: item.state == "running", 30, what="item running")
        ids = _open_panel(kernel, "panel --interval 0.2")
        assert kernel.value("panel.detail.item_id") == repr(item.id)
        wait_for(lambda: kernel.value("panel.detail.cancel_button.disabled") == "False", 10,
                 what="cancel button enabled")
        kernel.iopub_messages(0.2)
        started = time.monotonic()
        kernel.send_comm_msg(ids["detail.cancel_button"],
                             {"method": "custom", "content": {"event": "click"}})
        wait_for(lambda: item.state == "cancelled", 30, what="item cancelled")
        assert time.monotonic() - started < 30
        feedback = comm_updates(kernel.iopub_messages(1.0), ids["detail.feedback"])
        assert any("cancel" in html for html in feedback), feedback
    finally:
        agent.stop()


# -- in-process: no front end needed -----------------------------------------------------------


@pytest.fixture
def bounded_job(client: Launch, tmp_path: Path) -> str:
    write_script(tmp_path, "train.py", """\
        import launch_jupyter
        p = launch_jupyter.parameters(
            lr=0.01,  # launch: exclusiveMinimum=0, maximum=1
            layers=2,  # launch: minimum=1, maximum=8
            optimizer="adam",  # launch: enum=["adam", "sgd"]
            shuffle=True,
            widths=[8, 8],
        )
        """)
    return client.create_job(tmp_path / "train.py").ref


def test_submit_form_fields_follow_the_schema_and_never_submit_invalid_values(
        client: Launch, bounded_job: str) -> None:
    import ipywidgets as w

    from launch_jupyter.widgets import SubmitForm

    form = SubmitForm(client, bounded_job)
    assert isinstance(form.fields["lr"], w.FloatText)  # bounds are checked, never clamped
    assert isinstance(form.fields["layers"], w.IntText)
    assert isinstance(form.fields["optimizer"], w.Dropdown)
    assert isinstance(form.fields["shuffle"], w.Checkbox)
    assert not form.submit_button.disabled

    form.fields["lr"].value = 0.0  # the bound is exclusive: 0 is not allowed
    assert form.submit_button.disabled and "lr" in form.feedback.value
    assert form.submit() is None
    form.fields["lr"].value = 0.5
    form.fields["widths"].value = "[8, oops"
    assert form.submit_button.disabled and "widths" in form.feedback.value
    assert form.submit() is None
    assert client.items() == []

    form.fields["widths"].value = "[16, 4]"
    form.fields["optimizer"].value = "sgd"
    item = form.submit()
    assert item is not None and "submitted" in form.feedback.value
    assert item.info()["overrides"] == {"lr": 0.5, "optimizer": "sgd", "widths": [16, 4]}
    form.close()


def test_panels_degrade_to_text_and_html_without_a_widget_front_end(
        client: Launch, bounded_job: str) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    item = client.submit(bounded_job, overrides=["layers=3"])
    shell = InteractiveShell.instance()  # a terminal-like shell: no kernel, no widgets
    shell.run_line_magic("load_ext", "launch_jupyter")
    view = shell.run_line_magic("launch", "panel")
    assert item.id in repr(view) and "queued" in repr(view)
    assert f"data-item='{item.id}' data-state='queued'" in view._repr_html_()
    assert "layers=3" in repr(view)
    card = item._repr_html_()
    assert "queued" in card and bounded_job in card


def test_panel_refresh_thread_stops_when_the_panel_is_closed(
        client: Launch, bounded_job: str) -> None:
    from launch_jupyter.widgets import QueuePanel

    client.submit(bounded_job)
    panel = QueuePanel(client, interval=0.1, page_size=1)
    assert panel.refresher.alive
    assert "page 1 of 1" in panel.page_label.value
    client.submit(bounded_job)
    wait_for(lambda: "page 1 of 2" in panel.page_label.value, 10, what="live paging")
    panel.go(1)
    assert panel.prev_button.disabled is False and panel.next_button.disabled is True
    bundle = panel._repr_mimebundle_()
    assert "text/html" in bundle and "text/plain" in bundle
    panel.close()
    wait_for(lambda: not panel.refresher.alive, 5, what="refresh thread stopped")


def test_clicking_a_row_shows_that_item_and_the_choice_stays(
        kernel: Kernel, client: Launch, tmp_path: Path) -> None:
    write_script(tmp_path, "sleeper.py", SLEEPER)
    client.create_job(tmp_path / "sleeper.py")
    older = client.submit("sleeper", parameters={"seconds": 1.0})
    newer = client.submit("sleeper", parameters={"seconds": 2.0})
    _open_panel(kernel, "panel local --interval 0.2")
    assert kernel.value("panel.detail.item_id") == repr(newer.id)  # follows the newest
    rows = kernel.value("panel.item_picker.options")
    assert older.id in rows and "seconds=1.0" in rows and "queued" in rows
    picker = kernel.value("panel.item_picker.model_id").strip("'")
    # What JupyterLab sends when the user clicks the second line of the rows list.
    kernel.send_comm_msg(picker, {"method": "update", "state": {"index": 1},
                                  "buffer_paths": []})
    wait_for(lambda: kernel.value("panel.detail.item_id") == repr(older.id), 10,
             what="the clicked item shown below the table")
    assert f"data-item='{older.id}'" in kernel.value("panel.detail.card.value")
    table = kernel.value("panel.table.value")
    assert f"data-item='{older.id}' data-state='queued' title='' " \
        "style='background:#eff6ff;cursor:pointer' onclick=" in table.replace("\\'", "'")
    # What the table row's onclick sends when the user clicks the newer item's row.
    box = kernel.value("panel.row_click.model_id").strip("'")
    kernel.send_comm_msg(box, {"method": "update", "state": {"value": f"{newer.id} 17"},
                               "buffer_paths": []})
    wait_for(lambda: kernel.value("panel.detail.item_id") == repr(newer.id), 10,
             what="the item of the clicked table row shown below the table")
    kernel.send_comm_msg(picker, {"method": "update", "state": {"index": 1},
                                  "buffer_paths": []})
    wait_for(lambda: kernel.value("panel.detail.item_id") == repr(older.id), 10,
             what="the clicked line's item shown again")
    newest = client.submit("sleeper")
    wait_for(lambda: newest.id in kernel.value("panel.item_picker.options"), 10,
             what="the new item listed")
    assert kernel.value("panel.detail.item_id") == repr(older.id)  # the click still holds


def test_requeue_keeps_its_message_and_selects_the_new_item_and_cancel_clears(
        client: Launch, tmp_path: Path) -> None:
    from launch_jupyter.widgets import QueuePanel

    write_script(tmp_path, "sleeper.py", SLEEPER)
    client.create_job(tmp_path / "sleeper.py")
    first = client.submit("sleeper", parameters={"seconds": 0.1})
    run_to_end(client, first)
    panel = QueuePanel(client, interval=0.1)
    try:
        panel.detail.requeue_button.click()
        panel.detail.requeue_button.click()  # a double click: the second lands on the new item
        new = client.items()[0]
        assert new["id"] != first.id and new["overrides"] == {"seconds": 0.1}
        assert panel.detail.item_id == new["id"]
        assert panel.item_picker.value == new["id"]
        said = f"requeued {first.id} as {new['id']}"
        assert said in panel.detail.feedback.value
        stamp = time.monotonic()  # the message outlives many refreshes (it used to vanish)
        wait_for(lambda: time.monotonic() - stamp > 1.0 and said in panel.detail.feedback.value,
                 5, what="the requeue message to stay")
        assert len(client.items()) == 2  # a double click, one item, no error shown
        assert "#dc2626" not in panel.detail.feedback.value

        agent = client.agent().start()
        try:
            long = client.submit("sleeper", parameters={"seconds": 120.0})
            wait_for(lambda: long.state == "running", 30, what="item running")
            panel.select(long.id)
            panel.detail.cancel_button.click()
            assert "cancel requested" in panel.detail.feedback.value
            wait_for(lambda: long.state == "cancelled", 30, what="item cancelled")
            wait_for(lambda: "cancel requested" not in panel.detail.feedback.value, 10,
                     what="'cancel requested' cleared")
            assert "cancelled" in panel.detail.feedback.value
        finally:
            agent.stop()
    finally:
        panel.close()


def test_the_log_box_follows_the_newest_line(client: Launch, tmp_path: Path) -> None:
    from launch_jupyter.widgets.item import ItemDetail

    write_script(tmp_path, "sleeper.py", SLEEPER)
    item = client.submit(client.create_job(tmp_path / "sleeper.py").ref,
                         parameters={"seconds": 0.1})
    run_to_end(client, item)
    detail = ItemDetail(client, item.id, auto_refresh=False)
    # The widget's own element scrolls (it outlives value changes), anchored at its end.
    layout = detail.log_view.layout
    assert (layout.flex_flow, layout.overflow, layout.display) == ("column-reverse", "auto",
                                                                     "flex")
    assert detail.log_view.value.index("working") < detail.log_view.value.index("done")
    detail.close()
