/**
 * The Results view's rows and order: its columns, sorting (a metric through the server, so the
 * chart and best row follow; other columns here) and a Poll that keeps the answer fresh.
 */

import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { LaunchClient, ResultRow, ResultsChart, ResultsQuery } from './api';
import { formatDuration } from './format';

/** A column of the results table: a fixed field, a parameter or a metric. */
export interface Column {
  kind: 'id' | 'state' | 'job' | 'parameter' | 'metric' | 'duration';
  name: string;
}

/** The table's columns: id, state, job, each varying parameter, each metric, duration. */
export function resultColumns(rows: readonly ResultRow[], metrics: readonly string[]): Column[] {
  const params: string[] = [];
  for (const row of rows) {
    for (const name of Object.keys(row.parameters)) {
      if (!params.includes(name)) {
        params.push(name);
      }
    }
  }
  return [
    { kind: 'id', name: 'id' },
    { kind: 'state', name: 'state' },
    { kind: 'job', name: 'job' },
    ...params.map(name => ({ kind: 'parameter' as const, name })),
    ...metrics.map(name => ({ kind: 'metric' as const, name })),
    { kind: 'duration', name: 'duration' }
  ];
}

/** A row's value in `column` (undefined when it has none). */
export function cellValue(row: ResultRow, column: Column): unknown {
  switch (column.kind) {
    case 'parameter':
      return row.parameters[column.name];
    case 'metric':
      return row.metrics[column.name];
    case 'id':
      return row.id;
    case 'state':
      return row.state;
    case 'job':
      return row.job;
    default:
      return row.duration ?? undefined;
  }
}

/**
 * `rows` sorted by `column` (numbers by value, others as text), ascending or descending; rows
 * without a value always last, ties in their given order.
 */
export function sortRows(
  rows: readonly ResultRow[],
  column: Column,
  descending: boolean
): ResultRow[] {
  const keyed = rows.map((row, index) => ({ row, index, value: cellValue(row, column) }));
  const missing = (v: unknown) => v === undefined || v === null;
  keyed.sort((a, b) => {
    if (missing(a.value) || missing(b.value)) {
      return missing(a.value) === missing(b.value) ? a.index - b.index : missing(a.value) ? 1 : -1;
    }
    let order: number;
    if (typeof a.value === 'number' && typeof b.value === 'number') {
      order = a.value - b.value;
    } else {
      order = JSON.stringify(a.value).localeCompare(JSON.stringify(b.value));
    }
    return (descending ? -order : order) || a.index - b.index;
  });
  return keyed.map(k => k.row);
}

/** A cell as text: numbers with 6 significant digits, others as JSON. */
export function formatCell(value: unknown, column: Column): string {
  if (value === undefined || value === null) {
    return '';
  }
  if (column.kind === 'duration' && typeof value === 'number') {
    return formatDuration(value);
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** What a Results view reads from (the client's `resultsChart` call). */
export type ResultsSource = Pick<LaunchClient, 'resultsChart'>;

/** The Results view's state: the server's answer, the chosen sort, the last error. */
export class ResultsModel {
  constructor(
    private readonly _source: ResultsSource,
    readonly query: ResultsQuery,
    standby: Poll.Standby | (() => boolean | Poll.Standby) = 'when-hidden',
    interval = 2000
  ) {
    this.poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval, backoff: true, max: 30_000 },
      standby
    });
  }

  readonly poll: Poll;

  /** Emitted when the answer, the sort or the error changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get answer(): ResultsChart | null {
    return this._answer;
  }

  get error(): string | null {
    return this._error;
  }

  /** The server-side sort (`METRIC:max|min`): the chart and the best row follow it. */
  get sort(): string | null {
    return this._sort;
  }

  /** A column sorted here (not a metric), or null: the server's order. */
  get localSort(): { column: Column; descending: boolean } | null {
    return this._local;
  }

  /** The rows as shown: the server's order, or the local column sort. */
  get rows(): ResultRow[] {
    const rows = this._answer?.rows ?? [];
    return this._local ? sortRows(rows, this._local.column, this._local.descending) : rows;
  }

  /**
   * Sort by `column`: a metric through the server (max first, then min on a second click),
   * any other column here (ascending, then descending).
   */
  async sortBy(column: Column): Promise<void> {
    if (column.kind === 'metric') {
      const current = this._sort ?? this._defaultSort();
      this._sort = current === `${column.name}:max` ? `${column.name}:min` : `${column.name}:max`;
      this._local = null;
      await this.refresh();
      return;
    }
    const same = this._local?.column.name === column.name && this._local.column.kind === column.kind;
    this._local = { column, descending: same ? !this._local!.descending : false };
    this._changed.emit();
  }

  /** Read the rows and chart now. */
  async refresh(): Promise<void> {
    try {
      const answer = await this._source.resultsChart({ ...this.query, sort: this._sort });
      const changed = JSON.stringify(answer) !== JSON.stringify(this._answer);
      this._answer = answer;
      if (changed || this._error !== null) {
        this._error = null;
        this._changed.emit();
      }
    } catch (err) {
      this._error = err instanceof Error ? err.message : String(err);
      this._changed.emit();
      throw err; // the poll backs off
    }
  }

  dispose(): void {
    this.poll.dispose();
    Signal.clearData(this);
  }

  private _defaultSort(): string | null {
    const a = this._answer;
    return a?.metric ? `${a.metric}:${a.goal === 'minimize' ? 'min' : 'max'}` : null;
  }

  private readonly _changed = new Signal<this, void>(this);
  private _answer: ResultsChart | null = null;
  private _error: string | null = null;
  private _sort: string | null = null;
  private _local: { column: Column; descending: boolean } | null = null;
}
