"""What the service layer gave every door: the operations that used to exist in only one of
them, run the way a user runs them (real processes, a real SQLite file)."""

from __future__ import annotations

from pathlib import Path

from launch_jupyter.api import Launch

from .conftest import CLI, write_script


def test_cli_submit_takes_a_path_and_captures_it(cli: CLI, tmp_path: Path) -> None:
    script = write_script(tmp_path, "hello.py", """
        import launch_jupyter
        p = launch_jupyter.parameters(n=2)
        print("n is", p["n"])
    """)
    item_id = cli("submit", str(script), "-p", "n=5", check=True).stdout.strip()
    shown = cli.json("show", item_id)
    assert shown["job"] == "hello:v1" and shown["parameters"] == {"n": 5}
    named = cli("submit", str(script), "--name", "greeter", check=True).stdout.strip()
    assert cli.json("show", named)["job"] == "greeter:v1"


def test_cli_submit_without_a_job_says_what_to_give(cli: CLI) -> None:
    proc = cli("submit")
    assert proc.returncode == 2 and "give the job to submit" in proc.stderr


def test_cli_submit_of_a_missing_file_says_no_such_file(cli: CLI, tmp_path: Path) -> None:
    for path in ("./missing.ipynb", str(tmp_path / "missing.py"), "missing.ipynb"):
        proc = cli("submit", path)
        assert proc.returncode == 2, proc.stderr
        assert f"no such file '{path}'" in proc.stderr
        assert "Traceback" not in proc.stderr and "invalid job name" not in proc.stderr


def test_cli_items_filters_by_sweep_and_job(cli: CLI, tmp_path: Path) -> None:
    script = write_script(tmp_path, "train.py", """
        import launch_jupyter
        p = launch_jupyter.parameters(lr=0.1)
    """)
    other = write_script(tmp_path, "other.py", "print(1)\n")
    cli("job", "create", str(script), check=True)
    cli("job", "create", str(other), check=True)
    swept = cli.json("sweep", "train", "--grid", "lr=0.1,0.2,0.3")
    cli("submit", "train", check=True)
    cli("submit", "other", check=True)
    in_sweep = cli.json("items", "--sweep", swept["sweep_id"])
    assert sorted(i["id"] for i in in_sweep) == sorted(swept["items"])
    assert {i["job"] for i in cli.json("items", "--job", "train")} == {"train:v1"}
    assert len(cli.json("items", "--job", "train")) == 4
    assert len(cli.json("items", "--job", "other:v1")) == 1
    assert len(cli.json("items", "--limit", "2", "--offset", "1")) == 2
    text = cli("items", "--limit", "2", check=True).stdout
    assert "3 more; page with --limit N --offset 2" in text


def test_cli_submit_wait_exits_with_the_outcome(cli: CLI, tmp_path: Path,
                                                 client: Launch) -> None:
    good = write_script(tmp_path, "good.py", "print('ok')\n")
    bad = write_script(tmp_path, "bad.py", "raise SystemExit(3)\n")
    agent = client.agent().start()
    try:
        ok = cli("submit", str(good), "--wait", "--json", timeout=120)
        failed = cli("submit", str(bad), "--wait", timeout=120)
    finally:
        agent.stop()
    assert ok.returncode == 0, ok.stderr
    assert '"state": "succeeded"' in ok.stdout
    assert failed.returncode == 1, failed.stderr
    # stdout is the id alone; stderr says why the exit status is 1.
    [item_id] = failed.stdout.split()
    assert f"item {item_id} failed" in failed.stderr and "exited with code 3" in failed.stderr


def test_page_carries_items_total_and_counts(client: Launch, tmp_path: Path) -> None:
    script = write_script(tmp_path, "t.py", "print(1)\n")
    job = client.create_job(script)
    client.create_queue("q")
    items = [client.submit(job, queue="q") for _ in range(3)]
    items[0].cancel()
    page = client.page(queue="q", state="queued", limit=1)
    assert page["total"] == 2 and len(page["items"]) == 1
    assert page["counts"]["queued"] == 2 and page["counts"]["cancelled"] == 1
    assert set(page["counts"]) == {"queued", "leased", "running", "succeeded", "failed",
                                   "cancelled"}


def test_logs_never_split_a_character_across_reads(client: Launch, tmp_path: Path) -> None:
    # A job that prints multi-byte characters in pieces: every reader must see whole ones.
    script = write_script(tmp_path, "utf.py", """
        import sys
        data = ("é€😀" * 300).encode()
        for i in range(0, len(data), 7):
            sys.stdout.buffer.write(data[i:i + 7]); sys.stdout.flush()
    """)
    item = client.submit(client.create_job(script))
    reader = client.log_reader(item.id)
    pieces: list[str] = []
    agent = client.agent().start()
    try:
        while not reader.done:
            pieces.append(reader.read())
    finally:
        agent.stop()
    assert item.wait(60, progress=False).state == "succeeded"
    text = "".join(pieces)
    assert "\ufffd" not in text and text.count("😀") == 300
    followed: list[str] = []
    client.follow(item.id, followed.append)
    assert "".join(followed) == text


def test_a_sweep_handle_counts_its_items_through_the_page_rule(client: Launch,
                                                               tmp_path: Path) -> None:
    script = write_script(tmp_path, "s.py", """
        import launch_jupyter
        p = launch_jupyter.parameters(k=1)
        raise SystemExit(0 if p["k"] < 3 else 1)
    """)
    sweep = client.sweep(client.create_job(script), grid=["k=1,2,3"])
    assert sweep.states == {"queued": 3} and not sweep.done
    agent = client.agent().start()
    try:
        sweep.wait(timeout=120, progress=False)
    finally:
        agent.stop()
    assert sweep.done and sweep.states == {"succeeded": 2, "failed": 1}
    assert sorted(i["id"] for i in sweep.refresh()) == sorted(i.id for i in sweep)
