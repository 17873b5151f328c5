"""``%launch`` / ``%%launch``: the notebook front door over the Python API.

Subcommands mirror ``jupyter launch`` (``job create|list|show``, ``queue create|list|show``,
``submit``, ``items``, ``show``, ``logs``, ``cancel``, ``requeue``, ``sweep``) plus the
in-kernel agent (``agent start|stop|status``) and the live panels (``panel``, ``form``,
``agents``). Arguments are parsed by IPython's ``magic_arguments`` parser, so bad arguments
raise ``UsageError`` with the usage line and ``%launch?`` shows this help.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser

from .errors import LaunchError

SETUP_TAG = "launch-setup"
PARAMETERS_TAG = "parameters"
INERT = ("launch-jupyter: %launch is inert inside a running job (item {item}): nothing was "
         "submitted and no agent was started")


class _Parser(MagicArgumentParser):
    """A magic parser whose errors carry the usage line, with plain argparse help text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["formatter_class"] = argparse.HelpFormatter
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.plain_usage()}\n{self.prog}: error: {message}")

    def plain_usage(self) -> str:
        """``usage: %launch submit [...]`` (MagicHelpFormatter's usage is reST-flavoured)."""
        formatter = argparse.HelpFormatter(self.prog)
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        return formatter.format_help().strip()


# -- the in-kernel agent ---------------------------------------------------------------------

_agent_lock = threading.Lock()
_agent: Any = None
_atexit_registered = False


def kernel_agent() -> Any:
    """The agent thread of this kernel, or None."""
    return _agent if _agent is not None and _agent.running else None


def start_kernel_agent(client: Any, queues: Sequence[str] = (), max_jobs: int = 1) -> Any:
    """Start this kernel's agent (one per kernel): a daemon thread that never blocks a cell.

    It stops when the kernel shuts down; runs it started keep going under their supervisors.
    """
    global _agent, _atexit_registered
    with _agent_lock:
        if kernel_agent() is not None:
            raise LaunchError(
                f"this kernel's agent {_agent.id} is already running (queues: "
                f"{', '.join(_agent.queues) or 'all'}); stop it first with `%launch agent stop`"
            )
        agent = client.agent(list(queues) or None, max_jobs=max_jobs).start()
        if agent.error is not None:
            raise LaunchError(f"the agent stopped at once: {agent.error}")
        _agent = agent
        if not _atexit_registered:
            atexit.register(_stop_at_exit)
            _atexit_registered = True
        return agent


def stop_kernel_agent(wait: float = 10.0) -> Any:
    """Stop this kernel's agent (if any); returns it. Started runs keep going."""
    global _agent
    with _agent_lock:
        agent, _agent = _agent, None
    if agent is not None:
        agent.stop(wait=wait)
    return agent


def _stop_at_exit() -> None:
    # Kernel shutdown: stop claiming and hand back unstarted items; never hang the exit.
    stop_kernel_agent(wait=5.0)


# -- finding the notebook being executed -----------------------------------------------------


def notebook_path(shell: Any) -> str | None:
    """Path of the notebook this kernel executes (``__session__`` / ``JPY_SESSION_NAME``)."""
    candidates = [shell.user_ns.get("__session__") if shell is not None else None,
                  os.environ.get("JPY_SESSION_NAME")]
    for candidate in candidates:
        if not isinstance(candidate, str) or not candidate.endswith(".ipynb"):
            continue
        for path in (candidate, os.path.join(os.getcwd(), os.path.basename(candidate))):
            if os.path.isfile(path):
                return os.path.abspath(path)
    return None


_LAUNCH_ONLY = re.compile(r"\s*%(launch\b|(re)?load_ext\s+launch_jupyter\b)")


def _history_cells(shell: Any) -> list[str]:
    """Raw sources of the cells executed so far, without the one running now and without
    cells that only hold ``%launch`` / ``%load_ext launch_jupyter`` lines."""
    raw = list(shell.history_manager.input_hist_raw[1:-1])
    return [source for source in raw if source.strip() and not all(
        _LAUNCH_ONLY.match(line) for line in source.splitlines() if line.strip())]


# -- parser ----------------------------------------------------------------------------------


def _add_submit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queue", "-q", help="queue (default: local)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="parameter override, typed by the job's schema (repeatable)")
    p.add_argument("--priority", help="critical, high, medium (default) or low")
    p.add_argument("--timeout", type=float, help="seconds before the item fails")
    p.add_argument("--wait", action="store_true",
                   help="block (with a progress line) until it is finished")


def build_parser() -> _Parser:
    """The ``%launch`` parser: one subcommand per CLI command, plus agent and panels."""
    parser = _Parser(prog="%launch", description="Jobs, queues and agents from a notebook.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(parent: Any, name: str, text: str) -> _Parser:
        return parent.add_parser(name, help=text, description=text, prog=f"%launch {name}")

    job = add(sub, "job", "create and inspect jobs").add_subparsers(
        dest="sub", metavar="COMMAND", parser_class=_Parser)
    job.required = True
    p = job.add_parser("create", help="capture a notebook or script as a job version",
                       prog="%launch job create")
    p.add_argument("path", help=".ipynb or .py file")
    p.add_argument("--name", help="job name (default: the file's stem)")
    p.add_argument("--alias", help="move this alias to the captured version")
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="data files to ship with the job")
    p.add_argument("--kernel", help="kernel to run the notebook with")
    p.add_argument("--mode", choices=["notebook", "script"], help="notebook or script")
    p.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                   help="environment variable to capture")
    job.add_parser("list", help="list jobs", prog="%launch job list")
    p = job.add_parser("show", help="show a job version", prog="%launch job show")
    p.add_argument("ref", help="NAME, NAME:vN or NAME:ALIAS")

    queue = add(sub, "queue", "create and inspect queues").add_subparsers(
        dest="sub", metavar="COMMAND", parser_class=_Parser)
    queue.required = True
    p = queue.add_parser("create", help="create a queue", prog="%launch queue create")
    p.add_argument("name")
    p.add_argument("--runner", default="local", help="local (default), docker or kubernetes")
    p.add_argument("--max-attempts", type=int, default=3, help="attempts (default 3)")
    p.add_argument("--timeout", type=float, help="default per-item timeout in seconds")
    p.add_argument("--config", metavar="FILE",
                   help="runner config template (as for `jupyter launch queue create`)")
    queue.add_parser("list", help="list queues with item counts", prog="%launch queue list")
    p = queue.add_parser("show", help="show a queue", prog="%launch queue show")
    p.add_argument("name")

    p = add(sub, "submit", "submit a job (default: THIS notebook, as saved) and return its "
            "item handle")
    p.add_argument("ref", nargs="?", metavar="JOB",
                   help="NAME, NAME:vN, NAME:ALIAS or a .ipynb/.py path (default: this notebook)")
    p.add_argument("--name", help="job name when capturing a file or this notebook")
    _add_submit_options(p)

    p = add(sub, "sweep", "one item per grid point (or random point), grouped by a sweep id")
    p.add_argument("ref", metavar="JOB", help="NAME, NAME:vN, NAME:ALIAS or a .ipynb/.py path")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                   help="an axis of the grid: comma-separated values or a JSON array "
                   "(repeatable)")
    p.add_argument("--random", type=int, metavar="N",
                   help="N points drawn from the schema's bounds instead of a grid")
    p.add_argument("--seed", type=int, help="seed for --random")
    p.add_argument("--name", help="job name when capturing a file")
    _add_submit_options(p)

    p = add(sub, "items", "list items, newest first")
    p.add_argument("--queue", "-q")
    p.add_argument("--state", help="queued, leased, running, succeeded, failed or cancelled")
    p.add_argument("--sweep", help="only the items of this sweep id")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p = add(sub, "show", "show an item's card")
    p.add_argument("item")
    p = add(sub, "logs", "print an item's log")
    p.add_argument("item")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until it ends")
    p = add(sub, "cancel", "cancel an item")
    p.add_argument("item")
    p = add(sub, "requeue", "submit a finished item again; returns the new item")
    p.add_argument("item")

    agent = add(sub, "agent", "this kernel's agent: a daemon thread").add_subparsers(
        dest="sub", metavar="COMMAND", parser_class=_Parser)
    agent.required = True
    p = agent.add_parser("start", help="start the kernel's agent", prog="%launch agent start")
    p.add_argument("--queue", "-q", action="append", default=[],
                   help="queue to serve (repeatable; default: all)")
    p.add_argument("--max-jobs", type=int, default=1, help="concurrent runs (default 1)")
    agent.add_parser("stop", help="stop it (started runs keep going)", prog="%launch agent stop")
    agent.add_parser("status", help="show what it is doing", prog="%launch agent status")

    p = add(sub, "panel", "live queue panel: states, filter, paging, item detail")
    p.add_argument("queue", nargs="?", help="queue to show (default: all)")
    p.add_argument("--state", help="show only this state")
    p.add_argument("--sweep", help="show only the items of this sweep id")
    p.add_argument("--page-size", type=int, default=20, help="rows per page (default 20)")
    p.add_argument("--interval", type=float, default=1.0, help="refresh seconds (default 1)")
    p = add(sub, "form", "a submit form generated from a job's parameter schema")
    p.add_argument("ref", metavar="JOB")
    p.add_argument("--queue", "-q")
    add(sub, "agents", "live agent status panel (this kernel's agent and the store's agents)")
    return parser


def build_cell_parser() -> _Parser:
    """``%%launch`` options."""
    p = _Parser(prog="%%launch", description="Run this cell as a job; returns its item.")
    p.add_argument("--name", help="job name (default: <notebook>-cell)")
    _add_submit_options(p)
    return p


PARSER = build_parser()
CELL_PARSER = build_cell_parser()


def _help_text() -> str:
    parts = [PARSER.format_help().strip(), ""]
    for action in PARSER._subparsers._group_actions:  # noqa: SLF001 - argparse has no API
        for sub in action.choices.values():
            nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
            for child in nested[0].choices.values() if nested else [sub]:
                parts.append(child.plain_usage().replace("usage: ", "", 1))
    parts += ["", CELL_PARSER.format_help().strip(), "",
              f"%%launch: the job is the notebook's `{PARAMETERS_TAG}` cell (so -p works), "
              f"then every cell tagged `{SETUP_TAG}` in notebook order (imports, helpers), "
              "then this cell. Inside a running job (LAUNCH_ITEM_ID set) %launch is inert.",
              "Details: `%launch COMMAND -h`."]
    return "\n".join(parts)


# -- the magics ------------------------------------------------------------------------------


@magics_class
class LaunchMagics(Magics):
    """``%launch`` and ``%%launch``."""

    @property
    def client(self) -> Any:
        from .api import default_client

        return default_client()

    @line_cell_magic
    def launch(self, line: str, cell: str | None = None) -> Any:
        item = os.environ.get("LAUNCH_ITEM_ID")
        if item:
            print(INERT.format(item=item))
            return None
        try:
            if cell is not None:
                return self._cell(line, cell)
            return self._line(line)
        except (LaunchError, TimeoutError) as err:
            # A domain error: its message says what to do; a traceback would only hide it.
            print(f"error: {err}", file=sys.stderr)
            return None

    # -- dispatch -------------------------------------------------------------------------

    def _line(self, line: str) -> Any:
        argv = _split(line)
        if not argv or argv[0] in ("help", "-h", "--help"):
            print(_help_text())
            return None
        if "-h" in argv or "--help" in argv:
            print(_subparser(argv).format_help())
            return None
        args = PARSER.parse_args(argv)
        name = args.command + (f"_{args.sub}" if getattr(args, "sub", None) else "")
        return getattr(self, f"_cmd_{name}")(args)

    def _cell(self, line: str, cell: str) -> Any:
        from .jobs import capture_cells

        args = CELL_PARSER.parse_args(_split(line))
        path = notebook_path(self.shell)
        cells: list[str] = []
        params_index = None
        if path is not None:
            import nbformat

            nb = nbformat.read(path, as_version=4)
            for c in nb.cells:
                if c.get("cell_type") != "code":
                    continue
                tags = (c.get("metadata") or {}).get("tags") or []
                if PARAMETERS_TAG in tags and params_index is None:
                    params_index = len(cells)
                    cells.append(c.source)
                elif SETUP_TAG in tags:
                    cells.append(c.source)
            name = args.name or f"{Path(path).stem}-cell"
            folder = os.path.dirname(path)
        else:
            print(f"launch-jupyter: no notebook file known to this kernel, so only this cell "
                  f"travels (cells tagged `{SETUP_TAG}` need a saved notebook)")
            name = args.name or "cell"
            folder = os.getcwd()
        cells.append(cell)
        captured = capture_cells(cells, name=_job_name(name), folder=folder,
                                 parameters_cell=params_index)
        job = self.client.add_captured(captured)
        return self._submit_job(job, args)

    def _submit_job(self, job: Any, args: argparse.Namespace) -> Any:
        item = self.client.submit(job, queue=args.queue, overrides=args.param,
                                  priority=args.priority, timeout=args.timeout)
        if args.wait:
            item.wait()
        return item

    # -- jobs and queues (the CLI's own printing) -----------------------------------------

    def _cli(self, func: str, **ns: Any) -> None:
        """Run a CLI command with its own defaults for anything the magic does not set."""
        from . import cli

        words = func.removeprefix("cmd_").split("_")
        parser: argparse.ArgumentParser = cli.build_parser()
        for word in words:
            actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            if not actions or word not in actions[0].choices:
                break
            parser = actions[0].choices[word]
        values = {a.dest: a.default for a in parser._actions
                  if a.default is not argparse.SUPPRESS and a.dest != "help"}
        values.update(json=False, **ns)
        getattr(cli, func)(self.client, argparse.Namespace(**values))

    def _cmd_job_create(self, a: argparse.Namespace) -> None:
        self._cli("cmd_job_create", path=a.path, name=a.name, alias=a.alias, include=a.include,
                  kernel=a.kernel, mode=a.mode, env=a.env)

    def _cmd_job_list(self, a: argparse.Namespace) -> None:
        self._cli("cmd_job_list")

    def _cmd_job_show(self, a: argparse.Namespace) -> None:
        self._cli("cmd_job_show", ref=a.ref)

    def _cmd_queue_create(self, a: argparse.Namespace) -> None:
        self._cli("cmd_queue_create", name=a.name, runner=a.runner,
                  max_attempts=a.max_attempts, timeout=a.timeout, config=a.config)

    def _cmd_queue_list(self, a: argparse.Namespace) -> None:
        self._cli("cmd_queue_list")

    def _cmd_queue_show(self, a: argparse.Namespace) -> None:
        self._cli("cmd_queue_show", name=a.name)

    # -- items ----------------------------------------------------------------------------

    def _cmd_submit(self, a: argparse.Namespace) -> Any:
        from .api import _job_of

        client = self.client
        if a.ref is not None:
            return self._submit_job(_job_of(client, a.ref, a.name), a)
        path = notebook_path(self.shell)
        if path is not None:
            job = client.create_job(path, name=_job_name(a.name) if a.name else None)
            print(f"launch-jupyter: captured {path} as saved on disk ({job.ref}); save the "
                  "notebook first for unsaved edits to count")
            return self._submit_job(job, a)
        from .jobs import capture_cells

        cells = _history_cells(self.shell)
        if not cells:
            raise LaunchError("nothing to submit: no notebook file is known to this kernel and "
                              "no cell ran before this one; run the notebook's cells first or "
                              "give a job: %launch submit JOB")
        name = _job_name(a.name or "notebook")
        print(f"launch-jupyter: no notebook file known to this kernel (no __session__ or "
              f"JPY_SESSION_NAME); captured the {len(cells)} cell(s) executed so far as job "
              f"{name!r} (they have no parameters cell)")
        job = client.add_captured(capture_cells(cells, name=name, folder=os.getcwd()))
        return self._submit_job(job, a)

    def _cmd_sweep(self, a: argparse.Namespace) -> Any:
        from .api import _job_of

        client = self.client
        sweep = client.sweep(_job_of(client, a.ref, a.name), queue=a.queue, grid=a.grid,
                             random=a.random, overrides=a.param, priority=a.priority,
                             timeout=a.timeout, seed=a.seed)
        print(f"sweep {sweep.id}: {len(sweep)} items on queue "
              f"{a.queue or client.config.default_queue}")
        if a.wait:
            sweep.wait()
        return sweep

    def _cmd_items(self, a: argparse.Namespace) -> Any:
        from .widgets.queue import ItemsView

        if a.queue is not None:
            self.client.queue(a.queue)
        if a.limit < 1:
            raise UsageError("--limit must be at least 1")
        rows, total = self.client.store.list_items(queue=a.queue, state=a.state,
                                                   limit=a.limit, sweep_id=a.sweep)
        return ItemsView(rows, total)

    def _cmd_show(self, a: argparse.Namespace) -> Any:
        return self.client.item(a.item)

    def _cmd_logs(self, a: argparse.Namespace) -> None:
        self.client.item(a.item)  # unknown item: NotFoundError, not an empty log
        if a.follow:
            from .cli import _follow

            _follow(self.client, a.item, sys.stdout)
        else:
            sys.stdout.write(self.client.logs(a.item)[0])

    def _cmd_cancel(self, a: argparse.Namespace) -> None:
        self._cli("cmd_cancel", item=a.item)

    def _cmd_requeue(self, a: argparse.Namespace) -> Any:
        return self.client.requeue(a.item)

    # -- agent and panels -----------------------------------------------------------------

    def _cmd_agent_start(self, a: argparse.Namespace) -> None:
        agent = start_kernel_agent(self.client, a.queue, a.max_jobs)
        print(f"agent {agent.id} started in this kernel, serving "
              f"{', '.join(agent.queues) or 'all queues'} (max {agent.max_jobs} at once); "
              "stop it with %launch agent stop")

    def _cmd_agent_stop(self, a: argparse.Namespace) -> None:
        agent = stop_kernel_agent()
        if agent is None:
            print("no agent is running in this kernel")
        else:
            print(f"agent {agent.id} stopped; runs it started keep going under their "
                  "supervisors")

    def _cmd_agent_status(self, a: argparse.Namespace) -> None:
        agent = kernel_agent()
        if agent is None:
            print("no agent is running in this kernel; start one with %launch agent start")
            return
        status = agent.status()
        active = ", ".join(status["active"]) or "none"
        print(f"agent {status['id']} running, serving {', '.join(status['queues'])} "
              f"(max {status['max_jobs']} at once); running items: {active}")
        for name, problem in status.get("unserved", {}).items():
            print(f"not serving queue {name} (its items wait for another agent): {problem}")

    def _cmd_panel(self, a: argparse.Namespace) -> Any:
        from .widgets.queue import ItemsView, QueuePanel, widgets_available

        if a.queue is not None:
            self.client.queue(a.queue)
        if a.page_size < 1:
            raise UsageError("--page-size must be at least 1")
        if not widgets_available():
            rows, total = self.client.store.list_items(queue=a.queue, state=a.state,
                                                       limit=a.page_size, sweep_id=a.sweep)
            return ItemsView(rows, total)
        return QueuePanel(self.client, queue=a.queue, state=a.state, sweep_id=a.sweep,
                          page_size=a.page_size, interval=a.interval)

    def _cmd_form(self, a: argparse.Namespace) -> Any:
        from .widgets.form import SubmitForm

        return SubmitForm(self.client, a.ref, queue=a.queue)

    def _cmd_agents(self, a: argparse.Namespace) -> Any:
        from .widgets.agent import AgentPanel

        return AgentPanel(self.client)


def _split(line: str) -> list[str]:
    from IPython.utils.process import arg_split

    return arg_split(line)


def _subparser(argv: list[str]) -> argparse.ArgumentParser:
    """The deepest known subcommand parser named by ``argv`` (for ``-h``)."""
    parser: argparse.ArgumentParser = PARSER
    for word in argv:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            break
        parser = actions[0].choices[word]
    return parser


def _job_name(name: str) -> str:
    from .jobs import validate_name

    return validate_name(name)


LaunchMagics.launch.__doc__ = _help_text()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext launch_jupyter``: register ``%launch`` and ``%%launch``."""
    ipython.register_magics(LaunchMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop this kernel's agent; the magics stay registered (IPython has no unregister)."""
    stop_kernel_agent()


__all__ = ["LaunchMagics", "kernel_agent", "load_ipython_extension", "notebook_path",
           "start_kernel_agent", "stop_kernel_agent"]
