"""``jupyter launch``: the command line over the Python API (console script jupyter-launch)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from .errors import LaunchError

EPILOG = """\
Store: --store URL > LAUNCH_JUPYTER_STORE > jupyter_launch_config.py > the SQLite file in
<jupyter data dir>/launch/launch.db. Names of jobs, queues and aliases use letters, digits,
'-', '_' and '.', start with a letter or digit, and are at most 63 characters.
"""


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def _table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    for row in [headers, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _short(value: Any, width: int = 40) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


def _duration(item: dict) -> str:
    d = item.get("duration")
    return "" if d is None else f"{d:.1f}s"


# -- commands ------------------------------------------------------------------------------

def cmd_job_create(client: Any, args: argparse.Namespace) -> int:
    job = client.create_job(args.path, name=args.name, alias=args.alias, include=args.include,
                            kernel=args.kernel, mode=args.mode, env=args.env)
    if args.json:
        _print_json(job.to_json())
    else:
        print(job.ref)
    return 0


def cmd_job_list(client: Any, args: argparse.Namespace) -> int:
    jobs = client.jobs()
    if args.json:
        _print_json([j.to_json() for j in jobs])
    elif not jobs:
        print("no jobs yet; create one with `jupyter launch job create NOTEBOOK.ipynb`")
    else:
        _table([[j.name, f"v{j.version}", ",".join(j.aliases), j.spec.get("mode", ""),
                 _short(j.spec.get("parameters", {}))] for j in jobs],
               ["NAME", "LATEST", "ALIASES", "MODE", "PARAMETERS"])
    return 0


def cmd_job_show(client: Any, args: argparse.Namespace) -> int:
    job = client.job(args.ref)
    data = job.to_json()
    data["versions"] = [j.ref for j in client.jobs(job.name)]
    if args.json:
        _print_json(data)
        return 0
    print(f"{job.ref}  digest {job.digest[:12]}  aliases: {', '.join(job.aliases) or '-'}")
    print(f"mode: {data['mode']}  entrypoint: {data['entrypoint']}  kernel: {data['kernel']}"
          f"  python: {data['python']}")
    print(f"versions: {', '.join(data['versions'])}")
    print("parameters:")
    for key, prop in (data["schema"].get("properties") or {}).items():
        extra = {k: v for k, v in prop.items() if k != "default"}
        print(f"  {key} = {prop.get('default')!r}  {json.dumps(extra)}")
    print("requirements:" + ("" if data["requirements"] else " (none)"))
    for req in data["requirements"]:
        print(f"  {req}")
    print("files:")
    for path in data["files"]:
        print(f"  {path}")
    return 0


def _queue_row(q: dict) -> list[str]:
    c = q["counts"]
    return [q["name"], q["runner"], "paused" if q["paused"] else "active", str(c["queued"]),
            str(c["leased"] + c["running"]), str(c["succeeded"]), str(c["failed"]),
            str(c["cancelled"])]


QUEUE_HEADERS = ["NAME", "RUNNER", "STATUS", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED",
                 "CANCELLED"]


def cmd_queue_create(client: Any, args: argparse.Namespace) -> int:
    config = None
    if args.config:
        from .runners.templates import load_queue_config

        config = load_queue_config(args.config)
    q = client.create_queue(args.name, runner=args.runner, max_attempts=args.max_attempts,
                            timeout=args.timeout, config=config)
    if args.json:
        _print_json(q)
    else:
        print(f"created queue {q['name']} (runner {q['runner']})")
    return 0


def cmd_queue_list(client: Any, args: argparse.Namespace) -> int:
    queues = client.queues()
    if args.json:
        _print_json(queues)
    else:
        _table([_queue_row(q) for q in queues], QUEUE_HEADERS)
    return 0


def cmd_queue_show(client: Any, args: argparse.Namespace) -> int:
    q = client.queue(args.name)
    if args.json:
        _print_json(q)
        return 0
    _table([_queue_row(q)], QUEUE_HEADERS)
    print(f"max attempts: {q['max_attempts']}  timeout: {q['timeout'] or 'none'}")
    if q["config"]:
        print("config: " + json.dumps(q["config"], indent=2))
    return 0


def cmd_queue_pause(client: Any, args: argparse.Namespace) -> int:
    client.pause_queue(args.name)
    print(f"queue {args.name} paused: agents will not start its items until resumed")
    return 0


def cmd_queue_resume(client: Any, args: argparse.Namespace) -> int:
    client.resume_queue(args.name)
    print(f"queue {args.name} resumed")
    return 0


def cmd_queue_delete(client: Any, args: argparse.Namespace) -> int:
    n = client.delete_queue(args.name, force=args.force)
    print(f"deleted queue {args.name}" + (f" and its {n} item(s)" if n else ""))
    return 0


def cmd_submit(client: Any, args: argparse.Namespace) -> int:
    item = client.submit(args.ref, queue=args.queue, overrides=args.param,
                         priority=args.priority, timeout=args.timeout,
                         template_pairs=args.set)
    if args.json:
        _print_json(item.info(refresh=False))
    else:
        print(item.id)
    return 0


def cmd_sweep(client: Any, args: argparse.Namespace) -> int:
    sweep = client.sweep(args.ref, queue=args.queue, grid=args.grid, random=args.random,
                         overrides=args.param, priority=args.priority, timeout=args.timeout,
                         seed=args.seed)
    if args.json:
        _print_json({"sweep_id": sweep.id, "items": [i.id for i in sweep]})
    else:
        print(f"sweep {sweep.id}: {len(sweep)} items", file=sys.stderr)
        for item in sweep:
            print(item.id)
    return 0


def _item_rows(items: list[dict]) -> list[list[str]]:
    return [[i["id"], i["queue"], i["job"], i["state"], i["priority"],
             _short(i["overrides"], 30), str(i["attempt"]), _duration(i)] for i in items]


ITEM_HEADERS = ["ID", "QUEUE", "JOB", "STATE", "PRIORITY", "OVERRIDES", "ATTEMPT", "DURATION"]


def cmd_items(client: Any, args: argparse.Namespace) -> int:
    items = client.items(queue=args.queue, state=args.state, limit=args.limit)
    if args.json:
        _print_json(items)
    elif not items:
        print("no items" + (f" in state {args.state}" if args.state else ""))
    else:
        _table(_item_rows(items), ITEM_HEADERS)
    return 0


def cmd_show(client: Any, args: argparse.Namespace) -> int:
    item = client.item(args.item).info(refresh=False)
    if args.json:
        _print_json(item)
        return 0
    print(f"item {item['id']}  {item['state']}  job {item['job']}  queue {item['queue']}")
    print(f"priority {item['priority']}  submitted by {item['submitted_by']} at "
          f"{item['created_at']}")
    print(f"parameters: {json.dumps(item['parameters'], sort_keys=True)}")
    if item["overrides"]:
        print(f"overrides:  {json.dumps(item['overrides'], sort_keys=True)}")
    if item["error"]:
        err = item["error"]
        cell = f" (cell {err['cell']})" if err.get("cell") is not None else ""
        print(f"error: {err['message']}{cell}")
    if item["warning"]:
        print(f"warning: {item['warning']}")
    print(f"attempts ({item['attempt']} of at most {item['max_attempts']}):")
    for a in item["attempts"]:
        outcome = (a["error"] or {}).get("message") or (
            f"exit {a['exit_code']}" if a["exit_code"] is not None else "")
        print(f"  #{a['attempt']}  {a['start'] or '-'} -> {a['end'] or '-'}  {outcome}")
    for out in item["outputs"]:
        print(f"output: {out['path']}  ({out['size']} bytes)")
    return 0


def _follow(client: Any, item_id: str, out: Any, *, interval: float = 0.2,
            tick: Any = None) -> dict:
    """Print the log as it grows until the item is finished; returns the final item.

    ``tick`` is called every round (``run`` renews the lease of a docker run with it).
    """
    from .store import TERMINAL

    offset = 0
    while True:
        if tick is not None:
            tick()
        item = client.store.get_item(item_id)
        text, offset = client.logs(item_id, offset)
        if text:
            out.write(text)
            out.flush()
        if item["state"] in TERMINAL:
            text, offset = client.logs(item_id, offset)
            if text:
                out.write(text)
                out.flush()
            return item
        time.sleep(interval)


def cmd_logs(client: Any, args: argparse.Namespace) -> int:
    if args.follow:
        try:
            _follow(client, args.item, sys.stdout)
        except KeyboardInterrupt:
            return 130
        return 0
    text, _ = client.logs(args.item)
    sys.stdout.write(text)
    return 0


def cmd_cancel(client: Any, args: argparse.Namespace) -> int:
    item = client.cancel(args.item)
    if item["state"] == "cancelled":
        print(f"item {args.item} cancelled")
    else:
        print(f"item {args.item} is {item['state']}: cancel requested, its run is being stopped")
    return 0


def cmd_requeue(client: Any, args: argparse.Namespace) -> int:
    item = client.requeue(args.item)
    print(item.id)
    return 0


def cmd_delete(client: Any, args: argparse.Namespace) -> int:
    client.delete(args.item)
    print(f"deleted item {args.item}")
    return 0


def cmd_agent(client: Any, args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    agent = client.agent(args.queue, max_jobs=args.max_jobs, until_idle=args.until_idle)

    def on_signal(signum: int, frame: Any) -> None:
        agent.stop(wait=None)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"agent {agent.id} serving {', '.join(agent.queues) or 'all queues'} "
          f"(max {agent.max_jobs} at once)", file=sys.stderr)
    agent.run()
    print(f"agent {agent.id} stopped", file=sys.stderr)
    return 0


def cmd_agents(client: Any, args: argparse.Namespace) -> int:
    agents = client.agents()
    if args.json:
        _print_json(agents)
    elif not agents:
        print("no agents running; start one with `jupyter launch agent`")
    else:
        _table([[a["id"], a["host"], str(a["pid"]), ",".join(a["queues"]), str(a["running"]),
                 f"{a['heartbeat_age']:.1f}s ago"] for a in agents],
               ["ID", "HOST", "PID", "QUEUES", "RUNNING", "HEARTBEAT"])
    return 0


def cmd_run(client: Any, args: argparse.Namespace) -> int:
    from .agent import Agent

    job = client.create_job(args.path, name=args.name, include=args.include,
                            kernel=args.kernel, mode=args.mode, env=args.env)
    agent = Agent(client.store, client.config, [], register=False)
    item = client.submit(job, queue=args.queue, overrides=args.param, timeout=args.timeout,
                         lease_owner=agent.id)
    print(f"running {job.ref} as item {item.id} on queue {item.info(False)['queue']}",
          file=sys.stderr)
    if agent.launch(item.info()) is None:
        final = item.info()
    else:
        final = None
        while final is None:
            try:
                # Runs that do not renew their own lease (docker) rely on us meanwhile.
                final = _follow(client, item.id, sys.stderr, tick=agent.renew_held_runs)
            except KeyboardInterrupt:
                print("\ncancelling…", file=sys.stderr)
                client.cancel(item.id)
    agent.close()
    err = final.get("error")
    print(f"item {item.id} {final['state']}" + (f": {err['message']}" if err else "")
          + (f" in {final['duration']:.1f}s" if final.get("duration") else ""), file=sys.stderr)
    outputs = final.get("outputs") or []
    notebook = next((o["path"] for o in outputs if o.get("kind") == "notebook"), None)
    last = notebook or (final.get("run") or {}).get("run_dir")
    if last:
        print(last)
    return 0 if final["state"] == "succeeded" else 1


def cmd_store_migrate(client: Any, args: argparse.Namespace) -> int:
    from .store import Store

    store = Store(client.config.store)
    print(f"store {client.config.store} is at schema version {store.schema_version()}")
    return 0


def cmd_store_check(client: Any, args: argparse.Namespace) -> int:
    from .store import Store

    store = Store(client.config.store, migrate=False)
    print(f"store {client.config.store} OK (schema version {store.schema_version()})")
    return 0


# -- parser --------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="URL", default=argparse.SUPPRESS,
                        help="store URL (default: LAUNCH_JUPYTER_STORE or the embedded SQLite)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON instead of a table")

    parser = argparse.ArgumentParser(
        prog="jupyter launch", description="Jobs, queues and agents for notebooks.",
        epilog=EPILOG, parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(parent: Any, name: str, func: Any, help: str, parents: Sequence[Any] = ()) -> Any:
        p = parent.add_parser(name, help=help, description=help,
                              parents=[common, *parents])
        p.set_defaults(func=func)
        return p

    def capture_options(p: Any) -> None:
        p.add_argument("--name", help="job name (default: the file's stem)")
        p.add_argument("--include", action="append", default=[], metavar="GLOB",
                       help="data files to ship with the job (relative to the notebook)")
        p.add_argument("--kernel", help="kernel to run the notebook with (default: its own)")
        p.add_argument("--mode", choices=["notebook", "script"],
                       help="notebook (default for .ipynb) or script")
        p.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                       help="environment variable to capture (secret-looking names refused)")

    job = sub.add_parser("job", help="create and inspect jobs").add_subparsers(
        dest="job_command", metavar="COMMAND", required=True)
    p = add(job, "create", cmd_job_create, "capture a notebook or script as a job version",
            [as_json])
    p.add_argument("path", help=".ipynb or .py file")
    p.add_argument("--alias", help="move this alias to the captured version")
    capture_options(p)
    add(job, "list", cmd_job_list, "list jobs (newest version of each)", [as_json])
    p = add(job, "show", cmd_job_show, "show a job version", [as_json])
    p.add_argument("ref", help="NAME, NAME:vN or NAME:ALIAS")

    queue = sub.add_parser("queue", help="create and manage queues").add_subparsers(
        dest="queue_command", metavar="COMMAND", required=True)
    p = add(queue, "create", cmd_queue_create, "create a queue", [as_json])
    p.add_argument("name")
    p.add_argument("--runner", default="local",
                   help="local (default), docker (a container per item; docs/docker.md) or "
                        "kubernetes (a batch/v1 Job per item; docs/kubernetes.md)")
    p.add_argument("--max-attempts", type=int, default=3,
                   help="attempts before an item whose agent was lost fails (default 3)")
    p.add_argument("--timeout", type=float, help="default per-item timeout in seconds")
    p.add_argument("--config", metavar="FILE.yaml",
                   help="runner config: template with {{variables}}, their schema, admin "
                        "options (see docs/usage.md)")
    add(queue, "list", cmd_queue_list, "list queues with item counts", [as_json])
    for name, func, text in [("show", cmd_queue_show, "show a queue"),
                             ("pause", cmd_queue_pause, "stop agents starting a queue's items"),
                             ("resume", cmd_queue_resume, "resume a paused queue")]:
        p = add(queue, name, func, text, [as_json] if name == "show" else [])
        p.add_argument("name")
    p = add(queue, "delete", cmd_queue_delete, "delete a queue (refused while it holds "
            "unfinished items, unless --force)")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="delete its items too")

    p = add(sub, "submit", cmd_submit, "put a job on a queue; prints the item id", [as_json])
    p.add_argument("ref", help="NAME, NAME:vN or NAME:ALIAS")
    p.add_argument("--queue", help="queue (default: local)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="parameter override, typed by the job's schema (repeatable)")
    p.add_argument("--priority", help="critical, high, medium (default) or low")
    p.add_argument("--timeout", type=float, help="seconds before the item fails")
    p.add_argument("--set", action="append", default=[], metavar="VAR=VALUE",
                   help="queue template value, checked against the queue's variables "
                        "(repeatable)")

    p = add(sub, "sweep", cmd_sweep, "one item per grid point (or --random point), grouped "
            "by a sweep id; prints the item ids", [as_json])
    p.add_argument("ref", help="NAME, NAME:vN or NAME:ALIAS")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                   help="a grid axis: comma-separated values or a JSON array (repeatable)")
    p.add_argument("--random", type=int, metavar="N",
                   help="N points drawn from the schema's bounds instead of a grid")
    p.add_argument("--seed", type=int, help="seed for --random")
    p.add_argument("--queue", help="queue (default: local)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="parameter fixed for every point (repeatable)")
    p.add_argument("--priority", help="critical, high, medium (default) or low")
    p.add_argument("--timeout", type=float, help="seconds before each item fails")

    p = add(sub, "agent", cmd_agent, "run an agent in the foreground (Ctrl-C stops it; "
            "started runs keep going)")
    p.add_argument("--queue", action="append", default=[], help="queue to serve "
                   "(repeatable; default: all)")
    p.add_argument("--max-jobs", type=int, default=1, help="concurrent runs (default 1)")
    p.add_argument("--until-idle", action="store_true",
                   help="exit once its queues are empty and its runs are done")
    add(sub, "agents", cmd_agents, "list live agents and their heartbeats", [as_json])

    p = add(sub, "items", cmd_items, "list items, newest first", [as_json])
    p.add_argument("--queue")
    p.add_argument("--state", help="queued, leased, running, succeeded, failed or cancelled")
    p.add_argument("--limit", type=int, default=None)
    p = add(sub, "show", cmd_show, "show an item: state, attempts, error, outputs", [as_json])
    p.add_argument("item")
    p = add(sub, "logs", cmd_logs, "print an item's log")
    p.add_argument("item")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until it ends")
    for name, func, text in [("cancel", cmd_cancel, "cancel an item"),
                             ("requeue", cmd_requeue, "submit a finished item again as a new "
                              "item; prints its id"),
                             ("delete", cmd_delete, "delete a finished or queued item")]:
        p = add(sub, name, func, text)
        p.add_argument("item")

    p = add(sub, "run", cmd_run, "capture, submit and run one notebook in the foreground; "
            "prints the executed notebook's path last")
    p.add_argument("path")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--queue", help="queue to record the item on (default: local)")
    p.add_argument("--timeout", type=float, help="seconds before the item fails")
    capture_options(p)

    store = sub.add_parser("store", help="store maintenance").add_subparsers(
        dest="store_command", metavar="COMMAND", required=True)
    add(store, "migrate", cmd_store_migrate, "apply pending schema migrations")
    add(store, "check", cmd_store_check, "check the store is reachable and up to date")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jupyter launch`` / ``jupyter-launch``."""
    # jsonschema (under nbformat) imports rfc3987_syntax when it is installed, which builds a
    # grammar for ~1 s on every start; the CLI never checks IRI formats, so skip it here.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from .api import Launch

        client = Launch(getattr(args, "store", None))
        return args.func(client, args)
    except LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
