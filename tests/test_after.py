"""Run-after (``submit --after``): chains, failures, diamonds, and what the job sees.

Real agent processes (``jupyter launch agent``) run the items; each job appends its own
start and end marks to one file, so the order is proved from what the jobs did.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

import launch_jupyter
from launch_jupyter.api import Launch
from launch_jupyter.store import Store
from tests.conftest import CLI, write_script

STEP = """
    import json, os, time
    import launch_jupyter

    p = launch_jupyter.parameters(name="A", fail=False)
    marks = {marks!r}

    def mark(what):
        fd = os.open(marks, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{{p['name']}} {{what}} {{time.time():.6f}}\\n".encode())
        os.close(fd)

    mark("start")
    upstream = json.loads(os.environ.get("LAUNCH_UPSTREAM", "{{}}"))
    seen = {{}}
    for item_id, folder in sorted(upstream.items()):
        with open(os.path.join(folder, "chain.txt")) as fh:
            seen[item_id] = fh.read()
    chain = "+".join(seen[i] for i in sorted(seen))
    chain = f"{{chain}}>{{p['name']}}" if chain else p["name"]
    with open(os.path.join(os.environ["LAUNCH_OUTPUT_DIR"], "chain.txt"), "w") as fh:
        fh.write(chain)
    time.sleep(0.3)
    mark("end")
    if p["fail"]:
        raise SystemExit("step failed on purpose")
"""


def marks_of(path: Path) -> dict[str, list[tuple[str, float]]]:
    """name -> [(start|end, time)] from the jobs' own marks file."""
    found: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text().splitlines():
        name, what, at = line.split()
        found.setdefault(name, []).append((what, float(at)))
    return found


@pytest.fixture
def step(client: Launch, tmp_path: Path) -> tuple[str, Path]:
    """The step job's ref and the file its runs append their marks to."""
    marks = tmp_path / "marks.txt"
    path = write_script(tmp_path, "step.py", STEP.format(marks=str(marks)))
    return client.create_job(path).ref, marks


def submit(cli: CLI, ref: str, name: str, *after: str, fail: bool = False) -> str:
    args = ["submit", ref, "-p", f"name={name}"]
    if fail:
        args += ["-p", "fail=true"]
    for upstream in after:
        args += ["--after", upstream]
    return cli("submit", *args[1:], check=True).stdout.strip()


def run_agents(cli: CLI, n: int = 1, *args: str) -> None:
    procs = [cli.popen("agent", "--until-idle", *args) for _ in range(n)]
    for proc in procs:
        proc.wait(timeout=300)
        assert proc.returncode == 0, proc.stderr.read()


@pytest.mark.slow
def test_chain_runs_in_order_and_each_step_sees_its_upstream_outputs(
        client: Launch, cli: CLI, step: tuple[str, Path]) -> None:
    ref, marks = step
    a = submit(cli, ref, "A")
    b = submit(cli, ref, "B", a)
    c = submit(cli, ref, "C", b)
    shown = cli.json("show", c)
    assert shown["state"] == "queued" and shown["waiting_on"] == [b]
    assert shown["after"] == [b]
    assert cli.json("show", a)["waiting_on"] == []
    assert f"waiting on: {b}" in cli("show", c, check=True).stdout

    run_agents(cli, 2)

    assert [client.item_info(i)["state"] for i in (a, b, c)] == ["succeeded"] * 3
    got = marks_of(marks)
    assert got["A"][1][0] == "end" and got["B"][0][0] == "start"
    assert got["A"][1][1] <= got["B"][0][1] and got["B"][1][1] <= got["C"][0][1]
    final = client.item_info(c)
    chain = next(o for o in final["outputs"] if o["name"] == "chain.txt")
    assert Path(chain["path"]).read_text() == "A>B>C"  # C read B's outputs, B read A's
    assert final["waiting_on"] == []


@pytest.mark.slow
def test_a_failing_upstream_cancels_its_dependents_transitively(
        client: Launch, cli: CLI, step: tuple[str, Path]) -> None:
    ref, marks = step
    a = submit(cli, ref, "A", fail=True)
    b = submit(cli, ref, "B", a)
    c = submit(cli, ref, "C", b)

    run_agents(cli, 1)

    assert client.item_info(a)["state"] == "failed"
    for item_id, upstream in ((b, a), (c, b)):
        item = cli.json("show", item_id)
        assert item["state"] == "cancelled"
        assert item["error"]["stage"] == "dependency"
        assert upstream in item["error"]["message"]
        assert item["attempts"] == [] and item["waiting_on"] == []
    assert a in client.item_info(c)["error"]["message"]  # the cause, named too
    assert set(marks_of(marks)) == {"A"}  # B and C never ran


@pytest.mark.slow
def test_diamond_runs_the_join_once_after_both_branches(
        client: Launch, cli: CLI, step: tuple[str, Path]) -> None:
    ref, marks = step
    a = submit(cli, ref, "A")
    b = submit(cli, ref, "B", a)
    c = submit(cli, ref, "C", a)
    d = submit(cli, ref, "D", b, c)
    assert sorted(cli.json("show", d)["waiting_on"]) == sorted([b, c])

    run_agents(cli, 3, "--max-jobs", "2")

    assert [client.item_info(i)["state"] for i in (a, b, c, d)] == ["succeeded"] * 4
    got = marks_of(marks)
    assert [what for what, _ in got["D"]] == ["start", "end"]  # D ran exactly once
    d_start = got["D"][0][1]
    assert all(got[n][1][1] <= d_start for n in ("B", "C"))
    final = client.item_info(d)
    chain = next(o for o in final["outputs"] if o["name"] == "chain.txt")
    assert Path(chain["path"]).read_text() == "A>B+A>C>D"  # D read both branches' outputs
    assert len(client.items()) == 4


def test_after_an_unknown_item_is_refused_before_anything_is_written(
        client: Launch, cli: CLI, step: tuple[str, Path]) -> None:
    ref, _marks = step
    proc = cli("submit", ref, "--after", "01NOSUCHITEM0000000000000")
    assert proc.returncode == 2
    assert "--after '01NOSUCHITEM0000000000000': no such item" in proc.stderr
    assert client.items() == []


def test_an_empty_or_comma_joined_after_says_how_to_name_items(
        client: Launch, cli: CLI, step: tuple[str, Path]) -> None:
    ref, _marks = step
    a = client.submit(ref)
    proc = cli("submit", ref, "--after", "")  # `--after "$A"` with A unset
    assert proc.returncode == 2
    assert "--after: an item id is empty" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("submit", ref, "--after", f"{a.id},{a.id}")
    assert proc.returncode == 2
    assert "repeat the option for several (--after A --after B)" in proc.stderr
    assert [item["id"] for item in client.items()] == [a.id]


def test_after_an_item_that_already_failed_cancels_at_once(
        both: tuple[Launch, str]) -> None:
    client, ref = both
    a = client.submit(ref)
    client.cancel(a.id)
    b = client.submit(ref, after=[a.id])
    info = b.info()
    assert info["state"] == "cancelled"
    assert info["error"]["stage"] == "dependency" and a.id in info["error"]["message"]


def test_after_takes_item_handles_as_a_notebook_passes_them(
        both: tuple[Launch, str]) -> None:
    client, ref = both
    a = client.submit(ref)
    b = client.submit(ref, after=[a])  # the handle submit returned, not a.id
    c = client.submit(ref, after=b)
    assert b.info()["waiting_on"] == [a.id] and c.info()["waiting_on"] == [b.id]
    d = launch_jupyter.submit(ref, after=[b, c], client=client)  # the module-level submit
    assert d.info()["waiting_on"] == [b.id, c.id]


@pytest.fixture(params=["sqlite", "postgresql"])
def both(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> tuple[Launch, str]:
    """A client on a fresh store of each backend, and the step job's ref in it."""
    url = (f"sqlite:///{home}/both.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    launch = Launch(url)
    request.addfinalizer(launch.close)
    path = write_script(tmp_path, "step.py", STEP.format(marks=str(tmp_path / "m.txt")))
    return launch, launch.create_job(path).ref


def test_waiting_items_are_never_claimed_until_the_upstream_succeeds(
        both: tuple[Launch, str]) -> None:
    client, ref = both
    a = client.submit(ref)
    b = client.submit(ref, after=[a.id], priority="critical")
    store = Store(client.config.store)
    try:
        first = store.claim("local", "agent-x", 30)
        assert first is not None and first["id"] == a.id  # b outranks it, but waits
        assert store.claim("local", "agent-x", 30) is None
        token = "run-a"
        assert store.start_run(a.id, "agent-x", token, 30, {})
        assert store.finish(a.id, token, "succeeded", exit_code=0)
        assert client.item_info(b.id)["waiting_on"] == []
        second = store.claim("local", "agent-x", 30)
        assert second is not None and second["id"] == b.id
    finally:
        store.close()


def test_deleting_a_waited_on_item_cancels_its_dependents(
        both: tuple[Launch, str]) -> None:
    client, ref = both
    a = client.submit(ref)
    b = client.submit(ref, after=[a.id])
    client.delete(a.id)
    info = b.info()
    assert info["state"] == "cancelled" and info["error"]["stage"] == "dependency"
    assert "was deleted" in info["error"]["message"]


def test_a_failure_cancels_the_whole_waiting_tree_in_its_own_transaction(
        both: tuple[Launch, str]) -> None:
    client, ref = both
    a = client.submit(ref)
    b = client.submit(ref, after=[a.id])
    c = client.submit(ref, after=[b.id])
    d = client.submit(ref, after=[a.id, c.id])
    store = Store(client.config.store)
    try:
        assert store.claim("local", "agent-x", 30)["id"] == a.id
        assert store.finish(a.id, "agent-x", "failed", exit_code=1,
                            error={"message": "boom", "stage": "run", "cell": None})
    finally:
        store.close()
    for dependent in (b, c, d):  # already cancelled when finish returned
        info = dependent.info()
        assert (info["state"], info["error"]["stage"]) == ("cancelled", "dependency")
    assert client.item_info(c.id)["error"]["message"] == (
        f"not started: upstream item {b.id} was cancelled (its upstream item {a.id} failed)")
    kinds = [e["kind"] for e in client.store.events(d.id)]
    assert kinds == ["submitted", "cancelled"]  # once, though it waited on a and c


def test_launch_upstream_is_set_only_for_items_with_upstreams(
        client: Launch, tmp_path: Path) -> None:
    from tests.conftest import run_to_end

    seen = tmp_path / "env.json"
    path = write_script(tmp_path, "env.py", f"""
        import json, os
        with open({str(seen)!r}, "w") as fh:
            json.dump(os.environ.get("LAUNCH_UPSTREAM"), fh)
    """)
    item = client.submit(path)
    assert run_to_end(client, item).state == "succeeded"
    assert json.loads(seen.read_text()) is None
    after = client.submit(path, after=[item.id])
    assert run_to_end(client, after).state == "succeeded"
    upstream = json.loads(json.loads(seen.read_text()))
    assert upstream == {item.id: os.path.join(item.info()["run"]["run_dir"], "output")}


@pytest.mark.parametrize("has_code", [True, False])
def test_kubernetes_job_gets_its_upstream_outputs_in_the_work_dir(
        client: Launch, tmp_path: Path, has_code: bool) -> None:
    """The upstream outputs travel in the attempt's ConfigMap into ``<work dir>/upstream``."""
    from launch_jupyter.runners.base import RunRequest
    from launch_jupyter.runners.kubernetes import plan_manifests

    outputs = tmp_path / "a-run" / "output"
    (outputs / "data").mkdir(parents=True)
    (outputs / "data" / "rows.csv").write_text("1,2\n")
    path = write_script(tmp_path, "train.py", "print('hi')\n")
    job = client.create_job(path)
    request = RunRequest(item={"id": "01B", "queue": "q", "parameters": {}}, job=job,
                         files=client.store.job_files(job.id), token="t", attempt=1,
                         run_dir=tmp_path, store_url="", lease_ttl=30, cancel_grace=5,
                         max_log_bytes=1000, agent_id="a", upstream={"01A": str(outputs)})
    manifest, configmap = plan_manifests(request, {"namespace": "ml"}, {}, "reg/x:1",
                                         has_code=has_code, generated=True)
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    work = "/launch/job" if has_code else "/launch/src/job"
    assert json.loads(env["LAUNCH_UPSTREAM"]) == {"01A": f"{work}/upstream/01A"}
    mounted = {}
    for volume in pod["volumes"]:
        mount = next((m for m in container["volumeMounts"] if m["name"] == volume["name"]),
                     None)
        for entry in (volume.get("configMap") or {}).get("items", []):
            mounted[f"{mount['mountPath']}/{entry['path']}"] = entry["key"]
    key = mounted[f"{work}/upstream/01A/data/rows.csv"]
    assert base64.b64decode(configmap["binaryData"][key]) == b"1,2\n"


def test_a_dependent_submitted_while_its_upstream_fails_is_never_left_waiting(
        both: tuple[Launch, str]) -> None:
    """Submit and the upstream's end race: either the submit sees it failed, or the end
    sees the new dependent; no item waits on an item that can no longer succeed."""
    import threading

    client, ref = both
    finisher = Store(client.config.store)
    try:
        for n in range(15):
            a = client.submit(ref)
            assert finisher.claim("local", "agent-x", 30)["id"] == a.id
            go = threading.Barrier(2)

            def fail(item_id: str = a.id, go: threading.Barrier = go) -> None:
                go.wait()
                finisher.finish(item_id, "agent-x", "failed", exit_code=1,
                                error={"message": "boom", "stage": "run", "cell": None})

            thread = threading.Thread(target=fail)
            thread.start()
            go.wait()
            b = client.submit(ref, after=[a.id])
            thread.join(60)
            info = b.info()
            assert (info["state"], info["error"]["stage"]) == ("cancelled", "dependency"), n
    finally:
        finisher.close()
