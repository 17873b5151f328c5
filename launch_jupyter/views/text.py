"""Plain-text views: the tables and detail lines the CLI prints and the magics show."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from .format import error_text, params_text, seconds, short
from .progress import progress_line, slowest_cells
from .states import label, symbol

QUEUE_HEADERS = ["NAME", "RUNNER", "STATUS", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED",
                 "CANCELLED"]
ITEM_HEADERS = ["ID", "QUEUE", "JOB", "STATE", "PRIORITY", "OVERRIDES", "ATTEMPT", "DURATION"]
JOB_HEADERS = ["NAME", "LATEST", "ALIASES", "MODE", "PARAMETERS"]
AGENT_HEADERS = ["ID", "HOST", "PID", "QUEUES", "RUNNING", "HEARTBEAT"]
METRIC_HEADERS = ["NAME", "STEP", "VALUE", "TIME"]


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Columns padded to their widest cell, two spaces apart, headers first."""
    cells = [[str(v) for v in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def queue_row(q: dict) -> list[str]:
    c = q["counts"]
    return [q["name"], q["runner"], "paused" if q["paused"] else "active", str(c["queued"]),
            str(c["leased"] + c["running"]), str(c["succeeded"]), str(c["failed"]),
            str(c["cancelled"])]


def queues_table(queues: Sequence[dict]) -> str:
    return table([queue_row(q) for q in queues], QUEUE_HEADERS)


def queue_detail(q: dict) -> str:
    lines = [queues_table([q]),
             f"max attempts: {q['max_attempts']}  timeout: {q['timeout'] or 'none'}  "
             f"concurrency: {q.get('concurrency') or 'no limit'}"]
    if q["config"]:
        lines.append("config: " + json.dumps(q["config"], indent=2))
    return "\n".join(lines)


def queue_updated(q: dict) -> str:
    """``queue update``: the queue's settings afterwards."""
    limit = q.get("concurrency")
    return (f"queue {q['name']}: " + (f"at most {limit} item(s) leased or running at once"
                                      if limit else "no concurrency limit"))


def jobs_table(jobs: Sequence[Any]) -> str:
    if not jobs:
        return "no jobs yet; create one with `jupyter launch job create NOTEBOOK.ipynb`"
    return table([[j.name, f"v{j.version}", ",".join(j.aliases), j.spec.get("mode", ""),
                   short(j.spec.get("parameters", {}))] for j in jobs], JOB_HEADERS)


def job_detail(job: Any, data: dict) -> str:
    """``job show``: ref, digest, mode, versions, parameters, requirements and files."""
    lines = [f"{job.ref}  digest {job.digest[:12]}  aliases: {', '.join(job.aliases) or '-'}",
             f"mode: {data['mode']}  entrypoint: {data['entrypoint']}  kernel: {data['kernel']}"
             f"  python: {data['python']}",
             f"versions: {', '.join(data['versions'])}",
             "parameters:"]
    for key, prop in (data["schema"].get("properties") or {}).items():
        extra = {k: v for k, v in prop.items() if k != "default"}
        lines.append(f"  {key} = {prop.get('default')!r}  {json.dumps(extra)}")
    lines.append("requirements:" + ("" if data["requirements"] else " (none)"))
    lines += [f"  {req}" for req in data["requirements"]]
    unresolved = data.get("unresolved") or []
    if unresolved:  # imports the job does not require: neither installed nor pip-installed
        conditional = set(data.get("unresolved_conditional") or [])
        lines.append("unresolved imports (not installed at capture, no %pip install line):")
        lines += [f"  {module}" + ("  (conditional)" if module in conditional else "")
                  for module in unresolved]
    lines.append("files:")
    lines += [f"  {path}" for path in data["files"]]
    return "\n".join(lines + lock_and_git_lines(data))


def lock_and_git_lines(data: dict) -> list[str]:
    """``job show``: the lock's size and hash, and where in git the job was captured."""
    lines = []
    lock = data.get("lock")
    if lock:
        unlocked = lock.get("unlocked") or []
        lines.append(f"lock: {len(lock.get('packages') or [])} packages, Python "
                     f"{lock.get('python')}, hash {str(lock.get('hash'))[:12]}"
                     + (f"; left to the installer: {', '.join(unlocked)}" if unlocked else ""))
    git = data.get("git")
    if git:
        state = "uncommitted changes" if git.get("dirty") else "clean"
        lines.append(f"git: {git.get('remote') or '(no remote)'} commit "
                     f"{(git.get('commit') or '(none)')[:12]} branch "
                     f"{git.get('branch') or '(detached)'}, {state}")
        if git.get("diff"):
            cut = " (cut)" if git.get("diff_truncated") else ""
            lines.append(f"  diff{cut}:")
            lines += [f"    {line}" for line in git["diff"].splitlines()]
        if git.get("untracked"):
            lines.append(f"  untracked: {', '.join(git['untracked'])}")
    return lines


def _size(size: int) -> str:
    for unit, scale in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}{unit}"
    return f"{size}B"


def envs_table(envs: Sequence[dict]) -> str:
    """``env list``: one row per isolated environment, most recently used first."""
    if not envs:
        return "no isolated environments yet (a queue with environment: isolated builds them)"
    rows = [[e["name"], e["python"] or "-", str(e["packages"]), _size(e["size"]),
             time.strftime("%Y-%m-%d %H:%M", time.localtime(e["last_used"])),
             "in use" if e["in_use"] else ("ready" if e["ready"] else "incomplete")]
            for e in envs]
    total = sum(e["size"] for e in envs)
    return table(rows, ["ENV", "PYTHON", "PACKAGES", "SIZE", "LAST USED", "STATE"]) + (
        f"\n{len(envs)} environments, {_size(total)}")


def envs_pruned(removed: Sequence[dict]) -> str:
    """``env prune``: what was removed and the room it freed."""
    if not removed:
        return "nothing removed"
    return (f"removed {len(removed)} environments ({_size(sum(e['size'] for e in removed))}): "
            + ", ".join(e["name"] for e in removed))


def capture_warnings(warnings: Sequence[str]) -> str:
    """What a capture could not record, one ``warning:`` line each ("" for none)."""
    return "".join(f"warning: {warning}\n" for warning in warnings)


def items_table(items: Sequence[dict], *, total: int | None = None,
                state: str | None = None) -> str:
    """The CLI's items table, with a line saying how many more match."""
    if not items:
        return "no items" + (f" in state {state}" if state else "")
    text = table([[i["id"], i["queue"], i["job"], label(i), i["priority"],
                   short(i["overrides"], 30), str(i["attempt"]), seconds(i)] for i in items],
                 ITEM_HEADERS)
    if total is not None and total > len(items):
        text += (f"\n\u2026 {total - len(items)} more; page with --limit N --offset "
                 f"{len(items)}")
    return text + waiting_lines(items)


def waiting_lines(items: Sequence[dict]) -> str:
    """Under a list of items: why its queued items wait, once per reason (no agent, or
    upstream items of ``submit --after`` that have not succeeded yet)."""
    reasons: dict[str, int] = {}
    for item in items:
        if item.get("waiting"):
            reasons[item["waiting"]] = reasons.get(item["waiting"], 0) + 1
        elif item.get("waiting_on"):
            why = "on upstream items that have not succeeded yet (`show ID` names them)"
            reasons[why] = reasons.get(why, 0) + 1
    return "".join(f"\n{n} queued item{'s' if n > 1 else ''} waiting: {why}"
                   for why, n in reasons.items())


def result_columns(rows: Sequence[dict]) -> tuple[list[str], list[list[Any]]]:
    """Results as flat columns: id, state, job, one per varying parameter, one per metric
    (``metric:NAME`` if a parameter has its name), duration."""
    params = list(dict.fromkeys(name for row in rows for name in row["parameters"]))
    metrics = sorted({name for row in rows for name in row["metrics"]})
    headers = ["id", "state", "job", *params,
               *(f"metric:{m}" if m in params else m for m in metrics), "duration"]
    cells = [[row["id"], row["state"], row["job"], *(row["parameters"].get(p) for p in params),
              *(row["metrics"].get(m) for m in metrics), row["duration"]] for row in rows]
    return headers, cells


def results_csv(rows: Sequence[dict]) -> str:
    """``results --csv``: the flat columns; lists and dicts as JSON, missing values empty."""
    import csv
    import io

    headers, cells = result_columns(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for line in cells:
        writer.writerow(["" if v is None else json.dumps(v) if isinstance(v, list | dict)
                         else v for v in line])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return short(value, 24)


def results_table(rows: Sequence[dict], *, best: str | None = None) -> str:
    """``results``: one line per item, the best one marked with ``*``."""
    if not rows:
        return "no results: no item matches (see `jupyter launch items`)"
    headers, cells = result_columns(rows)
    shown = [[("*" if line[0] == best else " ") + line[0],
              f"{symbol(line[1])} {line[1]}", *(_cell(v) for v in line[2:-1]),
              "" if line[-1] is None else f"{line[-1]:.1f}s"] for line in cells]
    return table(shown, [h.upper() for h in headers])


def sweeps_table(sweeps: Sequence[dict]) -> str:
    """``sweeps``: id, job, method, metric and goal, trials of the cap, state, best."""
    if not sweeps:
        return "no sweeps yet; start one with `jupyter launch sweep JOB --config sweep.yaml`"
    rows = []
    for s in sweeps:
        best = s["best"]
        cap = "\u221e" if s["run_cap"] is None else s["run_cap"]
        rows.append([s["id"], s["job"], s["method"],
                     f"{s['metric']} ({s['goal']})" if s["metric"] else "-",
                     f"{s['trials']}/{cap}",
                     s["state"], "" if best is None else f"{best['value']:.6g} ({best['item']})"])
    return table(rows, ["ID", "JOB", "METHOD", "METRIC", "TRIALS", "STATE", "BEST"])


def sweep_outcome(action: str, sweep: dict) -> str:
    """What ``sweep show|stop|resume ID`` prints: the detail, or the sweep's new state."""
    if action == "show":
        return sweep_detail(sweep)
    return f"sweep {sweep['id']} {sweep['state']}"


def sweep_detail(sweep: dict) -> str:
    """``sweep show``: the summary, then each trial with how it was proposed."""
    lines = [sweeps_table([sweep]),
             f"queue {sweep['queue']}  parallel {sweep['parallel']}  items: "
             + ", ".join(f"{n} {state}" for state, n in sweep["counts"].items() if n)]
    trials = [[str(t["trial"]), t["item"], f"{symbol(t['state'])} {t['state']}",
               t["sampler"] or "", short(t["parameters"], 60)]
              for t in sweep.get("trials_detail", [])]
    if trials:
        lines.append(table(trials, ["TRIAL", "ITEM", "STATE", "SAMPLER", "PARAMETERS"]))
    return "\n".join(lines)


def item_detail(item: dict) -> str:
    """``show``: state, job, parameters, error, warning, attempts and outputs."""
    lines = [f"item {item['id']}  {label(item)}  job {item['job']}  queue {item['queue']}",
             f"priority {item['priority']}  submitted by {item['submitted_by']} at "
             f"{item['created_at']}",
             f"parameters: {json.dumps(item['parameters'], sort_keys=True)}"]
    if item["overrides"]:
        lines.append(f"overrides:  {json.dumps(item['overrides'], sort_keys=True)}")
    if item.get("schedule"):
        lines.append(f"made by schedule {item['schedule']}")
    if item.get("after"):
        lines.append(f"after: {', '.join(item['after'])}")
    if item.get("waiting_on"):
        lines.append(f"waiting on: {', '.join(item['waiting_on'])} (starts once they "
                     "succeeded)")
    if item.get("state") == "running" and (item.get("run") or {}).get("phase") == "building":
        lines.append("phase: building its isolated environment (uv's output is in the log)")
    gpus = (item.get("run") or {}).get("gpus")
    if gpus:
        lines.append(f"GPUs: {','.join(map(str, gpus))} (CUDA_VISIBLE_DEVICES)")
    running = progress_line(item)
    if running:
        lines.append(f"progress: {running}")
    if item.get("executed_notebook"):
        lines.append(f"executed notebook: {item['executed_notebook']}")
    if slowest_cells(item.get("cells")):
        lines.append(f"slowest cells: {slowest_cells(item.get('cells'))}")
    if error_text(item):
        lines.append(f"error: {error_text(item)}")
    if item["warning"]:
        lines.append(f"warning: {item['warning']}")
    lines.append(f"attempts ({item['attempt']} of at most {item['max_attempts']}):")
    for a in item["attempts"]:
        outcome = (a["error"] or {}).get("message") or (
            f"exit {a['exit_code']}" if a["exit_code"] is not None else "")
        lines.append(f"  #{a['attempt']}  {a['start'] or '-'} -> {a['end'] or '-'}  {outcome}")
    lines += metric_summary_lines(item.get("metrics") or {})
    lines += [f"output: {out['path']}  ({out['size']} bytes)" for out in item["outputs"]]
    return "\n".join(lines)


def metric_value(value: Any) -> str:
    """A metric value in at most 6 significant digits (JSON output has them all)."""
    return f"{value:.6g}" if isinstance(value, int | float) else str(value)


def metric_summary_lines(metrics: dict) -> list[str]:
    """``show``: one line per metric of the latest attempt (last, min, max, step, count)."""
    if not metrics:
        return []
    width = max(len(name) for name in metrics)
    return ["metrics:"] + [
        f"  {name:<{width}}  last {metric_value(m['last'])}  min {metric_value(m['min'])}  "
        f"max {metric_value(m['max'])}  step {m['step']}  count {m['count']}"
        for name, m in sorted(metrics.items())]


def metric_line(point: dict) -> str:
    """One point as a line of fixed columns (``metrics -f`` prints as points arrive)."""
    return (f"{point['name']:<24}  {point['step']!s:>8}  {metric_value(point['value']):>12}  "
            f"{point['time']}")


def metrics_table(points: Sequence[dict]) -> str:
    """``metrics``: NAME STEP VALUE TIME, one row per point in the order logged."""
    if not points:
        return "no metrics logged (launch_jupyter.log in the job records them)"
    return table([[p["name"], str(p["step"]), metric_value(p["value"]), p["time"]]
                  for p in points], METRIC_HEADERS)


def agents_table(agents: Sequence[dict]) -> str:
    if not agents:
        return "no agents running; start one with `jupyter launch agent`"
    return table([[a["id"], a["host"], str(a["pid"]), ",".join(a["queues"]), str(a["running"]),
                   f"{a['heartbeat_age']:.1f}s ago"] for a in agents], AGENT_HEADERS)


def kernel_agent_status(status: dict | None) -> str:
    """``%launch agent status``: this kernel's agent and the queues it leaves to others."""
    if status is None:
        return "no agent is running in this kernel; start one with %launch agent start"
    active = ", ".join(status["active"]) or "none"
    lines = [f"agent {status['id']} running, serving {', '.join(status['queues'])} "
             f"(max {status['max_jobs']} at once); running items: {active}"]
    if status.get("gpus"):
        lines.append(f"GPUs it hands to gpus_per_item queues: "
                     f"{','.join(map(str, status['gpus']))}")
    lines += [f"not serving queue {name} (its items wait for another agent): {problem}"
              for name, problem in (status.get("unserved") or {}).items()]
    return "\n".join(lines)


def item_line(item: dict) -> str:
    """One line of text for an item."""
    extra = f"  {error_text(item)}" if item.get("error") else ""
    return (f"{item['id']}  {symbol(label(item))} {label(item):<9}  {item['job']:<16}  "
            f"{params_text(item, 40)}{extra}")


def items_lines(items: Sequence[dict], *, total: int | None = None) -> str:
    """Items one line each (terminal IPython, text/plain fallbacks)."""
    if not items:
        return "no items"
    lines = [item_line(item) for item in items]
    if total is not None and total > len(items):
        lines.append(f"\u2026 {total - len(items)} more")
    return "\n".join(lines) + waiting_lines(items)


def cancel_outcome(item_id: str, item: dict) -> str:
    """What a cancel did: cancelled at once, or the run is being stopped."""
    if item["state"] == "cancelled":
        return f"item {item_id} cancelled"
    return f"item {item_id} is {item['state']}: cancel requested, its run is being stopped"


def run_outcome(item: dict) -> str:
    """The last line about a foreground run: state, error, duration."""
    err = error_text(item)
    return (f"item {item['id']} {item['state']}" + (f": {err}" if err else "")
            + (f" in {item['duration']:.1f}s" if item.get("duration") else ""))


__all__ = ["agents_table", "cancel_outcome", "item_detail", "item_line", "items_lines",
           "items_table", "job_detail", "jobs_table", "kernel_agent_status", "queue_detail",
           "queues_table", "result_columns", "results_csv", "results_table", "run_outcome",
           "sweep_detail", "sweeps_table", "table", "waiting_lines"]


SCHEDULE_HEADERS = ["NAME", "JOB", "QUEUE", "CRON", "TIMEZONE", "STATE", "NEXT", "ITEMS",
                    "LAST ITEM"]


def schedule_time(ts: float | None, timezone: str) -> str:
    """An epoch time as the schedule's own wall clock: ``2026-12-01 09:00:00 CET``."""
    if ts is None:
        return "-"
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ts, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def schedules_table(schedules: Sequence[dict]) -> str:
    """``schedule list``: name, job, queue, cron, time zone, state, next firing, items."""
    if not schedules:
        return ("no schedules yet; create one with `jupyter launch schedule create NAME "
                "--job JOB --cron '0 9 * * *' --queue QUEUE`")
    rows = [[s["name"], s["job"], s["queue"], s["cron"], s["timezone"], s["state"],
             "-" if s["paused"] else schedule_time(s["next_fire_ts"], s["timezone"]),
             str(s["items"]), s["last_item"] or "-"] for s in schedules]
    return table(rows, SCHEDULE_HEADERS)


def schedule_detail(schedule: dict) -> str:
    """``schedule show``: the row, then what each firing submits."""
    lines = [schedules_table([schedule]),
             f"parameters: {params_text(schedule, 200) or '(defaults)'}  priority: "
             f"{schedule['priority']}  timeout: {schedule['timeout'] or 'none'}  missed "
             f"firings: {'one item (catch-up)' if schedule['catch_up'] else 'skipped'}"]
    if schedule["template_values"]:
        lines.append("template values: " + params_text(
            {"overrides": schedule["template_values"]}, 200))
    return "\n".join(lines)


def schedule_outcome(action: str, schedule: dict) -> str:
    """What ``schedule create|pause|resume`` print: the schedule's state and next firing."""
    if schedule["paused"]:
        return (f"schedule {schedule['name']} paused; `schedule resume {schedule['name']}` "
                "fires it again")
    verb = {"create": "created", "resume": "resumed"}.get(action, action)
    return (f"schedule {schedule['name']} {verb}: {schedule['job']} on queue "
            f"{schedule['queue']} at '{schedule['cron']}' ({schedule['timezone']}); next "
            f"{schedule_time(schedule['next_fire_ts'], schedule['timezone'])}")


def vacuum_outcome(report: dict) -> str:
    """What ``store vacuum`` freed, or would free with ``--dry-run``."""
    rules = [f"--keep-days {report['keep_days']:g}" if report["keep_days"] is not None else "",
             f"--keep-last {report['keep_last']}" if report["keep_last"] is not None else ""]
    verb = "would free" if report["dry_run"] else "freed"
    per_queue = ", ".join(f"{q} {n}" for q, n in sorted(report["queues"].items()))
    return (f"{verb} ({' '.join(r for r in rules if r)}): {report['items']} finished item(s)"
            + (f" ({per_queue})" if per_queue else "")
            + f", {_size(report['log_bytes'])} of logs, {report['run_folders']} run folder(s) "
            f"({_size(report['run_folder_bytes'])})")
