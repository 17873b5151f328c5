"""Cron schedules: checked at create, fired by whichever agent serves the queue, exactly one
item per firing however many agents run (SQLite and PostgreSQL), missed firings skipped or
caught up by one, pause and resume without a burst, and every door (CLI, magics, Python)."""

from __future__ import annotations

import collections
import json
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from launch_jupyter.agent import fire_schedule, next_fire
from launch_jupyter.api import Launch
from launch_jupyter.errors import ConflictError, InvalidNameError, NotFoundError, ParameterError

from .conftest import CLI, wait_for, write_script

ONCE = """\
import os
import launch_jupyter
p = launch_jupyter.parameters(n=1)  # launch: minimum=0
fd = os.open({ran!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, (os.environ["LAUNCH_ITEM_ID"] + " " + str(p.n) + "\\n").encode())
"""


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


@pytest.fixture
def job(client: Launch, tmp_path: Path) -> str:
    return client.create_job(write_script(tmp_path, "once.py",
                                          ONCE.format(ran=str(tmp_path / "ran.txt")))).ref


# -- create: everything checked before anything is written -------------------------------------

def test_create_checks_cron_timezone_job_queue_and_parameters(client: Launch, job: str,
                                                              tmp_path: Path) -> None:
    bad = [
        ({"cron": "every minute"}, ParameterError, "is not valid; use five fields"),
        ({"cron": "61 * * * *"}, ParameterError, "is not valid"),
        ({"cron": ""}, ParameterError, "must be a cron expression"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, ParameterError, "unknown time zone"),
        ({"cron": "* * * * *", "queue": "nope"}, NotFoundError, "queue 'nope' does not exist"),
        ({"cron": "* * * * *", "overrides": ["m=1"]}, ParameterError, "unknown parameter 'm'"),
        ({"cron": "* * * * *", "overrides": ["n=-1"]}, ParameterError, "n"),
        ({"cron": "* * * * *", "priority": "urgent"}, ParameterError, "urgent"),
        ({"cron": "* * * * *", "timeout": -1}, ParameterError, "timeout"),
    ]
    for kwargs, kind, words in bad:
        with pytest.raises(kind, match=words):
            client.create_schedule("nightly", job, **kwargs)
    with pytest.raises(NotFoundError, match="once"):
        client.create_schedule("nightly", "oncee", cron="* * * * *")
    with pytest.raises(InvalidNameError):
        client.create_schedule("bad name", job, cron="* * * * *")
    # a file is captured, and stored as a job version only once everything checks out
    path = write_script(tmp_path, "fresh.py", "import launch_jupyter\n"
                        "p = launch_jupyter.parameters(k=1)\n")
    with pytest.raises(ParameterError, match="unknown parameter 'zz'"):
        client.create_schedule("fresh", path, cron="* * * * *", overrides=["zz=1"])
    with pytest.raises(NotFoundError):
        client.create_schedule("fresh", path, cron="* * * * *", queue="nope")
    assert [j.name for j in client.jobs()] == ["once"]
    assert client.create_schedule("fresh", path, cron="@daily")["job"] == "fresh:v1"
    client.delete_schedule("fresh")
    assert client.list_schedules() == []

    made = client.create_schedule("nightly", job, cron="0  9 * * 1-5", timezone="Europe/Paris",
                                  overrides=["n=3"], priority="high")
    assert made["cron"] == "0 9 * * 1-5" and made["job"] == "once:v1"
    assert made["parameters"] == {"n": 3} and made["state"] == "active"
    assert made["priority"] == "high" and made["items"] == 0
    # 09:00 in Paris is 07:00 or 08:00 UTC, on a weekday, after now
    fire = datetime.fromtimestamp(made["next_fire_ts"], UTC)
    assert fire.hour in (7, 8) and fire.minute == 0 and fire.weekday() < 5
    assert made["next_fire_ts"] > time.time()
    with pytest.raises(ConflictError, match="already exists"):
        client.create_schedule("nightly", job, cron="* * * * *")


def test_schedule_create_of_a_file_shows_its_captures_warnings(client: Launch, cli: CLI,
                                                                tmp_path: Path) -> None:
    path = write_script(tmp_path, "drops.py", "import launch_test_not_installed_pkg\n")
    made = cli("schedule", "create", "drops", "--job", str(path), "--cron", "@daily",
               "--queue", "local", "--json", check=True)
    assert "warning: module 'launch_test_not_installed_pkg' is imported but not installed" \
        in made.stderr
    assert any("launch_test_not_installed_pkg" in w for w in json.loads(made.stdout)["warnings"])
    by_ref = client.create_schedule("drops-again", "drops", cron="@daily")
    assert "warnings" not in by_ref  # nothing was captured


def test_a_cron_that_never_fires_is_refused_and_one_past_its_last_firing_pauses(
        client: Launch, job: str) -> None:
    with pytest.raises(ParameterError, match="never fires"):
        client.create_schedule("feb30", job, cron="0 0 30 2 *")
    year = datetime.now(UTC).year + 1
    made = client.create_schedule("once", job, cron=f"0 0 1 1 * 0 {year}")  # seconds, year
    assert datetime.fromtimestamp(made["next_fire_ts"], UTC) == datetime(year, 1, 1, tzinfo=UTC)
    item_id = fire_schedule(client.store, made, now=made["next_fire_ts"] + 1)
    assert item_id is not None  # its last firing makes its item, then it pauses
    after = client.get_schedule("once")
    assert after["paused"] and after["items"] == 1
    assert fire_schedule(client.store, after, now=made["next_fire_ts"] + 2) is None


def test_next_fire_follows_the_cron_in_its_time_zone() -> None:
    winter = datetime(2026, 1, 15, 12, 0, tzinfo=UTC).timestamp()
    paris = next_fire("0 9 * * *", "Europe/Paris", winter)
    assert datetime.fromtimestamp(paris, UTC) == datetime(2026, 1, 16, 8, 0, tzinfo=UTC)
    assert next_fire("* * * * * */10", "UTC", winter) == winter + 10
    # seconds first, as Quartz and Spring write them, fire as meant too
    assert next_fire("*/10 * * * * *", "UTC", winter) == winter + 10
    assert next_fire("30 */2 * * * *", "UTC", winter) == winter + 30
    assert next_fire("30 */2 * * * *", "UTC", winter + 30) == winter + 150
    assert next_fire("@hourly", "UTC", winter) == winter + 3600


def test_a_time_zone_written_in_another_case_is_stored_as_iana_spells_it(
        client: Launch, job: str) -> None:
    assert client.create_schedule("a", job, cron="@daily", timezone="utc")["timezone"] == "UTC"
    made = client.create_schedule("b", job, cron="0 9 * * *", timezone="europe/paris")
    assert made["timezone"] == "Europe/Paris"
    with pytest.raises(ParameterError, match="unknown time zone 'Europe/Pariss'"):
        client.create_schedule("c", job, cron="@daily", timezone="Europe/Pariss")


# -- firing: exactly once, missed firings, pause and resume -------------------------------------

def test_a_due_firing_makes_one_item_naming_its_schedule(client: Launch, job: str) -> None:
    made = client.create_schedule("tick", job, cron="*/5 * * * *", overrides=["n=2"])
    due = made["next_fire_ts"]
    assert fire_schedule(client.store, made, now=due - 1) is None  # not yet due
    item_id = fire_schedule(client.store, made, now=due + 0.5)
    assert item_id is not None
    item = client.item_info(item_id)
    assert item["schedule"] == "tick" and item["state"] == "queued"
    assert item["parameters"] == {"n": 2} and item["job"] == "once:v1"
    after = client.get_schedule("tick")
    assert after["next_fire_ts"] == due + 300 and after["last_item"] == item_id
    assert after["items"] == 1
    # the same firing seen again (a stale read by another agent) makes nothing
    assert fire_schedule(client.store, made, now=due + 1) is None
    assert len(client.items()) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_racing_agents_make_exactly_one_item_per_firing(
        backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Twelve threads fire the same due schedule at once, twenty firings in a row: each
    firing is one item, made by one of them."""
    url = (f"sqlite:///{tmp_path}/race.db" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    client = Launch(url)
    try:
        ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
        client.create_schedule("race", ref, cron="* * * * * *")
        made: list[str] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(12)

        def agent() -> None:
            try:
                for _ in range(20):
                    seen = client.store.get_schedule("race")
                    barrier.wait(30)  # all twelve hold the same snapshot of the firing
                    item_id = fire_schedule(client.store, seen, now=seen["next_fire_ts"] + 0.1)
                    if item_id is not None:
                        made.append(item_id)
                    barrier.wait(30)
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=agent) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        assert len(made) == 20 == len(set(made))
        assert sorted(i["id"] for i in client.items()) == sorted(made)
        assert client.get_schedule("race")["items"] == 20
    finally:
        client.close()


def test_missed_firings_are_skipped_by_default(client: Launch, job: str) -> None:
    made = client.create_schedule("hourly", job, cron="0 * * * *")
    due = made["next_fire_ts"]
    late = due + 3 * 3600 + 60  # no agent ran for three hours
    assert fire_schedule(client.store, made, now=late) is None
    after = client.get_schedule("hourly")
    assert after["next_fire_ts"] == next_fire("0 * * * *", "UTC", late) > late
    assert client.items() == []
    # a firing found a little late (a busy agent) is still on time
    assert fire_schedule(client.store, after, now=after["next_fire_ts"] + 30) is not None


def test_catch_up_fires_one_item_for_the_missed_window(client: Launch, job: str) -> None:
    made = client.create_schedule("hourly", job, cron="0 * * * *", catch_up=True)
    late = made["next_fire_ts"] + 3 * 3600 + 60
    item_id = fire_schedule(client.store, made, now=late)
    assert item_id is not None and client.item_info(item_id)["schedule"] == "hourly"
    after = client.get_schedule("hourly")
    assert after["next_fire_ts"] > late and after["catch_up"] is True
    assert fire_schedule(client.store, after, now=late + 1) is None  # one, not three
    assert len(client.items()) == 1


def test_pause_stops_firing_and_resume_starts_from_now(client: Launch, job: str) -> None:
    made = client.create_schedule("tick", job, cron="* * * * *", catch_up=True)
    paused = client.pause_schedule("tick")
    assert paused["paused"] and paused["state"] == "paused"
    with pytest.raises(ConflictError, match="already paused"):
        client.pause_schedule("tick")
    # an agent that read the schedule before the pause makes nothing
    assert fire_schedule(client.store, made, now=made["next_fire_ts"] + 1) is None
    assert client.store.list_schedules(due_by=made["next_fire_ts"] + 3600) == []
    before = time.time()
    resumed = client.resume_schedule("tick")
    assert resumed["state"] == "active" and before < resumed["next_fire_ts"] <= before + 60
    with pytest.raises(ConflictError, match="not paused"):
        client.resume_schedule("tick")
    assert client.items() == []  # no burst, even with catch-up


def test_delete_keeps_the_items_it_made(client: Launch, job: str) -> None:
    made = client.create_schedule("tick", job, cron="* * * * *")
    item_id = fire_schedule(client.store, made, now=made["next_fire_ts"])
    client.delete_schedule("tick")
    with pytest.raises(NotFoundError, match="schedule 'tick' does not exist"):
        client.get_schedule("tick")
    with pytest.raises(NotFoundError):
        client.delete_schedule("tick")
    assert client.item_info(item_id)["schedule"] == "tick"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_v6_store_gains_schedules_on_open(backend: str, tmp_path: Path,
                                            request: pytest.FixtureRequest) -> None:
    from launch_jupyter.store import schema
    from launch_jupyter.store.sql import create_engine

    url = (f"sqlite:///{tmp_path}/old.db" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = create_engine(url)
    with engine.begin() as conn:  # a store as launch-jupyter left it at schema v6
        schema.schema_version.create(conn)
        for _version, migration in schema.MIGRATIONS[:6]:
            migration(conn)
        conn.exec_driver_sql("ALTER TABLE launch_items DROP COLUMN schedule")
        conn.execute(schema.schema_version.insert().values(version=6))
    engine.dispose()
    client = Launch(url)  # migrates on open
    try:
        assert client.store.schema_version() == schema.LATEST_VERSION
        client.create_queue("local")  # made by the real v1 migration, skipped here
        ref = client.create_job(write_script(tmp_path, "j.py", "print(1)\n")).ref
        assert client.submit(ref).info()["schedule"] is None
        made = client.create_schedule("tick", ref, cron="* * * * *")
        item_id = fire_schedule(client.store, made, now=made["next_fire_ts"])
        assert client.item_info(item_id)["schedule"] == "tick"
    finally:
        client.close()


def test_a_queue_with_schedules_is_deleted_only_with_force(client: Launch, job: str) -> None:
    client.create_queue("nightly-q")
    client.create_schedule("nightly", job, cron="0 2 * * *", queue="nightly-q")
    with pytest.raises(ConflictError, match="schedule.s. nightly fire on queue 'nightly-q'"):
        client.delete_queue("nightly-q")
    assert client.delete_queue("nightly-q", force=True) == 0
    assert client.list_schedules() == []


# -- the doors ---------------------------------------------------------------------------------

def test_cli_schedule_commands(cli: CLI, client: Launch, job: str) -> None:
    made = cli.json("schedule", "create", "nightly", "--job", job, "--cron", "30 2 * * *",
                    "--timezone", "America/New_York", "--queue", "local", "-p", "n=4",
                    "--catch-up")
    assert made["name"] == "nightly" and made["timezone"] == "America/New_York"
    assert made["overrides"] == {"n": 4} and made["catch_up"] is True
    text = cli("schedule", "create", "often", "--job", job, "--cron", "*/10 * * * *",
               "--queue", "local", check=True).stdout
    assert "schedule often created" in text and "next" in text
    listed = cli.json("schedule", "list")
    assert [s["name"] for s in listed] == ["nightly", "often"]
    table = cli("schedule", "list", check=True).stdout
    assert "America/New_York" in table and ("EST" in table or "EDT" in table)
    assert cli.json("schedule", "show", "nightly")["cron"] == "30 2 * * *"
    assert cli.json("schedule", "pause", "nightly")["paused"] is True
    assert cli.json("schedule", "resume", "nightly")["paused"] is False
    assert "deleted schedule often" in cli("schedule", "delete", "often", check=True).stdout

    item_id = fire_schedule(client.store, client.get_schedule("nightly"),
                            now=client.get_schedule("nightly")["next_fire_ts"])
    assert cli.json("show", item_id)["schedule"] == "nightly"
    assert "made by schedule nightly" in cli("show", item_id, check=True).stdout
    assert cli.json("items")[0]["schedule"] == "nightly"

    for args, words in [
        (("--cron", "nope", "--queue", "local"), "is not valid"),
        (("--cron", "* * * * *", "--queue", "local", "--timezone", "Nowhere"),
         "unknown time zone"),
        (("--cron", "* * * * *", "--queue", "ghost"), "queue 'ghost' does not exist"),
        (("--cron", "* * * * *", "--queue", "local", "-p", "zz=1"), "unknown parameter"),
    ]:
        bad = cli("schedule", "create", "x", "--job", job, *args)
        assert bad.returncode == 2 and words in bad.stderr, bad.stderr
    missing = cli("schedule", "create", "x", "--job", job, "--queue", "local")
    assert missing.returncode == 2 and "--cron" in missing.stderr
    taken = cli("schedule", "create", "nightly", "--job", job, "--cron", "* * * * *",
                "--queue", "local")
    assert taken.returncode == 2 and "already exists" in taken.stderr
    unknown = cli("schedule", "show", "nightli")
    assert unknown.returncode == 2 and "did you mean 'nightly'" in unknown.stderr


def test_magics_take_the_same_schedule_commands(client: Launch, job: str,
                                                capsys: pytest.CaptureFixture) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from launch_jupyter.magics import LaunchMagics

    shell = InteractiveShell.instance()  # the process's one shell, whichever test made it
    shell.register_magics(LaunchMagics)
    shell.run_line_magic("launch", f"schedule create tick --job {job} --cron '*/5 * * * *' "
                                   "--queue local -p n=7 --json")
    out = capsys.readouterr()
    assert json.loads(out.out)["overrides"] == {"n": 7}, out.err
    shell.run_line_magic("launch", "schedule pause tick")
    assert "schedule tick paused" in capsys.readouterr().out
    shell.run_line_magic("launch", "schedule list")
    assert "paused" in capsys.readouterr().out
    shell.run_line_magic("launch", "schedule create tick2 --job nope --cron '* * * * *' "
                                   "--queue local")
    assert "does not exist" in capsys.readouterr().err
    assert [s["name"] for s in client.list_schedules()] == ["tick"]


# -- real agent processes: exactly one item per firing ----------------------------------------

class Fleet:
    """``agents`` agent processes on one store, and the schedule they fire."""

    def __init__(self, cli: CLI, url: str, tmp_path: Path, agents: int = 3) -> None:
        self.client = Launch(url)
        self.ran = tmp_path / "ran.txt"
        self.ref = self.client.create_job(write_script(
            tmp_path, "once.py", ONCE.format(ran=str(self.ran)))).ref
        self.procs = [cli.popen("agent", "--store", url, "--max-jobs", "2")
                      for _ in range(agents)]
        wait_for(lambda: len(self.client.agents()) == agents, 60, 0.2, "the agents to start")

    def items(self) -> list[dict]:
        return sorted(self.client.items(), key=lambda i: i["created_at"])

    def stop(self) -> str:
        """SIGTERM every agent; their logs."""
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        logs = ""
        for proc in self.procs:
            logs += proc.communicate(timeout=60)[1]
        return logs

    def check_one_per_firing(self, items: list[dict], period: float) -> None:
        """Consecutive firings: one item per cron slot, no slot skipped."""
        slots = [int(_epoch(i["created_at"]) // period) for i in items]
        assert len(set(slots)) == len(slots), f"two items in one firing: {slots}"
        assert slots == list(range(slots[0], slots[0] + len(slots))), f"a gap: {slots}"

    def check_ran_once(self, items: list[dict], logs: str) -> None:
        """Every item names the schedule, ran exactly once, and was fired by one agent."""
        assert {i["schedule"] for i in items} == {"tick"}
        wait_for(lambda: all(i["state"] == "succeeded" for i in self.client.items()), 120,
                 0.2, "the scheduled items to run")
        ran = collections.Counter(line.split()[0] for line in self.ran.read_text().split("\n")
                                  if line)
        assert set(ran) == {i["id"] for i in items} and max(ran.values()) == 1
        assert logs.count("schedule tick fired") == len(items)


def _ids(items: list[dict]) -> list[str]:
    return [i["id"] for i in items]


def _fleet_fires_once_pauses_and_resumes(fleet: Fleet, cron: str, period: float,
                                         firings: int) -> None:
    fleet.client.create_schedule("tick", fleet.ref, cron=cron, overrides=["n=5"])
    wait_for(lambda: len(fleet.items()) >= firings, period * (firings + 3), 0.2,
             f"{firings} firings")
    fleet.client.pause_schedule("tick")
    paused_with = fleet.items()
    fleet.check_one_per_firing(paused_with, period)
    time.sleep(2 * period)  # two firings' time: a paused schedule makes nothing in it
    assert _ids(fleet.items()) == _ids(paused_with)
    resumed_at = time.time()
    resumed = fleet.client.resume_schedule("tick")
    assert resumed["next_fire_ts"] > resumed_at
    wait_for(lambda: len(fleet.items()) > len(paused_with), period * 3, 0.05,
             "a firing after resume")
    after = fleet.items()[len(paused_with):]
    assert len(after) == 1, "resume made a burst"
    assert _epoch(after[0]["created_at"]) >= resumed["next_fire_ts"] - 0.01
    fleet.client.pause_schedule("tick")
    items = fleet.items()
    fleet.check_ran_once(items, fleet.stop())
    assert all(i["parameters"] == {"n": 5} for i in items)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_three_agent_processes_fire_each_second_cron_firing_once(
        backend: str, cli: CLI, store_url: str, request: pytest.FixtureRequest,
        tmp_path: Path) -> None:
    """A cron every 5 s with 3 agent processes: one item per firing, no firing skipped;
    pause stops it; resume fires the next time after now, without a burst."""
    url = store_url if backend == "sqlite" else request.getfixturevalue("postgres_url")
    fleet = Fleet(cli, url, tmp_path)
    try:
        _fleet_fires_once_pauses_and_resumes(fleet, "* * * * * */5", 5.0, 4)
    finally:
        fleet.client.close()


@pytest.mark.slow
def test_three_agent_processes_make_one_item_per_minute_on_both_backends(
        cli: CLI, store_url: str, postgres_url: str, tmp_path: Path) -> None:
    """The acceptance: '* * * * *' with 3 agent processes on SQLite and 3 on PostgreSQL, both
    at once, over 3 minutes: exactly one item per minute on each."""
    fleets = []
    for name, url in (("sqlite", store_url), ("postgresql", postgres_url)):
        folder = tmp_path / name
        folder.mkdir()
        fleets.append(Fleet(cli, url, folder))
    try:
        for fleet in fleets:
            fleet.client.create_schedule("tick", fleet.ref, cron="* * * * *")
        for fleet in fleets:
            wait_for(lambda f=fleet: len(f.items()) >= 3, 4 * 60 + 30, 0.5, "three minutes")
            fleet.client.pause_schedule("tick")
        for fleet in fleets:
            items = fleet.items()
            assert len(items) == 3
            fleet.check_one_per_firing(items, 60.0)
            fleet.check_ran_once(items, fleet.stop())
    finally:
        for fleet in fleets:
            fleet.client.close()
