"""``%launch`` / ``%%launch``: the notebook front door.

Every operation of ``jupyter launch`` (declared once in ``launch_jupyter.options``, so both
doors take the same flags) plus this kernel's agent (``agent start|stop|status``) and the
live panels (``panel``, ``form``, ``agents``). It parses, calls the service and shows the
shared views or the widgets' panels (docs/architecture.md). Bad arguments raise
``UsageError`` with the usage line; ``%launch?`` shows this help.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser

from .errors import LaunchError
from .options import CELL_OPTIONS, MAGIC, add_options, build
from .service.kernel import kernel_agent, start_kernel_agent, stop_kernel_agent

SETUP_TAG = "launch-setup"
PARAMETERS_TAG = "parameters"
INERT = ("launch-jupyter: %launch is inert inside a running job (item {item}): nothing was "
         "submitted and no agent was started")
#: Rows ``%launch items`` shows when no --limit is given.
ITEMS_SHOWN = 50


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


def _runner_help() -> str:
    from .runners import runner_help

    return "runner: " + ", ".join(runner_help()) + " (default local; docs/runners.md)"


def build_parser() -> tuple[_Parser, dict[str, _Parser]]:
    """The ``%launch`` parser and its leaf parsers (operation name -> parser)."""
    parser = _Parser(prog="%launch", description="Jobs, queues and agents from a notebook.")

    def add_parser(subparsers: Any, word: str, text: str, leaf: bool) -> _Parser:
        return subparsers.add_parser(word, help=text, description=text)

    leaves = build(parser, MAGIC, add_parser=add_parser, fill={"runners": _runner_help()},
                   parser_class=_Parser)
    return parser, leaves


def build_cell_parser() -> _Parser:
    """``%%launch`` options: the submit options but the job, which is the cell."""
    p = _Parser(prog="%%launch", description="Run this cell as a job; returns its item.")
    add_options(p, CELL_OPTIONS, {})
    return p


PARSER, LEAVES = build_parser()
CELL_PARSER = build_cell_parser()


def _help_text() -> str:
    parts = [PARSER.format_help().strip(), ""]
    parts += [leaf.plain_usage().replace("usage: ", "", 1) for leaf in LEAVES.values()]
    parts += ["", CELL_PARSER.format_help().strip(), "",
              f"%%launch: the job is the notebook's `{PARAMETERS_TAG}` cell (so -p works), "
              f"then every cell tagged `{SETUP_TAG}` in notebook order (imports, helpers), "
              "then this cell. Inside a running job (LAUNCH_ITEM_ID set) %launch is inert.",
              "Details: `%launch COMMAND -h`."]
    return "\n".join(parts)


def _subparser(argv: list[str]) -> argparse.ArgumentParser:
    """The deepest known subcommand parser named by ``argv`` (for ``-h``)."""
    words = [w for w in argv if not w.startswith("-")]
    for n in range(len(words), 0, -1):
        for leaf in LEAVES.values():
            if leaf.prog == " ".join(["%launch", *words[:n]]):
                return leaf
    return PARSER


# -- the magics ------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


@magics_class
class LaunchMagics(Magics):
    """``%launch`` and ``%%launch``."""

    @property
    def client(self) -> Any:
        from .service import default_client

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
        if argv[0] == "agent" and (len(argv) == 1 or argv[1].startswith("-")) \
                and not {"-h", "--help"} & set(argv):
            # `%launch agent` or `%launch agent --queue Q`, as the CLI writes it: start one.
            argv.insert(1, "start")
        if "-h" in argv or "--help" in argv:
            print(_subparser(argv).format_help())
            return None
        args = PARSER.parse_args(argv)
        handler: Callable[[argparse.Namespace], Any] = getattr(
            self, "_op_" + args.op.replace(" ", "_"))
        return handler(args)

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
        return self._submit_job(captured, args)

    def _submit_job(self, job: Any, args: argparse.Namespace) -> Any:
        item = self.client.submit(job, queue=args.queue, overrides=args.param,
                                  priority=args.priority, timeout=args.timeout,
                                  template_pairs=args.set, after=args.after)
        from .views.text import capture_warnings

        print(capture_warnings(item.warnings), end="", file=sys.stderr)  # of a capture
        if args.wait:
            # Without an agent the wait never ends: say so instead of hanging silently.
            waiting = self.client.mark_waiting([dict(item.info(False))])[0]["waiting"]
            if waiting:
                print(f"item {item.id} is waiting: {waiting}", file=sys.stderr)
            item.wait()
        if getattr(args, "json", False):
            _print_json(item.info(refresh=False))
        return item

    # -- jobs and queues ------------------------------------------------------------------

    def _op_job_create(self, a: argparse.Namespace) -> None:
        from .views.text import capture_warnings

        job = self.client.create_job(a.path, name=a.name, alias=a.alias, include=a.include,
                                     kernel=a.kernel, mode=a.mode, env=a.env, strict=a.strict)
        print(capture_warnings(job.warnings), end="", file=sys.stderr)
        _print_json(job.to_json()) if a.json else print(job.ref)

    def _op_job_list(self, a: argparse.Namespace) -> None:
        from .views.text import jobs_table

        jobs = self.client.jobs()
        _print_json([j.to_json() for j in jobs]) if a.json else print(jobs_table(jobs))

    def _op_job_show(self, a: argparse.Namespace) -> None:
        from .views.text import job_detail

        data = self.client.job_info(a.ref)
        _print_json(data) if a.json else print(job_detail(self.client.job(a.ref), data))

    def _op_queue_create(self, a: argparse.Namespace) -> None:
        config = None
        if a.config:
            from .runners.templates import load_queue_config

            config = load_queue_config(a.config)
        q = self.client.create_queue(a.name, runner=a.runner, max_attempts=a.max_attempts,
                                     timeout=a.timeout, config=config, concurrency=a.concurrency)
        if a.json:
            _print_json(q)
        else:
            print(f"created queue {q['name']} (runner {q['runner']})")

    def _op_queue_update(self, a: argparse.Namespace) -> None:
        from .views.text import queue_updated

        changes = {} if a.concurrency is None else {"concurrency": a.concurrency}
        q = self.client.update_queue(a.name, **changes)
        _print_json(q) if a.json else print(queue_updated(q))

    def _op_queue_list(self, a: argparse.Namespace) -> None:
        from .views.text import queues_table

        queues = self.client.queues()
        _print_json(queues) if a.json else print(queues_table(queues))

    def _op_queue_show(self, a: argparse.Namespace) -> None:
        from .views.text import queue_detail

        q = self.client.queue(a.name)
        _print_json(q) if a.json else print(queue_detail(q))

    def _op_queue_pause(self, a: argparse.Namespace) -> None:
        self.client.pause_queue(a.name)
        print(f"queue {a.name} paused: agents will not start its items until resumed")

    def _op_queue_resume(self, a: argparse.Namespace) -> None:
        self.client.resume_queue(a.name)
        print(f"queue {a.name} resumed")

    def _op_queue_delete(self, a: argparse.Namespace) -> None:
        n = self.client.delete_queue(a.name, force=a.force)
        print(f"deleted queue {a.name}" + (f" and its {n} item(s)" if n else ""))

    # -- items ----------------------------------------------------------------------------

    def _op_submit(self, a: argparse.Namespace) -> Any:
        from .jobs import capture
        from .service.client import is_job_file

        client = self.client
        # A capture is stored by submit only once the overrides are valid (no stray version).
        if a.ref is not None:
            if is_job_file(a.ref):
                return self._submit_job(capture(a.ref, name=a.name), a)
            return self._submit_job(client.resolve_job(a.ref, name=a.name), a)
        path = notebook_path(self.shell)
        if path is not None:
            item = self._submit_job(capture(path, name=_job_name(a.name) if a.name else None), a)
            print(f"launch-jupyter: captured {path} as saved on disk ({item.info()['job']}); "
                  "save the notebook first for unsaved edits to count")
            return item
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

    def _op_sweep(self, a: argparse.Namespace) -> Any:
        from .options import sweep_action

        client = self.client
        action = sweep_action(a)
        if action is not None:
            return self._sweep_action(action, a)
        sweep = client.sweep(a.ref, name=a.name, queue=a.queue, config=a.config, grid=a.grid,
                             random=a.random, overrides=a.param, priority=a.priority,
                             timeout=a.timeout, seed=a.seed, template_pairs=a.set,
                             parallel=a.parallel)
        if sweep.note:
            print(sweep.note)
        if a.json:
            _print_json({"sweep_id": sweep.id, "items": [i.id for i in sweep]})
        else:
            print(f"sweep {sweep.id}: {len(sweep)} trial(s) queued on queue "
                  f"{a.queue or client.config.default_queue}; agents serving it propose the "
                  "rest")
        if a.wait:
            sweep.wait()
        return sweep

    def _sweep_action(self, action: str, a: argparse.Namespace) -> None:
        """``%launch sweep show|stop|resume ID``."""
        from .views.text import sweep_outcome

        shown = self.client.sweep_action(action, a.sweep_id)
        _print_json(shown) if a.json else print(sweep_outcome(action, shown))

    def _op_sweeps(self, a: argparse.Namespace) -> None:
        from .views.text import sweeps_table

        found = self.client.sweeps()
        _print_json(found) if a.json else print(sweeps_table(found))

    def _op_results(self, a: argparse.Namespace) -> Any:
        from .views.html import ResultsView
        from .views.text import results_csv

        if a.json and a.csv:
            raise UsageError("results: give --json or --csv, not both")
        rows = self.client.result_rows(sweep=a.sweep, queue=a.queue, job=a.job, state=a.state,
                                       sort=a.sort, limit=a.limit)
        if a.json:
            _print_json(rows)
            return None
        if a.csv:
            _write(results_csv(rows))
            return None
        return ResultsView(rows, best=self.client.best_result(rows, sweep=a.sweep,
                                                              sort=a.sort))

    def _op_items(self, a: argparse.Namespace) -> Any:
        from .views.html import ItemsView

        if a.limit is not None and a.limit < 1:
            raise UsageError("--limit must be at least 1")
        page = self.client.page(queue=a.queue, state=a.state, job=a.job, sweep=a.sweep,
                                limit=ITEMS_SHOWN if a.limit is None else a.limit,
                                offset=a.offset)
        if a.json:
            _print_json(page["items"])
            return None
        return ItemsView(page["items"], page["total"] - a.offset)

    def _op_show(self, a: argparse.Namespace) -> Any:
        item = self.client.item(a.item)
        if a.json:
            _print_json(item.info(refresh=False))
            return None
        return item

    def _op_logs(self, a: argparse.Namespace) -> None:
        if a.follow:
            from .views.terminal import CellProgress

            cells = CellProgress(sys.stdout, bar=False)  # cell boundaries as log lines
            self.client.follow(a.item, cells.write, on_progress=cells.update)
            cells.close()
        else:
            self.client.item_info(a.item)  # unknown item: NotFoundError, not an empty log
            _write(self.client.logs(a.item)[0])

    def _op_metrics(self, a: argparse.Namespace) -> None:
        from .views.text import metric_line, metrics_table

        if a.follow:
            self.client.item_info(a.item)  # unknown item: NotFoundError

            def write(point: dict) -> None:
                _write((json.dumps(point, sort_keys=True) if a.json else metric_line(point))
                       + "\n")

            self.client.follow_metrics(a.item, write)
        elif a.json:
            _print_json(self.client.metrics(a.item))
        else:
            print(metrics_table(self.client.metrics(a.item)))

    def _op_cancel(self, a: argparse.Namespace) -> None:
        from .views.text import cancel_outcome

        print(cancel_outcome(a.item, self.client.cancel(a.item)))

    def _op_requeue(self, a: argparse.Namespace) -> Any:
        return self.client.requeue(a.item)

    def _op_delete(self, a: argparse.Namespace) -> None:
        self.client.delete(a.item)
        print(f"deleted item {a.item}")

    def _op_run(self, a: argparse.Namespace) -> Any:
        from .views.terminal import CellProgress
        from .views.text import capture_warnings, run_outcome

        def started(it: Any) -> None:
            print(capture_warnings(it.warnings), end="", file=sys.stderr)
            print(f"running {it.info(False)['job']} as item {it.id}")

        cells = CellProgress(sys.stdout, bar=False)  # cell boundaries as log lines
        item = self.client.run(
            a.path, name=a.name, include=a.include, kernel=a.kernel, mode=a.mode, env=a.env,
            queue=a.queue, overrides=a.param, timeout=a.timeout, template_pairs=a.set,
            on_start=started,
            write=cells.write, on_progress=cells.update,
            on_interrupt=lambda: print("\ncancelling\u2026"), isolated=a.isolated)
        cells.close()
        print(run_outcome(item.info(False)))
        return item

    # -- schedules ------------------------------------------------------------------------

    def _op_schedule_create(self, a: argparse.Namespace) -> None:
        from .views.text import capture_warnings, schedule_outcome

        made = self.client.create_schedule(a.name, a.job, cron=a.cron, queue=a.queue,
                                           timezone=a.timezone, overrides=a.param,
                                           template_pairs=a.set, priority=a.priority,
                                           timeout=a.timeout, catch_up=a.catch_up)
        print(capture_warnings(made.get("warnings", ())), end="", file=sys.stderr)
        _print_json(made) if a.json else print(schedule_outcome("create", made))

    def _op_schedule_list(self, a: argparse.Namespace) -> None:
        from .views.text import schedules_table

        found = self.client.list_schedules()
        _print_json(found) if a.json else print(schedules_table(found))

    def _op_schedule_show(self, a: argparse.Namespace) -> None:
        from .views.text import schedule_detail

        found = self.client.get_schedule(a.name)
        _print_json(found) if a.json else print(schedule_detail(found))

    def _op_schedule_pause(self, a: argparse.Namespace) -> None:
        from .views.text import schedule_outcome

        done = self.client.pause_schedule(a.name)
        _print_json(done) if a.json else print(schedule_outcome("pause", done))

    def _op_schedule_resume(self, a: argparse.Namespace) -> None:
        from .views.text import schedule_outcome

        done = self.client.resume_schedule(a.name)
        _print_json(done) if a.json else print(schedule_outcome("resume", done))

    def _op_schedule_delete(self, a: argparse.Namespace) -> None:
        self.client.delete_schedule(a.name)
        print(f"deleted schedule {a.name} (the items it made stay)")

    # -- agent, store and panels ----------------------------------------------------------

    def _op_agent(self, a: argparse.Namespace) -> None:
        agent = start_kernel_agent(self.client, a.queue, a.max_jobs, until_idle=a.until_idle,
                                   gpus=a.gpus)
        print(f"agent {agent.id} started in this kernel, serving "
              f"{', '.join(agent.queues) or 'all queues'} (max {agent.max_jobs} at once"
              f"{', until idle' if a.until_idle else ''}); stop it with %launch agent stop")

    def _op_agent_stop(self, a: argparse.Namespace) -> None:
        agent = stop_kernel_agent()
        if agent is None:
            print("no agent is running in this kernel")
        else:
            print(f"agent {agent.id} stopped; runs it started keep going under their "
                  "supervisors")

    def _op_agent_status(self, a: argparse.Namespace) -> None:
        from .service.kernel import kernel_agent_status
        from .views.text import kernel_agent_status as status_text

        print(status_text(kernel_agent_status()))

    def _op_connect(self, a: argparse.Namespace) -> None:
        from .service import connect_default

        client = connect_default(a.url, token=a.token)
        print(f"connected to {client.store_label}: %launch and its panels now use its REST "
              "API (capture stays in this kernel)")

    def _op_agents(self, a: argparse.Namespace) -> Any:
        if a.json:
            _print_json(self.client.agents())
            return None
        from .widgets.agent import AgentPanel

        return AgentPanel(self.client)

    def _op_store_migrate(self, a: argparse.Namespace) -> None:
        version = self.client.store_version(migrate=True)
        print(f"store {self.client.store_label} is at schema version {version}")

    def _op_store_check(self, a: argparse.Namespace) -> None:
        version = self.client.store_version(migrate=False)
        print(f"store {self.client.store_label} OK (schema version {version})")

    def _op_store_vacuum(self, a: argparse.Namespace) -> None:
        from .views.text import vacuum_outcome

        report = self.client.vacuum(keep_days=a.keep_days, keep_last=a.keep_last,
                                    dry_run=a.dry_run)
        _print_json(report) if a.json else print(vacuum_outcome(report))

    def _op_panel(self, a: argparse.Namespace) -> Any:
        from .widgets.queue import QueuePanel, widgets_available

        if a.queue is not None:
            self.client.queue(a.queue)
        if a.page_size < 1:
            raise UsageError("--page-size must be at least 1")
        if not widgets_available():
            from .views.html import ItemsView, ResultsView

            if a.sweep is not None:  # as the results panel: by the sweep's metric, best marked
                rows = self.client.result_rows(sweep=a.sweep)
                return ResultsView(rows, best=self.client.best_result(rows, sweep=a.sweep))
            page = self.client.page(queue=a.queue, state=a.state, sweep=a.sweep,
                                    limit=a.page_size)
            return ItemsView(page["items"], page["total"])
        if a.sweep is not None:  # a sweep: its results, best run marked, and the chart
            from .widgets.results import ResultsPanel

            return ResultsPanel(self.client, a.sweep, interval=a.interval)
        return QueuePanel(self.client, queue=a.queue, state=a.state, sweep_id=a.sweep,
                          page_size=a.page_size, interval=a.interval)

    def _op_form(self, a: argparse.Namespace) -> Any:
        from .widgets.form import SubmitForm

        return SubmitForm(self.client, a.ref, queue=a.queue)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _split(line: str) -> list[str]:
    """Words as a shell splits them (IPython's own magics do so on POSIX): quotes group
    words and go (``--cron "0 9 * * *"``)."""
    from IPython.utils.process import arg_split

    return arg_split(line, posix=os.name == "posix")


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


__all__ = ["LaunchMagics", "kernel_agent", "load_ipython_extension",
           "notebook_path", "start_kernel_agent", "stop_kernel_agent"]
