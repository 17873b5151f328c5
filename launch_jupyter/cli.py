"""``jupyter launch``: the command line. It parses (options.py), calls the service and
prints the shared text views; nothing else (docs/architecture.md)."""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .errors import LaunchError, ParameterError

EPILOG = """\
Store: --store URL > LAUNCH_JUPYTER_STORE > jupyter_launch_config.py > the SQLite file in
<jupyter data dir>/launch/launch.db. Or a Jupyter server's REST API instead of a store:
--server URL --token T (LAUNCH_JUPYTER_SERVER, LAUNCH_JUPYTER_TOKEN; flags win).
Names of jobs, queues and aliases use letters, digits, '-', '_' and '.', start with a
letter or digit, and are at most 63 characters.
"""


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


# -- commands: parse -> service -> views -----------------------------------------------------

def job_create(client: Any, args: argparse.Namespace) -> int:
    job = client.create_job(args.path, name=args.name, alias=args.alias, include=args.include,
                            kernel=args.kernel, mode=args.mode, env=args.env,
                            strict=args.strict)
    from .views.text import capture_warnings

    _err(capture_warnings(job.warnings))  # stderr: stdout stays the ref (or JSON) for scripts
    if args.json:
        _print_json(job.to_json())
    else:
        print(job.ref)
    return 0


def job_list(client: Any, args: argparse.Namespace) -> int:
    from .views.text import jobs_table

    jobs = client.jobs()
    if args.json:
        _print_json([j.to_json() for j in jobs])
    else:
        print(jobs_table(jobs))
    return 0


def job_show(client: Any, args: argparse.Namespace) -> int:
    from .views.text import job_detail

    data = client.job_info(args.ref)
    if args.json:
        _print_json(data)
    else:
        print(job_detail(client.job(args.ref), data))
    return 0


def job_export(client: Any, args: argparse.Namespace) -> int:
    report = client.export_job(args.ref, args.dir, item=args.item)
    if args.json:
        _print_json(report)
    else:
        print(f"exported {args.ref} to {report['dir']}; re-run it with:\n  {report['command']}")
    return 0


def env_list(client: Any, args: argparse.Namespace) -> int:
    from .views.text import envs_table

    envs = client.envs()
    _print_json(envs) if args.json else print(envs_table(envs))
    return 0


def env_prune(client: Any, args: argparse.Namespace) -> int:
    from .views.text import envs_pruned

    removed = client.prune_envs(args.max_size)
    _print_json(removed) if args.json else print(envs_pruned(removed))
    return 0


def queue_create(client: Any, args: argparse.Namespace) -> int:
    config = None
    if args.config:
        from .runners.templates import load_queue_config

        config = load_queue_config(args.config)
    q = client.create_queue(args.name, runner=args.runner, max_attempts=args.max_attempts,
                            timeout=args.timeout, config=config, concurrency=args.concurrency)
    if args.json:
        _print_json(q)
    else:
        print(f"created queue {q['name']} (runner {q['runner']})")
    return 0


def queue_update(client: Any, args: argparse.Namespace) -> int:
    from .views.text import queue_updated

    changes = {} if args.concurrency is None else {"concurrency": args.concurrency}
    q = client.update_queue(args.name, **changes)
    _print_json(q) if args.json else print(queue_updated(q))
    return 0


def queue_list(client: Any, args: argparse.Namespace) -> int:
    from .views.text import queues_table

    queues = client.queues()
    if args.json:
        _print_json(queues)
    else:
        print(queues_table(queues))
    return 0


def queue_show(client: Any, args: argparse.Namespace) -> int:
    from .views.text import queue_detail

    q = client.queue(args.name)
    if args.json:
        _print_json(q)
    else:
        print(queue_detail(q))
    return 0


def queue_pause(client: Any, args: argparse.Namespace) -> int:
    client.pause_queue(args.name)
    print(f"queue {args.name} paused: agents will not start its items until resumed")
    return 0


def queue_resume(client: Any, args: argparse.Namespace) -> int:
    client.resume_queue(args.name)
    print(f"queue {args.name} resumed")
    return 0


def queue_delete(client: Any, args: argparse.Namespace) -> int:
    n = client.delete_queue(args.name, force=args.force)
    print(f"deleted queue {args.name}" + (f" and its {n} item(s)" if n else ""))
    return 0


def submit(client: Any, args: argparse.Namespace) -> int:
    if args.ref is None:
        raise ParameterError("give the job to submit: NAME, NAME:vN, NAME:ALIAS or a "
                             ".ipynb/.py path (e.g. `jupyter launch submit train.ipynb`)")
    item = client.submit(args.ref, name=args.name, queue=args.queue, overrides=args.param,
                         priority=args.priority, timeout=args.timeout,
                         template_pairs=args.set, after=args.after)
    from .views.text import capture_warnings

    _err(capture_warnings(item.warnings))  # of the capture, when REF was a file
    if args.wait:
        # Without an agent the wait never ends: say so instead of hanging silently.
        waiting = client.mark_waiting([dict(item.info(False))])[0]["waiting"]
        if waiting:
            _err(f"item {item.id} is waiting: {waiting}\n")
        item.wait(progress=False)
    if args.json:
        _print_json(item.info(refresh=args.wait))
    else:
        print(item.id)
    if args.wait and item.state != "succeeded":
        from .views.text import run_outcome

        _err(run_outcome(item.info(False)) + "\n")  # why the exit status is 1
    return 0 if not args.wait or item.state == "succeeded" else 1


def sweep(client: Any, args: argparse.Namespace) -> int:
    from .options import sweep_action

    action = sweep_action(args)
    if action is not None:
        return _sweep_action(client, action, args)
    result = client.sweep(args.ref, name=args.name, queue=args.queue, config=args.config,
                          grid=args.grid, random=args.random, overrides=args.param,
                          priority=args.priority, timeout=args.timeout, seed=args.seed,
                          template_pairs=args.set, parallel=args.parallel)
    if result.note:
        _err(result.note + "\n")
    if args.json:
        _print_json({"sweep_id": result.id, "items": [i.id for i in result]})
    else:
        # stdout is the sweep id alone (sweep_id=$(jupyter launch sweep ...)); the first
        # trials' items are said on stderr.
        _err(f"sweep {result.id}: {len(result)} trial(s) queued "
             f"({', '.join(item.id for item in result)}); agents serving the queue propose "
             "the rest\n")
        print(result.id)
    if args.wait:
        result.wait(progress=False)
        # A trial hyperband pruned is the search at work, not a failure of the sweep.
        states = {row["state"] for row in client.result_rows(sweep=result.id)}
        return 0 if states <= {"succeeded", "pruned"} else 1
    return 0


def _sweep_action(client: Any, action: str, args: argparse.Namespace) -> int:
    """``sweep show|stop|resume ID``."""
    from .views.text import sweep_outcome

    shown = client.sweep_action(action, args.sweep_id)
    _print_json(shown) if args.json else print(sweep_outcome(action, shown))
    return 0


def sweeps(client: Any, args: argparse.Namespace) -> int:
    from .views.text import sweeps_table

    found = client.sweeps()
    if args.json:
        _print_json(found)
    else:
        print(sweeps_table(found))
    return 0


def results(client: Any, args: argparse.Namespace) -> int:
    from .views.text import results_csv, results_table

    if args.json and args.csv:
        raise ParameterError("results: give --json or --csv, not both")
    rows = client.result_rows(sweep=args.sweep, queue=args.queue, job=args.job,
                              state=args.state, sort=args.sort, limit=args.limit)
    if args.json:
        _print_json(rows)
    elif args.csv:
        _out(results_csv(rows))
    else:
        print(results_table(rows, best=client.best_result(rows, sweep=args.sweep,
                                                          sort=args.sort)))
    return 0


def items(client: Any, args: argparse.Namespace) -> int:
    from .views.text import items_table

    page = client.page(queue=args.queue, state=args.state, job=args.job, sweep=args.sweep,
                       limit=args.limit, offset=args.offset)
    if args.json:
        _print_json(page["items"])
    else:
        print(items_table(page["items"], total=page["total"] - args.offset, state=args.state))
    return 0


def show(client: Any, args: argparse.Namespace) -> int:
    from .views.text import item_detail

    item = client.item_info(args.item)
    if args.json:
        _print_json(item)
    else:
        print(item_detail(item))
    return 0


def logs(client: Any, args: argparse.Namespace) -> int:
    from .views.terminal import CellProgress

    if not args.follow:
        _out(client.logs(args.item)[0])
        return 0
    # The log is the output here: cell boundaries are lines in it, never a bar.
    cells = CellProgress(sys.stdout, bar=False)
    try:
        client.follow(args.item, cells.write, on_progress=cells.update)
    except KeyboardInterrupt:
        return 130
    finally:
        cells.close()
    return 0


def metrics(client: Any, args: argparse.Namespace) -> int:
    from .views.text import METRIC_HEADERS, metric_line, metrics_table

    if not args.follow:
        points = client.metrics(args.item)
        if args.json:
            _print_json(points)
        else:
            print(metrics_table(points))
        return 0
    client.item_info(args.item)  # unknown item: the error, before any header
    if not args.json:
        _out(metric_line(dict(zip(("name", "step", "value", "time"), METRIC_HEADERS,
                                  strict=True))) + "\n")

    def write(point: dict) -> None:
        _out((json.dumps(point, sort_keys=True) if args.json else metric_line(point)) + "\n")

    try:
        client.follow_metrics(args.item, write)
    except KeyboardInterrupt:
        return 130
    return 0


def cancel(client: Any, args: argparse.Namespace) -> int:
    from .views.text import cancel_outcome

    print(cancel_outcome(args.item, client.cancel(args.item)))
    return 0


def requeue(client: Any, args: argparse.Namespace) -> int:
    print(client.requeue(args.item).id)
    return 0


def delete(client: Any, args: argparse.Namespace) -> int:
    client.delete(args.item)
    print(f"deleted item {args.item}")
    return 0


def run(client: Any, args: argparse.Namespace) -> int:
    from .views.format import output_notebook
    from .views.terminal import CellProgress
    from .views.text import run_outcome

    def started(item: Any) -> None:
        from .views.text import capture_warnings

        info = item.info(False)
        _err(capture_warnings(item.warnings))
        _err(f"running {info['job']} as item {item.id} on queue {info['queue']}\n")

    cells = CellProgress(sys.stderr)  # a bar on a terminal, boundary lines otherwise
    try:
        item = client.run(args.path, name=args.name, include=args.include,
                          kernel=args.kernel, mode=args.mode, env=args.env, queue=args.queue,
                          overrides=args.param, timeout=args.timeout, template_pairs=args.set,
                          on_start=started, write=cells.write, on_progress=cells.update,
                          on_interrupt=lambda: cells.write("\ncancelling\u2026\n"),
                          isolated=args.isolated)
    finally:
        cells.close()
    final = item.info(False)
    _err(run_outcome(final) + "\n")
    last = output_notebook(final) or (final.get("run") or {}).get("run_dir")
    if output_notebook(final) and hasattr(client, "download_notebook"):
        # Through a server the path above is on the server's machine: bring a copy here.
        try:
            last = str(client.download_notebook(item.id))
        except LaunchError as err:
            _err(f"the executed notebook stays on the server ({last}): {err}\n")
    if last:
        print(last)
    return 0 if final["state"] == "succeeded" else 1


def agent(client: Any, args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    running = client.agent(args.queue, max_jobs=args.max_jobs, until_idle=args.until_idle,
                           gpus=args.gpus)

    def on_signal(signum: int, frame: Any) -> None:
        running.stop(wait=None)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    gpus = f", GPUs {','.join(running.gpus.all)}" if running.gpus.all else ""
    print(f"agent {running.id} serving {', '.join(running.queues) or 'all queues'} "
          f"(max {running.max_jobs} at once{gpus})", file=sys.stderr)
    running.run()
    print(f"agent {running.id} stopped", file=sys.stderr)
    return 0


def agents(client: Any, args: argparse.Namespace) -> int:
    from .views.text import agents_table

    found = client.agents()
    if args.json:
        _print_json(found)
    else:
        print(agents_table(found))
    return 0


def schedule_create(client: Any, args: argparse.Namespace) -> int:
    from .views.text import capture_warnings, schedule_outcome

    made = client.create_schedule(args.name, args.job, cron=args.cron, queue=args.queue,
                                  timezone=args.timezone, overrides=args.param,
                                  template_pairs=args.set, priority=args.priority,
                                  timeout=args.timeout, catch_up=args.catch_up)
    _err(capture_warnings(made.get("warnings", ())))  # of the capture, when JOB was a file
    _print_json(made) if args.json else print(schedule_outcome("create", made))
    return 0


def schedule_list(client: Any, args: argparse.Namespace) -> int:
    from .views.text import schedules_table

    found = client.list_schedules()
    _print_json(found) if args.json else print(schedules_table(found))
    return 0


def schedule_show(client: Any, args: argparse.Namespace) -> int:
    from .views.text import schedule_detail

    found = client.get_schedule(args.name)
    _print_json(found) if args.json else print(schedule_detail(found))
    return 0


def schedule_pause(client: Any, args: argparse.Namespace) -> int:
    from .views.text import schedule_outcome

    done = client.pause_schedule(args.name)
    _print_json(done) if args.json else print(schedule_outcome("pause", done))
    return 0


def schedule_resume(client: Any, args: argparse.Namespace) -> int:
    from .views.text import schedule_outcome

    done = client.resume_schedule(args.name)
    _print_json(done) if args.json else print(schedule_outcome("resume", done))
    return 0


def schedule_delete(client: Any, args: argparse.Namespace) -> int:
    client.delete_schedule(args.name)
    print(f"deleted schedule {args.name} (the items it made stay)")
    return 0


def store_migrate(client: Any, args: argparse.Namespace) -> int:
    version = client.store_version(migrate=True)
    print(f"store {client.store_label} is at schema version {version}")
    return 0


def store_check(client: Any, args: argparse.Namespace) -> int:
    version = client.store_version(migrate=False)
    print(f"store {client.store_label} OK (schema version {version})")
    return 0


def store_vacuum(client: Any, args: argparse.Namespace) -> int:
    from .views.text import vacuum_outcome

    report = client.vacuum(keep_days=args.keep_days, keep_last=args.keep_last,
                           dry_run=args.dry_run)
    _print_json(report) if args.json else print(vacuum_outcome(report))
    return 0


COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "job create": job_create, "job list": job_list, "job show": job_show,
    "job export": job_export, "env list": env_list, "env prune": env_prune,
    "queue create": queue_create, "queue list": queue_list, "queue show": queue_show,
    "queue pause": queue_pause, "queue resume": queue_resume, "queue delete": queue_delete,
    "queue update": queue_update, "submit": submit, "sweep": sweep, "sweeps": sweeps,
    "results": results, "items": items,
    "show": show, "logs": logs,
    "metrics": metrics,
    "cancel": cancel, "requeue": requeue, "delete": delete, "run": run, "agent": agent,
    "agents": agents, "store migrate": store_migrate, "store check": store_check,
    "store vacuum": store_vacuum,
    "schedule create": schedule_create, "schedule list": schedule_list,
    "schedule show": schedule_show, "schedule pause": schedule_pause,
    "schedule resume": schedule_resume, "schedule delete": schedule_delete,
}


# -- parser ----------------------------------------------------------------------------------

def _runner_help() -> str:
    from .runners import runner_help

    described = runner_help()
    return ("runner: " + "; ".join(f"{name} ({text})" for name, text in described.items())
            + ". Default local; others plug in (docs/runners.md)")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``jupyter launch`` parser, built from ``options.OPERATIONS``. Given the ``argv``
    it will parse, the runners' help (which imports every runner plug-in) is only read for
    a help screen, so other commands start faster."""
    from .options import CLI, build

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="URL", default=argparse.SUPPRESS,
                        help="store URL (default: LAUNCH_JUPYTER_STORE or the embedded SQLite)")
    common.add_argument("--server", metavar="URL", default=argparse.SUPPRESS,
                        help="a Jupyter server with the launch extension, used through its "
                             "REST API instead of a store (default: LAUNCH_JUPYTER_SERVER)")
    common.add_argument("--token", metavar="T", default=argparse.SUPPRESS,
                        help="the server's token (default: LAUNCH_JUPYTER_TOKEN)")
    parser = argparse.ArgumentParser(
        prog="jupyter launch", description="Jobs, queues and agents for notebooks.",
        epilog=EPILOG, parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter)

    def add_parser(subparsers: Any, word: str, text: str, leaf: bool) -> Any:
        return subparsers.add_parser(word, help=text, description=text,
                                     parents=[common] if leaf else [])

    helping = argv is None or not {"-h", "--help"}.isdisjoint(argv)
    build(parser, CLI, add_parser=add_parser,
          fill={"runners": _runner_help() if helping else "runner"})
    return parser


#: Commands that read (or, ``job create``, write one committed transaction) and print: run as
#: the command, they leave with ``os._exit`` once their output is flushed, skipping the
#: interpreter's teardown, which costs ~70 ms once SQLAlchemy is imported (issue #18). They
#: leave no threads, children or unflushed files behind.
QUICK_EXIT = frozenset({"items", "show", "logs", "metrics", "job create", "job list",
                        "job show", "queue list", "queue show", "sweeps", "results", "agents"})


def _bounded(args: argparse.Namespace) -> bool:
    """A QUICK_EXIT command that ends once its output is written (not ``logs --follow``)."""
    return args.op in QUICK_EXIT and not getattr(args, "follow", False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jupyter launch`` / ``jupyter-launch`` (``argv`` None: the command
    line, and a QUICK_EXIT command ends the process itself)."""
    from .imports import skip_format_checkers

    skip_format_checkers()  # ~1 s of imports the CLI never needs
    as_command = argv is None
    if as_command:
        # Imports and a capture allocate much and free little in cycles: the collector's
        # passes over every object cost a command ~30 ms (issue #18). A bounded command
        # runs without it; any other gets it back once parsed, the imports so far frozen.
        gc.disable()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if as_command and not _bounded(args):
        gc.freeze()
        gc.enable()
    try:
        from .service.remote import client_for

        client = client_for(getattr(args, "store", None), getattr(args, "server", None),
                            getattr(args, "token", None))
        code = COMMANDS[args.op](client, args)
    except LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    except BrokenPipeError:
        code = 0
    if as_command and args.op in QUICK_EXIT:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """Flush stdout and stderr and end the process without the interpreter's teardown."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be written anyway
            pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
