"""Every operation the CLI and the magics share, with its arguments, declared once.

``jupyter launch`` and ``%launch`` both build their argparse parsers from ``OPERATIONS``,
so an option added or renamed here changes both doors at once (tests/test_options.py
checks they accept the same flags). A door adds only what is its own: the CLI's global
``--store``, the magics' panels and this kernel's agent stop/status.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CLI, MAGIC = "cli", "magic"
BOTH = (CLI, MAGIC)


@dataclass(frozen=True)
class Option:
    """One argument: its flags (or positional name) and argparse keywords."""

    flags: tuple[str, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def opt(*flags: str, **kwargs: Any) -> Option:
    return Option(flags, kwargs)


@dataclass(frozen=True)
class Operation:
    """An operation: its name (the CLI's words), help, options and the doors offering it.

    ``words`` gives a door other words for it (the magics' ``agent start`` is the CLI's
    ``agent``).
    """

    name: str
    help: str
    options: tuple[Option, ...] = ()
    doors: tuple[str, ...] = BOTH
    words: Mapping[str, str] = field(default_factory=dict)

    def words_for(self, door: str) -> list[str]:
        return self.words.get(door, self.name).split()


GROUPS = {
    "job": "create and inspect jobs",
    "queue": "create and manage queues",
    "store": "store maintenance",
    "schedule": "run a job on a cron schedule",
    "agent": "this kernel's agent: a daemon thread",
    "env": "isolated environments of local runs",
}

JSON = opt("--json", action="store_true", help="print JSON instead of a table")
REF = opt("ref", help="NAME, NAME:vN or NAME:ALIAS")
ITEM = opt("item", help="item id (see `items`)")
QUEUE = opt("--queue", "-q", help="queue (default: the configured default queue, 'local')")
PARAM = opt("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
            help="parameter override, typed by the job's schema (repeatable)")
PRIORITY = opt("--priority", help="critical, high, medium (default) or low")
TIMEOUT = opt("--timeout", type=float, help="seconds before the item fails")
SET = opt("--set", action="append", default=[], metavar="VAR=VALUE",
          help="queue template value, checked against the queue's variables (repeatable)")
WAIT = opt("--wait", action="store_true",
           help="block until it is finished (a progress line in a notebook); exit status 1 "
                "unless it succeeded")
JOB_NAME = opt("--name", help="job name when capturing a file (default: the file's stem)")
CAPTURE = (
    opt("--name", help="job name (default: the file's stem)"),
    opt("--include", action="append", default=[], metavar="GLOB",
        help="data files to ship with the job (relative to the notebook)"),
    opt("--kernel", help="kernel to run the notebook with (default: its own)"),
    opt("--mode", choices=["notebook", "script"], help="notebook (default for .ipynb) or script"),
    opt("--env", action="append", default=[], metavar="NAME[=VALUE]",
        help="environment variable to capture (secret-looking names refused)"),
)
AFTER = opt("--after", action="append", default=[], metavar="ITEM",
            help="start only once item ITEM has succeeded; cancelled if it fails or is "
                 "cancelled (repeatable)")
CONCURRENCY = opt("--concurrency", type=int, metavar="N",
                  help="at most N of its items leased or running at once, across all agents "
                       "(0: no limit)")
AGENT = (
    opt("--queue", "-q", action="append", default=[],
        help="queue to serve (repeatable; default: all)"),
    opt("--max-jobs", type=int, default=None,
        help="concurrent runs (default 1, or one per GPU of an agent with GPUs)"),
    opt("--gpus", metavar="0,1,2,3",
        help="GPU indices this agent hands out to items of queues with gpus_per_item, as "
             "CUDA_VISIBLE_DEVICES (default: CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`, "
             "else none; 'none' for none)"),
    opt("--until-idle", action="store_true",
        help="stop once its queues are empty and its runs are done"),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation("job create", "capture a notebook or script as a job version", (
        opt("path", help=".ipynb or .py file"),
        opt("--alias", help="move this alias to the captured version"),
        opt("--strict", action="store_true",
            help="refuse the capture when an import that always runs is neither installed "
                 "nor covered by a %%pip install line"),
        *CAPTURE, JSON)),
    Operation("job list", "list jobs (newest version of each)", (JSON,)),
    Operation("job show", "show a job version", (REF, JSON)),
    Operation("job export", "write a job as plain files (its files, requirements.txt from its "
              "lock, parameters.json, run_job.py) to re-run without the store", (
        REF, opt("dir", help="a new (or empty) folder"),
        opt("--item", help="export this item's parameters instead of the job's defaults"),
        JSON), doors=(CLI,)),
    Operation("env list", "list the isolated environments (one per job lock) under the data "
              "dir, most recently used first", (JSON,), doors=(CLI,)),
    Operation("env prune", "remove isolated environments, least recently used first; ones "
              "in use stay", (
        opt("--max-size", metavar="SIZE",
            help="keep the most recently used ones that fit in SIZE (5G, 500M, bytes); "
                 "default: remove all"),
        JSON), doors=(CLI,)),
    Operation("queue create", "create a queue", (
        opt("name"),
        opt("--runner", default="local", help="{runners}"),
        opt("--max-attempts", type=int, default=3,
            help="attempts before an item whose agent was lost fails (default 3)"),
        opt("--timeout", type=float, help="default per-item timeout in seconds"),
        opt("--config", metavar="FILE.yaml",
            help="runner config: template with {{{{variables}}}}, their schema, admin options "
                 "(see docs/usage.md)"),
        CONCURRENCY, JSON)),
    Operation("queue update", "change a queue's settings", (
        opt("name"), CONCURRENCY, JSON)),
    Operation("queue list", "list queues with item counts", (JSON,)),
    Operation("queue show", "show a queue", (opt("name"), JSON)),
    Operation("queue pause", "stop agents starting a queue's items", (opt("name"),)),
    Operation("queue resume", "resume a paused queue", (opt("name"),)),
    Operation("queue delete", "delete a queue (refused while it holds unfinished items or "
              "schedules, unless --force)", (opt("name"), opt(
                  "--force", action="store_true", help="delete its items and schedules too"))),
    Operation("submit", "put a job on a queue; prints the item id (in a notebook: returns "
              "its handle)", (
        opt("ref", nargs="?", metavar="JOB",
            help="NAME, NAME:vN, NAME:ALIAS or a .ipynb/.py path (captured first); in a "
                 "notebook the default is the notebook itself"),
        JOB_NAME, QUEUE, PARAM, PRIORITY, TIMEOUT, SET, AFTER, WAIT, JSON)),
    Operation("sweep", "start a sweep of JOB from a W&B sweep config (--config), a grid or "
              "random points; prints the sweep id (in a notebook: returns its handle). "
              "`sweep show|stop|resume ID` (two words) shows, stops or resumes sweep ID", (
        opt("ref", metavar="JOB",
            help="NAME, NAME:vN, NAME:ALIAS or a .ipynb/.py path; or show, stop or resume "
                 "followed by a sweep ID (a job named so: write NAME:latest)"),
        opt("sweep_id", nargs="?", metavar="ID",
            help="with show, stop or resume: the sweep id (see `sweeps`)"),
        opt("--config", metavar="SWEEP.yaml",
            help="a W&B sweep config: method grid|random|bayes, metric, parameters, run_cap, "
                 "early_terminate, parallel"),
        opt("--parallel", type=int, metavar="N",
            help="at most N trials unfinished at once (default: the config's parallel; all of "
                 "a grid; 1 for bayes)"),
        opt("--grid", action="append", default=[], metavar="NAME=V1,V2",
            help="a grid axis: comma-separated values or a JSON array (repeatable)"),
        opt("--random", type=int, metavar="N",
            help="N points drawn from the schema's bounds instead of a grid"),
        opt("--seed", type=int, help="seed for --random"),
        JOB_NAME, QUEUE,
        opt("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
            help="parameter fixed for every point (repeatable)"),
        PRIORITY, opt("--timeout", type=float, help="seconds before each item fails"),
        SET, WAIT, JSON)),
    Operation("schedule create", "put JOB on a queue at the times a cron expression names "
              "(fired by any agent serving the queue, one item per firing)", (
        opt("name", help="the schedule's name"),
        opt("--job", required=True, metavar="REF",
            help="NAME, NAME:vN, NAME:ALIAS or a .ipynb/.py path (captured first); the "
                 "version is fixed when the schedule is created"),
        opt("--cron", required=True, metavar="EXPR",
            help="'minute hour day-of-month month day-of-week' (e.g. '0 9 * * 1-5'), a sixth "
                 "field of seconds, or @hourly, @daily, @weekly, @monthly"),
        opt("--timezone", metavar="TZ", help="IANA time zone of the cron (default UTC)"),
        opt("--queue", "-q", required=True, help="queue its items go on"),
        PARAM, SET, PRIORITY, TIMEOUT,
        opt("--catch-up", action="store_true",
            help="after firings missed while no agent ran, fire one item (default: skip them)"),
        JSON)),
    Operation("schedule list", "list schedules: cron, queue, state, next firing",
              (JSON,)),
    Operation("schedule show", "show a schedule", (opt("name"), JSON)),
    Operation("schedule pause", "stop a schedule firing", (opt("name"), JSON)),
    Operation("schedule resume", "fire a paused schedule again from its next time (firings "
              "in the pause are not made up)", (opt("name"), JSON)),
    Operation("schedule delete", "delete a schedule (the items it made stay)",
              (opt("name"),)),
    Operation("items", "list items, newest first", (
        QUEUE,
        opt("--state", help="queued, leased, running, succeeded, failed or cancelled"),
        opt("--job", help="only this job's items (NAME, or NAME:vN for one version)"),
        opt("--sweep", help="only the items of this sweep id"),
        opt("--limit", type=int, default=None, help="at most this many"),
        opt("--offset", type=int, default=0, help="skip this many of the newest first"),
        JSON)),
    Operation("sweeps", "list sweeps: method, metric, trials, state and best trial", (JSON,)),
    Operation("results", "compare items: one row each with the parameters that vary and each "
              "metric's last value, best first by the sweep's metric", (
        opt("--sweep", help="only this sweep's items (sorted by its metric and goal)"),
        opt("--queue", "-q", help="only this queue's items (default: every queue)"),
        opt("--job", help="only this job's items (NAME, or NAME:vN for one version)"),
        opt("--state", help="queued, leased, running, succeeded, failed or cancelled"),
        opt("--sort", metavar="METRIC[:min|:max]",
            help="sort by this metric (default min; overrides the sweep's own)"),
        opt("--limit", type=int, default=None, help="at most this many rows"),
        JSON, opt("--csv", action="store_true", help="print CSV (pandas reads it back)"))),
    Operation("show", "show an item: state, attempts, error, outputs", (ITEM, JSON)),
    Operation("logs", "print an item's log", (
        ITEM, opt("-f", "--follow", action="store_true",
                  help="keep printing until it ends"))),
    Operation("metrics", "print the metric points an item logged with launch_jupyter.log "
              "(NAME STEP VALUE TIME)", (
        ITEM, opt("-f", "--follow", action="store_true",
                  help="keep printing points as they arrive until the item ends (JSON lines "
                       "with --json)"),
        JSON)),
    Operation("cancel", "cancel an item (queued: at once; running: its run is stopped)",
              (ITEM,)),
    Operation("requeue", "submit a finished item again as a new item; prints its id",
              (ITEM,)),
    Operation("delete", "delete a finished or queued item", (ITEM,)),
    Operation("run", "capture, submit and run one notebook in the foreground; prints the "
              "executed notebook's path last", (
        opt("path", help=".ipynb or .py file"),
        PARAM,
        opt("--queue", "-q", help="queue to record the item on (default: local)"),
        opt("--isolated", action="store_true",
            help="run in a virtualenv built with uv from the job's lock (cached by the "
                 "lock's hash), not in this environment"),
        TIMEOUT, SET, *CAPTURE)),
    Operation("agent", "run an agent (CLI: in the foreground, Ctrl-C stops it; notebook: a "
              "daemon thread in this kernel). Started runs keep going when it stops",
              AGENT, words={MAGIC: "agent start"}),
    Operation("agents", "list live agents and their heartbeats (in a notebook: a live panel "
              "with this kernel's agent)", (JSON,)),
    Operation("store migrate", "apply pending schema migrations"),
    Operation("store check", "check the store is reachable and up to date"),
    Operation("store vacuum", "retention: delete finished items (with their logs, events, "
              "metrics and run folders) older than --keep-days or beyond each queue's newest "
              "--keep-last; an item either rule keeps stays; queued and running items never go",
              (opt("--keep-days", type=float, metavar="N",
                   help="keep items that finished less than N days ago"),
               opt("--keep-last", type=int, metavar="N",
                   help="keep the newest N finished items of each queue"),
               opt("--dry-run", action="store_true",
                   help="only report what would be freed"),
               JSON)),
    Operation("connect", "use a Jupyter server's launch API from this kernel instead of a "
              "store (the CLI's --server/--token; default: LAUNCH_JUPYTER_SERVER)", (
        opt("url", metavar="URL", help="the server, e.g. https://hub.example.org/user/ada/"),
        opt("--token", help="the server's token (default: LAUNCH_JUPYTER_TOKEN)")),
        doors=(MAGIC,)),
    Operation("agent stop", "stop this kernel's agent (started runs keep going)",
              doors=(MAGIC,)),
    Operation("agent status", "show what this kernel's agent is doing", doors=(MAGIC,)),
    Operation("panel", "live queue panel: states, filter, paging, item detail", (
        opt("queue", nargs="?", help="queue to show (default: all)"),
        opt("--state", help="show only this state"),
        opt("--sweep", help="show only the items of this sweep id"),
        opt("--page-size", type=int, default=20, help="rows per page (default 20)"),
        opt("--interval", type=float, default=1.0, help="refresh seconds (default 1)")),
        doors=(MAGIC,)),
    Operation("form", "a submit form generated from a job's parameter schema", (
        opt("ref", metavar="JOB"), QUEUE), doors=(MAGIC,)),
)

#: Options of ``%%launch`` (a cell run as a job): the submit options but the job itself.
CELL_OPTIONS = (opt("--name", help="job name (default: <notebook>-cell)"),
                QUEUE, PARAM, PRIORITY, TIMEOUT, SET, AFTER, WAIT)


#: ``sweep show|stop|resume ID``: two positionals name an action on a sweep, one names a job.
SWEEP_ACTIONS = ("show", "stop", "resume")


def sweep_action(args: argparse.Namespace) -> str | None:
    """The action of ``sweep WORD ID`` (show, stop or resume), or None for ``sweep JOB``.

    Raises ``ParameterError`` for two positionals that are no action, or an action given
    options that start a sweep."""
    from .errors import ParameterError

    if args.sweep_id is None:
        starts = args.config or args.grid or args.random is not None
        if args.ref in SWEEP_ACTIONS and not starts:
            raise ParameterError(f"`sweep {args.ref}` needs the sweep ID: `sweep {args.ref} ID` "
                                 "(list them with `jupyter launch sweeps`)")
        return None
    if args.ref not in SWEEP_ACTIONS:
        raise ParameterError(f"`sweep {args.ref} {args.sweep_id}`: sweep takes one JOB, or "
                             f"show|stop|resume followed by a sweep ID")
    starting = [flag for flag, given in (
        ("--config", args.config), ("--grid", args.grid), ("--random", args.random is not None),
        ("-p", args.param), ("--set", args.set), ("--parallel", args.parallel is not None))
        if given]
    if starting:
        raise ParameterError(f"`sweep {args.ref} ID` takes no {starting[0]}: that starts a "
                             "sweep (`sweep JOB --config ...`)")
    return args.ref


def operations(door: str) -> list[Operation]:
    """The operations ``door`` offers, in declaration order."""
    return [op for op in OPERATIONS if door in op.doors]


def add_options(parser: argparse.ArgumentParser, options: Sequence[Option],
                fill: Mapping[str, str]) -> None:
    """Add ``options`` to ``parser``; help texts get ``fill`` (e.g. ``{runners}``)."""
    for option in options:
        kwargs = dict(option.kwargs)
        if "help" in kwargs:
            kwargs["help"] = kwargs["help"].format(**fill)
        parser.add_argument(*option.flags, **kwargs)


def build(parser: argparse.ArgumentParser, door: str, *,
          add_parser: Callable[[Any, str, str, bool], argparse.ArgumentParser],
          fill: Mapping[str, str] | None = None,
          parser_class: type[argparse.ArgumentParser] | None = None,
          ) -> dict[str, argparse.ArgumentParser]:
    """Add ``door``'s operations to ``parser`` as (nested) subcommands; each leaf sets
    ``op`` to the operation's name. ``add_parser(subparsers, word, help, leaf)`` makes one
    sub-parser (``leaf`` False for a group such as ``queue``); sub-parsers are of
    ``parser_class`` (default: the parser's own class). Returns operation name -> its
    parser."""
    fill = dict(fill or {})
    groups: dict[tuple[str, ...], Any] = {}
    leaves: dict[str, argparse.ArgumentParser] = {}

    def subparsers_of(path: tuple[str, ...], node: argparse.ArgumentParser) -> Any:
        if path not in groups:
            extra = {"parser_class": parser_class} if parser_class is not None else {}
            groups[path] = node.add_subparsers(dest="_".join(("command", *path)),
                                               metavar="COMMAND", required=True, **extra)
        return groups[path]

    group_parsers: dict[tuple[str, ...], argparse.ArgumentParser] = {(): parser}
    for op in operations(door):
        words = op.words_for(door)
        for depth in range(1, len(words)):
            path = tuple(words[:depth])
            if path not in group_parsers:
                parent = group_parsers[path[:-1]]
                group_parsers[path] = add_parser(subparsers_of(path[:-1], parent), path[-1],
                                                 GROUPS.get(path[-1], ""), False)
        parent = group_parsers[tuple(words[:-1])]
        leaf = add_parser(subparsers_of(tuple(words[:-1]), parent), words[-1],
                          op.help.format(**fill), True)
        add_options(leaf, op.options, fill)
        leaf.set_defaults(op=op.name)
        leaves[op.name] = leaf
    return leaves


def flags(parser: argparse.ArgumentParser) -> dict[str, tuple[Any, ...]]:
    """What a parser accepts: each option string (and positional) -> (nargs, action type,
    default, choices, type). For tests/test_options.py and ``%launch help``."""
    accepted: dict[str, tuple[Any, ...]] = {}
    for action in parser._actions:  # noqa: SLF001 - argparse has no public API for this
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        signature = (action.nargs, type(action).__name__, repr(action.default),
                     tuple(action.choices or ()), getattr(action.type, "__name__", None))
        for name in action.option_strings or [action.dest]:
            accepted[name] = signature
    return accepted


__all__ = ["BOTH", "CELL_OPTIONS", "CLI", "GROUPS", "MAGIC", "OPERATIONS", "Operation",
           "Option", "SWEEP_ACTIONS", "add_options", "build", "flags", "operations",
           "sweep_action"]
