/**
 * How the sidebar words durations, ages, parameters and agent health.
 */

import { Item, Job, Meta, isTerminal } from './api';

/** What the submit dialog says about a fresh capture: its warnings, or one line naming the
 * unresolved imports when a server sends no warnings. */
export function captureNotes(job: Pick<Job, 'warnings' | 'unresolved'>): string[] {
  if (job.warnings && job.warnings.length > 0) {
    return job.warnings;
  }
  const unresolved = job.unresolved ?? [];
  return unresolved.length > 0
    ? [`not installed at capture, so not required by the job: ${unresolved.join(', ')}`]
    : [];
}

/** `12.3 s`, `3 min 05 s`, `2 h 04 min`; an em dash when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds) || seconds < 0) {
    return '—';
  }
  if (seconds < 10) {
    return `${seconds.toFixed(1)} s`;
  }
  const whole = Math.round(seconds);
  if (whole < 60) {
    return `${whole} s`;
  }
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) {
    return `${minutes} min ${String(whole % 60).padStart(2, '0')} s`;
  }
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** `just now`, `5 s ago`, `3 min ago`, `2 h ago`. */
export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return 'never';
  }
  if (seconds < 1) {
    return 'just now';
  }
  if (seconds < 60) {
    return `${Math.floor(seconds)} s ago`;
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)} min ago`;
  }
  return `${Math.floor(seconds / 3600)} h ago`;
}

/** How long the item has run: its duration once finished, else the time since it started. */
export function itemDuration(
  item: Item,
  meta: Pick<Meta, 'terminal'>,
  now: number = Date.now()
): number | null {
  if (item.duration !== null && item.duration !== undefined) {
    return item.duration;
  }
  if (!item.started_at || isTerminal(item.state, meta)) {
    return null;
  }
  const started = Date.parse(item.started_at);
  return isNaN(started) ? null : Math.max(0, (now - started) / 1000);
}

/**
 * `cell 4 of 6 · 31 s` while a notebook item runs (its elapsed time since it started), else
 * null; with the fraction of cells done, for a bar.
 */
export function cellProgress(
  item: Item,
  now: number = Date.now()
): { label: string; done: number } | null {
  const progress = item.progress;
  if (!progress) {
    return null;
  }
  const started = item.started_at ? Date.parse(item.started_at) : NaN;
  const seconds = isNaN(started) ? null : Math.max(0, (now - started) / 1000);
  const elapsed = seconds === null ? '' : ` · ${formatDuration(seconds)}`;
  return {
    label: `cell ${progress.cell} of ${progress.cells}${elapsed}`,
    done: Math.max(0, Math.min(1, (progress.cell - 1) / Math.max(1, progress.cells)))
  };
}

/** An ISO time as local time: `14:03:09` today, `2024-05-02 14:03` on other days. */
export function formatTime(iso: string | null | undefined, now: Date = new Date()): string {
  const time = iso ? new Date(iso) : null;
  if (time === null || isNaN(time.getTime())) {
    return '—';
  }
  const pad = (n: number) => String(n).padStart(2, '0');
  const clock = `${pad(time.getHours())}:${pad(time.getMinutes())}`;
  if (time.toDateString() === now.toDateString()) {
    return `${clock}:${pad(time.getSeconds())}`;
  }
  return `${time.getFullYear()}-${pad(time.getMonth() + 1)}-${pad(time.getDate())} ${clock}`;
}

/** `lr=0.01, epochs=5` with values as JSON, cut at `max` characters. */
export function formatParameters(parameters: Record<string, unknown>, max = 80): string {
  const text = Object.entries(parameters)
    .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
    .join(', ');
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

/**
 * The item's priority as a word (`medium`) whether the server sent a word or a number (0 is
 * the lowest of `meta.priorities`, which lists the highest first).
 */
export function formatPriority(priority: string | number, meta: Pick<Meta, 'priorities'>): string {
  if (typeof priority !== 'number') {
    return priority;
  }
  const words = meta.priorities;
  return words[words.length - 1 - priority] ?? String(priority);
}

export type Health = 'ok' | 'late' | 'lost';

/**
 * An agent's health from its heartbeat age: late after one lease ttl (`leaseTtl` seconds, the
 * server's `meta.lease_ttl`), lost after three.
 */
export function agentHealth(heartbeatAge: number, leaseTtl: number): Health {
  if (heartbeatAge < leaseTtl) {
    return 'ok';
  }
  return heartbeatAge < 3 * leaseTtl ? 'late' : 'lost';
}

/** The short form of an item id (ULIDs share their time prefix; the tail tells them apart). */
export function shortId(id: string): string {
  return id.length > 10 ? id.slice(-8) : id;
}
